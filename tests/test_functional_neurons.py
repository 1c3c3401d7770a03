"""The pure kernels of the generic spiking neurons (convis.functional.lif_neuron, .izhikevich, .fitzhugh_nagumo,
.hodgkin_huxley, .events): two chunks with the state and the generator passed along equal one call, each layer
of convis.filters.spiking gives its kernel's output, and bad input is a clear ValueError."""
import math
from functools import partial
from typing import Any, Callable, NamedTuple

import pytest
import torch

from convis import functional as F
from convis.filters import spiking as S

D = torch.float64
SHAPE = (2, 1, 3, 2)        # batch, channel, x, y


def chunk(lo, hi, steps=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(SHAPE[:2] + (steps,) + SHAPE[2:], generator=g, dtype=D)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def fhn_rest(x, p):
    v, w = F.fitzhugh_nagumo_resting_point(p.a, p.b)
    return F.FitzHughNagumoState(v.to(x).expand(SHAPE).clone(), w.to(x).expand(SHAPE).clone())


def layer_of(case):
    """The case's layer in float64 with every parameter of the kernel's tuple set to the kernel's value."""
    layer = case.layer().to(D)
    for field, v in zip(case.params._fields, case.params):
        if field not in ('max_substep', 'log'):
            getattr(layer, field).set(v)
    return layer


class Case(NamedTuple):
    kernel: Callable
    params: Any
    x: torch.Tensor
    state: Callable          # (x, params, generator) -> the state a fresh layer starts from
    layer: Callable          # () -> the layer with all outputs on (``layer_of`` sets its parameters)
    names: tuple             # the recorded traces the layer appends as channels


CASES = {
    'lif': Case(F.integrate_lif, F.LIFNeuronParameters(50.0, 0.02, 0.2), chunk(0.0, 4.0),
                lambda x, p, g: F.LIFNeuronState(F.lif_initial_potential(SHAPE, 1.0, g, x)),
                partial(S.LeakyIntegrateAndFireNeuron, output_only_spikes=False, count_spikes=True, seed=11),
                ('V',)),
    'refractory_lif': Case(F.integrate_refractory_lif, F.RefractoryLIFNeuronParameters(50.0, 0.02, 0.2, 0.003, 0.001),
                           chunk(0.0, 100.0),
                           lambda x, p, g: F.RefractoryLIFNeuronState(F.lif_initial_potential(SHAPE, 1.0, g, x),
                                                                      torch.zeros(SHAPE, dtype=D)),
                           partial(S.RefractoryLeakyIntegrateAndFireNeuron, output_only_spikes=False,
                                   count_spikes=True, seed=12), ('V',)),
    'izhikevich': Case(F.integrate_izhikevich, F.IzhikevichParameters(0.02, 0.2, -50.0, 2.0, 30.0, 1.5),
                       chunk(5.0, 20.0), lambda x, p, g: F.IzhikevichState.rest(SHAPE, p, x),
                       partial(S.IzhikevichNeuron, output_only_spikes=False, count_spikes=True, seed=13),
                       ('v', 'u')),
    'refractory_izhikevich': Case(F.integrate_refractory_izhikevich,
                                  F.RefractoryIzhikevichParameters(0.02, 0.2, -65.0, 6.0, 30.0, 1.0, 0.004, 0.002),
                                  chunk(10.0, 40.0), lambda x, p, g: F.RefractoryIzhikevichState.rest(SHAPE, p, x),
                                  partial(S.RefractoryIzhikevichNeuron, output_only_spikes=False, seed=14),
                                  ('v', 'u')),
    'adaptive_izhikevich': Case(F.integrate_adaptive_izhikevich,
                                F.AdaptiveIzhikevichParameters(0.02, 0.2, -65.0, 6.0, 30.0, 0.5, 0.05, 2.0),
                                chunk(10.0, 25.0), lambda x, p, g: F.AdaptiveIzhikevichState.rest(SHAPE, p, x),
                                partial(S.AdaptiveIzhikevichNeuron, output_only_spikes=False, seed=15),
                                ('v', 'u', 'w')),
    'fitzhugh_nagumo': Case(F.integrate_fitzhugh_nagumo, F.FitzHughNagumoParameters(noise_sigma=0.1),
                            chunk(0.3, 1.0), lambda x, p, g: fhn_rest(x, p),
                            partial(S.FitzHughNagumo, output_only_spikes=False, count_spikes=True, seed=16),
                            ('v', 'w')),
    'hodgkin_huxley': Case(F.integrate_hodgkin_huxley,
                           F.HodgkinHuxleyParameters(noise_sigma=2.0, max_substep=5e-5 * 1000.0), chunk(0.0, 20.0),
                           lambda x, p, g: F.HodgkinHuxleyState.rest(SHAPE, x),
                           partial(S.HodgkinHuxley, output_only_spikes=False, seed=17), ('V', 'n', 'm', 'h')),
}


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


def run_kernel(case, x, state, seed_or_gen, record=None, count=True):
    g = seed_or_gen if isinstance(seed_or_gen, torch.Generator) else gen(seed_or_gen)
    return case.kernel(x, state, case.params, 0.001, g, count, record)


@pytest.mark.parametrize('name', sorted(CASES))
@pytest.mark.parametrize('cut', [1, 37])
def test_two_chunks_with_the_state_passed_along_equal_one_call(name, cut):
    case = CASES[name]
    x = case.x
    state = case.state(x, case.params, gen(1))
    rec_whole, rec_a, rec_b = {}, {}, {}
    whole, s_whole = run_kernel(case, x, state, 5, rec_whole)
    g = gen(5)
    a, s_a = run_kernel(case, x[:, :, :cut], state, g, rec_a)
    b, s_b = run_kernel(case, x[:, :, cut:], s_a, g, rec_b)
    assert float(whole.sum()) > 0                                   # the input makes the neurons fire
    assert torch.equal(whole, torch.cat([a, b], 2))
    assert type(s_b) is type(s_whole) and all(torch.equal(p, q) for p, q in zip(s_whole, s_b))
    assert set(rec_whole) == set(type(state)._fields)
    for k in rec_whole:
        assert torch.equal(rec_whole[k], torch.cat([rec_a[k], rec_b[k]], 2))
        assert torch.equal(rec_whole[k][:, :, -1], getattr(s_whole, k))   # the last trace is the state


@pytest.mark.parametrize('name', sorted(CASES))
def test_the_kernel_leaves_its_state_and_input_untouched(name):
    case = CASES[name]
    x = case.x.clone()
    state = case.state(x, case.params, gen(1))
    before = [s.clone() for s in state]
    y, after = run_kernel(case, x, state, 2)
    assert torch.equal(x, case.x) and all(torch.equal(p, q) for p, q in zip(state, before))
    assert not all(torch.equal(p, q) for p, q in zip(after, before))


@pytest.mark.parametrize('name', sorted(CASES))
def test_the_layer_output_is_the_kernels(name):
    case = CASES[name]
    layer = layer_of(case)
    dt = float(layer.resolution.dt)
    x = case.x
    out = layer.run(x, dt=23)[0]
    g = gen(layer.seed_value)
    record = {}
    spikes, state = case.kernel(x, case.state(x, case.params, g), case.params, dt, g, layer.count_spikes, record)
    expected = torch.cat([spikes] + [record[n] for n in case.names], dim=1)
    assert torch.equal(out, expected)
    for field, value in zip(type(state)._fields, state):
        attr = {'n': 'gate_n', 'm': 'gate_m', 'h': 'gate_h'}.get(field, field) if name == 'hodgkin_huxley' else field
        assert torch.equal(getattr(layer, attr), value)


def test_poisson_kernel_chunks_and_layer():
    x = chunk(0.0, 400.0, steps=200)
    whole = F.poisson_spikes(x, 0.001, gen(3))
    g = gen(3)
    halves = torch.cat([F.poisson_spikes(x[:, :, :50], 0.001, g), F.poisson_spikes(x[:, :, 50:], 0.001, g)], 2)
    assert torch.equal(whole, halves)
    assert float(whole.sum()) == pytest.approx(float(x.sum()) * 0.001, rel=0.15)
    layer = S.Poisson(seed=21).to(D)
    assert torch.equal(layer.run(x, dt=31)[0], F.poisson_spikes(x, float(layer.resolution.dt), gen(21)))


@pytest.mark.parametrize('mode', ['linear', 'log'])
def test_sensor_events_chunks_and_layer(mode):
    log = mode == 'log'
    x = chunk(0.5, 2.0, steps=90) if log else chunk(-1.0, 1.0, steps=90)
    p = F.MotionSensorParameters(threshold=1.1 if log else 0.6, tau=0.001, log=log)
    whole, s_whole = F.sensor_events(x, F.MotionSensorState(), p, 0.001)
    a, s_a = F.sensor_events(x[:, :, :40], F.MotionSensorState(), p, 0.001)
    b, s_b = F.sensor_events(x[:, :, 40:], s_a, p, 0.001)
    assert whole.shape == (2, 2, 90, 3, 2) and float(whole.sum()) > 0
    assert torch.equal(whole, torch.cat([a, b], 2)) and torch.equal(s_whole.level, s_b.level)
    layer = S.IntegrativeMotionSensor(mode, threshold=p.threshold, tau=0.001).to(D)
    expected, _ = F.sensor_events(x, F.MotionSensorState(), p, float(layer.resolution.dt))
    assert torch.equal(layer.run(x, dt=17)[0], expected)


def test_lif_kernel_fires_at_the_analytic_rate():
    """A constant input I > g_L tau fires at g_L / ln(I / (I - g_L tau)) at every step size."""
    p = F.LIFNeuronParameters(g_L=50.0, tau=0.02, noise_sigma=0.0)
    for dt, steps in ((0.001, 2000), (0.01, 200)):
        x = 3.0 * torch.ones(1, 1, steps, 1, 1, dtype=D)
        y, _ = F.integrate_lif(x, F.LIFNeuronState(torch.zeros(1, 1, 1, 1, dtype=D)), p, dt, count_spikes=True)
        expected = 2.0 * 50.0 / math.log(3.0 / 2.0)
        assert expected - 1 <= float(y.sum()) <= expected


def test_hodgkin_huxley_and_fitzhugh_nagumo_rest_without_input():
    x = torch.zeros(1, 1, 300, 1, 1, dtype=D)
    hh = F.HodgkinHuxleyState.rest((1, 1, 1, 1), x)
    y, s = F.integrate_hodgkin_huxley(x, hh, F.HodgkinHuxleyParameters(), 0.001)
    assert float(y.sum()) == 0 and abs(float(s.V)) < 0.01       # 3.6 uV off: the classic Vl
    p = F.FitzHughNagumoParameters()
    y, s = F.integrate_fitzhugh_nagumo(x, fhn_rest(x, p)._replace(v=torch.full((1, 1, 1, 1), -1.2, dtype=D),
                                                                   w=torch.full((1, 1, 1, 1), -0.62, dtype=D)),
                                       p, 0.001)
    v0, w0 = F.fitzhugh_nagumo_resting_point(0.7, 0.8)
    assert float(y.sum()) == 0 and abs(float(s.v) - float(v0)) < 1e-3 and abs(float(s.w) - float(w0)) < 1e-3


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize('name', sorted(CASES))
def test_bad_state_shape_dt_and_input_raise_value_errors(name):
    case = CASES[name]
    x = case.x[:, :, :5]
    state = case.state(x, case.params, gen(1))
    wrong = state._replace(**{state._fields[0]: state[0][:1]})
    with pytest.raises(ValueError, match='state %s has shape' % state._fields[0]):
        case.kernel(x, wrong, case.params, 0.001)
    with pytest.raises(ValueError, match='must be a tensor'):
        case.kernel(x, state._replace(**{state._fields[-1]: 0.0}), case.params, 0.001)
    for dt in (0.0, -0.001, math.nan, math.inf, 'a'):
        with pytest.raises(ValueError, match='dt'):
            case.kernel(x, state, case.params, dt)
    with pytest.raises(ValueError, match='5-d'):
        case.kernel(x[:, :, 0], state, case.params, 0.001)


@pytest.mark.parametrize('kernel,params,field', [
    (F.integrate_lif, F.LIFNeuronParameters(), 'tau'),
    (F.integrate_lif, F.LIFNeuronParameters(), 'g_L'),
    (F.integrate_lif, F.LIFNeuronParameters(), 'noise_sigma'),
    (F.integrate_refractory_lif, F.RefractoryLIFNeuronParameters(), 'tau'),
    (F.integrate_refractory_lif, F.RefractoryLIFNeuronParameters(), 'refr_mu'),
    (F.integrate_izhikevich, F.IzhikevichParameters(), 'max_substep'),
    (F.integrate_izhikevich, F.IzhikevichParameters(), 'noise_sigma'),
    (F.integrate_refractory_izhikevich, F.RefractoryIzhikevichParameters(), 'refr_sigma'),
    (F.integrate_adaptive_izhikevich, F.AdaptiveIzhikevichParameters(), 'tau_adaptation'),
    (F.integrate_fitzhugh_nagumo, F.FitzHughNagumoParameters(), 'time_unit'),
    (F.integrate_hodgkin_huxley, F.HodgkinHuxleyParameters(), 'Cm'),
])
def test_negative_or_zero_time_constants_raise_value_errors(kernel, params, field):
    x = torch.ones(1, 1, 4, 1, 1, dtype=D)
    state_type = {F.integrate_lif: F.LIFNeuronState, F.integrate_refractory_lif: F.RefractoryLIFNeuronState,
                  F.integrate_izhikevich: F.IzhikevichState,
                  F.integrate_refractory_izhikevich: F.RefractoryIzhikevichState,
                  F.integrate_adaptive_izhikevich: F.AdaptiveIzhikevichState,
                  F.integrate_fitzhugh_nagumo: F.FitzHughNagumoState,
                  F.integrate_hodgkin_huxley: F.HodgkinHuxleyState}[kernel]
    state = state_type(*(torch.zeros(1, 1, 1, 1, dtype=D) for _ in state_type._fields))
    kernel(x, state, params, 0.001)                                  # the defaults are valid
    positive = field in ('tau', 'max_substep', 'tau_adaptation', 'time_unit', 'Cm')
    for bad in ((0.0, -1.0) if positive else (-1.0,)) + (torch.tensor([0.1, math.nan]),):
        with pytest.raises(ValueError, match=field):
            kernel(x, state, params._replace(**{field: bad}), 0.001)


def test_sensor_and_poisson_bad_input():
    x = torch.ones(1, 1, 4, 2, 2, dtype=D)
    with pytest.raises(ValueError, match='tau'):
        F.sensor_events(x, F.MotionSensorState(), F.MotionSensorParameters(tau=0.0), 0.001)
    with pytest.raises(ValueError, match='threshold must be positive'):
        F.sensor_events(x, F.MotionSensorState(), F.MotionSensorParameters(threshold=-1.0), 0.001)
    with pytest.raises(ValueError, match='factor above 1'):
        F.sensor_events(x, F.MotionSensorState(), F.MotionSensorParameters(threshold=0.5, log=True), 0.001)
    with pytest.raises(ValueError, match='positive input'):
        F.sensor_events(-x, F.MotionSensorState(), F.MotionSensorParameters(threshold=1.5, log=True), 0.001)
    with pytest.raises(ValueError, match='state level has shape'):
        F.sensor_events(x, F.MotionSensorState(torch.zeros(1, 1, 3, 2, dtype=D)), F.MotionSensorParameters(), 0.001)
    with pytest.raises(ValueError, match='dt'):
        F.sensor_events(x, F.MotionSensorState(), F.MotionSensorParameters(), 0.0)
    with pytest.raises(ValueError, match='dt'):
        F.poisson_spikes(x, -0.001)
    with pytest.raises(ValueError, match='5-d'):
        F.poisson_spikes(x[0], 0.001)
