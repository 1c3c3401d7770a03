"""The pure kernels of convis.functional: two chunks with the state passed along equal one call, the compiled
loops equal the torch reference, and each retina layer's output is its kernel's."""
import numpy as np
import pytest
import torch

from convis import functional as F
from convis.filters.retina import OPL, Bipolar, GanglionInput, GanglionSpiking
from convis.noise import seed_key

D = torch.float64


@pytest.fixture(autouse=True)
def no_grad():
    """Simulation: the layers' parameters require gradients, the kernels run without autograd."""
    with torch.no_grad():
        yield


def split_run(kernel, x, state, cut, **kw):
    """The kernel on ``x`` in one call, and in two calls cut at step ``cut`` with the state passed along."""
    whole, s_whole = kernel(x, state, **kw)
    a, s_a = kernel(x[:, :, :cut], state, **kw)
    b, s_b = kernel(x[:, :, cut:], s_a, **kw)
    return whole, torch.cat([a, b], 2), s_whole, s_b


def zeros(x, n=1):
    return tuple(torch.zeros_like(x[:, :, :1]) for _ in range(n))


def opl_setup(undershoot=True, n_center=0):
    torch.manual_seed(0)
    layer = OPL().to(D)
    layer.undershoot_enabled.set(float(undershoot))
    layer.n_center.set(float(n_center))
    x = 255 * torch.rand(2, 1, 37, 9, 11, dtype=D)
    params = layer.kernel_parameters(x, 100.0, 0.25)
    z = zeros(x)[0]
    return layer, x, params, F.OPLState(z, z, z, z, z[None].repeat(n_center, 1, 1, 1, 1, 1))


@pytest.mark.parametrize('compiled', [None, False])
@pytest.mark.parametrize('undershoot,n_center', [(True, 0), (False, 0), (True, 2)])
def test_opl_in_two_chunks_equals_one_call(compiled, undershoot, n_center):
    _, x, params, state = opl_setup(undershoot, n_center)
    whole, halves, s_whole, s_halves = split_run(F.opl, x, state, 15, params=params, compiled=compiled)
    assert float((whole - halves).abs().max()) < 1e-9 * float(whole.abs().max())
    for a, b in zip(s_whole, s_halves):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_opl_compiled_and_torch_agree_and_record_the_inner_maps():
    _, x, params, state = opl_setup()
    with torch.no_grad():
        fast, s_fast = F.opl(x, state, params, compiled=True)
        maps = {}
        slow, s_slow = F.opl(x, state, params, record=maps, compiled=False)
    assert float((fast - slow).abs().max()) < 1e-9 * float(slow.abs().max())
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-9) for a, b in zip(s_fast, s_slow))
    assert set(maps) == {'center', 'receptor', 'horizontal'} and maps['center'].shape == x.shape
    assert torch.allclose(maps['receptor'] - maps['horizontal'] + 0.25, slow)
    with pytest.raises(RuntimeError, match='records no inner maps'):
        F.opl(x, state, params, record={}, compiled=True)


def test_opl_layer_output_is_the_kernels():
    layer, x, _, _ = opl_setup()
    lum, _, r, s = layer._rest(x)
    expected, _ = F.opl(x, F.OPLState(*zeros(x, 5)), layer.kernel_parameters(x, lum, r - s), compiled=False)
    assert float((layer(x) - expected).abs().max()) < 1e-9 * float(expected.abs().max())


def bipolar_setup(lam):
    torch.manual_seed(1)
    layer = Bipolar().to(D)
    layer.lambda_amp.set(lam)
    x = torch.randn(1, 2, 41, 8, 10, dtype=D)
    return layer, x, layer.kernel_parameters(x), F.GainControlState(*zeros(x, 3))


@pytest.mark.parametrize('lam', [0.0, 100.0])
def test_gain_control_in_two_chunks_equals_one_call_and_the_compiled_loop(lam):
    _, x, params, state = bipolar_setup(lam)
    dt = 0.005
    results = []
    for compiled in (True, False):
        whole, halves, s_whole, s_halves = split_run(F.contrast_gain_control, x, state, 20, params=params, dt=dt,
                                                     compiled=compiled)
        assert float((whole - halves).abs().max()) < 1e-12 * float(whole.abs().max())
        assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in zip(s_whole, s_halves))
        results.append(whole)
    assert float((results[0] - results[1]).abs().max()) < 1e-9 * float(results[1].abs().max())
    if lam:     # the feedback attenuates: with lambda_A the potential is smaller than without
        plain, _ = F.contrast_gain_control(x, state, params._replace(lambda_amp=0 * params.lambda_amp), dt)
        assert float(results[1].abs().max()) < float(plain.abs().max())


def test_gain_control_layer_output_is_the_kernels():
    layer, x, params, state = bipolar_setup(80.0)
    layer.record = ('cgc_adaptation',)
    maps = {}
    expected, _ = F.contrast_gain_control(x, state, params, layer.resolution.dt, record=maps, compiled=False)
    out = layer(x)
    assert float((out - expected).abs().max()) < 1e-12 * float(expected.abs().max())
    assert torch.allclose(layer.recorded['cgc_adaptation'], maps['cgc_adaptation'], rtol=1e-12)


def ganglion_setup(sigma_pool=0.0):
    torch.manual_seed(2)
    layer = GanglionInput(sign=-1).to(D)
    layer.sigma_pool.set(sigma_pool)
    x = 0.3 * torch.randn(2, 1, 33, 7, 9, dtype=D)
    return layer, x, layer.kernel_parameters(x), F.GanglionInputState(*zeros(x, 3))


@pytest.mark.parametrize('sigma_pool', [0.0, 0.15])
def test_ganglion_input_in_two_chunks_equals_one_call_and_the_compiled_loop(sigma_pool):
    _, x, params, state = ganglion_setup(sigma_pool)
    results = []
    for compiled in (True, False):
        whole, halves, s_whole, s_halves = split_run(F.ganglion_input, x, state, 10, params=params, compiled=compiled)
        assert float((whole - halves).abs().max()) < 1e-12 * float(whole.abs().max())
        assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in zip(s_whole, s_halves))
        results.append(whole)
    assert float((results[0] - results[1]).abs().max()) < 1e-10 * float(results[1].abs().max())
    assert float(results[1][:, :, 0].min()) == pytest.approx(37.0)       # no current yet: the rectifier gives i_0


def test_ganglion_input_layer_output_is_the_kernels():
    layer, x, params, state = ganglion_setup(0.1)
    expected, _ = F.ganglion_input(x, state, params, compiled=False)
    assert float((layer(x) - expected).abs().max()) < 1e-10 * float(expected.abs().max())


def lif_setup(noise=0.2, sd=0.001):
    torch.manual_seed(3)
    current = 120 * torch.rand(2, 1, 60, 30, dtype=D) + 400 * (torch.rand(2, 1, 60, 30, dtype=D) > 0.9)
    z = torch.zeros(2, 1, 30, dtype=D)
    state = F.LIFState(z, torch.ones_like(z), z, 0)
    return current, state, F.LIFParameters(50.0, noise, 0.003, sd)


@pytest.mark.parametrize('compiled', [True, False])
@pytest.mark.parametrize('noise,sd', [(0.0, 0.0), (0.2, 0.001)])
def test_ganglion_lif_in_two_chunks_equals_one_call(compiled, noise, sd):
    current, state, params = lif_setup(noise, sd)
    key = seed_key(9)
    c1, s1, log1 = F.ganglion_lif(current, state, params, 0.001, key, record=True, compiled=compiled)
    a, s_a, log_a = F.ganglion_lif(current[:, :, :25], state, params, 0.001, key, record=True, compiled=compiled)
    b, s_b, log_b = F.ganglion_lif(current[:, :, 25:], s_a, params, 0.001, key, record=True, compiled=compiled)
    assert float(c1.sum()) > 50
    assert torch.equal(c1, torch.cat([a, b], 2))
    assert torch.equal(s1.V, s_b.V) and torch.equal(s1.refr_factor, s_b.refr_factor) and s1.step == s_b.step == 60
    times = torch.cat([log_a[3], log_b[3]])
    assert torch.allclose(torch.sort(log1[3]).values, torch.sort(times).values, rtol=0, atol=1e-12)


def test_ganglion_lif_compiled_and_torch_loops_give_the_same_spikes():
    current, state, params = lif_setup()
    fast = F.ganglion_lif(current, state, params, 0.001, seed_key(4), compiled=True)
    slow = F.ganglion_lif(current, state, params, 0.001, seed_key(4), compiled=False)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1].V, slow[1].V)
    other = F.ganglion_lif(current, state, params, 0.001, seed_key(5), compiled=False)
    assert not torch.equal(other[0], slow[0])                            # the key chooses the noise


def test_ganglion_lif_noise_segments_and_errors():
    current, state, params = lif_setup()
    k1, k2 = seed_key(1), seed_key(2)
    both = F.ganglion_lif(current, state, params, 0.001, [(k1, 12), (k2, 18)])[0]
    left = F.ganglion_lif(current[..., :12], F.LIFState(*(t[..., :12] for t in state[:3]), 0), params, 0.001, k1)[0]
    assert torch.equal(both[..., :12], left)
    with pytest.raises(ValueError, match='do not cover the 30 cells'):
        F.ganglion_lif(current, state, params, 0.001, [(k1, 12)])
    with pytest.raises(ValueError, match='g_L must be positive'):
        F.ganglion_lif(current, state, params._replace(g_L=0.0), 0.001, k1)


def test_ganglion_spiking_layer_output_is_the_kernels():
    layer = GanglionSpiking(seed=21).to(D)
    layer.refr_sigma.set(0.001)
    x = 150 * torch.rand(1, 2, 80, 5, 6, dtype=D)
    counts = layer(x)
    z = torch.zeros(1, 2, 30, dtype=D)
    expected, _, _ = F.ganglion_lif(x.reshape(1, 2, 80, 30), F.LIFState(z, torch.ones_like(z), z, 0),
                                    layer.kernel_parameters(), layer.resolution.dt, seed_key(21), compiled=False)
    assert float(counts.sum()) > 20
    assert torch.equal(counts, expected.reshape(counts.shape))


def test_with_a_gradient_the_kernel_runs_the_torch_code_and_the_gradient_flows():
    _, x, params, state = opl_setup()
    with torch.enable_grad():
        lam = params.lambda_opl.detach().requires_grad_()
        out, _ = F.opl(x, state, params._replace(lambda_opl=lam))
        out.sum().backward()
        with pytest.raises(RuntimeError, match='without autograd only'):
            F.opl(x, state, params._replace(lambda_opl=lam), compiled=True)
    assert lam.grad is not None and float(lam.grad.abs()) > 0


def test_functional_imports_no_layer():
    import ast
    import os
    folder = os.path.dirname(F.__file__)
    for name in os.listdir(folder):
        if name.endswith('.py'):
            with open(os.path.join(folder, name)) as f:
                source = f.read()
            names = {n.module or '' for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
            assert not {m for m in names if m.split('.')[-1] in ('layer', 'variables', 'resolution', 'filters')}, name
    assert np.isfinite(F.SATURATION_HZ)
