"""The compiled loops on several threads: the same numbers, bit for bit, as on one thread.

The loops split their work by cells, or by rows of a map, between OpenMP threads (convis/csrc/convis_threads.h);
every value is computed by the same operations in the same order whatever the number of threads.  Each case
here is large enough for the loops to use their threads (``CONVIS_PARALLEL_STEP`` values per step,
``CONVIS_PARALLEL_TOTAL`` per call) and runs on one thread and on two.
"""
import re
import subprocess

import numpy as np
import pytest
import torch

import convis
from convis import native
from convis.functional import retina_loops as loops
from convis.noise import counter_normals, seed_key


def _threshold(name):
    with open(native.CSRC + '/convis_threads.h') as f:
        return int(re.search(r'#define %s (\d+)' % name, f.read()).group(1))


@pytest.fixture
def threads():
    """Runs a function on 1 and on 2 threads (torch's setting, which the loops follow) and returns both results."""
    saved = torch.get_num_threads()

    def on(fn):
        out = []
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(fn())
        return out
    yield on
    torch.set_num_threads(saved)


def _equal(a, b, what=''):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k], '%s.%s' % (what, k))
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, '%s[%d]' % (what, i))
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, what
        assert torch.equal(a, b), '%s differs by %g' % (what, float((a.double() - b.double()).abs().max()))
    else:
        assert a == b, what


def _retina_run(configure=None, dtype=torch.float32, shape=(48, 40), frames=60, spikes=True):
    x = 255 * torch.rand((1, 2, frames) + shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x.to(dtype)

    def run():
        retina = convis.retina.Retina(seed=11, spikes=spikes).to(dtype)
        if configure:
            configure(retina)
        retina.record = ('opl', 'bipolar', 'ganglion_0', 'ganglion_1')
        with torch.no_grad():
            parts = [retina(x[:, :, :frames // 2]), retina(x[:, :, frames // 2:])]
        out = {k: torch.cat([p[k] for p in parts], dim=2) for k in parts[0].keys}
        return out, {k: v.clone() for k, v in retina.get_state().items() if isinstance(v, torch.Tensor)}
    return run


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_default_retina_is_the_same_on_one_and_two_threads(threads, dtype):
    assert 48 * 40 >= _threshold('CONVIS_PARALLEL_STEP')
    one, two = threads(_retina_run(dtype=dtype))
    assert float(one[0]['opl'].std()) > 0
    assert float(one[0]['ganglion_spikes_ON'].sum()) > 0 and float(one[0]['ganglion_spikes_OFF'].sum()) > 0
    _equal(one, two)


def _all_recursive(monkeypatch):
    monkeypatch.setattr(loops, 'RECURSION_COST', -1.0)


def _mixed(monkeypatch):
    """The centre by its matrix band, the surround (wider) as the recursive filter: the OPL's two operators
    split the map differently."""
    monkeypatch.setattr(loops, 'RECURSION_COST', 50.0)


@pytest.mark.parametrize('blurs', ['recursive', 'mixed', 'log-polar', 'log-polar-bands'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_every_blur_mode_is_the_same_on_one_and_two_threads(threads, monkeypatch, blurs, dtype):
    configure = None
    if blurs == 'recursive':
        _all_recursive(monkeypatch)
    elif blurs == 'mixed':
        _mixed(monkeypatch)
    else:
        if blurs == 'log-polar-bands':
            monkeypatch.setattr(loops, 'LOG_POLAR_RECURSION_COST', float('inf'))

        def configure(retina):
            retina.resolution.pixel_per_degree = 10.0
            for stage in (retina.opl, retina.bipolar):
                stage.log_polar = (0.5, 1.0)
    run = _retina_run(configure, dtype=dtype, shape=(41, 37), frames=30)
    one, two = threads(run)
    _equal(one, two)
    # the case is what it says: the blur operators take the modes named
    retina = convis.retina.Retina().to(dtype)
    if configure:
        configure(retina)
    x = torch.zeros(1, 1, 1, 41, 37, dtype=dtype)
    ops = [loops._operator(retina.opl._blur(s, x, scale=torch.tensor(k)), 0.5, 41, 37, dtype)[0].mode
           for s, k in ((retina.opl.sigma_center, 1.0), (retina.opl.sigma_surround, 1.58))]
    assert ops == {'recursive': [2, 2], 'mixed': [0, 2], 'log-polar': [3, 3], 'log-polar-bands': [1, 1]}[blurs]


def test_rows_of_the_recursive_filter_in_groups_of_four_and_a_remainder(threads, monkeypatch):
    """43 rows: ten groups of four and one of three, every group vectorised over its rows."""
    _all_recursive(monkeypatch)
    one, two = threads(_retina_run(shape=(43, 29), frames=20, spikes=False))
    _equal(one, two)


def test_noise_and_recursion_loops_are_the_same_on_one_and_two_threads(threads):
    total = _threshold('CONVIS_PARALLEL_TOTAL')
    n_t, m = 50, total // 50 + 7
    for dtype in (torch.float32, torch.float64):
        one, two = threads(lambda: counter_normals(seed_key(5), 3, n_t, m, 1, 2.0, dtype, 'cpu'))
        _equal(one, two)
        assert abs(float(one.std()) - 2.0) < 0.05
        x = torch.randn(2, n_t, m, dtype=dtype)
        y0 = torch.randn(2, 1, m, dtype=dtype)
        one, two = threads(lambda: native.recursion_loop(x, 0.9, y0, 0.1))
        assert one is not None
        _equal(one, two)


def test_loops_are_built_with_openmp_where_the_compiler_has_it(tmp_path):
    """The library calls the OpenMP runtime (GOMP_parallel) when ``cc -fopenmp`` builds a program here."""
    src = tmp_path / 'omp.c'
    src.write_text('#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n')
    has_openmp = subprocess.run(['cc', '-fopenmp', str(src), '-o', str(tmp_path / 'omp')],
                                capture_output=True).returncode == 0
    loops._heat_functions()
    with open(native._LOADED['heat'], 'rb') as f:
        assert (b'GOMP_parallel' in f.read()) == has_openmp
    assert has_openmp         # the machines this project builds on (Debian, gcc) have it


def test_small_maps_and_short_chunks_stay_on_one_thread_and_agree(threads):
    one, two = threads(_retina_run(shape=(9, 7), frames=12))
    _equal(one, two)


def test_a_compiler_without_openmp_builds_the_loops_on_one_thread(monkeypatch, tmp_path):
    """Where ``-fopenmp`` fails, the library is built without it and computes the same."""
    monkeypatch.setenv('CONVIS_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(native, 'OPENMP', ['-fno-such-openmp-flag'])
    path = native.library_path('recursion', True)
    native._build('recursion', native._sources('recursion'), path, True)
    with open(path, 'rb') as f:
        assert b'GOMP_parallel' not in f.read()
    lib = native.ffi().dlopen(path)
    x = torch.randn(1, 40, 1000, dtype=torch.float64)
    y = torch.empty_like(x)
    y0 = torch.zeros(1, 1000, dtype=torch.float64)
    lib.convis_recursion_f64(1, 40, 1000, native.pointer(x), native.pointer(y), native.pointer(y0), 0.9, 0.1)
    expected = native.recursion_loop(x, 0.9, y0[:, None], 0.1)
    _equal(y, expected)
    assert np.isfinite(y.numpy()).all()
