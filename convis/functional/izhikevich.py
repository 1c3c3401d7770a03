"""Izhikevich's simple model of spiking neurons, with refractory and adaptive variants, as pure functions.

.. math::

    \\dot v = 0.04 v^2 + 5 v + 140 - u + I, \\qquad \\dot u = a (b v - u), \\qquad
    v \\geq v_{peak} \\Rightarrow \\text{spike}, v \\leftarrow c, u \\leftarrow u + d

The dots are derivatives per millisecond and the potentials are in mV (Izhikevich's units).  Each step of
``dt`` seconds is split into Euler sub-steps of at most ``max_substep`` seconds, so the dynamics follow time in
seconds at any step size; the input ``I`` is held constant over a step.  Per sub-step the order is: ``u`` and
``v`` from the values before, then the noise on ``v``, then the reset.  :data:`izhikevich_presets` holds the
20 behaviours of Izhikevich (2004).  The layers are :mod:`convis.filters.spiking.izhikevich`.
"""
import math
from typing import Any, NamedTuple

import torch

from .neuron_base import as_tensor, check_chunk, check_dt, check_non_negative, check_positive, check_state, normal

__all__ = ['izhikevich_presets', 'IzhikevichParameters', 'IzhikevichState', 'RefractoryIzhikevichParameters',
           'RefractoryIzhikevichState', 'AdaptiveIzhikevichParameters', 'AdaptiveIzhikevichState',
           'integrate_izhikevich', 'integrate_refractory_izhikevich', 'integrate_adaptive_izhikevich',
           'izhikevich_substeps']

izhikevich_presets = {
    'Tonic spiking': (0.02, 0.2, -65.0, 6.0, 14.0),
    'Phasic spiking': (0.02, 0.25, -65.0, 6.0, 0.5),
    'Tonic bursting': (0.02, 0.2, -50.0, 2.0, 15.0),
    'Phasic bursting': (0.02, 0.25, -55.0, 0.05, 0.6),
    'Mixed mode': (0.02, 0.2, -55.0, 4.0, 10.0),
    'Sf. adaptation': (0.01, 0.2, -65.0, 8.0, 30.0),
    'Class 1': (0.02, -0.1, -55.0, 6.0, 0.0),
    'Class 2': (0.2, 0.26, -65.0, 0.0, 0.0),
    'Spike latency': (0.02, 0.2, -65.0, 6.0, 7.0),
    'Subthreshold osc': (0.05, 0.26, -60.0, 0.0, 0.0),
    'Resonator': (0.1, 0.26, -60.0, -1.0, 0.0),
    'Integrator': (0.02, -0.1, -55.0, 6.0, 0.0),
    'Rebound spike': (0.03, 0.25, -60.0, 4.0, 0.0),
    'Rebound burst': (0.03, 0.25, -52.0, 0.0, 0.0),
    'Threshold var': (0.03, 0.25, -60.0, 4.0, 0.0),
    'Bistability': (1.0, 1.5, -60.0, 0.0, -65.0),
    'DAP': (1.0, 0.2, -60.0, -21.0, 0.0),
    'Accomodation': (0.02, 1.0, -55.0, 4.0, 0.0),
    'Inh-ind. spiking': (-0.02, -1.0, -60.0, 8.0, 80.0),
    'Inh-ind. bursting': (-0.026, -1.0, -45.0, -2.0, 80.0),
}
"""The 20 behaviours of Izhikevich (2004, IEEE Trans. Neural Netw. 15:1063), as ``name: (a, b, c, d, I)``.

``I`` is the input Izhikevich used to show the behaviour (several behaviours need a step or pulse
protocol around it; 0 means the behaviour shows with pulses from rest).
"""


def _rest(cls, shape, params, like):
    """The state where Izhikevich's neurons start: ``v = c``, ``u = b c`` and every further state 0
    (``shape`` is ``[batch, channel, x, y]``; on the device and dtype of ``like``)."""
    v = as_tensor(params.c, like).expand(shape).clone()
    u = (as_tensor(params.b, like) * v).expand(shape).clone()
    return cls(v, u, *(torch.zeros(shape, device=like.device, dtype=like.dtype) for _ in cls._fields[2:]))


class IzhikevichParameters(NamedTuple):
    """Parameters of :func:`integrate_izhikevich` (floats or tensors that broadcast against ``[B, C, X, Y]``).

    a : 1/ms, the rate of the recovery variable ``u``
    b : dimensionless, the sensitivity of ``u`` to ``v``
    c : mV, the reset potential after a spike
    d : mV/ms, the increment of ``u`` after a spike
    threshold : mV, the spike peak ``v_peak`` at which ``v`` is reset
    noise_sigma : mV/sqrt(ms), white noise on ``v`` (a sub-step of ``h`` ms adds ``noise_sigma sqrt(h)`` N(0, 1))
    max_substep : s, the longest Euler sub-step (a float)
    """
    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 6.0
    threshold: Any = 30.0
    noise_sigma: Any = 0.0
    max_substep: float = 0.0005


class IzhikevichState(NamedTuple):
    """``v`` (mV) and ``u`` (mV/ms) at the end of the last step, each ``[batch, channel, x, y]``.

    Izhikevich's neurons start at ``v = c``, ``u = b c``: ``IzhikevichState.rest(shape, params, like)``.
    """
    v: torch.Tensor
    u: torch.Tensor
    rest = classmethod(_rest)


class RefractoryIzhikevichParameters(NamedTuple):
    """Parameters of :func:`integrate_refractory_izhikevich`: those of :class:`IzhikevichParameters` and

    refr_mu : s, the mean refractory period after a spike (``v`` held at ``c``)
    refr_sigma : s, its standard deviation (drawn at every spike; negative draws count as 0)
    """
    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 6.0
    threshold: Any = 30.0
    noise_sigma: Any = 0.0
    refr_mu: Any = 0.005
    refr_sigma: Any = 0.0
    max_substep: float = 0.0005


class RefractoryIzhikevichState(NamedTuple):
    """``v`` (mV), ``u`` (mV/ms) and the refractory time left (s), each ``[batch, channel, x, y]``."""
    v: torch.Tensor
    u: torch.Tensor
    refractory: torch.Tensor
    rest = classmethod(_rest)


class AdaptiveIzhikevichParameters(NamedTuple):
    """Parameters of :func:`integrate_adaptive_izhikevich`: those of :class:`IzhikevichParameters` and

    tau_adaptation : s, the decay time of the adaptation current ``w``
    adaptation_increment : input units, the jump of ``w`` at each spike
    """
    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 6.0
    threshold: Any = 30.0
    noise_sigma: Any = 0.0
    tau_adaptation: Any = 0.1
    adaptation_increment: Any = 1.0
    max_substep: float = 0.0005


class AdaptiveIzhikevichState(NamedTuple):
    """``v`` (mV), ``u`` (mV/ms) and the adaptation current ``w`` (input units), each ``[batch, channel, x, y]``."""
    v: torch.Tensor
    u: torch.Tensor
    w: torch.Tensor
    rest = classmethod(_rest)


def izhikevich_substeps(dt, max_substep):
    """The number of Euler sub-steps of a step of ``dt`` seconds, and their length in ms."""
    n = max(1, int(math.ceil(dt / max_substep - 1e-9)))
    return n, 1000.0 * dt / n


def _izhikevich(x, state, p, dt, generator, count_spikes, record, who, variant):
    """The loop the three kernels share; ``variant`` holds the hooks ``drive``, ``hold`` and ``fire``."""
    shape = check_chunk(x, who)
    dt = check_dt(dt, who)
    check_state(state, shape, who)
    check_non_negative(p.noise_sigma, 'noise_sigma', who, ' mV/sqrt(ms)')
    check_positive(p.max_substep, 'max_substep', who, ' s')
    n, h = izhikevich_substeps(dt, float(p.max_substep))
    names = type(state)._fields
    v, u = state.v, state.u
    extra = variant.start(state, p, h, x)
    a, b, c, d = (as_tensor(q, x) for q in (p.a, p.b, p.c, p.d))
    peak = as_tensor(p.threshold, x)
    noise = as_tensor(p.noise_sigma, x) * math.sqrt(h)
    noisy = bool((noise > 0).any())
    spikes = torch.empty_like(x)
    traces = None if record is None else [torch.empty_like(x) for _ in names]
    for k in range(x.shape[2]):
        I = x[:, :, k]
        count = torch.zeros_like(v)
        for _ in range(n):
            I_eff = variant.drive(extra, I)
            dv = (0.04 * v + 5.0) * v + 140.0 - u + I_eff
            u = u + h * a * (b * v - u)
            v = v + h * dv
            if noisy:
                v = v + noise * normal(shape, generator, x)
            v = variant.hold(extra, v, c)
            fired = v >= peak
            v = torch.where(fired, c, v)
            u = torch.where(fired, u + d, u)
            count = count + fired
            variant.fire(extra, fired, h, generator, x)
        spikes[:, :, k] = count if count_spikes else count > 0
        if traces is not None:
            states = dict(v=v, u=u, **extra)
            for trace, name in zip(traces, names):
                trace[:, :, k] = states[name]
    if record is not None:
        record.update(zip(names, traces))
    return spikes, type(state)(v, u, *(extra[name] for name in names[2:]))


class _Plain:
    """The hooks of the plain model: no extra state."""

    @staticmethod
    def start(state, p, h, x):
        return {}

    @staticmethod
    def drive(extra, I):
        return I

    @staticmethod
    def hold(extra, v, c):
        return v

    @staticmethod
    def fire(extra, fired, h, generator, x):
        pass


class _Refractory(_Plain):
    """``v`` held at ``c`` while ``refractory`` > 0; a new period drawn at every spike."""

    @staticmethod
    def start(state, p, h, x):
        return {'refractory': state.refractory, '_mu': as_tensor(p.refr_mu, x), '_sd': as_tensor(p.refr_sigma, x)}

    @staticmethod
    def hold(extra, v, c):
        return torch.where(extra['refractory'] > 0, c, v)

    @staticmethod
    def fire(extra, fired, h, generator, x):
        mu, sd, R = extra['_mu'], extra['_sd'], extra['refractory']
        R = (R - h / 1000.0).clamp_min(0.0)
        refr = mu + sd * normal(R.shape, generator, x) if bool((sd > 0).any()) else mu
        extra['refractory'] = torch.where(fired, refr.clamp_min(0.0), R)


class _Adaptive(_Plain):
    """The adaptation current ``w`` subtracted from the input, decaying with ``tau_adaptation``."""

    @staticmethod
    def start(state, p, h, x):
        decay = torch.exp(-h / 1000.0 / as_tensor(p.tau_adaptation, x))
        return {'w': state.w, '_decay': decay, '_dw': as_tensor(p.adaptation_increment, x)}

    @staticmethod
    def drive(extra, I):
        return I - extra['w']

    @staticmethod
    def fire(extra, fired, h, generator, x):
        extra['w'] = extra['_decay'] * extra['w'] + extra['_dw'] * fired


def integrate_izhikevich(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Integrates Izhikevich's model over a chunk ``x`` ``[B, C, T, X, Y]`` (mV/ms): returns ``(spikes, state)``.

    ``state`` an :class:`IzhikevichState`, ``params`` :class:`IzhikevichParameters`, ``dt`` the step (s).  Where
    ``noise_sigma`` > 0, every sub-step draws one normal number per neuron from ``generator``.  ``spikes`` has
    the shape and dtype of ``x``: 1 where a neuron fired in the step, or the number of spikes with
    ``count_spikes``.  ``record``, a dict, receives ``'v'`` and ``'u'`` at the end of every step.

    >>> p = IzhikevichParameters(*izhikevich_presets['Tonic spiking'][:4])
    >>> x = 14.0 * torch.ones(1, 1, 1000, 1, 1)
    >>> y, s = integrate_izhikevich(x, IzhikevichState.rest((1, 1, 1, 1), p, x), p, dt=0.001)
    """
    return _izhikevich(x, state, params, dt, generator, count_spikes, record, 'integrate_izhikevich', _Plain)


def integrate_refractory_izhikevich(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Izhikevich's model with ``v`` held at ``c`` for a random refractory period after each spike.

    .. math::

        v \\geq v_{peak} \\Rightarrow \\text{spike}, u \\leftarrow u + d, v \\leftarrow c
        \\text{ for } t_{refr} \\sim \\max(0, \\mathcal{N}(\\mu_{refr}, \\sigma_{refr}))

    ``u`` keeps evolving while ``v`` is held; the period is counted in seconds at the resolution of the
    sub-steps.  ``state`` a :class:`RefractoryIzhikevichState`, ``params``
    :class:`RefractoryIzhikevichParameters`; per sub-step the noise on ``v`` is drawn first, then (where
    ``refr_sigma`` > 0) one refractory period per neuron.  Otherwise as :func:`integrate_izhikevich`
    (``record`` also receives ``'refractory'``).
    """
    who = 'integrate_refractory_izhikevich'
    check_non_negative(params.refr_mu, 'refr_mu', who, ' s')
    check_non_negative(params.refr_sigma, 'refr_sigma', who, ' s')
    return _izhikevich(x, state, params, dt, generator, count_spikes, record, who, _Refractory)


def integrate_adaptive_izhikevich(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Izhikevich's model with a spike-triggered adaptation current ``w`` that slows its firing.

    .. math::

        \\dot v = 0.04 v^2 + 5 v + 140 - u + I - w, \\qquad
        \\tau_w \\dot w = -w, \\qquad \\text{spike} \\Rightarrow w \\leftarrow w + \\Delta w

    ``w`` decays by ``exp(-h / tau_adaptation)`` per sub-step of ``h`` and jumps after the reset.  ``state``
    an :class:`AdaptiveIzhikevichState`, ``params`` :class:`AdaptiveIzhikevichParameters`; otherwise as
    :func:`integrate_izhikevich` (``record`` also receives ``'w'``).
    """
    who = 'integrate_adaptive_izhikevich'
    check_positive(params.tau_adaptation, 'tau_adaptation', who, ' s')
    return _izhikevich(x, state, params, dt, generator, count_spikes, record, who, _Adaptive)
