"""Tests of convis.filters.spiking: analytic rates, step-size independence, noise, seeds, chunking, shapes."""
import math

import numpy as np
import pytest
import torch

import convis
from convis.filters import spiking
from helpers import assert_chunking_exact


def quiet(layer, **params):
    """The layer without noise and with V starting at 0 (deterministic), with other parameters set."""
    params.setdefault('noise_sigma', 0.0)
    if hasattr(layer, 'random_init'):
        params.setdefault('random_init', 0.0)
    if hasattr(layer, 'refr_sigma'):
        params.setdefault('refr_sigma', 0.0)
    for k, v in params.items():
        setattr(layer, k, v)
    return layer


def spike_count(layer, inp, sps, seconds, shape=(1, 1), dt=None):
    """Runs a constant or time-varying input (a function of time in seconds) at ``sps``; spikes per pixel."""
    convis.set_steps_per_second(sps)
    t = np.arange(int(round(seconds * sps))) / sps
    x = (inp(t) if callable(inp) else inp * np.ones_like(t))[:, None, None] * np.ones((1,) + shape)
    o = layer.run(x.astype(np.float32), dt=dt)
    return float(o[0][:, :1].sum()) / np.prod(shape)


def lif_rate(I, g=50.0, tau=0.02, refr=0.0):
    return 1.0 / (refr + math.log(I / (I - g * tau)) / g)


# ----------------------------------------------------------------------------------------------- LIF
@pytest.mark.parametrize('sps', [1000, 500, 100])
@pytest.mark.parametrize('I', [1.2, 3.0, 20.0])
def test_lif_rate_matches_the_analytic_rate_at_every_step_size(I, sps):
    n = spike_count(quiet(spiking.LeakyIntegrateAndFireNeuron(count_spikes=True)), I, sps, 2.0)
    expected = 2.0 * lif_rate(I)
    assert expected - 1 <= n <= expected  # the last interval may be unfinished


@pytest.mark.parametrize('sps', [1000, 200])
def test_refractory_lif_rate_includes_the_refractory_period(sps):
    layer = quiet(spiking.RefractoryLeakyIntegrateAndFireNeuron(count_spikes=True), refr_mu=0.004)
    n = spike_count(layer, 5.0, sps, 2.0)
    expected = 2.0 * lif_rate(5.0, refr=0.004)
    assert expected - 1 <= n <= expected
    assert n < 2.0 * lif_rate(5.0) - 20  # much slower than without refractoriness


def test_refractory_lif_keeps_a_minimum_interval():
    layer = spiking.RefractoryLeakyIntegrateAndFireNeuron(seed=3)
    quiet(layer, refr_mu=0.01, refr_sigma=0.001, noise_sigma=0.3)
    convis.set_steps_per_second(1000)
    s = layer.run(50.0 * np.ones((3000, 2, 2), dtype=np.float32), dt=1000)[0][0, 0].numpy()
    for i in range(2):
        for j in range(2):
            isi = np.diff(np.nonzero(s[:, i, j])[0])
            assert isi.min() >= 6 and 9.5 <= isi.mean() <= 11.5


def test_lif_spikes_are_the_same_for_the_same_stimulus_in_seconds_at_500_and_1000_steps():
    def stimulus(t):
        return 1.0 + 1.5 * np.sin(2 * np.pi * 3.0 * t)
    counts = [spike_count(quiet(spiking.LeakyIntegrateAndFireNeuron()), stimulus, sps, 2.0) for sps in (1000, 500)]
    assert counts[0] > 40
    assert abs(counts[0] - counts[1]) <= 0.02 * counts[0]
    noisy = [spike_count(spiking.LeakyIntegrateAndFireNeuron(seed=1), stimulus, sps, 2.0, shape=(10, 10))
             for sps in (1000, 500)]
    assert abs(noisy[0] - noisy[1]) <= 0.03 * noisy[0]


def test_quickstart_drive_fires_at_a_moderate_rate_independent_of_the_step():
    """20 x a drifting grating with g_L = 1 Hz: the seed documentation's quickstart, in seconds."""
    def grating(sps):
        t = np.arange(2 * sps)[:, None, None] * 1000.0 / sps
        return np.sin(t / 200 + 3 * np.linspace(-1, 1, 8)[None, :, None] + 2 * np.linspace(-1, 1, 8)[None, None])
    rates = []
    for sps in (1000, 500):
        convis.set_steps_per_second(sps)
        lif = spiking.LeakyIntegrateAndFireNeuron(seed=0)
        lif.p.g_L = 1.0
        rates.append(float(lif.run(20.0 * grating(sps), dt=100)[0].sum()) / 64 / 2.0)
    assert 100 < rates[0] < 250
    assert abs(rates[0] - rates[1]) < 0.4 * rates[0]


@pytest.mark.parametrize('sps', [1000, 200])
def test_lif_membrane_noise_has_the_standard_deviation_sigma(sps):
    convis.set_steps_per_second(sps)
    layer = spiking.LeakyIntegrateAndFireNeuron(output_only_spikes=False, seed=2)
    quiet(layer, noise_sigma=0.1)
    V = layer.run(np.zeros((int(4 * sps), 10, 10), dtype=np.float32), dt=1000)[0][0, 1].numpy()
    assert abs(V[sps // 5:].std() - 0.1) < 0.006
    assert abs(V[sps // 5:].mean()) < 0.01


def test_resolution_is_read_at_every_chunk():
    layer = quiet(spiking.LeakyIntegrateAndFireNeuron(count_spikes=True))
    convis.set_steps_per_second(1000)
    n = float(layer(3.0 * np.ones((500, 1, 1), dtype=np.float32)).sum())
    convis.set_steps_per_second(250)
    n += float(layer(3.0 * np.ones((125, 1, 1), dtype=np.float32)).sum())
    expected = lif_rate(3.0)
    assert expected - 1 <= n <= expected


def test_lif_outputs_potentials_and_works_in_double_precision():
    layer = quiet(spiking.LeakyIntegrateAndFireNeuron(output_only_spikes=False)).double()
    o = layer.run(np.full((100, 3, 2), 2.0), dt=30)[0]
    assert o.dtype == torch.float64 and o.shape == (1, 2, 100, 3, 2)
    V = o[0, 1, :, 0, 0].numpy()
    assert V.min() >= 0 and V.max() < 1
    V_theory = 2.0 * (1 - np.exp(-(np.arange(1, 101) / 1000.0) * 50.0))  # until the first spike
    first = int(np.argmax(o[0, 0, :, 0, 0].numpy()))
    assert first > 5 and np.allclose(V[:first], V_theory[:first], rtol=1e-6)


# ----------------------------------------------------------------------------------------------- noise and seeds
def test_the_seed_makes_runs_reproducible_and_clear_state_repeats_them():
    x = 1.5 * np.ones((200, 5, 5), dtype=np.float32)
    a = spiking.LeakyIntegrateAndFireNeuron(seed=7).run(x, dt=50)[0]
    layer = spiking.LeakyIntegrateAndFireNeuron(seed=7)
    b = layer.run(x, dt=13)[0]
    assert torch.equal(a, b)
    layer.clear_state()
    assert torch.equal(layer.run(x)[0], a)
    assert not torch.equal(spiking.LeakyIntegrateAndFireNeuron(seed=8).run(x)[0], a)
    layer.set_seed(8)
    layer.clear_state()
    assert torch.equal(layer.run(x)[0], spiking.LeakyIntegrateAndFireNeuron(seed=8).run(x)[0])


def test_push_and_pop_state_rewind_the_noise():
    layer = spiking.RefractoryLeakyIntegrateAndFireNeuron(seed=1)
    x = 1.5 * np.ones((100, 4, 4), dtype=np.float32)
    layer.run(x)
    layer.push_state()
    a = layer.run(x)[0]
    layer.pop_state()
    assert torch.equal(layer.run(x)[0], a)


def test_bad_seeds_and_arguments_are_rejected():
    with pytest.raises(ValueError):
        spiking.Poisson(seed=-1)
    with pytest.raises(ValueError):
        spiking.Poisson(seed=1.5)
    with pytest.raises(TypeError):
        spiking.LeakyIntegrateAndFireNeuron(g_leak=3)


def test_a_new_input_shape_needs_clear_state():
    layer = spiking.LeakyIntegrateAndFireNeuron()
    layer(np.ones((10, 4, 4)))
    with pytest.raises(ValueError, match='clear_state'):
        layer(np.ones((10, 5, 4)))
    layer.clear_state()
    assert layer(np.ones((10, 5, 4))).shape == (1, 1, 10, 5, 4)


# ----------------------------------------------------------------------------------------------- every neuron
def _noisy(cls, **params):
    def make():
        layer = cls()
        for k, v in params.items():
            setattr(layer, k, v)
        return layer
    return make


NEURONS = {
    'lif': (_noisy(spiking.LeakyIntegrateAndFireNeuron, noise_sigma=0.3), 2.0),
    'refractory_lif': (_noisy(spiking.RefractoryLeakyIntegrateAndFireNeuron, noise_sigma=0.3), 2.0),
    'poisson': (_noisy(spiking.Poisson), 200.0),
    'izhikevich': (_noisy(spiking.IzhikevichNeuron, noise_sigma=1.0), 14.0),
    'refractory_izhikevich': (_noisy(spiking.RefractoryIzhikevichNeuron, noise_sigma=1.0, refr_sigma=0.002), 30.0),
    'adaptive_izhikevich': (_noisy(spiking.AdaptiveIzhikevichNeuron, noise_sigma=1.0), 14.0),
    'fitzhugh_nagumo': (_noisy(spiking.FitzHughNagumo, noise_sigma=0.1), 0.5),
    'hodgkin_huxley': (_noisy(spiking.HodgkinHuxley, noise_sigma=2.0), 10.0),
    'motion_linear': (lambda: spiking.IntegrativeMotionSensor('linear', threshold=0.5), 1.0),
}


def _drive(scale, shape=(2, 2, 60, 3, 4)):
    rng = np.random.RandomState(0)
    x = scale * (1.0 + 0.5 * rng.rand(*shape))
    x[1] *= 0.5
    return x.astype(np.float32)


@pytest.mark.parametrize('name', sorted(NEURONS))
def test_chunked_runs_equal_whole_runs(name):
    make, scale = NEURONS[name]
    whole = assert_chunking_exact(make, _drive(scale), dts=(1, 3, 17, None))
    assert whole[0].sum() > 0


@pytest.mark.parametrize('name', sorted(NEURONS))
def test_batch_and_channels_are_independent_neurons(name):
    make, scale = NEURONS[name]

    def deterministic():
        layer = make()
        return quiet(layer) if hasattr(layer, 'noise_sigma') else layer
    x = _drive(scale)
    x[0, 1] = 0.0
    both = deterministic().run(x)[0].numpy()
    channels = 2 if name.startswith('motion') else 1
    assert both.shape == (2, 2 * channels) + x.shape[2:]
    values = set(np.unique(both))
    assert (values <= {0.0, 1.0} if channels == 1 else all(float(v).is_integer() and v >= 0 for v in values))
    assert both.sum() > 0
    if name == 'poisson':
        assert both[0, 1].sum() == 0
        return
    for b in range(2):
        for c in range(2):
            alone = deterministic().run(x[b:b + 1, c:c + 1])[0].numpy()
            np.testing.assert_array_equal(both[b:b + 1, c::2][:, :channels], alone)


def test_every_parameter_describes_itself():
    layers = [make() for make, _ in NEURONS.values()] + [spiking.IntegrativeMotionSensor('log', 1.5)]
    for layer in layers:
        for name, p in layer.named_parameters():
            assert p.doc and isinstance(p.unit, str), name
            assert p.scale in ('linear', 'log') and p.slider_range is not None and len(p.bounds) == 2, name
            assert not p.requires_grad, name
    keys = {p.retina_config_key for _, p in spiking.RefractoryLeakyIntegrateAndFireNeuron().named_parameters()}
    assert {'g-leak__Hz', 'sigma-V', 'refr-mean__sec', 'refr-stdev__sec'} <= keys


def test_virtual_retina_configuration_keys_set_the_refractory_lif():
    layer = spiking.RefractoryLeakyIntegrateAndFireNeuron()
    layer.parse_config({'g-leak__Hz': '20', 'sigma-V': '0', 'refr-mean__sec': '0.002', 'refr-stdev__sec': '0.0005'})
    assert float(layer.g_L) == 20 and float(layer.refr_mu) == pytest.approx(0.002)
    with pytest.raises(ValueError):
        layer.refr_mu = -0.001


# ----------------------------------------------------------------------------------------------- Poisson
@pytest.mark.parametrize('sps', [1000, 500])
def test_poisson_fires_at_the_input_rate_in_hz(sps):
    convis.set_steps_per_second(sps)
    rate, seconds, pixels = 40.0, 2.0, 400
    s = spiking.Poisson(seed=5).run(rate * np.ones((int(seconds * sps), 20, 20), dtype=np.float32), dt=500)[0]
    p = rate / sps
    n, expected = float(s.sum()), rate * seconds * pixels
    assert abs(n - expected) < 4 * math.sqrt(expected * (1 - p))
    assert float(spiking.Poisson(seed=5).run(np.full((100, 2, 2), -5.0))[0].sum()) == 0


# ----------------------------------------------------------------------------------------------- Izhikevich
def izhikevich_spikes(layer, current, seconds=1.0, sps=1000):
    convis.set_steps_per_second(sps)
    x = current * np.ones((int(seconds * sps), 1, 1), dtype=np.float32)
    return np.nonzero(layer.run(x, dt=250)[0][0, 0, :, 0, 0].numpy())[0] / sps


def test_izhikevich_tonic_spiking_fires_regularly():
    layer = spiking.IzhikevichNeuron(preset='Tonic spiking')
    assert layer.recommended_input == 14.0
    t = izhikevich_spikes(layer, layer.recommended_input)
    isi = np.diff(t)[3:]
    assert 20 <= len(t) <= 60
    assert isi.std() / isi.mean() < 0.05


def test_izhikevich_presets_and_names():
    layer = spiking.Izhikevich()
    assert spiking.Izhikevich is spiking.IzhikevichNeuron
    names = layer.load_parameters_by_name()
    assert len(names) == 20 and 'Phasic bursting' in names
    assert layer.load_parameters_by_name('phasic BURSTING') == 0.6
    assert (float(layer.a), float(layer.b), float(layer.c), float(layer.d)) == pytest.approx((0.02, 0.25, -55, 0.05))
    with pytest.raises(KeyError, match='Tonic spiking'):
        layer.load_parameters_by_name('Tonic spikes')


def test_izhikevich_rates_do_not_depend_on_the_step_size():
    counts = [len(izhikevich_spikes(spiking.IzhikevichNeuron(preset='Tonic spiking'), 20.0, sps=sps))
              for sps in (1000, 500, 250)]
    assert counts[0] > 30 and max(counts) - min(counts) <= 1


def test_phasic_spiking_fires_only_at_the_onset():
    t = izhikevich_spikes(spiking.IzhikevichNeuron(preset='Phasic spiking'), 0.5)
    assert len(t) == 1 and t[0] < 0.1


def test_refractory_and_adaptive_izhikevich_variants():
    t = izhikevich_spikes(spiking.RefractoryIzhikevichNeuron(preset='Tonic spiking'), 60.0)
    plain = izhikevich_spikes(spiking.IzhikevichNeuron(preset='Tonic spiking'), 60.0)
    layer = spiking.RefractoryIzhikevichNeuron(preset='Tonic spiking')
    layer.refr_mu = 0.02
    slow = izhikevich_spikes(layer, 60.0)
    assert np.diff(slow).min() >= 0.02 and len(slow) < len(t) <= len(plain)
    adaptive = izhikevich_spikes(spiking.AdaptiveIzhikevichNeuron(preset='Tonic spiking'), 14.0, seconds=2.0)
    isi = np.diff(adaptive)
    assert isi[-1] > 1.2 * isi[1]
    o = spiking.AdaptiveIzhikevichNeuron(output_only_spikes=False).run(np.full((50, 1, 1), 14.0))[0]
    assert o.shape[1] == 4 and float(o[0, 3].max()) > 0  # [spikes, v, u, w]


# ----------------------------------------------------------------------------------------------- FHN, HH
def test_fitzhugh_nagumo_rests_without_input_and_oscillates_with_it():
    layer = spiking.FitzHughNagumo(output_only_spikes=False)
    o = layer.run(np.zeros((300, 1, 1), dtype=np.float32))[0][0, :, :, 0, 0].numpy()
    v0, w0 = (float(a) for a in layer.resting_point())
    assert o[0].sum() == 0 and np.allclose(o[1], v0, atol=1e-5) and np.allclose(o[2], w0, atol=1e-5)
    assert v0 - v0 ** 3 / 3 - w0 == pytest.approx(0, abs=1e-9)
    counts = [izhikevich_spikes(spiking.FitzHughNagumo(), 0.5, sps=sps).size for sps in (1000, 500)]
    assert 24 <= counts[0] <= 30 and counts[0] == counts[1]


def test_hodgkin_huxley_rests_at_zero_and_fires_repetitively_above_rheobase():
    layer = spiking.HodgkinHuxley(output_only_spikes=False)
    o = layer.run(np.zeros((100, 1, 1), dtype=np.float32))[0][0, :, :, 0, 0].numpy()
    assert o[0].sum() == 0 and np.abs(o[1]).max() < 1e-2  # V_l = 10.613 mV is rest to 4 digits
    assert spiking.HogkinHuxley is spiking.HodgkinHuxley
    assert izhikevich_spikes(spiking.HodgkinHuxley(), 3.0, seconds=0.3).size <= 1
    t = izhikevich_spikes(spiking.HodgkinHuxley(), 10.0, seconds=0.3)
    assert 60 <= np.diff(t)[1:].size / (t[-1] - t[1]) <= 75


# ----------------------------------------------------------------------------------------------- event sensor
def test_motion_sensor_linear_mode_counts_threshold_crossings_of_the_integral():
    convis.set_steps_per_second(1000)
    ims = spiking.IntegrativeMotionSensor('linear', threshold=1.0, tau=0.01)
    x = np.concatenate([np.full((100, 1, 1), 2.0), np.full((100, 1, 1), -1.0)]).astype(np.float32)
    o = ims.run(x, dt=7)[0][0, :, :, 0, 0].numpy()
    assert o[0, :100].sum() == 20 and o[1, :100].sum() == 0       # integral 2 * 0.1 s / 0.01 s = 20
    assert o[1, 100:].sum() == 10 and o[0, 100:].sum() == 0
    assert np.all(np.diff(np.nonzero(o[0])[0]) == 5)


def test_motion_sensor_log_mode_fires_per_factor_of_change():
    ims = spiking.IntegrativeMotionSensor('log', threshold=1.5)
    x = 1.5 ** (np.arange(200) / 10.0)
    x = np.concatenate([x, x[::-1]])[:, None, None].astype(np.float64) * np.ones((1, 2, 2))
    o = ims.run(x, dt=33)[0][0].numpy()
    assert o.shape == (2, 400, 2, 2)
    assert o[0].sum() == 4 * 19 and o[1].sum() == 4 * 19
    assert float(ims.run(np.ones((50, 2, 2)))[0].sum()) == 0
    with pytest.raises(ValueError, match='positive'):
        spiking.IntegrativeMotionSensor('log', 1.5)(np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match='above 1'):
        spiking.IntegrativeMotionSensor('log', 0.5)(np.ones((5, 2, 2)))
    with pytest.raises(ValueError):
        spiking.IntegrativeMotionSensor('exponential')
