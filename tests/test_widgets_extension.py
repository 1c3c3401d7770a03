"""The front end: built into the package by the install, enabled in JupyterLab, in step with the Python side."""
import json
import os
import re
import subprocess
import sys

import convis_widgets
from convis_widgets import COLORMAPS, TensorView

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
SOURCE = os.path.join(ROOT, 'labextension')
BUILT = os.path.join(os.path.dirname(convis_widgets.__file__), 'labextension')


def read(*parts):
    with open(os.path.join(*parts)) as f:
        return f.read()


def test_the_install_built_the_extension_into_the_package():
    meta = json.loads(read(BUILT, 'package.json'))
    assert meta['name'] == convis_widgets.MODULE_NAME == 'convis-widgets'
    assert meta['jupyterlab']['_build']['load'].startswith('static/remoteEntry.')
    assert os.path.exists(os.path.join(BUILT, meta['jupyterlab']['_build']['load']))
    assert os.path.exists(os.path.join(BUILT, 'static', 'style.js'))
    assert convis_widgets._jupyter_labextension_paths() == [{'src': 'labextension', 'dest': 'convis-widgets'}]


def test_jupyterlab_lists_the_extension_as_enabled():
    jupyter = os.path.join(os.path.dirname(sys.executable), 'jupyter')
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    out = subprocess.run([jupyter, 'labextension', 'list'], capture_output=True, text=True, env=env, timeout=120)
    text = re.sub(r'\x1b\[[0-9;]*m', '', out.stdout + out.stderr)
    line = next(ln for ln in text.splitlines() if 'convis-widgets' in ln)
    assert 'enabled' in line and 'OK' in line


def test_python_and_browser_agree_on_names():
    package = json.loads(read(SOURCE, 'package.json'))
    assert convis_widgets.MODULE_VERSION == '^' + package['version']
    colormaps = read(SOURCE, 'src', 'colormaps.ts')
    block = colormaps[colormaps.index('const CONTROL'):colormaps.index('};')]
    assert tuple(re.findall(r'^\s+(\w+):', block, re.M)) == COLORMAPS
    view = read(SOURCE, 'src', 'tensorview.ts')
    defaults = view[view.index('defaults(): any'):view.index('static serializers')]
    ts_traits = set(re.findall(r'^\s+(\w+):', defaults, re.M))
    py_traits = set(TensorView.class_trait_names(sync=True)) - {
        '_dom_classes', 'layout', 'tabbable', 'tooltip', '_model_name', '_view_name', '_model_module',
        '_view_module', '_model_module_version', '_view_module_version', '_view_count'}
    assert py_traits <= ts_traits, py_traits - ts_traits
