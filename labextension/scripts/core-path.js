/*
 * The JupyterLab builder reads the core package list from `<core-path>/package.json`.
 * @jupyterlab/core-meta ships that file as core.package.json: copy it into
 * node_modules/.convis-core/ so the build needs neither the network nor a Python JupyterLab.
 */
const fs = require('fs');
const path = require('path');

const source = require.resolve('@jupyterlab/core-meta/core.package.json');
const target = path.join(__dirname, '..', 'node_modules', '.convis-core');
fs.mkdirSync(target, { recursive: true });
fs.copyFileSync(source, path.join(target, 'package.json'));
