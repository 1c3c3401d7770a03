"""The name and version of the browser module (labextension/package.json) the widgets ask for."""
MODULE_NAME = 'convis-widgets'
MODULE_VERSION = '^1.0.0'
