"""The Hodgkin-Huxley model of the squid giant axon as a pure function; spikes are upward crossings of a threshold.

.. math::

    C_m \\dot V = I - g_K n^4 (V - V_K) - g_{Na} m^3 h (V - V_{Na}) - g_L (V - V_l), \\qquad
    \\dot x = \\alpha_x(V) (1 - x) - \\beta_x(V) x \\quad (x = n, m, h)

with the classic rates (1/ms, ``V`` in mV relative to rest): ``alpha_n = 0.01 (10-V)/(e^{(10-V)/10}-1)``,
``beta_n = 0.125 e^{-V/80}``, ``alpha_m = 0.1 (25-V)/(e^{(25-V)/10}-1)``, ``beta_m = 4 e^{-V/18}``,
``alpha_h = 0.07 e^{-V/20}``, ``beta_h = 1/(e^{(30-V)/10}+1)``.  Time is in ms; each step is split into
sub-steps of at most ``max_substep`` ms, each solved with the exponential Euler rule (exact for the gates, and
for ``V`` at frozen conductances).  The input is a current density in uA/cm^2, held constant over a step.  The
layer is :class:`convis.filters.spiking.HodgkinHuxley`.
"""
import math
from typing import Any, NamedTuple

import torch

from .neuron_base import (as_tensor, check_chunk, check_dt, check_non_negative, check_positive, check_state,
                          substeps, threshold_crossings)

__all__ = ['HodgkinHuxleyParameters', 'HodgkinHuxleyState', 'gate_rates', 'integrate_hodgkin_huxley']


class HodgkinHuxleyParameters(NamedTuple):
    """Parameters of :func:`integrate_hodgkin_huxley` (floats or tensors that broadcast against ``[B, C, X, Y]``).

    gNa, gK, gL : mS/cm^2, the maximal sodium, potassium and leak conductances
    VNa, VK, Vl : mV, the reversal potentials relative to rest
    Cm : uF/cm^2, the membrane capacitance
    threshold : mV, ``V`` crossing it upwards is a spike
    noise_sigma : uA/cm^2 sqrt(ms), white noise current (a sub-step of ``h`` ms gets ``noise_sigma / sqrt(h)`` N(0, 1))
    max_substep : ms, the longest sub-step (a float)
    """
    gNa: Any = 120.0
    gK: Any = 36.0
    gL: Any = 0.3
    VNa: Any = 115.0
    VK: Any = -12.0
    Vl: Any = 10.613
    Cm: Any = 1.0
    threshold: Any = 50.0
    noise_sigma: Any = 0.0
    max_substep: float = 0.05


class HodgkinHuxleyState(NamedTuple):
    """``V`` (mV, relative to rest) and the gates ``n, m, h`` (0 to 1), each ``[batch, channel, x, y]``."""
    V: torch.Tensor
    n: torch.Tensor
    m: torch.Tensor
    h: torch.Tensor

    @classmethod
    def rest(cls, shape, like):
        """``V = 0`` and the gates at their steady state there, on the device and dtype of ``like``."""
        V = torch.zeros(shape, device=like.device, dtype=like.dtype)
        return cls(V, *(alpha / (alpha + beta) for alpha, beta in gate_rates(V)))


def _x_over_expm1(u):
    """``u / (exp(u) - 1)``, equal to 1 at ``u = 0``."""
    return torch.nan_to_num(u / torch.expm1(u), nan=1.0)


def gate_rates(V):
    """Opening and closing rates (1/ms) of the gates n, m, h at the potential V (mV, rest at 0)."""
    return ((0.1 * _x_over_expm1((10.0 - V) / 10.0), 0.125 * torch.exp(-V / 80.0)),
            (_x_over_expm1((25.0 - V) / 10.0), 4.0 * torch.exp(-V / 18.0)),
            (0.07 * torch.exp(-V / 20.0), torch.sigmoid((V - 30.0) / 10.0)))


def integrate_hodgkin_huxley(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Integrates the Hodgkin-Huxley model over a chunk ``x`` ``[B, C, T, X, Y]`` (uA/cm^2): ``(spikes, state)``.

    ``state`` a :class:`HodgkinHuxleyState`, ``params`` :class:`HodgkinHuxleyParameters`, ``dt`` the step (s).
    Where ``noise_sigma`` > 0, every sub-step draws one normal number per neuron from ``generator``.  ``spikes``
    has the shape and dtype of ``x``: 1 where ``V`` crossed the threshold upwards in the step, or the number of
    crossings with ``count_spikes``.  ``record``, a dict, receives ``'V'``, ``'n'``, ``'m'`` and ``'h'`` at the
    end of every step.

    >>> x = 10.0 * torch.ones(1, 1, 1000, 1, 1)
    >>> y, s = integrate_hodgkin_huxley(x, HodgkinHuxleyState.rest((1, 1, 1, 1), x), HodgkinHuxleyParameters(), 0.001)
    """
    who = 'integrate_hodgkin_huxley'
    shape = check_chunk(x, who)
    dt = check_dt(dt, who)
    check_state(state, shape, who)
    check_positive(params.Cm, 'Cm', who, ' uF/cm^2')
    check_positive(params.max_substep, 'max_substep', who, ' ms')
    check_non_negative(params.noise_sigma, 'noise_sigma', who)
    n_sub, h = substeps(dt / 0.001, float(params.max_substep))
    gNa, gK, gL, VNa, VK, Vl, Cm = (as_tensor(q, x) for q in params[:7])
    noise = as_tensor(params.noise_sigma, x) / math.sqrt(h)

    def substep(states, I, xi):
        V, n, m, hh = states
        if xi is not None:
            I = I + xi
        gates = []
        for gate, (alpha, beta) in zip((n, m, hh), gate_rates(V)):
            rate = alpha + beta
            steady = alpha / rate
            gates.append(steady + (gate - steady) * torch.exp(-h * rate))
        g_k = gK * n ** 4
        g_na = gNa * m ** 3 * hh
        total = g_k + g_na + gL
        V_inf = (I + g_k * VK + g_na * VNa + gL * Vl) / total
        V = V_inf + (V - V_inf) * torch.exp(-h * total / Cm)
        return [V] + gates

    spikes, states = threshold_crossings(x, list(state), substep, n_sub, noise, as_tensor(params.threshold, x),
                                         generator, count_spikes, HodgkinHuxleyState._fields, record)
    return spikes, HodgkinHuxleyState(*states)
