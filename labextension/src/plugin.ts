/**
 * The JupyterLab 4 / Notebook 7 / Voila plugin: registers the widget module with the widget manager.
 */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';

import * as widgetExports from './index';
import { MODULE_NAME, MODULE_VERSION } from './version';

import '../style/index.css';

const plugin = {
  id: 'convis-widgets:plugin',
  description: 'Canvas player and other front-end views of the convis widgets',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (_app: unknown, registry: IJupyterWidgetRegistry): void => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: widgetExports as any
    });
  }
};

export default plugin;
