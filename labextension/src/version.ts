/**
 * The module name and version the Python side names in `_model_module` and
 * `_model_module_version` (convis_widgets/_frontend.py).
 */
declare function require(name: string): any;

const data = require('../package.json');

export const MODULE_NAME: string = data.name;
export const MODULE_VERSION: string = data.version;
