"""Tests of convis.retina.Retina: configuration, outputs, chunking, batches, memory and gradients."""
import gc
import os

import numpy as np
import pytest
import torch

import convis
from convis.retina import Retina, RetinaConfiguration
from helpers import reference_path
from helpers import assert_chunking_exact

CAT = reference_path('virtualretina', 'configs', 'EXAMPLE_cat_X_cell.xml')
CAT_SQUARE = reference_path('virtualretina', 'configs', 'derived_cat_X_square_noiseless.xml')
LINEAR = reference_path('virtualretina', 'configs', 'EXAMPLE_linear_noSpikes.xml')
LINEAR_CGC = reference_path('virtualretina', 'configs', 'derived_linear_cgc.xml')
PRIMATE = reference_path('virtualretina', 'configs', 'EXAMPLE_primate_ParvoMagno.xml')


def test_default_retina_outputs_on_and_off_spikes():
    retina = Retina()
    assert [n for n, _ in retina.named_children()] == ['opl', 'bipolar', 'gang_0_input', 'gang_0_spikes',
                                                       'gang_1_input', 'gang_1_spikes']
    res = retina.resolution
    assert (res.steps_per_second, res.pixel_per_degree, res.input_luminosity_range) == (100.0, 5.0, 255.0)
    o = retina.run(255 * np.random.rand(120, 16, 18), dt=50)
    assert o.keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
    assert o[0] is o.ganglion_spikes_ON and o[1] is o.ganglion_spikes_OFF
    assert o[0].shape == (1, 1, 120, 16, 18) and o[0].dtype == torch.float32
    counts = o[0].numpy()
    assert counts.min() >= 0 and np.all(counts == np.round(counts)) and counts.sum() > 0
    assert retina.gang_1_input.sign.item() == -1
    assert retina.p.bipolar.g_leak.item() == 50.0


def test_quickstart_of_the_documentation():
    """'Running Convis as a simulator' and the first usage example, with a real configuration file."""
    retina = convis.retina.Retina()
    retina.parse_config(CAT_SQUARE)
    retina = convis.retina.Retina()
    inp = np.random.randn(2000, 50, 50)
    o = retina.run(inp, dt=500)
    assert o[0] is o.ganglion_spikes_ON
    assert o[1] is o.ganglion_spikes_OFF
    assert o[0].shape == (1, 1, 2000, 50, 50)
    retina = convis.retina.Retina()
    some_short_input = 255 * np.random.rand(20, 10, 10)
    out = retina(some_short_input)
    assert out[0].shape == (1, 1, 20, 10, 10)
    assert retina.run(255 * np.random.rand(300, 10, 10), dt=100)[1].shape == (1, 1, 300, 10, 10)
    with pytest.raises(ValueError, match='clear_state'):
        retina(np.zeros((5, 12, 12)))             # another size needs a fresh state
    retina.clear_state()
    assert retina(np.zeros((5, 12, 12)))[0].shape == (1, 1, 5, 12, 12)


def test_parse_config_sets_resolution_stages_and_layers():
    retina = Retina()
    retina.parse_config(PRIMATE)
    res = retina.resolution
    assert (res.steps_per_second, res.pixel_per_degree) == (200.0, 20.0)
    assert retina.log_polar == (1.0, 1.0)
    assert len(retina._ganglia) == 4
    assert [float(getattr(retina, 'gang_%d_input' % k).lambda_G) for k in range(4)] == [100, 100, 400, 400]
    retina.parse_config(CAT)
    assert len(retina._ganglia) == 1 and not hasattr(retina, 'gang_1_input')
    assert float(retina.opl.undershoot_enabled) == 1 and float(retina.opl.undershoot_tau_center) == pytest.approx(0.2)
    assert retina.gang_0_spikes.cells['kind'] == 'circular'
    retina.parse_config(LINEAR)
    o = retina.run(255 * np.random.rand(10, 12, 12))
    assert o.keys == ['opl'] and float(retina.opl.undershoot_enabled) == 0
    retina.parse_config(LINEAR_CGC)
    assert retina.run(255 * np.random.rand(10, 12, 12)).keys == ['bipolar']
    cfg = RetinaConfiguration()
    cfg.set('retina.temporal-step__sec', 0.001)
    cfg.set('ganglion-layers.2.enabled', True)
    retina.parse_config(cfg)
    assert retina.resolution.steps_per_second == pytest.approx(1000.0)
    assert retina.run(np.zeros((5, 8, 8))).keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF', 'ganglion_spikes_ON_2']


def test_parse_config_errors():
    retina = Retina()
    with pytest.raises(FileNotFoundError):
        retina.parse_config('/no/such/retina.xml')
    cfg = RetinaConfiguration()
    cfg.set('outer-plexiform-layers.0.linear-version.leaky-heat-equation', 0)
    with pytest.raises(ValueError, match='leaky-heat-equation.*not one of the choices'):
        retina.parse_config(cfg)
    cfg = RetinaConfiguration()
    cfg.set('ganglion-layers.0.spiking-channel.g-leak__Hz', -3)
    with pytest.raises(ValueError, match='g-leak__Hz'):
        Retina(config=cfg)


def test_double_precision_keeps_the_configured_values_exactly():
    a = Retina(config=CAT).double()
    b = Retina().double()
    b.parse_config(CAT)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert p.dtype == torch.float64 and float(p) == float(q), name
    assert float(a.opl.tau_center) == 0.01 and float(a.gang_0_input.transient_tau_center) == 0.03
    b.parse_config(PRIMATE)                                   # new ganglion layers follow the retina's dtype
    assert all(p.dtype == torch.float64 for p in b.parameters())
    assert float(b.gang_3_input.transient_tau_center) == 0.03


def test_record_adds_intermediate_maps_and_checks_names():
    retina = Retina(config=CAT_SQUARE, record=('receptor', 'opl', 'bipolar', 'cgc_adaptation', 'ganglion_0'))
    o = retina.run(255 * np.random.rand(30, 20, 20), dt=7)
    assert o.keys == ['ganglion_spikes_ON', 'receptor', 'opl', 'bipolar', 'cgc_adaptation', 'ganglion_0']
    assert o.receptor.shape == o.ganglion_0.shape == (1, 1, 30, 20, 20)
    assert float(o.ganglion_0[0, 0, 0].mean()) == pytest.approx(80.0)
    retina.record = ('cgc_attenuation', 'center')
    o = retina.run(255 * np.random.rand(5, 20, 20))
    assert o.keys[-2:] == ['cgc_attenuation', 'center']
    retina.record = ('nonsense',)
    with pytest.raises(ValueError, match='nonsense'):
        retina.run(np.zeros((3, 20, 20)))


def test_rates_without_spikes_and_stages_left_out():
    o = Retina(spikes=False).run(np.full((40, 6, 6), 127.5))
    assert o.keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
    np.testing.assert_allclose(o[0].numpy(), 37.0, rtol=1e-5)      # at rest: i_0
    no_bip = Retina(bipolar=False, spikes=False).run(np.full((10, 6, 6), 127.5))
    np.testing.assert_allclose(no_bip[0][0, 0, 2:].numpy(), 37.0, rtol=1e-5)
    opl_only = Retina(gang=False, bipolar=False).run(255 * np.random.rand(10, 6, 6))
    assert opl_only.keys == ['opl']
    custom = Retina(opl=convis.filters.spatial.SpatialRecursiveFilter(0.1), spikes=False)
    assert custom.run(np.random.rand(10, 6, 6))[0].shape == (1, 1, 10, 6, 6)


@pytest.mark.parametrize('config', [None, CAT_SQUARE, CAT, PRIMATE], ids=['default', 'cat_square', 'cat', 'primate'])
def test_chunked_runs_equal_one_run(config):
    """Deterministic maps and spikes (with noise, from a fixed seed) do not depend on the chunk length."""
    x = 255 * np.random.rand(2, 1, 36, 24, 24)

    def factory():
        r = Retina(seed=5, record=('opl', 'bipolar', 'ganglion_0'))
        r.double()
        if config is not None:
            r.parse_config(config)
        return r
    assert_chunking_exact(factory, x, dts=(1, 5, 17), rtol=1e-9, atol=1e-9)


def test_batches_are_independent_simulations():
    x = 255 * np.random.rand(3, 1, 25, 14, 14)
    both = Retina(config=CAT_SQUARE, record=('bipolar',)).run(x, dt=10)
    for b in range(3):
        one = Retina(config=CAT_SQUARE, record=('bipolar',)).run(x[b:b + 1], dt=10)
        assert torch.allclose(both.bipolar[b:b + 1], one.bipolar, atol=1e-5)
        assert torch.equal(both[0][b:b + 1], one[0])                  # noiseless: identical spikes
    two_channels = Retina(spikes=False).run(255 * np.random.rand(1, 2, 10, 6, 6))
    assert two_channels[0].shape == (1, 2, 10, 6, 6)


def test_seed_makes_noise_reproducible():
    x = 255 * np.random.rand(60, 10, 10)
    a = Retina(seed=3).run(x)[0]
    b = Retina(seed=3).run(x)[0]
    c = Retina(seed=4).run(x)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    r = Retina(seed=3)
    r.run(x)
    r.seed(3)
    r.clear_state()
    assert torch.equal(r.run(x)[0], a)
    r.push_state()
    first = r.run(x)[0]
    r.pop_state()
    assert torch.equal(r.run(x)[0], first)


def test_resolution_changes_apply_from_the_next_chunk():
    x = np.full((30, 8, 8), 200.0)
    r = Retina(spikes=False)
    fast = r.run(x)[0]
    r.clear_state()
    r.resolution.steps_per_second = 1000.0
    slow = r.run(x)[0]
    assert not torch.allclose(fast, slow)
    assert r.opl.resolution is r.resolution and r.gang_1_spikes.resolution is r.resolution


def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def test_memory_stays_flat_over_20000_frames():
    retina = Retina(seed=0)
    chunk = 255 * np.random.rand(500, 8, 8)
    retina.run(chunk, dt=250)
    gc.collect()
    start = rss_mb()
    for _ in range(40):
        retina.run(chunk, dt=250)
    gc.collect()
    assert rss_mb() - start < 30
    assert all(v is None or not v.requires_grad for _, v in retina.named_states())


def test_gradients_reach_the_opl_and_bipolar_parameters():
    retina = Retina(spikes=False)
    retina.parse_config(CAT_SQUARE)
    x = torch.tensor(255 * np.random.rand(1, 1, 30, 16, 16), dtype=torch.float32)
    o = retina(x)
    loss = ((o[0] - 60.0) ** 2).mean()
    loss.backward()
    for p in (retina.opl.tau_center, retina.opl.sigma_center, retina.opl.sigma_surround, retina.opl.relative_weight,
              retina.opl.undershoot_relative_weight_center, retina.bipolar.g_leak, retina.bipolar.lambda_amp,
              retina.bipolar.adaptation_sigma, retina.gang_0_input.lambda_G):
        assert p.grad is not None and torch.isfinite(p.grad).all() and float(p.grad.abs()) > 0, p.name


def test_fitting_a_rate_output_lowers_the_loss():
    target_retina = Retina(spikes=False)
    target_retina.gang_0_input.lambda_G.set(150.0)
    x = 255 * np.random.rand(60, 10, 10)
    target = target_retina.run(x)[0]
    retina = Retina(spikes=False)
    retina.set_optimizer.Adam([retina.gang_0_input.lambda_G], lr=5.0)

    def loss_fn(y, out):
        return ((out[0] - y) ** 2).mean()
    before = retina.compute_loss(x, target, loss_fn=loss_fn, dt=30)
    for _ in range(5):
        retina.optimize(x, target, loss_fn=loss_fn, dt=30)
    after = retina.compute_loss(x, target, loss_fn=loss_fn, dt=30)
    assert sum(after) < 0.5 * sum(before)
    assert float(retina.gang_0_input.lambda_G) > 110.0
