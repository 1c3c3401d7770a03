"""Tensor helpers: broadcasting to 5 dimensions, padding to a common shape.

Every model in convis works on 5-d tensors ``[batch, channel, time, x, y]``.
:func:`make_tensor_5d` says how fewer dimensions are read:

========  =========================  ==========================
input     meaning                    result
========  =========================  ==========================
1-d       a time series ``(t,)``     ``[1, 1, t, 1, 1]``
2-d       one image ``(x, y)``       ``[1, 1, 1, x, y]``
3-d       a video ``(t, x, y)``      ``[1, 1, t, x, y]``
4-d       channels ``(c, t, x, y)``  ``[1, c, t, x, y]``
5-d       as it is                   ``[b, c, t, x, y]``
========  =========================  ==========================

The matplotlib plots of :mod:`convis.plotting` (``plot``, ``plot_5d_matshow``, ``plot_5d_time``,
``plot_tensor``, ``plot_tensor_with_channels``) are available here as well.
"""
import numpy as np
import torch

__all__ = ['make_tensor_5d', 'extend_to_match', 'subtract_tensors', 'to_numpy', 'mean_as_float',
           'plot', 'plot_5d_matshow', 'plot_5d_time', 'plot_tensor', 'plot_tensor_with_channels']


def to_numpy(x):
    """A numpy copy of a tensor, Parameter, Output entry or array-like."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


_array = to_numpy
_to_numpy = to_numpy


def _short_repr(value, limit=200):
    """``repr(value)`` for an error message, cut to at most ``limit`` characters (a 1 MB value is not echoed)."""
    try:
        r = repr(value)
    except Exception as e:  # noqa: BLE001 - a broken __repr__ must not hide the error being reported
        r = '<%s object (repr failed: %s)>' % (type(value).__name__, type(e).__name__)
    if len(r) <= limit:
        return r
    return r[:max(limit - 30, 10)] + '... (%d characters)' % len(r)


def make_tensor_5d(t):
    """Broadcasts a 1-d to 5-d tensor or array to ``[batch, channel, time, x, y]`` (see the module doc).

    Leading singleton dimensions beyond 5 are removed; other extra dimensions raise a ``ValueError``.
    Numpy arrays stay numpy arrays, tensors stay tensors.
    """
    shape = tuple(t.shape)
    while len(shape) > 5:
        if shape[0] != 1:
            raise ValueError('cannot read an input of shape %s as [batch, channel, time, x, y]: '
                             'it has %d dimensions' % (shape, len(shape)))
        t = t[0]
        shape = shape[1:]
    n = len(shape)
    if n == 0:
        return t.reshape(1, 1, 1, 1, 1)
    if n == 1:
        return t[None, None, :, None, None]
    if n == 2:
        return t[None, None, None, :, :]
    if n == 3:
        return t[None, None, :, :, :]
    if n == 4:
        return t[None, :, :, :, :]
    return t


def mean_as_float(a):
    return float(np.mean(to_numpy(a)))


def _pad_amounts(sa, sb, align):
    pads = []
    for i, (na, nb) in enumerate(zip(sa, sb)):
        d = max(nb - na, 0)
        if align[i] == 'center':
            pads.append((d // 2, d - d // 2))
        elif align[i] == 'end':
            pads.append((d, 0))
        else:
            pads.append((0, d))
    return pads


def extend_to_match(a, b, align=None, mode='linear_ramp', end_values=0.0, dims=5):
    """Pads ``a`` up to the shape of ``b``.

    ``align`` gives, per dimension, ``'begin'``, ``'center'`` or ``'end'``; by default
    the first three axes (batch, channel, time) are aligned at the beginning and
    x/y are centred.  ``mode`` is a :func:`numpy.pad` mode.  Works on numpy arrays and tensors.
    """
    is_tensor = isinstance(a, torch.Tensor)
    an = to_numpy(a)
    bshape = tuple(b.shape) if hasattr(b, 'shape') else tuple(b)
    if an.ndim != len(bshape):
        raise ValueError('a has %d dimensions and b %d' % (an.ndim, len(bshape)))
    if align is None:
        align = ['begin'] * (an.ndim - 2) + ['center', 'center'] if an.ndim >= 2 else ['begin'] * an.ndim
    pads = _pad_amounts(an.shape, bshape, align)
    kw = {'end_values': end_values} if mode == 'linear_ramp' else ({'constant_values': end_values} if mode == 'constant' else {})
    out = np.pad(an, pads, mode=mode, **kw)
    if is_tensor:
        return torch.as_tensor(out, dtype=a.dtype, device=a.device)
    return out


def subtract_tensors(a, b, align=None, dims=5):
    """``a - b`` after padding both to their common (largest) shape with zeros."""
    shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape))
    a2 = extend_to_match(a, shape, align=align, mode='constant', dims=dims)
    b2 = extend_to_match(b, shape, align=align, mode='constant', dims=dims)
    return a2 - b2


from .plotting import (plot, plot_5d_matshow, plot_5d_time, plot_tensor,  # noqa: E402
                       plot_tensor_with_channels)
