"""The compiled loops (convis.native, convis.functional.retina_loops) against torch/numpy computations of the same
equations."""
import os
import warnings

import numpy as np
import pytest
import torch

import convis
from convis import native
from convis.functional import outer_plexiform as functional_opl
from convis.functional import retina_loops as loops
from convis.filters import retina as retina_filters
from convis.filters.spatial import SeparableBlur, recursive_gaussian_matrix


def _reference_heat(u, e, a_rows, a_cols, y_prev):
    """``y[s] = A_r (e y[s-1] + (1-e) u[s]) A_c^T`` step by step in float64 numpy."""
    u = u.detach().double().numpy()
    h, w = u.shape[-2:]
    ar = np.eye(h) if a_rows is None else a_rows.detach().double().numpy()
    ac = np.eye(w) if a_cols is None else a_cols.detach().double().numpy()
    y = y_prev.detach().double().numpy()[:, :, 0]
    out = np.empty_like(u)
    for s in range(u.shape[2]):
        y = ar @ (e * y + (1 - e) * u[:, :, s]) @ ac.T
        out[:, :, s] = y
    return out


def compiled_then_torch(monkeypatch, run):
    """``run()`` with the compiled loops, then with them switched off (the torch code): both results."""
    fast = run()
    monkeypatch.setenv('CONVIS_NO_COMPILE', '1')
    monkeypatch.setattr(loops, '_HEAT', [])
    monkeypatch.setattr(native, '_RECURSION', [])
    return fast, run()


@pytest.fixture
def compiled():
    if loops._heat_functions() is None or native._recursion_functions() is None:
        pytest.fail('the leaky heat loop did not compile: a C compiler (cc) is needed for the test run')


@pytest.mark.parametrize('shape', [(1, 1, 30, 1, 1), (2, 3, 17, 5, 37), (1, 1, 40, 50, 17), (1, 2, 25, 33, 64),
                                   (1, 1, 12, 100, 100)])
@pytest.mark.parametrize('sigmas', [(0.8, 2.5), (3.0, 0.3), (6.0, 6.0), (None, 1.5), (1.2, None)])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_leaky_heat_loop_equals_the_equation(compiled, shape, sigmas, dtype):
    gen = torch.Generator().manual_seed(sum(shape))
    u = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    y_prev = torch.randn(shape[:2] + (1,) + shape[3:], generator=gen, dtype=torch.float64).to(dtype)
    a_rows = None if sigmas[0] is None else recursive_gaussian_matrix(sigmas[0], shape[3], dtype, 'cpu')
    a_cols = None if sigmas[1] is None else recursive_gaussian_matrix(sigmas[1], shape[4], dtype, 'cpu')
    e = 0.8
    y = loops.leaky_heat_loop(u, torch.tensor(e, dtype=dtype), SeparableBlur(a_rows, a_cols), y_prev)
    assert y.shape == u.shape and y.dtype == dtype
    ref = _reference_heat(u, e, a_rows, a_cols, y_prev)
    err = np.abs(y.double().numpy() - ref).max() / np.abs(ref).max()
    assert err < (1e-13 if dtype == torch.float64 else 2e-6), err


def test_leaky_heat_loop_carries_state_exactly_across_chunks(compiled):
    u = torch.randn(1, 2, 50, 20, 30, dtype=torch.float64)
    a_rows = recursive_gaussian_matrix(1.5, 20, torch.float64, 'cpu')
    a_cols = recursive_gaussian_matrix(2.0, 30, torch.float64, 'cpu')
    y0 = torch.zeros(1, 2, 1, 20, 30, dtype=torch.float64)
    blur = SeparableBlur(a_rows, a_cols)
    whole = loops.leaky_heat_loop(u, 0.7, blur, y0)
    first = loops.leaky_heat_loop(u[:, :, :13], 0.7, blur, y0)
    second = loops.leaky_heat_loop(u[:, :, 13:], 0.7, blur, first[:, :, -1:])
    assert torch.equal(torch.cat([first, second], dim=2), whole)


def test_leaky_heat_uses_the_compiled_loop_and_agrees_with_the_torch_loop(compiled, monkeypatch):
    blur = SeparableBlur(recursive_gaussian_matrix(1.3, 24, torch.float32, 'cpu'),
                         recursive_gaussian_matrix(2.2, 31, torch.float32, 'cpu'))
    u = 50 * torch.rand(2, 1, 60, 24, 31)
    y0 = torch.rand(2, 1, 1, 24, 31)
    e = torch.tensor(0.6)
    with torch.no_grad():
        fast = retina_filters.leaky_heat(u, e, blur, y0)
        calls = []
        monkeypatch.setattr(functional_opl, 'leaky_heat_loop', lambda *a: calls.append(1))  # returns None
        slow = retina_filters.leaky_heat(u, e, blur, y0)
    assert calls == [1]                        # the torch loop ran because the compiled one was absent
    assert (fast - slow).abs().max() / slow.abs().max() < 1e-6


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('undershoot', [1.0, 0.0])
@pytest.mark.parametrize('shape', [(1, 1, 80, 30, 40), (2, 3, 23, 7, 19)])
@pytest.mark.parametrize('blur_mode', [0, 2])
def test_compiled_opl_equals_the_torch_stages(compiled, monkeypatch, dtype, undershoot, shape, blur_mode):
    """Blurs by their matrix bands (mode 0) and as the recursive filter (mode 2)."""
    monkeypatch.setattr(loops, 'RECURSION_COST', float('inf') if blur_mode == 0 else -1.0)
    x = 255 * torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)

    def run():
        opl = retina_filters.OPL().to(dtype)
        opl.undershoot_enabled = undershoot
        opl.sigma_surround = 0.3
        with torch.no_grad():
            first = opl(x[:, :, :shape[2] // 2])       # the state carries over between the two calls
            second = opl(x[:, :, shape[2] // 2:])
        return (torch.cat([first, second], dim=2), opl.get_state())
    results = compiled_then_torch(monkeypatch, run)
    assert loops.opl_loop(x, (None,) * 4, (0.5, None), (0.5, None), 1, 0, True, 0.5, 0.5, 1, 0) is None
    (fast, fast_state), (slow, slow_state) = results
    assert float(slow.abs().max()) > 0.1
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (fast - slow).abs().max() <= tol * slow.abs().max()
    for name in ('center', 'undershoot', 'receptor', 'surround'):
        a, b = fast_state[name], slow_state[name]
        assert a.shape == b.shape == (shape[0], shape[1], 1) + shape[3:]
        assert (a - b).abs().max() <= tol * (1 + b.abs().max())


def test_matrix_band_and_diagonals():
    a = torch.tensor([[1.0, 1e-3, 1e-30, 0.0],
                      [1e-3, 1.0, 1e-3, 0.0],
                      [0.0, 0.5, 1.0, 0.5],
                      [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    lo, hi = native.matrix_band(a, 1e-12)
    assert lo.tolist() == [0, 0, 1, 0] and hi.tolist() == [2, 3, 4, 0]
    diag, k = native.matrix_diagonals(a, 1e-12)
    assert k == 1
    x = torch.randn(5, 4, dtype=torch.float64)
    by_diagonals = sum(diag[d + k] * torch.roll(x, -d, dims=1) * _inside(d, 4) for d in range(-k, k + 1))
    kept = torch.where(a.abs() > 1e-12 * a.abs().amax(1, keepdim=True), a, torch.zeros(()))
    assert torch.allclose(by_diagonals, x @ kept.T, atol=1e-15)


def _inside(d, n):
    j = torch.arange(n)
    return ((j + d >= 0) & (j + d < n)).double()


def test_retina_pieces_give_the_same_result(monkeypatch):
    x = 255 * torch.rand(1, 1, 120, 20, 24, generator=torch.Generator().manual_seed(3))
    outs = []
    for elements in (1 << 30, 20 * 24 * 16):     # one piece; pieces of 16 frames
        retina = convis.retina.Retina(seed=5)
        retina.gang_0_spikes.noise_sigma = 0.0
        retina.gang_1_spikes.noise_sigma = 0.0
        monkeypatch.setattr(type(retina), 'PIECE_ELEMENTS', elements)
        retina.record = ('ganglion_0',)
        with torch.no_grad():
            outs.append(retina(x))
    whole, pieces = outs
    rates_whole, rates_pieces = whole['ganglion_0'], pieces['ganglion_0']
    assert rates_whole.shape == rates_pieces.shape == (1, 1, 120, 20, 24)
    assert (rates_whole - rates_pieces).abs().max() <= 1e-5 * rates_whole.abs().max()
    assert abs(float(whole[0].sum()) - float(pieces[0].sum())) <= 1e-3 * float(whole[0].sum())
    assert float(whole[0].sum()) > 100


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('dim', [2, 0, 4])
def test_recursion_loop_equals_the_block_products_and_the_recursion(compiled, dtype, dim):
    from convis.filters.temporal import exponential_recursion
    x = torch.randn(2, 3, 70, 4, 5, dtype=torch.float64).to(dtype)
    y_prev = torch.randn(tuple(1 if d == dim else n for d, n in enumerate(x.shape)), dtype=torch.float64).to(dtype)
    with torch.no_grad():
        fast = exponential_recursion(x, 0.93, y_prev, gain=0.4, dim=dim)
    e = torch.tensor(0.93, dtype=dtype, requires_grad=True)        # autograd: the block products
    blocks = exponential_recursion(x, e, y_prev, gain=0.4, dim=dim).detach()
    xs, y = x.double().movedim(dim, 0).numpy(), y_prev.double().movedim(dim, 0).numpy()[0]
    ref = np.empty_like(xs)
    for s in range(xs.shape[0]):
        y = 0.93 * y + 0.4 * xs[s]
        ref[s] = y
    ref = torch.from_numpy(ref).movedim(0, dim)
    tol = 1e-13 if dtype == torch.float64 else 2e-6
    scale = float(ref.abs().max())
    assert float((fast.double() - ref).abs().max()) <= tol * scale
    assert float((blocks.double() - ref).abs().max()) <= tol * scale


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('shape', [(1, 1, 60, 25, 30), (2, 2, 21, 9, 17)])
@pytest.mark.parametrize('sigma', [0.2, 0.0])
@pytest.mark.parametrize('blur_mode', [0, 2])
@pytest.mark.parametrize('lam', [200.0, 0.0])
def test_compiled_gain_control_equals_the_torch_loop(compiled, monkeypatch, dtype, shape, sigma, blur_mode, lam):
    """With feedback (lam > 0) and without (the default retina: a low-pass of the OPL output)."""
    monkeypatch.setattr(loops, 'RECURSION_COST', float('inf') if blur_mode == 0 else -1.0)
    gen = torch.Generator().manual_seed(2)
    x = (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1).to(dtype)

    def run():
        bip = retina_filters.Bipolar().to(dtype)
        bip.lambda_amp = lam
        bip.adaptation_sigma = sigma
        with torch.no_grad():
            parts = [bip(x[:, :, :7]), bip(x[:, :, 7:])]
        return (torch.cat(parts, dim=2), bip.get_state())
    results = compiled_then_torch(monkeypatch, run)
    (fast, fast_state), (slow, slow_state) = results
    assert (float(slow_state['g_A'].abs().max()) > 1.0) == (lam > 0)    # the feedback is active, or absent
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    assert (fast - slow).abs().max() <= tol * slow.abs().max()
    for name in ('input_prev', 'V', 'g_A'):
        assert (fast_state[name] - slow_state[name]).abs().max() <= tol * (1 + slow_state[name].abs().max())


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_ganglion_input_loop_equals_the_equations(compiled, dtype, sign):
    from convis.filters.ganglion import smooth_rectifier
    gen = torch.Generator().manual_seed(4)
    x = (torch.randn(2, 1, 40, 6, 7, generator=gen, dtype=torch.float64)).to(dtype)
    states = [torch.randn(2, 1, 1, 6, 7, generator=gen, dtype=torch.float64).to(dtype) for _ in range(3)]
    e, w, v0, i0, lam, sat = 0.6, 0.7, 0.1, 37.0, 100.0, 5e5
    rates, (xp, f_state, t_state) = loops.ganglion_input_loop(x, states, e, w, sign, v0, i0, lam, sat)
    xs = torch.cat([states[0], x], dim=2).double()
    f, t = states[1].double(), states[2].double()
    expected = []
    for s in range(x.shape[2]):
        expected.append(smooth_rectifier(sign * t, torch.tensor(v0, dtype=torch.float64),
                                         torch.tensor(i0, dtype=torch.float64), torch.tensor(lam, dtype=torch.float64)))
        f = e * f + (1 - e) * xs[:, :, s:s + 1]
        t = xs[:, :, s:s + 1] - w * f
    expected = torch.cat(expected, dim=2)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (rates.double() - expected).abs().max() <= tol * expected.abs().max()
    assert torch.equal(xp, x[:, :, -1:])
    assert (f_state.double() - f).abs().max() <= tol * (1 + f.abs().max())
    assert (t_state.double() - t).abs().max() <= tol * (1 + t.abs().max())


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('pool', [0.0, 0.3])
def test_compiled_ganglion_input_equals_the_torch_stage(compiled, monkeypatch, dtype, pool):
    from convis.filters.ganglion import GanglionInput
    x = torch.randn(2, 1, 50, 12, 9, generator=torch.Generator().manual_seed(6), dtype=torch.float64).to(dtype)

    def run():
        layer = GanglionInput(sign=-1).to(dtype)
        layer.sigma_pool = pool
        layer.v_0 = 0.2
        with torch.no_grad():
            out = torch.cat([layer(x[:, :, :19]), layer(x[:, :, 19:])], dim=2)
        return (out, layer.get_state())
    results = compiled_then_torch(monkeypatch, run)
    (fast, fast_state), (slow, slow_state) = results
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert float(slow.max() - slow.min()) > 10
    assert (fast - slow).abs().max() <= tol * slow.abs().max()
    for name in ('input_prev', 'F', 'T'):
        assert (fast_state[name] - slow_state[name]).abs().max() <= tol * (1 + slow_state[name].abs().max())


@pytest.mark.parametrize('mode', [1, 3])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_compiled_log_polar_opl_and_gain_control_equal_the_torch_stages(compiled, monkeypatch, dtype, mode):
    """VirtualRetina's log-polar scheme in the compiled OPL and gain-control loops: by the bands of its per-line
    matrices (mode 1) and as its recursion with per-pixel coefficients (mode 3)."""
    monkeypatch.setattr(loops, 'LOG_POLAR_RECURSION_COST', float('inf') if mode == 1 else -1.0)
    x = 255 * torch.rand(1, 2, 40, 36, 29, generator=torch.Generator().manual_seed(8), dtype=torch.float64).to(dtype)
    retinas = []

    def run():
        retina = convis.retina.Retina(spikes=False).to(dtype)
        retinas.append(retina)
        retina.resolution.pixel_per_degree = 10.0
        retina.bipolar.lambda_amp = 100.0
        for stage in (retina.opl, retina.bipolar):
            stage.log_polar = (0.5, 1.0)
        retina.record = ('opl', 'bipolar')
        with torch.no_grad():
            parts = [retina(x[:, :, :15]), retina(x[:, :, 15:])]
        return {k: torch.cat([p[k] for p in parts], dim=2) for k in ('opl', 'bipolar')}
    results = compiled_then_torch(monkeypatch, run)
    fast, slow = results
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for k in ('opl', 'bipolar'):
        assert float(slow[k].std()) > 0
        assert (fast[k] - slow[k]).abs().max() <= tol * slow[k].abs().max(), k
    # the sigma really varies over the map (small in the fovea, larger outside)
    blur = retinas[0].opl._blur(retinas[0].opl.sigma_surround, x)
    assert loops._operator(blur, 0.5, 36, 29, dtype)[0].mode == mode
    a_cols = torch.as_tensor(blur.mats[0])
    assert float(a_cols[18].diagonal().max() - a_cols[18].diagonal().min()) > 0.05


def test_wide_blurs_run_as_the_recursive_filter_and_narrow_ones_by_their_band(compiled):
    from convis.filters.spatial import blur_operator
    modes = {}
    for sigma in (0.03, 0.08, 3.0):             # 0.3, 0.8 and 30 pixels
        blur = blur_operator(sigma, 10.0, (60, 70), torch.float32, 'cpu')
        op, _ = loops._operator(blur, 0.9, 60, 70, torch.float32)
        modes[sigma] = op.mode
    assert modes == {0.03: 0, 0.08: 0, 3.0: 2}
    # no blur along one axis: the recursion runs along the other axis only
    blur = SeparableBlur(None, recursive_gaussian_matrix(30.0, 70, torch.float64, 'cpu'), None, 30.0)
    op, _ = loops._operator(blur, 0.9, 6, 70, torch.float64)
    assert op.mode == 2 and (op.use_rows, op.use_cols) == (0, 1)
    u = torch.randn(1, 1, 30, 6, 70, dtype=torch.float64)
    y0 = torch.zeros(1, 1, 1, 6, 70, dtype=torch.float64)
    with torch.no_grad():
        fast = retina_filters.leaky_heat(u, torch.tensor(0.9, dtype=torch.float64), blur, y0)
    ref = _reference_heat(u, 0.9, None, blur.a_cols, y0)
    assert np.abs(fast.numpy() - ref).max() <= 1e-12 * np.abs(ref).max()


def test_retinas_in_several_threads_give_their_sequential_results(compiled):
    """The compiled loops and their caches are shared: retinas running at once (a Runner beside a notebook)
    still compute what they compute alone."""
    import threading
    inputs = [255 * np.random.RandomState(k).rand(200, 24 + 4 * k, 30) for k in range(3)]

    def simulate(k, out):
        retina = convis.retina.Retina(seed=k)
        retina.opl.sigma_surround = 0.3 + 0.2 * k          # different blurs, different cached operands
        out[k] = [o.clone() for o in retina.run(inputs[k], dt=70)]
    alone, together = {}, {}
    for k in range(3):
        simulate(k, alone)
    threads = [threading.Thread(target=simulate, args=(k, together)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        assert float(alone[k][0].sum()) > 0
        for a, b in zip(alone[k], together[k]):
            assert torch.equal(a, b)


def test_the_whole_retina_without_compiled_loops_computes_the_same(compiled, monkeypatch):
    """The torch code that GPUs and machines without a C compiler run, against the compiled loops: the same
    rates to rounding, and the same spikes but for cells at the threshold."""
    from convis.functional import lif as ganglion
    x = 255 * np.random.RandomState(5).rand(2, 1, 150, 20, 26)

    def run():
        retina = convis.retina.Retina(seed=3)
        retina.bipolar.lambda_amp = 50.0                 # gain control on
        retina.record = ('ganglion_0',)
        with torch.no_grad():
            return retina.run(x, dt=60)

    fast = run()
    monkeypatch.setattr(ganglion, '_NATIVE', [None])
    monkeypatch.setattr(convis.noise, '_NATIVE', [None])
    slow = compiled_then_torch(monkeypatch, run)[1]
    rates_fast, rates_slow = fast['ganglion_0'], slow['ganglion_0']
    assert (rates_fast - rates_slow).abs().max() <= 1e-5 * rates_slow.abs().max()
    for k in range(2):
        n_fast, n_slow = float(fast[k].sum()), float(slow[k].sum())
        assert n_slow > 100
        assert abs(n_fast - n_slow) <= 0.002 * n_slow
        assert float((fast[k] != slow[k]).double().mean()) < 1e-3


# ---------------------------------------------------------------------------------------------- the cache
_WRONG_RECURSION = os.path.join(os.path.dirname(__file__), 'data', 'wrong_recursion.c')
"""A library with the recursion's functions that computes something else (as a planted library would)."""


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """A fresh, empty cache folder for the compiled loops; the recursion loop is looked up anew."""
    folder = tmp_path / 'cache'
    monkeypatch.setenv('CONVIS_CACHE_DIR', str(folder))
    monkeypatch.delenv('CONVIS_NO_COMPILE', raising=False)
    monkeypatch.setattr(native, '_RECURSION', [])
    monkeypatch.setattr(native, '_LOADED', {})
    monkeypatch.setattr(native, '_LIBS', {})
    monkeypatch.setattr(native, '_PRIVATE', [])
    monkeypatch.setattr(native, '_WARNED', set())
    return folder


def recursion_path():
    return native.library_path('recursion', contract=True)


def assert_the_compiled_recursion_is_used(path):
    """The recursion loop comes from the library at ``path`` and computes the recursion."""
    assert native._recursion_functions() is not None
    assert native._LOADED['recursion'] == path
    x = torch.arange(6, dtype=torch.float64).reshape(1, 6, 1)
    y = native.recursion_loop(x, 0.5, torch.zeros(1, 1, 1, dtype=torch.float64), 1.0)
    ref, prev = [], 0.0
    for v in range(6):
        prev = 0.5 * prev + v
        ref.append(prev)
    assert y is not None and y.flatten().tolist() == ref


def plant(path, source):
    """Compiles the C file ``source`` to ``path`` directly, with a valid checksum (what another program may
    have left in the cache)."""
    native._compile('cc', source, path, False, False)
    with open(path, 'r+b') as f:
        f.write(native._trailer(f.read()))
    os.chmod(path, 0o755)


@pytest.mark.parametrize('damage', ['truncated', 'one byte changed', 'random bytes', 'empty'])
def test_a_corrupt_cached_library_is_rebuilt_and_used(cache, damage, caplog):
    """A damaged library is found before it is loaded (loading a truncated one crashes the process with a
    bus error) and built anew."""
    path = recursion_path()
    if damage in ('truncated', 'one byte changed'):
        native._build('recursion', native._sources('recursion'), path, True)
        with open(path, 'r+b') as f:
            if damage == 'truncated':
                f.truncate(os.path.getsize(path) // 3)
            else:
                f.seek(os.path.getsize(path) // 2)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0xff]))
    else:
        with open(path, 'wb') as f:
            f.write(np.random.RandomState(0).bytes(5000) if damage == 'random bytes' else b'')
        os.chmod(path, 0o755)
    with caplog.at_level('WARNING', logger='convis'):
        assert_the_compiled_recursion_is_used(path)
    assert 'does not load' in caplog.text and 'building it anew' in caplog.text
    if damage != 'random bytes':
        assert 'checksum does not match' in caplog.text
    assert os.path.getsize(path) > 1000


def test_a_library_that_fails_after_rebuilding_warns_and_falls_back(cache, monkeypatch):
    """The rebuild is tried once: when the rebuilt library does not load either, a warning names it and the
    torch twin is used."""
    path = recursion_path()

    def broken_build(name, sources, target, contract):
        with open(target, 'wb') as f:
            f.write(b'not a library')
        os.chmod(target, 0o755)
    monkeypatch.setattr(native, '_build', broken_build)
    with pytest.warns(RuntimeWarning, match='cannot be loaded even after rebuilding'):
        assert native._recursion_functions() is None
    assert 'recursion' not in native._LOADED
    x = torch.ones(1, 3, 1, dtype=torch.float64)
    assert native.recursion_loop(x, 0.5, torch.zeros(1, 1, 1, dtype=torch.float64), 1.0) is None
    assert os.path.exists(path)


@pytest.mark.parametrize('unsafe', ['group-writable', 'writable by others', 'another user', 'a link'])
def test_an_unsafe_cached_library_is_refused_and_rebuilt(cache, unsafe, tmp_path):
    """A library in the cache that another user could have planted is not loaded: it is rebuilt."""
    path = recursion_path()
    target = path
    if unsafe == 'a link':
        target = str(tmp_path / 'elsewhere.so')
        os.symlink(target, path)
    plant(target, _WRONG_RECURSION)
    if unsafe == 'group-writable':
        os.chmod(path, 0o775)
    elif unsafe == 'writable by others':
        os.chmod(path, 0o757)
    elif unsafe == 'another user':
        os.chown(path, 12345, 12345)                # the test suite runs as root
    reason = {'another user': 'owned by user id 12345', 'a link': 'not a regular file'}.get(unsafe, 'writable by')
    with pytest.warns(RuntimeWarning, match='cached library .* is %s' % reason):
        assert_the_compiled_recursion_is_used(path)
    st = os.lstat(path)
    assert st.st_uid == os.getuid() and st.st_mode & 0o022 == 0 and not os.path.islink(path)


@pytest.mark.parametrize('unsafe', ['group-writable', 'another user'])
def test_an_unsafe_cache_folder_is_refused_for_a_private_one(cache, unsafe):
    cache.mkdir()
    if unsafe == 'group-writable':
        os.chmod(cache, 0o770)
    else:
        os.chown(cache, 12345, 12345)
    with pytest.warns(RuntimeWarning, match='cache folder .* is (writable by group|owned by user id 12345)'):
        path = recursion_path()
    private = native._PRIVATE[0]
    assert os.path.dirname(path) == private and os.stat(private).st_mode & 0o077 == 0
    assert_the_compiled_recursion_is_used(path)
    assert os.listdir(cache) == []


def test_libraries_are_built_private_whatever_the_umask(cache):
    """Built under a permissive umask the library is still not writable by others, so it is used again
    later without a warning (and the folder is made private)."""
    old = os.umask(0)
    try:
        path = recursion_path()
        native._build('recursion', native._sources('recursion'), path, True)
    finally:
        os.umask(old)
    assert os.stat(cache).st_mode & 0o077 == 0 and os.stat(path).st_mode & 0o022 == 0
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert_the_compiled_recursion_is_used(path)
    assert os.listdir(cache) == [os.path.basename(path)]
