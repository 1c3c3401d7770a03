"""The FitzHugh-Nagumo relaxation oscillator as a pure function; spikes are upward crossings of a threshold.

.. math::

    \\dot v = v - \\frac{v^3}{3} - w + I, \\qquad \\dot w = \\varepsilon (v + a - b w)

Time is in units of ``time_unit`` seconds (the dots are derivatives per unit), integrated with Euler sub-steps
of at most ``max_substep`` units; the input ``I`` is held constant over a step.  With ``a = 0.7, b = 0.8,
epsilon = 0.08`` the neuron rests for ``I`` below about 0.33 and oscillates above.  The layer is
:class:`convis.filters.spiking.FitzHughNagumo`.
"""
import math
from typing import Any, NamedTuple

import torch

from .neuron_base import (as_tensor, check_chunk, check_dt, check_non_negative, check_positive, check_state,
                          substeps, threshold_crossings)

__all__ = ['FitzHughNagumoParameters', 'FitzHughNagumoState', 'fitzhugh_nagumo_resting_point',
           'integrate_fitzhugh_nagumo']


class FitzHughNagumoParameters(NamedTuple):
    """Parameters of :func:`integrate_fitzhugh_nagumo` (floats or tensors that broadcast against ``[B, C, X, Y]``).

    a, b : dimensionless, the offset and slope of the slow nullcline
    epsilon : dimensionless, the ratio of the time scales of ``w`` and ``v``
    time_unit : s, the length of one unit of model time (a float)
    threshold : dimensionless, ``v`` crossing it upwards is a spike
    noise_sigma : 1/sqrt(unit), white noise on ``v`` (a sub-step of ``h`` units adds ``noise_sigma sqrt(h)`` N(0, 1))
    max_substep : model time units, the longest Euler sub-step (a float)
    """
    a: Any = 0.7
    b: Any = 0.8
    epsilon: Any = 0.08
    time_unit: float = 0.001
    threshold: Any = 1.0
    noise_sigma: Any = 0.0
    max_substep: float = 0.1


class FitzHughNagumoState(NamedTuple):
    """``v`` and ``w`` (dimensionless) at the end of the last step, each ``[batch, channel, x, y]``."""
    v: torch.Tensor
    w: torch.Tensor


def fitzhugh_nagumo_resting_point(a, b):
    """``(v, w)`` where the model rests without input: Newton's method on the cubic, as float64 tensors."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    v = torch.full_like(a * b, -1.2)
    for _ in range(50):
        v = v - (v - v ** 3 / 3 - (v + a) / b) / (1 - v ** 2 - 1 / b)
    return v, (v + a) / b


def integrate_fitzhugh_nagumo(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Integrates the FitzHugh-Nagumo model over a chunk ``x`` ``[B, C, T, X, Y]``: returns ``(spikes, state)``.

    ``state`` a :class:`FitzHughNagumoState`, ``params`` :class:`FitzHughNagumoParameters`, ``dt`` the step (s).
    Where ``noise_sigma`` > 0, every sub-step draws one normal number per neuron from ``generator``.  ``spikes``
    has the shape and dtype of ``x``: 1 where ``v`` crossed the threshold upwards in the step, or the number of
    crossings with ``count_spikes``.  ``record``, a dict, receives ``'v'`` and ``'w'`` at the end of every step.

    >>> v0, w0 = fitzhugh_nagumo_resting_point(0.7, 0.8)
    >>> s = FitzHughNagumoState(v0.float().expand(1, 1, 1, 1), w0.float().expand(1, 1, 1, 1))
    >>> y, s = integrate_fitzhugh_nagumo(0.5 * torch.ones(1, 1, 1000, 1, 1), s, FitzHughNagumoParameters(), 0.001)
    >>> int(y.sum())     # a period of about 37 ms
    26
    """
    who = 'integrate_fitzhugh_nagumo'
    shape = check_chunk(x, who)
    dt = check_dt(dt, who)
    check_state(state, shape, who)
    check_positive(params.time_unit, 'time_unit', who, ' s')
    check_positive(params.max_substep, 'max_substep', who, ' time units')
    check_non_negative(params.noise_sigma, 'noise_sigma', who)
    n, h = substeps(dt / float(params.time_unit), float(params.max_substep))
    a, b, eps = as_tensor(params.a, x), as_tensor(params.b, x), as_tensor(params.epsilon, x)
    noise = as_tensor(params.noise_sigma, x) * math.sqrt(h)

    def substep(states, I, xi):
        v, w = states
        v_new = v + h * (v - v ** 3 / 3.0 - w + I)
        w = w + h * eps * (v + a - b * w)
        return (v_new if xi is None else v_new + xi), w

    spikes, (v, w) = threshold_crossings(x, tuple(state), substep, n, noise, as_tensor(params.threshold, x),
                                         generator, count_spikes, FitzHughNagumoState._fields, record)
    return spikes, FitzHughNagumoState(v, w)
