"""What goes into and comes out of a model: :func:`prepare_input`, the checks of input values, and :class:`Output`.

Any input of 1 to 5 dimensions (array, list, number or tensor) is read as ``[batch, channel, time, x, y]``
(see :func:`convis.utils.make_tensor_5d`); NaN or infinite values are refused before a model runs.  A model's
outputs come back as an :class:`Output`, found by index, key or attribute.
"""
import numpy as np
import torch

from .o import save_name
from .plotting import plot
from .tensors import _short_repr, make_tensor_5d, to_numpy
from .variables import _describe_html

__all__ = ['Output', 'prepare_input', 'shape']


def _is_stream(x):
    return (not isinstance(x, (torch.Tensor, np.ndarray, Output, list, tuple))
            and callable(getattr(x, 'get', None)))


def _check_finite(t, what='input', bound=None, bound_doc=''):
    """Raises a ValueError when the tensor ``t`` holds NaN or infinite values, or (with ``bound``) a value
    of magnitude above ``bound``; the message names the largest magnitude and ``bound_doc``."""
    if not t.is_floating_point() or t.numel() == 0:
        return
    if bound is not None:
        # the largest magnitude (two fast reductions) is NaN or infinite when any value is
        x = t.detach()
        largest = float(torch.maximum(x.amax(), -x.amin()))
        if largest == largest and largest <= bound:
            return
    # a sum is NaN or infinite when any value is (one fast reduction); only then (or when the finite
    # values overflow the sum) every value is looked at
    elif bool(torch.isfinite(t.detach().sum())) or bool(torch.isfinite(t).all()):
        return
    bad = int((~torch.isfinite(t)).sum())
    if bad:
        raise ValueError('%s contains %d NaN or infinite value(s) out of %d' % (what, bad, t.numel()))
    raise ValueError('%s has a value of magnitude %.4g, above the bound %.4g%s' % (what, largest, bound, bound_doc))


def _as_tensor(a, dtype=None, device=None):
    """Converts arrays, numbers, lists and tensors to a tensor (no broadcasting)."""
    if isinstance(a, Output):
        a = a[0]
    if isinstance(a, torch.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype == object or arr.dtype.kind not in 'biuf':
            raise TypeError('cannot use input of type %s (dtype %s) as a tensor' % (type(a).__name__, arr.dtype))
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError('complex input is not supported')
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if device is not None and t.device != torch.device(device):
        t = t.to(device)
    return t


def prepare_input(a, dims=5, cuda=False, volatile=False, requires_grad=False, dtype='float32'):
    """Makes a tensor of ``a`` (array, list, number or tensor), broadcast to ``dims`` dimensions.

    With ``dims=5`` any input of 1 to 5 dimensions becomes ``[batch, channel, time, x, y]``
    (see :func:`convis.utils.make_tensor_5d`); with ``dims=3`` a 5-d input is reduced
    with ``[0, 0]``.  ``cuda=True`` moves it to the GPU, ``cuda=False`` to the CPU and
    ``cuda=None`` leaves it where it is.  ``volatile`` is accepted and ignored.

    >>> prepare_input(np.zeros((100, 10, 10))).shape
    torch.Size([1, 1, 100, 10, 10])
    """
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    t = _as_tensor(a, dtype=torch_dtype)
    if dims == 5:
        t = make_tensor_5d(t)
    elif dims == 3:
        while t.dim() > 3:
            t = t[0]
    if cuda is True:
        if not torch.cuda.is_available():
            raise RuntimeError('prepare_input(cuda=True): no CUDA device is available')
        t = t.cuda()
    elif cuda is False:
        t = t.cpu()
    if requires_grad:
        t = t.detach().requires_grad_(True)
    return t


def shape(x):
    """The shape of a tensor, array or Parameter."""
    return tuple(x.shape) if hasattr(x, 'shape') else tuple(x.data.shape)


def _model_5d(t):
    """:func:`make_tensor_5d` for the input of a model, which refuses (rather than drops) extra leading data."""
    shape = tuple(t.shape)
    if len(shape) > 5 and any(n != 1 for n in shape[:len(shape) - 5]):
        raise ValueError('cannot read an input of shape %s as [batch, channel, time, x, y]: it has %d dimensions '
                         '(use a batch axis for several stimuli)' % (shape[:12], len(shape)))
    return make_tensor_5d(t)


class Output(object):
    """The ordered outputs of a model, found by index, key or attribute.

    >>> o = retina.run(x, dt=500)
    >>> o[0] is o.ganglion_spikes_ON
    True
    >>> o['ganglion_spikes_OFF'].shape
    """

    def __init__(self, outs, keys=None):
        outs = list(outs)
        if keys is None:
            keys = ['output'] if len(outs) == 1 else ['output_%d' % i for i in range(len(outs))]
        keys = [str(k) for k in keys]
        if len(keys) != len(outs):
            raise ValueError('Output got %d outputs but %d keys' % (len(outs), len(keys)))
        self._outs = outs
        self.keys = keys
        reserved = set(dir(type(self)))
        for k, o in zip(keys, outs):
            name = save_name(k)
            if name not in reserved and not name.startswith('_'):
                self.__dict__[name] = o

    def __len__(self):
        return len(self._outs)

    def __iter__(self):
        return iter(self._outs)

    def __getitem__(self, k):
        if isinstance(k, (int, np.integer, slice)):
            return self._outs[k]
        # with repeated keys the last output wins, as it does for attributes
        for i in range(len(self.keys) - 1, -1, -1):
            if self.keys[i] == k:
                return self._outs[i]
        for i in range(len(self.keys) - 1, -1, -1):
            if save_name(self.keys[i]) == save_name(k):
                return self._outs[i]
        raise KeyError('no output %s; outputs are %s' % (_short_repr(k), ', '.join(self.keys)))

    def array(self, k=0):
        """A numpy copy of output ``k`` (index or key)."""
        return to_numpy(self[k])

    def mean(self, axis=None, k=0):
        """The mean of output ``k`` over ``axis`` (all axes by default)."""
        return np.mean(self.array(k).astype(float), axis=axis)

    def __array__(self, dtype=None, copy=None):
        if len(self._outs) == 1:
            a = self.array(0)
        else:
            shapes = {tuple(o.shape) for o in self._outs}
            if len(shapes) != 1:
                raise ValueError('the outputs have different shapes %s: use Output.array(k)' % sorted(shapes))
            a = np.stack([self.array(i) for i in range(len(self._outs))])
        return a.astype(dtype) if dtype is not None else a

    def plot(self, k=0, mode=None, **kwargs):
        """Plots output ``k``: ``mode=None`` (by shape), ``'lines'`` or ``'matshow'``."""
        return plot(self[k], mode=mode, **kwargs)

    def __repr__(self):
        parts = ['%s: %s %s' % (k, tuple(o.shape) if hasattr(o, 'shape') else type(o).__name__,
                                str(getattr(o, 'dtype', '')).replace('torch.', ''))
                 for k, o in zip(self.keys, self._outs)]
        return 'Output(%s)' % '; '.join(parts)

    def _repr_html_(self):
        return _describe_html(self)


def _first_output(o):
    return o[0] if isinstance(o, Output) else o
