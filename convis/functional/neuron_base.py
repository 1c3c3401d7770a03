"""What the generic spiking neurons' kernels share: input checks, sub-steps, noise draws, threshold crossings.

The kernels of :mod:`.lif_neuron`, :mod:`.izhikevich`, :mod:`.fitzhugh_nagumo`, :mod:`.hodgkin_huxley` and
:mod:`.events` take a chunk ``x`` ``[batch, channel, time, x, y]``, a state NamedTuple of ``[batch, channel, x, y]``
tensors and a parameter NamedTuple, and return the output chunk and the state after it.  Their noise is drawn
from ``generator`` (a :class:`torch.Generator`, or None for torch's global one) in a fixed order, step by step,
so two chunks with the state and the same generator passed along equal one call.
"""
import math

import torch

__all__ = ['MIN_RATE', 'check_chunk', 'check_dt', 'check_state', 'check_positive', 'check_non_negative',
           'as_tensor', 'normal', 'substeps', 'threshold_crossings']

MIN_RATE = 1e-12
"""Leak rates (Hz) below this are treated as this, so the exact solutions of the LIF stay finite."""


def check_chunk(x, who):
    """The state shape ``(batch, channel, x, y)`` of a 5-d chunk; a ValueError for any other input."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        raise ValueError('%s takes a 5-d tensor [batch, channel, time, x, y], not %s'
                         % (who, '%d-d' % x.dim() if isinstance(x, torch.Tensor) else type(x).__name__))
    return (x.shape[0], x.shape[1], x.shape[3], x.shape[4])


def check_dt(dt, who):
    """The step length ``dt`` (s) as a float; a ValueError unless it is finite and positive."""
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError('%s: dt must be a step length in seconds, not %r' % (who, dt)) from None
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError('%s: the step length dt must be positive and finite, not %r s' % (who, dt))
    return dt


def check_state(state, shape, who, optional=()):
    """A ValueError unless every field of the NamedTuple ``state`` is a tensor of ``shape`` (or None if optional)."""
    for name, v in zip(type(state)._fields, state):
        if v is None and name in optional:
            continue
        if not isinstance(v, torch.Tensor):
            raise ValueError('%s: the state %s must be a tensor of shape %s, not %s'
                             % (who, name, tuple(shape), type(v).__name__))
        if tuple(v.shape) != tuple(shape):
            raise ValueError('%s: the state %s has shape %s but the input needs %s (batch, channel, x, y)'
                             % (who, name, tuple(v.shape), tuple(shape)))


def _values(v):
    return v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)


def check_positive(v, name, who, unit=''):
    """A ValueError unless every value of the parameter ``v`` is positive (and not NaN)."""
    if not bool((_values(v) > 0).all()):
        raise ValueError('%s: %s must be positive, not %s%s' % (who, name, _values(v).tolist(), unit))


def check_non_negative(v, name, who, unit=''):
    """A ValueError unless every value of the parameter ``v`` is 0 or more (and not NaN)."""
    if not bool((_values(v) >= 0).all()):
        raise ValueError('%s: %s must not be negative, not %s%s' % (who, name, _values(v).tolist(), unit))


def as_tensor(v, like):
    """A parameter (float or tensor) as a tensor on the device and dtype of ``like`` (a tensor stays itself)."""
    return torch.as_tensor(v, dtype=like.dtype, device=like.device)


def normal(shape, generator, like):
    """Standard normal numbers of ``shape`` from ``generator``, on the device and dtype of ``like``."""
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def threshold_crossings(x, states, substep, n, noise, threshold, generator, count_spikes, names, record):
    """Runs ``substep(states, I, xi)`` ``n`` times per step of ``x``; a spike is an upward crossing of the threshold.

    ``states`` is a tuple whose first entry is the potential; ``noise`` the scale of the normal draw ``xi``
    handed to each sub-step (none where it is 0 everywhere); ``record``, a dict or None, receives each state's
    value at the end of every step under ``names``.  Returns the spikes (0/1, or counts with ``count_spikes``)
    and the states after the chunk.
    """
    shape = (x.shape[0], x.shape[1], x.shape[3], x.shape[4])
    noisy = bool((noise > 0).any())
    spikes = torch.empty_like(x)
    traces = None if record is None else [torch.empty_like(x) for _ in names]
    for k in range(x.shape[2]):
        I = x[:, :, k]
        count = torch.zeros(shape, device=x.device, dtype=x.dtype)
        for _ in range(n):
            below = states[0] < threshold
            xi = noise * normal(shape, generator, x) if noisy else None
            states = substep(states, I, xi)
            count = count + (below & (states[0] >= threshold))
        spikes[:, :, k] = count if count_spikes else count > 0
        if traces is not None:
            for trace, s in zip(traces, states):
                trace[:, :, k] = s
    if record is not None:
        record.update(zip(names, traces))
    return spikes, states


def substeps(span, max_substep):
    """The number of sub-steps of at most ``max_substep`` that cover ``span``, and their length."""
    n = max(1, int(math.ceil(span / max_substep - 1e-9)))
    return n, span / n
