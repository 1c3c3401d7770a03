"""The smallest tensor helpers, imported by every layer of convis (and re-exported by :mod:`convis.utils`).

:func:`make_tensor_5d` reads 0-d to 5-d inputs as ``[batch, channel, time, x, y]``, :func:`to_numpy` copies a
tensor to numpy and :func:`_short_repr` cuts a value's ``repr`` for error messages.  This module imports no
other convis module, so both :mod:`convis.utils` and :mod:`convis.plotting` build on it.
"""
import numpy as np
import torch

__all__ = ['make_tensor_5d', 'to_numpy']


def to_numpy(x):
    """A numpy copy of a tensor, Parameter, Output entry or array-like."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


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
    """Broadcasts a 0-d to 5-d tensor or array to ``[batch, channel, time, x, y]`` (see the module doc).

    An input of 6 or more dimensions gives its first element (``t[0]``) until 5 remain, as the
    original toolbox documents.  Numpy arrays stay numpy arrays, tensors stay tensors.
    """
    while len(t.shape) > 5:
        t = t[0]
    n = len(t.shape)
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
