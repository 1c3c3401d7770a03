"""The LIF step of the ganglion cells: the transcendental-free formulation against the per-cell formulas
(crossing time by log, potential after the refractory period by expm1), and the compiled loop against
both torch loops (per-step and synchronisation-free), which must agree bit for bit."""
import functools
import math

import numpy as np
import pytest
import torch

import convis
from convis.filters import ganglion
from convis.functional import lif as ganglion_lif
from convis.filters.retina import GanglionSpiking

DT, G, MU = 0.01, 50.0, 0.003
LIF_TORCH = ganglion_lif.lif_torch


def old_step(vi, v, refr, dt, g, mu, sd, z):
    """One step of one cell as crossing times: returns (spikes, V, remaining refractory time, times)."""
    held = min(refr, dt)
    refr -= held
    w = math.exp((held - dt) * g)
    ve = vi + w * (v - vi) if w < 0.5 else v - (v - vi) * (1.0 - w)
    times, fr = [], 0.0
    if ve >= 1.0:
        ts = held + math.log((vi - v) / (vi - 1.0)) / g
        while True:
            times.append(ts)
            r = mu if sd == 0 else max(mu + sd * z[min(len(times) - 1, 1)], 0.0)
            fr = ts + r
            ve = math.expm1(max(dt - fr, 0.0) * -g) * -vi
            if ve < 1.0:
                break
            ts = fr + math.log(vi / (vi - 1.0)) / g
        refr = max(fr - dt, 0.0)
    return len(times), ve, refr, times


def new_loops(vinf, z, v, refr, dt, g, mu, sd, record=False):
    """The compiled loop and both torch loops on [T, M] inputs (refractory times in seconds)."""
    vinf = torch.as_tensor(vinf, dtype=torch.float64)
    rf = torch.exp(torch.as_tensor(refr, dtype=torch.float64) * g)
    e_refr = None if z is None else torch.as_tensor(z).double().mul(sd).add(mu).clamp(min=0).mul(g).exp()
    args = (vinf, e_refr, torch.as_tensor(v, dtype=torch.float64), rf, math.exp(-dt * g), math.exp(g * mu), record)
    fns = ganglion_lif._native_lif()
    assert fns is not None, 'the test machine has a C compiler'
    return {'compiled': ganglion_lif.lif_native(fns, *args),
            'torch': ganglion_lif.lif_torch(*args, sync_free=False),
            'sync-free': ganglion_lif.lif_torch(*args, sync_free=True)}


def random_cells(m, seed):
    """Random cells and the knife edges: Vinf just above 1, refractory ending at the step end, bursts."""
    rng = np.random.default_rng(seed)
    vi = np.concatenate([rng.uniform(-1, 4, m), 1 + 10.0 ** rng.uniform(-12, -3, m // 4),
                         rng.uniform(5, 200, m // 4)])
    n = len(vi)
    v = rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.8)
    refr = np.where(rng.uniform(size=n) < 0.3, rng.uniform(0, 2.5 * DT, n), 0.0)
    # cells that cross at ts = dt - mu from v = 0 (free): the refractory period ends at the step end
    k = rng.choice(n, m // 8, replace=False)
    vi[k] = rng.uniform(1.5, 3, len(k))
    v[k], refr[k] = 0.0, 0.0
    ts = DT - MU
    vi[k] = 1.0 / -np.expm1(-G * ts)
    return vi, v, refr


@pytest.mark.parametrize('sd', [0.0, 0.002])
def test_new_formulation_matches_the_crossing_time_formulas(sd):
    vi, v, refr = random_cells(2000, 1 if sd else 2)
    n = len(vi)
    z = np.random.default_rng(3).standard_normal((1, 2, n)) if sd else None
    loops = new_loops(vi[None], z, v, refr, DT, G, MU, sd, record=True)
    counts, v_new, rf_new, log = loops['compiled']
    ref = [old_step(vi[i], v[i], refr[i], DT, G, MU, sd, None if z is None else z[0, :, i]) for i in range(n)]
    ref_counts = np.array([r[0] for r in ref], dtype=float)
    assert np.array_equal(counts[0].numpy(), ref_counts)
    assert ref_counts.max() >= 3 and (ref_counts == 1).sum() > 100
    scale = np.maximum(1.0, np.abs(vi))
    assert np.all(np.abs(v_new.numpy() - [r[1] for r in ref]) <= 1e-12 * scale)
    refr_new = np.log(rf_new.numpy()) / G
    ref_refr = np.array([r[2] for r in ref])
    assert np.all(np.abs(refr_new - ref_refr) <= 1e-12 * np.maximum(ref_refr, DT))
    assert (ref_refr > 0).sum() > 100
    times = ganglion_lif.spike_times(log, 0, DT, G).numpy()
    ref_times = np.concatenate([r[3] for r in ref])
    ref_cells = np.concatenate([[i] * r[0] for i, r in enumerate(ref)])
    assert np.array_equal(log[1].numpy(), ref_cells)
    assert np.abs(times - ref_times).max() <= 1e-15


def test_several_steps_match_the_crossing_time_formulas():
    rng = np.random.default_rng(4)
    n_t, m = 30, 300
    vinf = rng.uniform(0, 3, (n_t, m)) + 5 * (rng.uniform(size=(n_t, m)) < 0.05)
    z = rng.standard_normal((n_t, 2, m))
    counts, v_new, rf_new, _ = new_loops(vinf, z, np.zeros(m), np.zeros(m), DT, G, MU, 0.001)['compiled']
    v, refr = np.zeros(m), np.zeros(m)
    for s in range(n_t):
        for i in range(m):
            c, v[i], refr[i], _ = old_step(vinf[s, i], v[i], refr[i], DT, G, MU, 0.001, z[s, :, i])
            assert counts[s, i] == c
    np.testing.assert_allclose(v_new.numpy(), v, rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.log(rf_new.numpy()) / G, refr, rtol=0, atol=1e-14)
    assert float(counts.sum()) > 0.2 * n_t * m


def assert_identical(results):
    first = results['compiled']
    for name, other in results.items():
        for a, b in zip(first[:3], other[:3]):
            assert torch.equal(a.double(), b.double()), name
        if first[3] is not None:
            for a, b in zip(first[3], other[3]):
                assert torch.equal(a, b), name


@pytest.mark.parametrize('sd', [0.0, 0.002])
@pytest.mark.parametrize('record', [False, True])
def test_compiled_and_torch_loops_are_bit_identical(sd, record):
    vi, v, refr = random_cells(3000, 5)
    rng = np.random.default_rng(6)
    n_t = 12
    vinf = np.concatenate([vi[None], rng.uniform(0, 3, (n_t - 1, len(vi)))]) + 0.3 * rng.standard_normal((n_t, len(vi)))
    z = rng.standard_normal((n_t, 2, len(vi))) if sd else None
    results = new_loops(vinf, z, v, refr, DT, G, MU, sd, record)
    assert_identical(results)
    assert float(results['compiled'][0].max()) >= 3


def test_fast_steps_and_short_refractory_periods():
    """g_L dt > log 2 (the other branch of V's update) and up to 40 spikes per step."""
    rng = np.random.default_rng(7)
    vinf = rng.uniform(0, 60, (20, 500))
    for dt, mu in ((0.05, 0.001), (0.01, 0.0)):
        results = new_loops(vinf, None, rng.uniform(0, 1, 500), np.zeros(500), dt, G, mu, 0.0, True)
        assert_identical(results)
        assert float(results['compiled'][0].max()) >= 10


def test_the_sync_free_loop_falls_back_when_a_step_needs_more_spikes(monkeypatch):
    rng = np.random.default_rng(8)
    vinf = torch.tensor(rng.uniform(0, 30, (10, 200)))
    args = (vinf, None, torch.zeros(200, dtype=torch.float64), torch.ones(200, dtype=torch.float64),
            math.exp(-DT * G), math.exp(G * 0.0005), None)
    assert ganglion_lif.repeat_bound(vinf, None, args[4], args[5]) > 2
    monkeypatch.setattr(ganglion_lif, 'MAX_REPEATS', 2)
    assert ganglion_lif.lif_masked(*args) is None
    assert_identical({'compiled': ganglion_lif.lif_torch(*args, sync_free=False),
                      'sync-free': ganglion_lif.lif_torch(*args, sync_free=True)})
    assert ganglion_lif.repeat_bound(vinf * 0 + 0.5, None, args[4], args[5]) == 1


def spiking_run(dtype, noise, sd, record, seed=3):
    s = GanglionSpiking(seed=seed).to(dtype)
    s.set_resolution(convis.Resolution(steps_per_second=100.0))
    for k, val in dict(noise_sigma=noise, refr_sigma=sd, refr_mu=0.002, random_init=1.0).items():
        getattr(s, k).set(val)
    s.record_spike_times = record
    x = 150 * np.random.default_rng(9).uniform(size=(2, 1, 90, 5, 6))
    x[:, :, 40:50] *= 8
    counts = s.run(x, dt=23)[0]
    return counts, s.V, s.refr_factor, s.get_spike_times() if record else None


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('noise,sd,record', [(0.0, 0.0, True), (0.2, 0.0, False), (0.2, 0.001, True)])
def test_layer_gives_the_same_with_every_loop(monkeypatch, dtype, noise, sd, record):
    compiled = spiking_run(dtype, noise, sd, record)
    monkeypatch.setattr(ganglion_lif, '_NATIVE', [None])
    for sync_free in (False, True):
        monkeypatch.setattr(ganglion_lif, 'lif_torch', functools.partial(LIF_TORCH, sync_free=sync_free))
        other = spiking_run(dtype, noise, sd, record)
        for a, b in zip(compiled[:3], other[:3]):
            assert torch.equal(a, b)
        if record:
            for a, b in zip(compiled[3], other[3]):
                assert np.array_equal(a, b)
    assert float(compiled[0].max()) >= 2


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_seeded_spike_trains_are_those_of_the_earlier_c_loops(dtype):
    """The default retina with its membrane noise (and one layer with random refractory periods) fires the
    same spikes as the C loops of revision e08456f (before the loops moved into C files, cffi and OpenMP
    threads): the counts saved in tests/data/compiled_reference.npz."""
    import os
    saved = np.load(os.path.join(os.path.dirname(__file__), 'data', 'compiled_reference.npz'))
    x = 255 * np.random.RandomState(5).rand(1, 1, 150, 20, 26)
    retina = convis.retina.Retina(seed=3).to(dtype)
    retina.gang_0_spikes.refr_sigma = 0.001
    with torch.no_grad():
        out = retina.run(x, dt=60)
    name = 'f32' if dtype == torch.float32 else 'f64'
    for j in range(2):
        ref = saved['spikes_%s_%d' % (name, j)]
        assert ref.sum() > 10000
        assert np.array_equal(out[j].numpy(), ref.astype(np.float64))
