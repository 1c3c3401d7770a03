"""``import convis`` in a fresh interpreter: no side effects, and every name of the original API is there.

The import must not load matplotlib (plots import it when they draw), switch a backend, write files,
start threads or draw from the global random generators (torch, numpy, python), so that importing
convis never changes what a user's seeded script does.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

TOP_LEVEL = ['Layer', 'Output', 'Runner', 'prepare_input', 'Parameter', 'plot', 'plot_5d_matshow', 'plot_5d_time',
             'plot_tensor', 'describe', 'help', 'describe_text', 'describe_dict', 'describe_html', 'animate',
             'animate_to_video', 'animate_to_html', 'animate_double_plot', 'set_steps_per_second',
             'set_pixel_per_degree']
SUBMODULES = ['base', 'variables', 'retina', 'models', 'streams', 'samples', 'numerical_filters', 'utils',
              'analysis', 'kernels', 'layers', 'filters', 'filters.spiking', 'filters.retina']

CHILD = textwrap.dedent('''
    import json, os, random, sys, threading, time
    start = time.perf_counter()
    import numpy as np
    import torch

    def tasks():
        return len(os.listdir('/proc/self/task'))

    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    before = {'tasks': tasks(), 'threads': sorted(t.name for t in threading.enumerate())}
    t0 = time.perf_counter()
    import convis
    seconds = time.perf_counter() - t0
    import types
    missing = []
    for name in json.loads(sys.argv[1]):
        if not callable(getattr(convis, name, None)):
            missing.append(name)
    for path in json.loads(sys.argv[2]):
        obj = convis
        for part in path.split('.'):
            obj = getattr(obj, part, None)
        if not isinstance(obj, types.ModuleType) or obj.__name__ != 'convis.' + path:
            missing.append(path)
    np_after = np.random.get_state()
    print(json.dumps({
        'seconds': seconds,
        'seconds_with_torch': time.perf_counter() - start,
        'file': convis.__file__,
        'modules': sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'IPython', 'ipywidgets',
                                                                       'convis_widgets', 'bqplot', 'ipyvolume')),
        'tasks': [before['tasks'], tasks()],
        'threads': [before['threads'], sorted(t.name for t in threading.enumerate())],
        'torch_rng_same': bool(torch.equal(torch.get_rng_state(), torch_state)),
        'torch_initial_seed': torch.initial_seed(),
        'numpy_rng_same': bool(np_after[0] == np_state[0] and (np_after[1] == np_state[1]).all()
                               and np_after[2:] == np_state[2:]),
        'python_rng_same': random.getstate() == py_state,
        'missing': missing,
    }))
''')


def run_child(tmp_path, code, *args):
    """Runs ``code`` in a fresh interpreter in an empty directory, with an empty home and temp directory."""
    work, home, tmp = tmp_path / 'work', tmp_path / 'home', tmp_path / 'tmp'
    for d in (work, home, tmp):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(('MPL', 'PYTEST'))}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE='1', PYTHONPATH=ROOT,
               XDG_CACHE_HOME=str(home / '.cache'), XDG_CONFIG_HOME=str(home / '.config'))
    p = subprocess.run([sys.executable, '-c', code] + list(args), cwd=str(work), env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    written = sorted(str(f.relative_to(tmp_path)) for d in (work, home, tmp) for f in d.rglob('*'))
    return p, written


@pytest.fixture(scope='module')
def child(tmp_path_factory):
    p, written = run_child(tmp_path_factory.mktemp('import'), CHILD, json.dumps(TOP_LEVEL), json.dumps(SUBMODULES))
    return json.loads(p.stdout.strip().splitlines()[-1]), written, p.stderr


def test_import_is_quick_and_imports_this_tree(child, capsys):
    info, _, _ = child
    with capsys.disabled():
        print('\nimport convis: %.2f s wall after torch and numpy (%.2f s with them)'
              % (info['seconds'], info['seconds_with_torch']))
    assert os.path.dirname(info['file']) == os.path.join(ROOT, 'convis')


def test_import_does_not_load_matplotlib_or_the_notebook_stack(child):
    assert child[0]['modules'] == []


def test_import_writes_no_files_and_prints_nothing(child):
    info, written, stderr = child
    assert written == []
    assert stderr == ''


def test_import_starts_no_threads(child):
    info = child[0]
    assert info['threads'][0] == info['threads'][1] == ['MainThread']
    assert info['tasks'][1] == info['tasks'][0]


def test_import_leaves_the_random_generators_alone(child):
    info = child[0]
    assert info['torch_rng_same'] and info['torch_initial_seed'] == 1234
    assert info['numpy_rng_same'] and info['python_rng_same']


def test_the_original_api_names_exist(child):
    assert child[0]['missing'] == []


def test_import_keeps_the_matplotlib_backend(tmp_path):
    code = textwrap.dedent('''
        import matplotlib
        matplotlib.use('svg')
        import IPython
        import convis
        import numpy as np
        print(matplotlib.get_backend())
        convis.plot(np.random.rand(30))
        print(matplotlib.get_backend())
    ''')
    p, _ = run_child(tmp_path, code)
    assert p.stdout.split() == ['svg', 'svg']
