"""Loss functions for fitting models to recordings: ``loss_fn(target, output)`` for :meth:`Layer.optimize`.

Each function here returns a loss function with the argument order of :meth:`~convis.base.Layer.optimize`
(target first).  The loss function picks one or more outputs of the model by key (``'bipolar'``) or index,
optionally a spatial region of them, and compares them with the target:

* :func:`mse` and :func:`correlation` compare maps or rates with recorded maps or rates;
* :func:`poisson` scores binned spike counts under the model's firing rate (Poisson likelihood).

A target may hold NaN where nothing was recorded (frames or pixels that were not saved): those entries
are left out of the loss.  Several outputs are compared with one target by stacking them along the
channel axis (``output=['opl', 'bipolar']`` against a target of 2 channels).

>>> retina.set_optimizer.LBFGS()
>>> retina.optimize(stimulus, recorded_bipolar, loss_fn=convis.losses.mse(output='bipolar'))
"""
import math

import torch

from .utils import _short_repr

__all__ = ['mse', 'correlation', 'poisson', 'poisson_log_likelihood', 'lif_rate', 'select']


def select(output, keys=0, region=None):
    """The chosen outputs of a model as one tensor ``[batch, channel, time, rows, columns]``.

    ``keys`` is a key or index of the :class:`~convis.base.Output` (or a list of them, stacked along the
    channel axis); a plain tensor output is used as it is.  ``region = (row0, row1, col0, col1)`` keeps
    only those pixels (the target then has that size).
    """
    many = isinstance(keys, (list, tuple))
    parts = []
    for k in (keys if many else [keys]):
        if isinstance(output, torch.Tensor):
            if k not in (0, 'output'):
                raise KeyError('the model gives one tensor, not an output %s' % _short_repr(k))
            parts.append(output)
        else:
            parts.append(output[k])
    out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    if region is not None:
        r0, r1, c0, c1 = (int(v) for v in region)
        out = out[..., r0:r1, c0:c1]
    return out


def _aligned(target, out, what):
    """``(target, out, valid)`` broadcast to one shape (the output's batch of 1 against trials in the target);
    ``valid`` marks the target's recorded (non-NaN) entries."""
    target = target.to(dtype=out.dtype, device=out.device)
    try:
        shape = torch.broadcast_shapes(target.shape, out.shape)
    except RuntimeError:
        shape = None
    if shape is None or tuple(shape) != tuple(target.shape) or target.dim() != out.dim() \
            or tuple(target.shape[2:]) != tuple(out.shape[2:]):
        raise ValueError('%s: the selected output has shape %s but the target %s; they must be equal (an output '
                         'batch or channel of 1 may stand for several trials of the target; use region= to '
                         'compare part of a map)' % (what, tuple(out.shape), tuple(target.shape)))
    out = out.expand(shape)
    valid = ~torch.isnan(target)
    return torch.where(valid, target, torch.zeros_like(target)), out, valid


def mse(output=0, region=None, scale=None):
    """Mean squared error over the recorded entries of the target.

    .. math:: L = \\frac{1}{N} \\sum_{recorded} \\big((y - \\hat y) / s_c\\big)^2

    Parameters
    ----------
    output : key, index or list of them
        the model outputs compared (stacked along channels)
    region : (row0, row1, col0, col1) or None
        the pixels of the output that the target covers
    scale : sequence of float or None
        one divisor ``s_c`` per channel (in the output's unit): puts outputs of different units on one scale
    """
    def loss(target, out):
        target, out, valid = _aligned(target, select(out, output, region), 'mse')
        d = (out - target) * valid
        if scale is not None:
            s = torch.as_tensor(scale, dtype=d.dtype, device=d.device).reshape(1, -1, 1, 1, 1)
            d = d / s
        return (d * d).sum() / valid.sum().clamp(min=1)
    loss.__doc__ = 'Mean squared error of output %s against the target (NaN: not recorded).' % _short_repr(output)
    return loss


def correlation(output=0, region=None):
    """One minus the Pearson correlation of output and target over their recorded entries (0 at a perfect fit).

    Blind to the output's offset and gain: fits the shape of a response (e.g. a rate in other units).
    """
    def loss(target, out):
        target, out, valid = _aligned(target, select(out, output, region), 'correlation')
        n = valid.sum().clamp(min=2)
        w = valid.to(out.dtype)
        mt, mo = (target * w).sum() / n, (out * w).sum() / n
        dt, do = (target - mt) * w, (out - mo) * w
        r = (dt * do).sum() / torch.sqrt((dt * dt).sum() * (do * do).sum()).clamp(min=1e-300)
        return 1 - r
    return loss


def poisson_log_likelihood(rate, counts, dt, trials=1):
    """The log-likelihood (nats) of binned spike counts under an inhomogeneous Poisson rate.

    .. math:: \\log L = \\sum_{t} k_t \\log(\\lambda_t) - n\\,\\lambda_t - \\log\\Gamma(k_t + 1),
              \\qquad \\lambda_t = r_t\\,\\Delta t

    ``rate`` (Hz) and ``counts`` broadcast against each other; ``dt`` is the bin width in seconds.  With
    ``trials = n``, ``counts`` are summed over n trials that share the rate (the last term then counts the
    sum, which leaves a constant out; use per-trial counts for the exact value).  NaN counts are left out.
    """
    rate = torch.as_tensor(rate)
    counts = torch.as_tensor(counts, dtype=rate.dtype, device=rate.device)
    valid = ~torch.isnan(counts)
    k = torch.where(valid, counts, torch.zeros_like(counts))
    lam = rate * float(dt)
    ll = torch.xlogy(k, lam) - float(trials) * lam - torch.lgamma(k + 1)
    return (ll * valid).sum()


def poisson(dt, output=0, region=None, rate=None, trials=1, min_rate=1e-6):
    """Negative Poisson log-likelihood of binned spike counts (the target) under the model's firing rate.

    .. math:: L = -\\sum_{t} k_t \\log(r_t \\Delta t) - n\\,r_t\\Delta t - \\log\\Gamma(k_t+1)

    Parameters
    ----------
    dt : float
        the bin width in seconds (the model's time step: one count per frame)
    output, region
        as in :func:`mse`: which output (a rate in Hz, or what ``rate`` turns into one) and which pixels
    rate : callable or None
        turns the selected output into a rate in Hz (e.g. :func:`lif_rate` for a ganglion current)
    trials : int
        the number of trials summed in each target bin (1 when the target has one batch entry per trial,
        which the output's batch of 1 is broadcast against)
    min_rate : float
        rates are kept above this (Hz), so a silent model is a large loss rather than an infinite one

    >>> loss = convis.losses.poisson(dt=0.005, output=0, rate=convis.losses.lif_rate)
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError('poisson: dt must be the bin width in seconds (a number above 0), not %s' % _short_repr(dt))

    def loss(target, out):
        r = select(out, output, region)
        r = rate(r) if rate is not None else r
        r = r.clamp(min=min_rate)
        target, r, valid = _aligned(target, r, 'poisson')
        target = torch.where(valid, target, torch.full_like(target, float('nan')))
        return -poisson_log_likelihood(r, target, dt, trials)
    return loss


def lif_rate(current, g_leak=50.0, refractory=0.003, threshold=1.0, smooth=2.0):
    """The firing rate (Hz) of VirtualRetina's leaky integrate-and-fire cell driven by a constant current.

    .. math:: f(I) = \\Big(\\tau_{refr} + \\frac{1}{g_L}\\log\\frac{I}{I - g_L \\theta}\\Big)^{-1}
              \\quad \\text{for } I > g_L\\,\\theta

    (``dV/dt = I - g_L V``, threshold ``theta``, reset to 0).  Below threshold the cell is silent; the
    excess current ``I - g_L theta`` goes through a softplus of width ``smooth`` (Hz), so the rate stays
    positive and differentiable (as membrane noise would make it).  ``current`` and ``g_leak`` in Hz,
    ``refractory`` in seconds.  A static approximation: exact for currents that change slowly against
    the interspike interval.
    """
    g_th = g_leak * threshold
    excess = torch.nn.functional.softplus(current - g_th, beta=1.0 / smooth) + 1e-9
    return 1.0 / (refractory + torch.log1p(g_th / excess) / g_leak)
