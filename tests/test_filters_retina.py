"""Tests of convis.filters.retina: analytic responses of the OPL, gain control, ganglion input and spiking."""
import math

import numpy as np
import pytest
import torch

import convis
from convis.filters.retina import OPL, SATURATION_HZ, Bipolar, GanglionInput, GanglionSpiking, smooth_rectifier
from convis.retina_virtualretina import cell_positions
from helpers import assert_chunking_exact


def res(sps=200.0, ppd=10.0, lum=255.0):
    return convis.Resolution(pixel_per_degree=ppd, steps_per_second=sps, input_luminosity_range=lum)


def make(cls, resolution=None, **params):
    layer = cls().double()
    layer.set_resolution(resolution or res())
    for k, v in params.items():
        getattr(layer, k).set(v)
    return layer


def scalar(t):
    return t.detach()[0, 0, :, 0, 0].double().numpy()


# ------------------------------------------------------------------------------------------------ OPL
def test_opl_rests_at_zero_for_the_adapting_luminance():
    opl = make(OPL)
    y = opl(np.full((50, 12, 12), 127.5))
    assert float(y.detach().abs().max()) < 1e-12


def test_opl_uniform_step_follows_the_temporal_recursions():
    """Blurs preserve uniform maps, so a uniform step gives the scalar recursions of the equations."""
    dt, lam = 1 / 200.0, 10.0 / 255.0
    opl = make(OPL, undershoot_enabled=0, tau_center=0.01, tau_surround=0.02, relative_weight=0.9)
    lum = np.r_[np.full(5, 127.5), np.full(40, 200.0)]
    y = scalar(opl(np.broadcast_to(lum[:, None, None], (45, 9, 9)).copy()))
    ec, es = math.exp(-dt / 0.01), math.exp(-dt / 0.02)
    c = s = None
    c, r_prev = lam * 127.5, lam * 127.5
    s = 0.9 * r_prev
    expected = []
    for L in lum:
        c_new = ec * c + (1 - ec) * lam * L
        s = es * s + (1 - es) * 0.9 * r_prev
        c = c_new
        r_prev = c
        expected.append(c - s)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


def test_opl_undershoot_adds_a_step_of_lag_and_a_transient():
    step = np.r_[np.full(3, 127.5), np.full(30, 255.0)][:, None, None] * np.ones((1, 6, 6))
    plain = scalar(make(OPL, undershoot_enabled=0, relative_weight=0)(step))
    und = scalar(make(OPL, undershoot_enabled=1, relative_weight=0, undershoot_relative_weight_center=0.5)(step))
    lam = 10 / 255.0
    assert plain[2] == pytest.approx(lam * 127.5) and plain[3] > lam * 127.5      # reacts at the frame
    assert und[3] == pytest.approx(0.5 * lam * 127.5) and und[4] > und[3]        # one step later
    # the undershoot subtracts a slow low-pass of the centre: the response peaks and sags
    assert und.max() > und[-1] + 1e-3


def test_opl_amplification_is_divided_by_the_luminosity_range():
    a = scalar(make(OPL, resolution=res(lum=255.0), undershoot_enabled=0, relative_weight=0)(np.full((3, 4, 4), 100.0)))
    b = scalar(make(OPL, resolution=res(lum=1.0), undershoot_enabled=0, relative_weight=0)(np.full((3, 4, 4), 100 / 255.0)))
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_opl_center_cascade():
    dt, e = 1 / 200.0, math.exp(-1 / 200.0 / 0.01)
    opl = make(OPL, undershoot_enabled=0, relative_weight=0, n_center=2)
    lum = np.r_[np.full(2, 127.5), np.full(20, 0.0)]
    y = scalar(opl(lum[:, None, None] * np.ones((1, 5, 5))))
    lam = 10 / 255.0
    stages = [lam * 127.5] * 3
    expected = []
    for L in lum:
        u = lam * L
        for i in range(3):
            stages[i] = e * stages[i] + (1 - e) * u
            u = stages[i]
        expected.append(u)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_opl_rejects_the_non_leaky_version_and_size_changes():
    with pytest.raises(ValueError, match='leaky_heat_equation: 0 is not one of the choices'):
        make(OPL, leaky_heat_equation=0)
    opl = make(OPL)
    opl(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match='clear_state'):
        opl(np.ones((2, 5, 4)))
    opl.clear_state()
    assert opl(np.ones((2, 5, 4))).shape == (1, 1, 2, 5, 5 - 1)


def test_opl_chunking_batch_and_parameters():
    x = 255 * np.random.rand(2, 1, 23, 10, 12)

    def factory():
        return make(OPL, n_center=1, sigma_center=0.2, undershoot_enabled=1)
    assert_chunking_exact(factory, x, dts=(1, 4, 9), rtol=1e-12)
    both = factory()(x)
    one = factory()(x[1:2])
    assert torch.allclose(both[1:2], one, atol=1e-12)
    for name, p in OPL().named_parameters():
        assert p.doc and p.retina_config_key and p.scale in ('linear', 'log') and p.slider_range, name


# ------------------------------------------------------------------------------------------ gain control
def test_bipolar_without_feedback_is_an_exact_low_pass_of_the_previous_input():
    b = make(Bipolar, lambda_amp=0.0, g_leak=20.0, input_amp=50.0)
    y = scalar(b(np.full((30, 4, 4), 0.2)))
    a = math.exp(-20.0 / 200.0)
    v, expected = 0.0, []
    for s in range(30):
        drive = 50.0 * (0.2 if s > 0 else 0.0)
        v = drive / 20.0 + (v - drive / 20.0) * a
        expected.append(v)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


def test_bipolar_fast_path_equals_the_loop():
    x = np.random.randn(25, 7, 7)
    fast = make(Bipolar, lambda_amp=0.0)
    with torch.no_grad():
        a = fast(x)
    slow = make(Bipolar, lambda_amp=0.0)
    with torch.enable_grad():
        b = slow(x)
    assert torch.allclose(a, b.detach(), atol=1e-12)


def test_bipolar_reaches_the_saturating_fixed_point():
    """For a uniform constant input: V* = lam_in I / (g0 + Q(V*)), Q(v) = G w/(1+w), w = lam_A v^2/G."""
    lam_a, g0, lam_in, current = 100.0, 5.0, 150.0, 2.0
    b = make(Bipolar, resolution=res(sps=1000.0), lambda_amp=lam_a, g_leak=g0, input_amp=lam_in, tau=0.01)
    with torch.no_grad():
        v = float(b(np.full((3000, 3, 3), current))[0, 0, -1, 1, 1])

    def q(u):
        w = lam_a * u * u / SATURATION_HZ
        return SATURATION_HZ * w / (1 + w)
    lo, hi = 0.0, lam_in * current / g0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid < lam_in * current / (g0 + q(mid)) else (lo, mid)
    assert v == pytest.approx(lo, rel=1e-6)
    assert float(b.recorded.get('cgc_adaptation', torch.zeros(1)).sum()) == 0  # nothing recorded by default


def test_bipolar_records_and_chunks():
    x = np.random.randn(1, 2, 21, 8, 9)
    assert_chunking_exact(lambda: make(Bipolar, lambda_amp=100.0, g_leak=5.0, input_amp=150.0, tau=0.01), x,
                          dts=(1, 5), rtol=1e-12)
    b = make(Bipolar, lambda_amp=100.0)
    b.record = ('cgc_adaptation', 'cgc_attenuation')
    b(x)
    g = b.recorded['cgc_adaptation']
    att = b.recorded['cgc_attenuation']
    prev = torch.cat([torch.zeros_like(g[:, :, :1]), g[:, :, :-1]], 2)
    assert torch.allclose(att, torch.exp(-(50.0 + prev) / 200.0), rtol=1e-12)


# ------------------------------------------------------------------------------------------ ganglion input
def test_smooth_rectifier_shape():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    i0, lam, v0 = t(80.0), t(100.0), t(0.1)
    v = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    n = smooth_rectifier(v, v0, i0, lam)
    assert float(smooth_rectifier(t(0.1), v0, i0, lam)) == pytest.approx(80.0)
    assert torch.all(n > 0) and torch.all(n[1:] >= n[:-1])
    h = 1e-6
    slope_lo = (smooth_rectifier(v0, v0, i0, lam) - smooth_rectifier(v0 - h, v0, i0, lam)) / h
    slope_hi = (smooth_rectifier(v0 + h, v0, i0, lam) - smooth_rectifier(v0, v0, i0, lam)) / h
    assert float(slope_lo) == pytest.approx(100.0, rel=1e-4) and float(slope_hi) == pytest.approx(100.0, rel=1e-4)
    # below threshold i0/(1 - lam (v - v0)/i0); far above, the saturation G
    assert float(smooth_rectifier(t(-1.0), v0, i0, lam)) == pytest.approx(80 / (1 + 110 / 80.0))
    assert float(smooth_rectifier(t(1e9), v0, i0, lam)) == pytest.approx(SATURATION_HZ, rel=1e-3)


def test_ganglion_transient_gain_sign_and_lag():
    g = make(GanglionInput, i_0=80.0, lambda_G=100.0, transient_relative_weight_center=0.7,
             transient_tau_center=0.02)
    y = scalar(g(np.full((400, 3, 3), 0.5)))
    assert y[0] == pytest.approx(80.0) and y[1] == pytest.approx(80.0)       # two steps of lag

    def n(d):  # the exact rectifier above threshold: i0 + (G - i0) lam d / ((G - i0) + lam d)
        return 80.0 + (SATURATION_HZ - 80.0) * 100 * d / ((SATURATION_HZ - 80.0) + 100 * d)
    e = math.exp(-0.005 / 0.02)
    assert y[2] == pytest.approx(n(0.5 - 0.7 * (1 - e) * 0.5), rel=1e-12)  # T[1] = V[0] - w F[1]
    assert y[-1] == pytest.approx(n(0.3 * 0.5), rel=1e-9)                     # DC gain 1 - w
    off = make(GanglionInput, sign=-1.0, i_0=80.0, lambda_G=100.0)
    z = scalar(off(np.full((400, 3, 3), 0.5)))
    assert z[-1] == pytest.approx(80.0 / (1 + 100 * 0.3 * 0.5 / 80.0), rel=1e-6)


def test_ganglion_pooling_and_chunking():
    x = np.random.randn(1, 1, 30, 14, 14)
    factory = lambda: make(GanglionInput, sigma_pool=0.2)  # noqa: E731
    assert_chunking_exact(factory, x, dts=(1, 4), rtol=1e-12)
    pooled = factory()(x)
    plain = make(GanglionInput)(x)
    assert float(pooled.detach().std()) < float(plain.detach().std())


# ------------------------------------------------------------------------------------------ spiking
def analytic_spike_times(current, g_l, refr, dt, t_end):
    """Constant current from the second step on (the first step has no current), V from 0."""
    vinf = current / g_l
    to_threshold = math.log(vinf / (vinf - 1)) / g_l
    times, t = [], dt + to_threshold
    while t < t_end:
        times.append(t)
        t += refr + to_threshold
    return np.array(times)


@pytest.mark.parametrize('sps', [200.0, 1000.0])
def test_lif_spike_times_are_exact_for_a_constant_current(sps):
    spk = make(GanglionSpiking, resolution=res(sps=sps), noise_sigma=0.0, refr_mu=0.003, refr_sigma=0.0)
    spk.record_spike_times = True
    n = int(sps)
    counts = spk(np.full((n, 2, 3), 120.0))
    b, c, cell, times = spk.get_spike_times()
    expected = analytic_spike_times(120.0, 50.0, 0.003, 1 / sps, 1.0)
    for k in range(6):
        np.testing.assert_allclose(np.sort(times[cell == k]), expected, atol=1e-9)
    assert float(counts.sum()) == 6 * len(expected)


def test_lif_subthreshold_and_many_spikes_per_step():
    quiet = make(GanglionSpiking, noise_sigma=0.0)
    assert float(quiet(np.full((100, 2, 2), 49.0)).sum()) == 0
    busy = make(GanglionSpiking, resolution=res(sps=20.0), noise_sigma=0.0, refr_mu=0.0005)
    counts = busy(np.full((21, 1, 1), 5000.0))[0, 0, :, 0, 0].numpy()
    expected = analytic_spike_times(5000.0, 50.0, 0.0005, 0.05, 21 * 0.05)
    assert counts.max() > 1 and counts.sum() == len(expected)


def test_lif_seeds_random_init_and_refractory_noise():
    x = np.full((200, 4, 4), 90.0)

    def run(seed):
        s = make(GanglionSpiking, random_init=1.0, refr_sigma=0.001)
        s.seed(seed)
        return s(x)
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    s = make(GanglionSpiking, random_init=1.0, noise_sigma=0.0)
    s.seed(5)
    s(x[:1])
    v0 = s.V.clone()
    assert float(v0.min()) >= 0 and float(v0.max()) < 1 and float(v0.std()) > 0.1


def test_lif_noise_has_the_discrete_stationary_variance():
    dt, g_l, sigma = 1 / 200.0, 50.0, 0.1
    s = make(GanglionSpiking, noise_sigma=sigma)
    s.seed(0)
    v = []
    s(np.zeros((50, 40, 50)))
    for _ in range(5):
        s(np.zeros((20, 40, 50)))
        v.append(s.V.flatten().numpy().copy())
    a = math.exp(-g_l * dt)
    expected = sigma ** 2 * 2 * (1 - a) / (g_l * dt * (1 + a))
    assert np.var(np.concatenate(v)) == pytest.approx(expected, rel=0.05)


def test_lif_chunking_with_noise_is_exact():
    x = 100 * np.random.rand(1, 2, 40, 5, 6)

    def factory():
        s = make(GanglionSpiking, noise_sigma=0.3, refr_sigma=0.002, random_init=1)
        s.seed(11)
        return s
    assert_chunking_exact(factory, x, dts=(1, 3, 7), rtol=0, atol=0)


def test_cells_sample_the_map_bilinearly_with_edge_clamping():
    s = make(GanglionSpiking, resolution=res(sps=200.0, ppd=2.0), noise_sigma=0.0)
    s.set_cells([[0.0, 0.0], [0.25, 0.5], [-100.0, 0.0]])
    h, w = 6, 8
    ramp = np.arange(w, dtype=float)[None, :] + 10 * np.arange(h, dtype=float)[:, None]
    x = np.broadcast_to(ramp, (3, h, w)).copy()
    out = s(x)
    assert out.shape == (1, 1, 3, 1, 3)
    # the current after the first step is the map sampled at (W/2 + ppd x, H/2 + ppd y)
    np.testing.assert_allclose(s.current[0, 0].numpy(), [4 + 30, 4.5 + 40, 0 + 30])


def test_square_and_circular_arrays():
    xs, ys, grid = cell_positions({'kind': 'square', 'density': 2.0, 'border_px': 50}, (64, 64), 2.0)
    assert grid == (15, 15) and len(xs) == 225
    assert xs[0] == -3.5 and ys[1] == -3.0 and xs[15] == -3.0     # x-major: id = ix * ny + iy
    g = torch.Generator().manual_seed(0)
    xs, ys, grid = cell_positions({'kind': 'circular', 'fovea_density': 20.0, 'border_px': 35,
                                   'fovea_radius': 1.0, 'scaling': 1.0}, (64, 64), 20.0, g)
    assert len(xs) == 747 and grid is None and xs[0] == 0 and ys[0] == 0
    r = np.hypot(xs, ys)
    assert np.allclose(sorted(set(np.round(r, 9)))[:3], [0, 0.05, 0.1])
    xs, ys, _ = cell_positions({'kind': 'circular', 'fovea_density': 1.0, 'diameter': 0.5}, (50, 50), 2.0, g)
    assert len(xs) == 1
    with pytest.raises(ValueError, match='kind'):
        cell_positions({'kind': 'hexagonal'}, (5, 5), 1.0)
    s = GanglionSpiking()
    with pytest.raises(ValueError, match='shape'):
        s.set_cells(np.zeros((3, 3)))


@pytest.fixture
def torch_loop(monkeypatch):
    """Forces the spiking layers onto the torch loop (the one used on GPUs and without a C compiler)."""
    from convis.functional import lif as ganglion
    monkeypatch.setattr(ganglion, '_NATIVE', [None])


def run_spiking(x, dtype=torch.float64):
    s = GanglionSpiking()
    s.to(dtype)
    s.set_resolution(res(sps=200.0))
    for k, v in dict(noise_sigma=0.2, refr_sigma=0.002, random_init=1.0, refr_mu=0.002).items():
        getattr(s, k).set(v)
    s.seed(7)
    s.record_spike_times = True
    counts = s.run(x, dt=37)[0]
    return counts, s.get_spike_times()


def native_and_torch_runs(x, monkeypatch, dtype=torch.float64):
    from convis.functional import lif as ganglion
    native = run_spiking(x, dtype)
    monkeypatch.setattr(ganglion, '_NATIVE', [None])
    plain = run_spiking(x, dtype)
    return native, plain


def test_compiled_and_torch_loops_agree(monkeypatch):
    from convis.functional import lif as ganglion
    x = 150 * np.random.rand(1, 2, 150, 6, 7) + 500 * (np.random.rand(1, 2, 150, 6, 7) > 0.95)
    (c1, t1), (c2, t2) = native_and_torch_runs(x, monkeypatch)
    assert torch.equal(c1, c2) and float(c1.max()) >= 2
    for a, b in zip(t1[:3], t2[:3]):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(t1[3], t2[3], atol=1e-12)
    assert ganglion._NATIVE == [None]


def test_torch_loop_alone(torch_loop):
    test_lif_spike_times_are_exact_for_a_constant_current(200.0)
    test_lif_subthreshold_and_many_spikes_per_step()
    test_lif_chunking_with_noise_is_exact()
