"""Conductance-style neurons: the FitzHugh-Nagumo oscillator and the Hodgkin-Huxley squid axon."""
import math

import torch

from ...variables import Parameter
from .base import SpikingLayer, value

__all__ = ['FitzHughNagumo', 'HodgkinHuxley', 'HogkinHuxley']


def _substeps(dt, unit, max_substep):
    """Number of sub-steps per step and their length in model time units."""
    span = dt / unit
    n = max(1, int(math.ceil(span / max_substep - 1e-9)))
    return n, span / n


class _Oscillator(SpikingLayer):
    """Shared frame of the two models: sub-stepping, upward threshold crossings as spikes, outputs."""
    output_names = ()

    def __init__(self, output_only_spikes, count_spikes, max_substep, seed):
        super().__init__(seed=seed)
        self.output_only_spikes = bool(output_only_spikes)
        self.count_spikes = bool(count_spikes)
        if not max_substep > 0:
            raise ValueError('max_substep must be positive, not %r' % (max_substep,))
        self.max_substep = float(max_substep)

    def _run(self, x, states, substep, n, noise, gen):
        """Runs ``substep(states, I, xi)`` ``n`` times per step; a spike is an upward crossing of the threshold."""
        shape = self._state_shape(x)
        threshold = value(self.threshold, x)
        noisy = bool((noise > 0).any())
        spikes = torch.empty_like(x)
        traces = None if self.output_only_spikes else [torch.empty_like(x) for _ in self.output_names]
        for k in range(x.shape[2]):
            I = x[:, :, k]
            count = torch.zeros(shape, device=x.device, dtype=x.dtype)
            for _ in range(n):
                below = states[0] < threshold
                xi = noise * torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype) if noisy else None
                states = substep(states, I, xi)
                count = count + (below & (states[0] >= threshold))
            spikes[:, :, k] = count if self.count_spikes else count > 0
            if traces is not None:
                for trace, s in zip(traces, states):
                    trace[:, :, k] = s
        return states, (spikes if traces is None else torch.cat([spikes] + traces, dim=1))


class FitzHughNagumo(_Oscillator):
    """The FitzHugh-Nagumo relaxation oscillator at every pixel; spikes are upward crossings of ``threshold``.

    .. math::

        \\dot v = v - \\frac{v^3}{3} - w + I, \\qquad \\dot w = \\varepsilon (v + a - b w)

    Time is in units of ``time_unit`` seconds (1 ms by default): the dots are derivatives per unit,
    integrated with Euler sub-steps of at most ``max_substep`` units.  The input ``I`` is held constant
    over a step; with the defaults the neuron rests for ``I`` below about 0.33 and oscillates above
    (period about 37 units at ``I`` = 0.5).  ``v, w`` start at the resting point for ``I = 0``.

    Parameters (``.p``)
    -------------------
    a, b : dimensionless
        shape of the slow nullcline (0.7, 0.8)
    epsilon : dimensionless
        ratio of the time scales of ``w`` and ``v`` (0.08)
    time_unit : s
        length of one unit of model time
    threshold : dimensionless
        ``v`` crossing it upwards is a spike (1.0)
    noise_sigma : 1/sqrt(unit)
        white noise on ``v`` (each sub-step of ``h`` units adds ``noise_sigma sqrt(h)`` times a normal draw)

    Arguments: ``output_only_spikes=False`` returns the channels ``[spikes, v, w]``; ``count_spikes``,
    ``max_substep`` (model units, 0.1) and ``seed`` as for the other neurons.

    Examples
    --------
    >>> n = convis.filters.spiking.FitzHughNagumo(output_only_spikes=False)
    >>> o = n.run(0.5 * np.ones((1000, 1, 1)), dt=500)   # 27 spikes in 1 s at the default time unit
    """
    output_names = ('v', 'w')

    def __init__(self, output_only_spikes=True, count_spikes=False, max_substep=0.1, seed=None):
        super().__init__(output_only_spikes, count_spikes, max_substep, seed)
        self.a = Parameter(0.7, doc='offset of the slow nullcline', unit='', bounds=(None, None), scale='linear',
                           slider_range=(-1.0, 2.0), requires_grad=False)
        self.b = Parameter(0.8, doc='slope of the slow nullcline', unit='', bounds=(0.0, None), scale='linear',
                           slider_range=(0.0, 2.0), requires_grad=False)
        self.epsilon = Parameter(0.08, doc='ratio of the time scales of the slow (w) and fast (v) variables',
                                 unit='', bounds=(0.0, None), scale='log', slider_range=(0.005, 1.0),
                                 requires_grad=False)
        self.time_unit = Parameter(0.001, doc='length of one unit of model time', unit='s', bounds=(1e-9, None),
                                   scale='log', slider_range=(1e-4, 0.1), requires_grad=False)
        self.threshold = Parameter(1.0, doc='an upward crossing of v through this value is a spike', unit='',
                                   bounds=(None, None), scale='linear', slider_range=(-1.0, 2.0),
                                   requires_grad=False)
        self.noise_sigma = Parameter(0.0, doc='white noise on v (standard deviation after one unit of time)',
                                     unit='1/sqrt(unit)', bounds=(0.0, None), scale='linear',
                                     slider_range=(0.0, 1.0), requires_grad=False)
        self.register_state('v', None)
        self.register_state('w', None)

    def resting_point(self, like=None):
        """``(v, w)`` where the model rests without input (Newton's method on the cubic; float64 tensors)."""
        a, b = self.a.detach().double(), self.b.detach().double()
        v = torch.full_like(a * b, -1.2)
        for _ in range(50):
            v = v - (v - v ** 3 / 3 - (v + a) / b) / (1 - v ** 2 - 1 / b)
        return v, (v + a) / b

    def forward(self, x):
        shape = self._state_shape(x)
        gen = self._generator(x.device)
        v, w = self._check_state('v', shape), self._check_state('w', shape)
        if v is None or w is None:
            v0, w0 = self.resting_point()
            v = v0.to(x).expand(shape).clone()
            w = w0.to(x).expand(shape).clone()
        n, h = _substeps(self._dt(), float(self.time_unit), self.max_substep)
        a, b, eps = value(self.a, x), value(self.b, x), value(self.epsilon, x)
        noise = value(self.noise_sigma, x) * math.sqrt(h)

        def substep(states, I, xi):
            v, w = states
            v_new = v + h * (v - v ** 3 / 3.0 - w + I)
            w = w + h * eps * (v + a - b * w)
            return (v_new if xi is None else v_new + xi), w

        (self.v, self.w), out = self._run(x, (v, w), substep, n, noise, gen)
        self._keep_generator(gen)
        return out


def _x_over_expm1(u):
    """``u / (exp(u) - 1)``, equal to 1 at ``u = 0``."""
    return torch.nan_to_num(u / torch.expm1(u), nan=1.0)


def _gate_rates(V):
    """Opening and closing rates (1/ms) of the gates n, m, h at the potential V (mV, rest at 0)."""
    return ((0.1 * _x_over_expm1((10.0 - V) / 10.0), 0.125 * torch.exp(-V / 80.0)),
            (_x_over_expm1((25.0 - V) / 10.0), 4.0 * torch.exp(-V / 18.0)),
            (0.07 * torch.exp(-V / 20.0), torch.sigmoid((V - 30.0) / 10.0)))


class HodgkinHuxley(_Oscillator):
    """The Hodgkin-Huxley model of the squid giant axon at every pixel; spikes are upward crossings of ``threshold``.

    .. math::

        C_m \\dot V = I - g_K n^4 (V - V_K) - g_{Na} m^3 h (V - V_{Na}) - g_L (V - V_l), \\qquad
        \\dot x = \\alpha_x(V) (1 - x) - \\beta_x(V) x \\quad (x = n, m, h)

    with the classic rates (1/ms, ``V`` in mV relative to rest): ``alpha_n = 0.01 (10-V)/(e^{(10-V)/10}-1)``,
    ``beta_n = 0.125 e^{-V/80}``, ``alpha_m = 0.1 (25-V)/(e^{(25-V)/10}-1)``, ``beta_m = 4 e^{-V/18}``,
    ``alpha_h = 0.07 e^{-V/20}``, ``beta_h = 1/(e^{(30-V)/10}+1)``.  Time is in ms; every step is split
    into sub-steps of at most ``max_substep`` seconds (50 us), each solved with the exponential Euler
    rule (exact for the gates and for ``V`` at frozen conductances, so it stays stable).  The input is
    a current density in uA/cm^2, held constant over a step.  ``V`` starts at rest (0) and the gates at
    their steady state there (states ``V, gate_n, gate_m, gate_h``).  About 6.3 uA/cm^2 give repetitive firing (about 65 spikes/s at 10).

    Parameters (``.p``)
    -------------------
    gNa, gK, gL : mS/cm^2
        maximal sodium, potassium and leak conductances (120, 36, 0.3)
    VNa, VK, Vl : mV
        reversal potentials relative to rest (115, -12, 10.613)
    Cm : uF/cm^2
        membrane capacitance (1)
    threshold : mV
        ``V`` crossing it upwards is a spike (50)
    noise_sigma : uA/cm^2 sqrt(ms)
        white noise current (a sub-step of ``h`` ms gets ``noise_sigma / sqrt(h)`` times a normal draw)

    Arguments: ``output_only_spikes=False`` returns the channels ``[spikes, V, n, m, h]``;
    ``count_spikes``, ``max_substep`` (s) and ``seed`` as for the other neurons.

    Examples
    --------
    >>> n = convis.filters.spiking.HodgkinHuxley()
    >>> o = n.run(10.0 * np.ones((1000, 1, 1)), dt=500)
    """
    output_names = ('V', 'n', 'm', 'h')
    _state_names = ('V', 'gate_n', 'gate_m', 'gate_h')

    def __init__(self, output_only_spikes=True, count_spikes=False, max_substep=5e-5, seed=None):
        super().__init__(output_only_spikes, count_spikes, max_substep * 1000.0, seed)

        def conductance(v, doc):
            return Parameter(v, doc=doc, unit='mS/cm^2', bounds=(0.0, None), scale='linear',
                             slider_range=(0.0, 3.0 * v), requires_grad=False)

        def potential(v, doc):
            return Parameter(v, doc=doc, unit='mV', bounds=(None, None), scale='linear',
                             slider_range=(v - 30.0, v + 30.0), requires_grad=False)
        self.gNa = conductance(120.0, 'maximal conductance of the sodium channels')
        self.gK = conductance(36.0, 'maximal conductance of the potassium channels')
        self.gL = conductance(0.3, 'conductance of the leak')
        self.VNa = potential(115.0, 'reversal potential of sodium (relative to rest)')
        self.VK = potential(-12.0, 'reversal potential of potassium (relative to rest)')
        self.Vl = potential(10.613, 'reversal potential of the leak (relative to rest)')
        self.Cm = Parameter(1.0, doc='membrane capacitance', unit='uF/cm^2', bounds=(1e-6, None), scale='log',
                            slider_range=(0.1, 10.0), requires_grad=False)
        self.threshold = Parameter(50.0, doc='an upward crossing of V through this value is a spike', unit='mV',
                                   bounds=(None, None), scale='linear', slider_range=(0.0, 100.0),
                                   requires_grad=False)
        self.noise_sigma = Parameter(0.0, doc='white noise current (standard deviation of its 1 ms average '
                                     'times 1 ms^0.5)', unit='uA/cm^2 sqrt(ms)', bounds=(0.0, None),
                                     scale='linear', slider_range=(0.0, 10.0), requires_grad=False)
        for name in self._state_names:
            self.register_state(name, None)

    def forward(self, x):
        shape = self._state_shape(x)
        gen = self._generator(x.device)
        states = [self._check_state(name, shape) for name in self._state_names]
        if any(s is None for s in states):
            V = torch.zeros(shape, device=x.device, dtype=x.dtype)
            states = [V] + [alpha / (alpha + beta) for alpha, beta in _gate_rates(V)]
        n_sub, h = _substeps(self._dt(), 0.001, self.max_substep)
        gNa, gK, gL, VNa, VK, Vl, Cm = (value(p, x) for p in (self.gNa, self.gK, self.gL, self.VNa, self.VK,
                                                               self.Vl, self.Cm))
        noise = value(self.noise_sigma, x) / math.sqrt(h)

        def substep(states, I, xi):
            V, n, m, hh = states
            if xi is not None:
                I = I + xi
            gates = []
            for gate, (alpha, beta) in zip((n, m, hh), _gate_rates(V)):
                rate = alpha + beta
                steady = alpha / rate
                gates.append(steady + (gate - steady) * torch.exp(-h * rate))
            g_k = gK * n ** 4
            g_na = gNa * m ** 3 * hh
            total = g_k + g_na + gL
            V_inf = (I + g_k * VK + g_na * VNa + gL * Vl) / total
            V = V_inf + (V - V_inf) * torch.exp(-h * total / Cm)
            return [V] + gates

        states, out = self._run(x, states, substep, n_sub, noise, gen)
        for name, s in zip(self._state_names, states):
            setattr(self, name, s)
        self._keep_generator(gen)
        return out


HogkinHuxley = HodgkinHuxley
