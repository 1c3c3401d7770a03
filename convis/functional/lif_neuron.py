"""The generic leaky integrate-and-fire neuron, solved exactly between steps, with and without refractory periods.

.. math::

    \\frac{dV}{dt} = \\frac{I(t)}{\\tau} - g_L V + \\sigma_V \\sqrt{2 g_L}\\, \\eta(t), \\qquad
    V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0

Over each step the input ``I`` (dimensionless: thresholds per ``tau`` seconds) and the noise current are held
constant and the equation is solved exactly, including the moments within the step where ``V`` reaches 1 and
restarts from 0 (several spikes in one step where the neuron fires faster than the steps).  A constant input
``I > g_L tau`` fires at ``r = g_L / ln(I / (I - g_L tau))`` at every step size.  The noise current is drawn
anew each step, scaled so that the free potential fluctuates with standard deviation ``sigma_V`` at every step
size.  Units: ``g_L`` in Hz, ``tau``, ``dt`` and the refractory periods in seconds, ``V`` and ``sigma_V`` in
units of the threshold.  This is the generic neuron of :mod:`convis.filters.spiking.lif`; the retina's
ganglion cells have their own kernel (:mod:`convis.functional.lif`).
"""
from typing import Any, NamedTuple

import torch

from .neuron_base import (MIN_RATE, as_tensor, check_chunk, check_dt, check_non_negative, check_positive,
                          check_state, normal)

__all__ = ['LIFNeuronParameters', 'LIFNeuronState', 'RefractoryLIFNeuronParameters', 'RefractoryLIFNeuronState',
           'integrate_lif', 'integrate_refractory_lif', 'lif_initial_potential', 'leak_constants']


class LIFNeuronParameters(NamedTuple):
    """Parameters of :func:`integrate_lif` (floats or tensors that broadcast against ``[batch, channel, x, y]``).

    g_L : Hz, the leak conductance (the inverse membrane time constant; 0 counts as 1e-12 Hz)
    tau : s, the input time constant: an input of 1 held for ``tau`` seconds raises ``V`` by 1
    noise_sigma : threshold units, the standard deviation of the free potential's noise
    """
    g_L: Any = 50.0
    tau: Any = 0.02
    noise_sigma: Any = 0.1


class LIFNeuronState(NamedTuple):
    """The membrane potential ``V`` (threshold units) at the end of the last step, ``[batch, channel, x, y]``."""
    V: torch.Tensor


class RefractoryLIFNeuronParameters(NamedTuple):
    """Parameters of :func:`integrate_refractory_lif`: those of :class:`LIFNeuronParameters` and

    refr_mu : s, the mean refractory period after a spike
    refr_sigma : s, its standard deviation (drawn anew after every spike; negative draws count as 0)
    """
    g_L: Any = 50.0
    tau: Any = 0.02
    noise_sigma: Any = 0.1
    refr_mu: Any = 0.003
    refr_sigma: Any = 0.001


class RefractoryLIFNeuronState(NamedTuple):
    """``V`` (threshold units) and the refractory time left (s) after the last step, each ``[batch, channel, x, y]``."""
    V: torch.Tensor
    refractory: torch.Tensor


def leak_constants(g, sigma, dt, dtype):
    """Decay ``a = exp(-g dt)``, input gain ``b = (1 - a)/g`` and the noise current's scale per step.

    ``g`` in Hz, ``sigma`` in threshold units, ``dt`` in seconds; computed in float64, returned in ``dtype``.
    """
    g64, s64 = g.double(), sigma.double()
    em = torch.expm1(-g64 * dt)
    a, b = 1.0 + em, -em / g64
    noise = s64 * torch.sqrt(-torch.expm1(-2.0 * g64 * dt)) / b
    return a.to(dtype), b.to(dtype), noise.to(dtype)


def lif_initial_potential(shape, random_init, generator, like):
    """``V`` uniformly distributed in ``[0, random_init)`` (one uniform draw per neuron from ``generator``)."""
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    return as_tensor(random_init, like) * u


def _check(x, state, params, dt, who):
    shape = check_chunk(x, who)
    dt = check_dt(dt, who)
    check_state(state, shape, who)
    check_non_negative(params.g_L, 'g_L', who, ' Hz')
    check_positive(params.tau, 'tau', who, ' s')
    check_non_negative(params.noise_sigma, 'noise_sigma', who)
    return shape, dt


def integrate_lif(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """Integrates the leaky integrate-and-fire neuron over a chunk ``x`` ``[B, C, T, X, Y]``: ``(spikes, state)``.

    ``state`` a :class:`LIFNeuronState`, ``params`` :class:`LIFNeuronParameters`, ``dt`` the step (s).  The noise
    draws one normal number per neuron and step from ``generator`` (none where ``noise_sigma`` is 0).  ``spikes``
    has the shape and dtype of ``x``: 1 where a neuron fired in the step, or the number of spikes with
    ``count_spikes``.  ``record``, a dict, receives ``'V'``, the potential at the end of every step.

    >>> y, s = integrate_lif(3.0 * torch.ones(1, 1, 100, 1, 1), LIFNeuronState(torch.zeros(1, 1, 1, 1)),
    ...                      LIFNeuronParameters(noise_sigma=0.0), dt=0.001)
    >>> int(y.sum())     # 50 / ln(1.5) = 123 spikes/s
    12
    """
    shape, dt = _check(x, state, params, dt, 'integrate_lif')
    V = state.V
    g = as_tensor(params.g_L, x).clamp_min(MIN_RATE)
    a, b, noise = leak_constants(g, as_tensor(params.noise_sigma, x), dt, x.dtype)
    drive = x / as_tensor(params.tau, x)
    noisy = bool((noise > 0).any())
    tiny = torch.finfo(x.dtype).tiny
    inv_g, neg_g = 1.0 / g, -g
    spikes, potentials = [], [] if record is not None else None
    for k in range(x.shape[2]):
        J = drive[:, :, k]
        if noisy:
            J = J + noise * normal(shape, generator, x)
        V_free = torch.addcmul(b * J, a, V)
        spk = V_free > 1.0
        r = g / (J - g).clamp_min(tiny)                      # V < 1 and V_free > 1 imply J > g
        rise = torch.log1p(r) * inv_g                        # interval from a reset to the next spike
        after = (dt - torch.log1p((1.0 - V) * r) * inv_g).clamp_min(0.0)  # time since the first spike
        since = torch.remainder(after, rise)                 # time since the last spike
        V = torch.where(spk, torch.expm1(since * neg_g) * (J * -inv_g), V_free)
        if count_spikes:
            spikes.append(torch.where(spk, 1.0 + torch.div(after, rise, rounding_mode='floor'), 0.0))
        else:
            spikes.append(spk)
        if potentials is not None:
            potentials.append(V)
    if record is not None:
        record['V'] = torch.stack(potentials, dim=2)
    return torch.stack(spikes, dim=2).to(x.dtype), LIFNeuronState(V)


def integrate_refractory_lif(x, state, params, dt, generator=None, count_spikes=False, record=None):
    """The LIF held at 0 for a random refractory period after each spike, over a chunk: returns ``(spikes, state)``.

    .. math::

        V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0 \\text{ for }
        t_{refr} \\sim \\max(0, \\mathcal{N}(\\mu_{refr}, \\sigma_{refr}))

    ``state`` a :class:`RefractoryLIFNeuronState`, ``params`` :class:`RefractoryLIFNeuronParameters`, ``dt``
    the step (s); ``generator``, ``count_spikes`` and ``record`` as in :func:`integrate_lif`.  Spike times and
    refractory periods are continuous: a period may end in the middle of a step.  Each step draws the noise
    (one normal number per neuron, where ``noise_sigma`` > 0), then a refractory period (one normal number per
    neuron, where ``refr_sigma`` > 0).  Further spikes within the same step use the mean period ``refr_mu``.
    ``record`` receives ``'V'`` and ``'refractory'`` at the end of every step.
    Without noise a constant input fires at ``1 / (refr_mu + ln(I / (I - g_L tau)) / g_L)``.
    """
    who = 'integrate_refractory_lif'
    shape, dt = _check(x, state, params, dt, who)
    check_non_negative(params.refr_mu, 'refr_mu', who, ' s')
    check_non_negative(params.refr_sigma, 'refr_sigma', who, ' s')
    V, R = state
    g = as_tensor(params.g_L, x).clamp_min(MIN_RATE)
    noise = leak_constants(g, as_tensor(params.noise_sigma, x), dt, x.dtype)[2]
    drive = x / as_tensor(params.tau, x)
    mu, sd = as_tensor(params.refr_mu, x), as_tensor(params.refr_sigma, x)
    noisy, refr_noisy = bool((noise > 0).any()), bool((sd > 0).any())
    tiny = torch.finfo(x.dtype).tiny
    spikes, potentials, refractory = [], [], []
    if record is None:
        potentials = refractory = None
    for k in range(x.shape[2]):
        J = drive[:, :, k]
        if noisy:
            J = J + noise * normal(shape, generator, x)
        hold = R.clamp(max=dt)                                # still refractory for this part of the step
        free = dt - hold                                      # the rest of the step: V integrates
        em = torch.expm1(-g * free)
        V_free = (1.0 + em) * V - em / g * J
        spk = V_free > 1.0
        refr = mu + sd * normal(shape, generator, x) if refr_noisy else mu
        refr = refr.clamp_min(0.0)
        over = (J - g).clamp_min(tiny)
        crossing = torch.log1p(g * (1.0 - V) / over) / g
        after = (free - crossing).clamp_min(0.0)              # time from the first spike to the end of the step
        period = torch.log1p(g / over) / g + mu               # later cycles: mean refractory period + rise
        extra = torch.floor((after - refr + mu).clamp_min(0.0) / period)
        many = extra > 0
        since = torch.where(many, after - refr + mu - extra * period, after)  # time since the last spike
        last_refr = torch.where(many, mu, refr)
        R = torch.where(spk, (last_refr - since).clamp_min(0.0), R - hold)
        V = torch.where(spk, -torch.expm1(-g * (since - last_refr).clamp_min(0.0)) / g * J, V_free)
        spikes.append(torch.where(spk, 1.0 + extra, 0.0) if count_spikes else spk)
        if potentials is not None:
            potentials.append(V)
            refractory.append(R)
    if record is not None:
        record.update(V=torch.stack(potentials, dim=2), refractory=torch.stack(refractory, dim=2))
    return torch.stack(spikes, dim=2).to(x.dtype), RefractoryLIFNeuronState(V, R)
