"""Conductance-style neurons: the FitzHugh-Nagumo oscillator and the Hodgkin-Huxley squid axon.

The equations are :mod:`convis.functional.fitzhugh_nagumo` and :mod:`convis.functional.hodgkin_huxley`; these
layers declare the parameters, keep the states and the noise generator, and call the kernels.
"""
import torch

from ...functional.fitzhugh_nagumo import (FitzHughNagumoParameters, FitzHughNagumoState,
                                          fitzhugh_nagumo_resting_point, integrate_fitzhugh_nagumo)
from ...functional.hodgkin_huxley import HodgkinHuxleyParameters, HodgkinHuxleyState, integrate_hodgkin_huxley
from ...variables import Parameter
from .base import SpikingLayer, value

__all__ = ['FitzHughNagumo', 'HodgkinHuxley', 'HogkinHuxley']

_FHN, _HH = FitzHughNagumoParameters(), HodgkinHuxleyParameters()  # the defaults of the kernels' parameters


class _Oscillator(SpikingLayer):
    """Shared frame of the two models: output options, sub-step length, the noise generator around the kernel."""
    output_names = ()

    def __init__(self, output_only_spikes, count_spikes, max_substep, seed):
        super().__init__(seed=seed)
        self.output_only_spikes = bool(output_only_spikes)
        self.count_spikes = bool(count_spikes)
        if not max_substep > 0:
            raise ValueError('max_substep must be positive, not %r' % (max_substep,))
        self.max_substep = float(max_substep)

    def _call(self, kernel, x, state, params):
        """Runs ``kernel`` from ``state`` with the layer's generator: returns the new state and the output."""
        gen = self._generator(x.device)
        record = None if self.output_only_spikes else {}
        spikes, state = kernel(x, state, params, self._dt(), gen, self.count_spikes, record)
        self._keep_generator(gen)
        out = spikes if record is None else torch.cat([spikes] + [record[n] for n in state._fields], dim=1)
        return state, out


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
        self.a = Parameter(_FHN.a, doc='offset of the slow nullcline', unit='', bounds=(None, None), scale='linear',
                           slider_range=(-1.0, 2.0), requires_grad=False)
        self.b = Parameter(_FHN.b, doc='slope of the slow nullcline', unit='', bounds=(0.0, None), scale='linear',
                           slider_range=(0.0, 2.0), requires_grad=False)
        self.epsilon = Parameter(_FHN.epsilon, doc='ratio of the time scales of the slow (w) and fast (v) variables',
                                 unit='', bounds=(0.0, None), scale='log', slider_range=(0.005, 1.0),
                                 requires_grad=False)
        self.time_unit = Parameter(_FHN.time_unit,
                                   doc='length of one unit of model time', unit='s', bounds=(1e-9, None),
                                   scale='log', slider_range=(1e-4, 0.1), requires_grad=False)
        self.threshold = Parameter(_FHN.threshold, doc='an upward crossing of v through this value is a spike', unit='',
                                   bounds=(None, None), scale='linear', slider_range=(-1.0, 2.0),
                                   requires_grad=False)
        self.noise_sigma = Parameter(_FHN.noise_sigma,
                                     doc='white noise on v (standard deviation after one unit of time)',
                                     unit='1/sqrt(unit)', bounds=(0.0, None), scale='linear',
                                     slider_range=(0.0, 1.0), requires_grad=False)
        self.register_state('v', None)
        self.register_state('w', None)

    def resting_point(self, like=None):
        """``(v, w)`` where the model rests without input (Newton's method on the cubic; float64 tensors)."""
        return fitzhugh_nagumo_resting_point(self.a.detach(), self.b.detach())

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.fitzhugh_nagumo.FitzHughNagumoParameters` of
        :func:`convis.functional.fitzhugh_nagumo.integrate_fitzhugh_nagumo` for input like ``x``."""
        return FitzHughNagumoParameters(value(self.a, x), value(self.b, x), value(self.epsilon, x),
                                        float(self.time_unit), value(self.threshold, x), value(self.noise_sigma, x),
                                        self.max_substep)

    def forward(self, x):
        shape = self._state_shape(x)
        v, w = self._check_state('v', shape), self._check_state('w', shape)
        if v is None or w is None:
            v0, w0 = self.resting_point()
            v = v0.to(x).expand(shape).clone()
            w = w0.to(x).expand(shape).clone()
        (self.v, self.w), out = self._call(integrate_fitzhugh_nagumo, x, FitzHughNagumoState(v, w),
                                           self.kernel_parameters(x))
        return out


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
    their steady state there (states ``V, gate_n, gate_m, gate_h``).  About 6.3 uA/cm^2 give repetitive firing
    (about 65 spikes/s at 10).

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
        self.gNa = conductance(_HH.gNa, 'maximal conductance of the sodium channels')
        self.gK = conductance(_HH.gK, 'maximal conductance of the potassium channels')
        self.gL = conductance(_HH.gL, 'conductance of the leak')
        self.VNa = potential(_HH.VNa, 'reversal potential of sodium (relative to rest)')
        self.VK = potential(_HH.VK, 'reversal potential of potassium (relative to rest)')
        self.Vl = potential(_HH.Vl, 'reversal potential of the leak (relative to rest)')
        self.Cm = Parameter(_HH.Cm, doc='membrane capacitance', unit='uF/cm^2', bounds=(1e-6, None), scale='log',
                            slider_range=(0.1, 10.0), requires_grad=False)
        self.threshold = Parameter(_HH.threshold,
                                   doc='an upward crossing of V through this value is a spike', unit='mV',
                                   bounds=(None, None), scale='linear', slider_range=(0.0, 100.0),
                                   requires_grad=False)
        self.noise_sigma = Parameter(_HH.noise_sigma, doc='white noise current (standard deviation of its 1 ms average '
                                     'times 1 ms^0.5)', unit='uA/cm^2 sqrt(ms)', bounds=(0.0, None),
                                     scale='linear', slider_range=(0.0, 10.0), requires_grad=False)
        for name in self._state_names:
            self.register_state(name, None)

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.hodgkin_huxley.HodgkinHuxleyParameters` of
        :func:`convis.functional.hodgkin_huxley.integrate_hodgkin_huxley` for input like ``x`` (``max_substep``
        in ms)."""
        return HodgkinHuxleyParameters(*(value(getattr(self, f), x) for f in HodgkinHuxleyParameters._fields[:-1]),
                                       self.max_substep)

    def forward(self, x):
        shape = self._state_shape(x)
        states = [self._check_state(name, shape) for name in self._state_names]
        state = (HodgkinHuxleyState.rest(shape, x) if any(s is None for s in states)
                 else HodgkinHuxleyState(*states))
        state, out = self._call(integrate_hodgkin_huxley, x, state, self.kernel_parameters(x))
        for name, s in zip(self._state_names, state):
            setattr(self, name, s)
        return out


HogkinHuxley = HodgkinHuxley
