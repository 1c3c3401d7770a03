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

from .plotting import plot, plot_5d_matshow, plot_5d_time, plot_tensor, plot_tensor_with_channels
from .tensors import _short_repr, make_tensor_5d, to_numpy

__all__ = ['make_tensor_5d', 'extend_to_match', 'subtract_tensors', 'to_numpy', 'mean_as_float',
           'plot', 'plot_5d_matshow', 'plot_5d_time', 'plot_tensor', 'plot_tensor_with_channels']

_array = to_numpy
_to_numpy = to_numpy


def mean_as_float(a):
    return float(np.mean(to_numpy(a)))


_ALIGNMENTS = {'b': 'begin', 'c': 'center', 'e': 'end'}


def _alignments(align, ndim, dims):
    """One of 'begin', 'center', 'end' per dimension, from ``align`` (None, one word or a list)."""
    if align is None:
        if dims == 5:
            return ['begin'] * 3 + ['center'] * 2
        return ['center'] * ndim
    words = [align] * ndim if isinstance(align, str) else list(align)
    if len(words) != ndim:
        raise ValueError('align gives %d alignment(s) for %d dimensions: %.80r' % (len(words), ndim, align))
    out = []
    for w in words:
        key = w[:1].lower() if isinstance(w, str) else None
        if key not in _ALIGNMENTS:
            raise ValueError("align must be 'begin', 'center' or 'end' (or a word starting with 'b', 'c' or 'e'), "
                             'not %.60r' % (w,))
        out.append(_ALIGNMENTS[key])
    return out


def _shape_of(b):
    return tuple(b.shape) if hasattr(b, 'shape') else tuple(int(n) for n in b)


def _to_rank(a, ndim, dims):
    """``a`` (array or tensor) with ``dims`` dimensions: make_tensor_5d for 5, else leading axes of length 1."""
    if dims == 5:
        return make_tensor_5d(a)
    while len(a.shape) < ndim:
        a = a[None]
    return a


def _pad_amounts(sa, sb, align):
    pads = []
    for (na, nb), al in zip(zip(sa, sb), align):
        d = max(nb - na, 0)
        if al == 'center':
            pads.append((d // 2, d - d // 2))
        elif al == 'end':
            pads.append((d, 0))
        else:
            pads.append((0, d))
    return pads


def extend_to_match(a, b, align=None, mode='linear_ramp', end_values=0.0, dims=5):
    """Pads ``a`` so that it is at least as large as ``b`` in every dimension.

    ``b`` is an array, a tensor or a shape.  With ``dims=5`` both are first broadcast to
    ``[batch, channel, time, x, y]`` (:func:`make_tensor_5d`), so tensors of different rank
    match; with any other ``dims`` the one of lower rank gets leading dimensions of length 1.

    ``align`` says where ``a`` sits inside the larger shape: ``'begin'``, ``'center'`` or ``'end'``
    (any word starting with ``'b'``, ``'c'`` or ``'e'``), one word for every dimension or a list of
    one per dimension.  By default (``dims=5``) batch, channel and time are aligned at the
    beginning and x, y centred; with another ``dims`` every dimension is centred.  ``mode`` and
    ``end_values`` are those of :func:`numpy.pad` (``end_values`` is the constant of
    ``mode='constant'``).  A tensor gives a tensor of the same dtype and device, an array an array.

    >>> a = extend_to_match(np.ones((10, 4, 4)), np.zeros((1, 1, 20, 8, 8)), mode='constant')
    >>> a.shape
    (1, 1, 20, 8, 8)
    """
    is_tensor = isinstance(a, torch.Tensor)
    bshape = _shape_of(b)
    ndim = max(len(a.shape), len(bshape))
    if dims == 5:
        ndim = 5
    an = to_numpy(_to_rank(a, ndim, dims))
    bshape = _shape_of(_to_rank(np.broadcast_to(np.empty(()), bshape), ndim, dims))
    pads = _pad_amounts(an.shape, bshape, _alignments(align, ndim, dims))
    kw = {'end_values': end_values} if mode == 'linear_ramp' else ({'constant_values': end_values} if mode == 'constant' else {})
    out = np.pad(an, pads, mode=mode, **kw)
    if is_tensor:
        return torch.as_tensor(out, dtype=a.dtype, device=a.device)
    return out


def subtract_tensors(a, b, align=None, dims=5):
    """``a - b`` after padding both with zeros to their common (largest) shape.

    Tensors of different rank are broadcast as :func:`extend_to_match` does (to 5 dimensions with
    ``dims=5``); ``align`` is passed on to it.  The result is a tensor if either input is one.

    >>> subtract_tensors(np.ones((10, 4, 4)), np.ones((1, 1, 5, 8, 8))).shape
    (1, 1, 10, 8, 8)
    """
    ndim = 5 if dims == 5 else max(len(a.shape), len(b.shape))
    a = _to_rank(a, ndim, dims)
    b = _to_rank(b, ndim, dims)
    shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape))
    a2 = extend_to_match(a, shape, align=align, mode='constant', dims=dims)
    b2 = extend_to_match(b, shape, align=align, mode='constant', dims=dims)
    if isinstance(a2, torch.Tensor) or isinstance(b2, torch.Tensor):
        like = a2 if isinstance(a2, torch.Tensor) else b2
        a2, b2 = (x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=like.dtype, device=like.device)
                  for x in (a2, b2))
    return a2 - b2

