"""Spikes and events without membrane dynamics, as pure functions: Poisson spikes and a level-crossing sensor.

* :func:`poisson_spikes`: Bernoulli spikes with the input as the rate in Hz,
  ``P(spike in a step) = min(1, max(0, r dt))``.
* :func:`sensor_events`: ON and OFF events wherever the integrated input (linear mode) or the logarithm of the
  input (log mode, a dynamic vision sensor) has moved by a threshold,

  .. math::

      n(t) = \\operatorname{trunc}\\left(\\frac{A(t)}{\\theta}\\right)\\ \\text{(linear)}, \\qquad
      n(t) = \\operatorname{trunc}\\left(\\frac{\\ln I(t) - \\ln R}{\\ln \\theta}\\right)\\ \\text{(log)}

The layers are :class:`convis.filters.spiking.Poisson` and :class:`~convis.filters.spiking.IntegrativeMotionSensor`.
"""
from typing import Any, NamedTuple, Optional

import torch

from .neuron_base import as_tensor, check_chunk, check_dt, check_positive, check_state

__all__ = ['poisson_spikes', 'MotionSensorParameters', 'MotionSensorState', 'sensor_events']


def poisson_spikes(x, dt, generator=None):
    """Bernoulli spikes for the rates ``x`` ``[B, C, T, X, Y]`` (Hz) at steps of ``dt`` seconds.

    Every step draws one uniform number per pixel from ``generator``; a spike where it is below ``r dt``
    (negative rates give none).  Returns 0/1 in the shape and dtype of ``x``.  There is no state besides the
    generator's position, so two chunks with the same generator equal one call.

    >>> y = poisson_spikes(50.0 * torch.ones(1, 1, 1000, 10, 10), 0.001, torch.Generator().manual_seed(0))
    >>> round(float(y.sum(2).mean()))      # about 50 spikes per pixel
    51
    """
    shape = check_chunk(x, 'poisson_spikes')
    p = x * check_dt(dt, 'poisson_spikes')
    spikes = torch.empty_like(x)
    for k in range(x.shape[2]):
        spikes[:, :, k] = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype) < p[:, :, k]
    return spikes


class MotionSensorParameters(NamedTuple):
    """Parameters of :func:`sensor_events`.

    threshold : input units (linear mode) or a factor above 1 (log mode), the change that makes an event
    tau : s, the integration time constant of the linear mode (one step adds ``I dt / tau``)
    log : bool, the log (level-crossing) mode instead of the linear (integrating) one
    """
    threshold: Any = 1.0
    tau: Any = 0.001
    log: bool = False


class MotionSensorState(NamedTuple):
    """``[batch, channel, x, y]``: the accumulator ``A`` (linear mode) or the log reference ``ln R`` (log mode).

    None before the first frame: the accumulator starts at 0, the reference at the first frame.
    """
    level: Optional[torch.Tensor] = None


def sensor_events(x, state, params, dt):
    """ON and OFF events of a level-crossing sensor over a chunk ``x`` ``[B, C, T, X, Y]``: returns ``(events, state)``.

    *linear*: ``A <- A + I dt / tau``; each time ``A`` passes ``+threshold`` an ON event and ``A`` drops by
    ``threshold``, each time it passes ``-threshold`` an OFF event and ``A`` rises by ``threshold``.  *log*:
    with ``R`` the input at the last event, an ON event for every factor ``threshold`` that ``I/R`` has grown,
    an OFF event for every factor it has shrunk, and ``R`` moves by those factors (the input must be positive).
    ``state`` a :class:`MotionSensorState`, ``params`` :class:`MotionSensorParameters`, ``dt`` the step (s).
    ``events`` has twice the channels of ``x``: ``[ON, OFF]`` event counts per step.
    """
    who = 'sensor_events'
    shape = check_chunk(x, who)
    dt = check_dt(dt, who)
    check_state(state, shape, who, optional=('level',))
    theta = as_tensor(params.threshold, x)
    if not bool((theta > 0).all()):
        raise ValueError('threshold must be positive')
    if not params.log:
        check_positive(params.tau, 'tau', who, ' s')
        level = x * (dt / as_tensor(params.tau, x))
        step = theta
    else:
        if not bool((theta > 1).all()):
            raise ValueError('the log mode needs a threshold factor above 1, not %s' % theta.tolist())
        if not bool((x > 0).all()):
            raise ValueError('the log mode needs positive input (the minimum is %g)' % float(x.min()))
        level = torch.log(x)
        step = torch.log(theta)
    on, off = torch.empty_like(x), torch.empty_like(x)
    memory = state.level
    for k in range(x.shape[2]):
        if not params.log:
            acc = level[:, :, k] if memory is None else memory + level[:, :, k]
            n = torch.trunc(acc / step)
            memory = acc - n * step
        else:
            ref = level[:, :, k] if memory is None else memory
            n = torch.trunc((level[:, :, k] - ref) / step)
            memory = ref + n * step
        on[:, :, k] = n.clamp_min(0.0)
        off[:, :, k] = (-n).clamp_min(0.0)
    return torch.cat([on, off], dim=1), MotionSensorState(memory)
