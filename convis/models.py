"""Linear-nonlinear (LN) cascade models and containers to combine layers.

Every model here is a :class:`~convis.Layer` with memory (convolutions keep their recent input), so
``model.run(x, dt=k)`` gives the same output as one whole call, and every model can be fitted
(``model.set_optimizer.LBFGS(); model.optimize(x, y, dt=500)``).

* ``population=True`` (default): the last stage is a :class:`~convis.filters.Conv3d` padded in space,
  so the output is an image sequence of the input's size (one model cell per pixel).
* ``population=False``: the last stage is a :class:`~convis.filters.RF` covering the whole frame,
  so the output is one time series per channel, ``[batch, channel, time, 1, 1]`` (the spatial part of
  ``kernel_dim`` is not used: the receptive field takes the size of the first frame it sees).

``kernel_dim`` is ``(t, x, y)`` in frames and pixels, or ``(out_channels, in_channels, t, x, y)``.
The first convolution starts at zero; later stages start as the identity (a unit impulse), so a
cascade starts as the LN model in front of it and gradients reach every stage.  Nonlinearities
default to rectification and can be replaced by any layer or callable (``model.nonlinearity = f``).

>>> import convis
>>> inp, out = convis.samples.generate_sample_data(input='random', size=(2000, 20, 20))
>>> m = convis.models.LN(kernel_dim=(12, 7, 7), population=True)
>>> optimizer = m.set_optimizer.LBFGS()
>>> losses = m.optimize(inp, out, dt=500)
"""
import copy
from collections import OrderedDict
from itertools import zip_longest

import numpy as np
import torch

from .layer import Layer
from .output import Output
from .filters.conv import RF as _ReceptiveField
from .filters.conv import Conv3d
from .filters.nonlinear import NLRectify
from .filters.temporal import VariableDelay
from .variables import Parameter

__all__ = ['List', 'Dict', 'Sequential', 'Parallel', 'make_sequential_parallel_model',
           'make_parallel_sequential_model', 'LNCascade', 'L', 'RF', 'LN', 'RFN', 'LNLN', 'LNSN', 'LNLNLN',
           'LNLNLNLN', 'LNFDLNF', 'LNFDSNF', 'McIntosh', 'Retina']


def __getattr__(name):
    if name in ('Retina', 'retina'):  # ``convis.models.retina()`` as the original documentation writes it
        from .retina import Retina
        return Retina
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


# ---------------------------------------------------------------------------------------------- containers
class _Function(Layer):
    """Wraps a plain callable (e.g. a lambda) as a layer."""

    def __init__(self, func):
        super().__init__()
        if not callable(func):
            raise TypeError('expected a layer or a callable, not %r' % (func,))
        self.func = func

    def forward(self, *args):
        return self.func(*args)

    def extra_repr(self):
        return getattr(self.func, '__name__', repr(self.func))


class _Identity(Layer):
    def forward(self, x):
        return x


def _as_module(m):
    if m is None or m is False:
        return _Identity()
    return m if isinstance(m, torch.nn.Module) else _Function(m)


def _first(o):
    return o[0] if isinstance(o, Output) else o


_COMBINE_DOC = "'cat' / 'cat_D' (concatenate along dim D, default 0), 'sum' (elementwise sum), " \
               "'sum_D' (concatenate along D, then sum over it) or a callable taking the list of outputs"


def _check_combine(how):
    if callable(how):
        return how
    if isinstance(how, str):
        kind, _, dim = how.partition('_')
        if kind in ('cat', 'sum') and (dim == '' or dim.lstrip('-').isdigit()):
            return how
    raise ValueError('cannot combine parallel outputs with %r: use %s' % (how, _COMBINE_DOC))


def _combine(outputs, how):
    if callable(how):
        return how(outputs)
    kind, _, dim = how.partition('_')
    if kind == 'sum' and dim == '':
        total = outputs[0]
        for o in outputs[1:]:
            total = total + o
        return total
    d = int(dim) if dim else 0
    joined = torch.cat(outputs, dim=d)
    return joined if kind == 'cat' else joined.sum(dim=d, keepdim=True)


class _Container(Layer):
    """Named sub-layers run one after another (``'sequential'``) or side by side (``'parallel'``)."""

    def __init__(self, mode='sequential', sum_if_parallel='cat'):
        super().__init__()
        if mode not in ('sequential', 'parallel'):
            raise ValueError("mode must be 'sequential' or 'parallel', not %r" % (mode,))
        self.mode = mode
        self.sum_if_parallel = _check_combine(sum_if_parallel)

    def _add(self, name, module):
        if name in self._modules:
            raise KeyError('%s already has a layer named %r' % (type(self).__name__, name))
        self.add_module(str(name), _as_module(module))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, key):
        modules = list(self._modules.values())
        if isinstance(key, slice):
            return modules[key]
        if isinstance(key, (int, np.integer)):
            if not -len(modules) <= key < len(modules):
                raise IndexError('index %d out of range for %d layers' % (key, len(modules)))
            return modules[key]
        if key in self._modules:
            return self._modules[key]
        raise KeyError('no layer %r; layers are %s' % (key, list(self._modules)))

    def keys(self):
        return list(self._modules)

    def items(self):
        return list(self._modules.items())

    def forward(self, x):
        if self.mode == 'sequential':
            for m in self._modules.values():
                x = _first(m(x))
            return x
        if not self._modules:
            return x
        return _combine([_first(m(x)) for m in self._modules.values()], self.sum_if_parallel)

    def extra_repr(self):
        combine = self.sum_if_parallel if isinstance(self.sum_if_parallel, str) else 'callable'
        return 'mode=%r%s' % (self.mode, ', combine=%r' % combine if self.mode == 'parallel' else '')


class List(_Container):
    """A list of layers, run in sequence or in parallel; items are named ``layer_0, layer_1, ...``.

    .. math::  \\text{sequential: } y = f_n(\\dots f_1(x)) \\qquad \\text{parallel: } y = \\mathrm{combine}(f_1(x), \\dots, f_n(x))

    Parameters
    ----------
    *modules : layers or callables
    mode : 'sequential' or 'parallel'
    sum_if_parallel :
        how parallel outputs are combined: 'cat' / 'cat_D' (concatenate along dim D, default 0), 'sum'
        (elementwise sum), 'sum_D' (concatenate along D, then sum over it) or a callable taking the list

    ``append``, ``extend``, ``+=`` and indexing (negative indices too) work as for lists.

    >>> l = List(convis.filters.Delay(1), convis.filters.NLSquare())
    >>> l[-1] is l.layer_1
    True
    """

    def __init__(self, *modules, mode='sequential', sum_if_parallel='cat'):
        super().__init__(mode, sum_if_parallel)
        self.extend(modules)

    def append(self, module):
        self._add('layer_%d' % len(self), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __iadd__(self, other):
        return self.extend(other if isinstance(other, (list, tuple, List)) else [other])


class Dict(_Container):
    """Named layers, run in sequence or in parallel (in the order given).

    ``Dict(layer_a, ('name', layer_b), OrderedDict(...), name_c=layer_c, mode='sequential')``: positional
    layers are named ``layer_K``, pairs and dicts give names.  Layers can be found as attributes or by
    ``d['name']``.  ``mode`` and ``sum_if_parallel`` as for :class:`List`.

    >>> d = Dict(first=convis.filters.Delay(1), second=convis.filters.NLSquare())
    >>> d.keys()
    ['first', 'second']
    """

    def __init__(self, *modules, mode='sequential', sum_if_parallel='cat', **named):
        super().__init__(mode, sum_if_parallel)
        for m in modules:
            if isinstance(m, dict):
                for k, v in m.items():
                    self._add(k, v)
            elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
                self._add(m[0], m[1])
            else:
                self._add('layer_%d' % len(self), m)
        for k, v in named.items():
            self._add(k, v)

    def __setitem__(self, name, module):
        self.add_module(str(name), _as_module(module))


class Sequential(Dict):
    """Layers applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    .. math::  y = f_n(\\dots f_2(f_1(x)))

    Accepts layers (named ``'0', '1', ...`` as in :class:`torch.nn.Sequential`) or one OrderedDict of them.

    >>> Sequential(convis.filters.Delay(1), convis.filters.NLSquare())(np.array([2.0, 3.0])).flatten().tolist()
    [0.0, 4.0]
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], dict):
            super().__init__(modules[0], mode='sequential')
        else:
            super().__init__(OrderedDict((str(i), m) for i, m in enumerate(modules)), mode='sequential')

    def append(self, module):
        self._add(str(len(self)), module)
        return self


class Parallel(Dict):
    """Layers applied to the same input, their outputs combined.

    .. math::  y = \\mathrm{combine}(f_1(x), \\dots, f_n(x))

    Parameters
    ----------
    *modules : layers, or one OrderedDict of named layers
    sum : how to combine (``'cat'`` along the batch by default; see :class:`List`)

    >>> Parallel(convis.filters.NLSquare(), convis.filters.NLRectify(), sum='sum')(np.array([-2.0])).item()
    4.0
    """

    def __init__(self, *modules, sum='cat'):
        if len(modules) == 1 and isinstance(modules[0], dict):
            super().__init__(modules[0], mode='parallel', sum_if_parallel=sum)
        else:
            super().__init__(OrderedDict((str(i), m) for i, m in enumerate(modules)), mode='parallel',
                             sum_if_parallel=sum)


def _nested(spec, mode, sum_if_parallel):
    other = 'parallel' if mode == 'sequential' else 'sequential'
    items = [_nested(s, other, sum_if_parallel) if isinstance(s, (list, tuple)) else s for s in spec]
    return List(*items, mode=mode, sum_if_parallel=sum_if_parallel)


def make_sequential_parallel_model(spec, sum_if_parallel='cat'):
    """Builds nested :class:`List` s from nested lists: the outer list is sequential, lists inside it are
    parallel, lists inside those sequential again, and so on.

    >>> m = make_sequential_parallel_model([convis.filters.Delay(1), [convis.filters.NLSquare(), convis.filters.NLRectify()]])
    >>> m.run(np.ones((10, 2, 2)))[0].shape   # the parallel part concatenates along the batch
    torch.Size([2, 1, 10, 2, 2])
    """
    return _nested(spec, 'sequential', sum_if_parallel)


def make_parallel_sequential_model(spec, sum_if_parallel='cat'):
    """Like :func:`make_sequential_parallel_model`, but the outer list is parallel."""
    return _nested(spec, 'parallel', sum_if_parallel)


# ---------------------------------------------------------------------------------------------- LN models
def _split_kernel_dim(kernel_dim):
    kd = tuple(int(k) for k in kernel_dim)
    if len(kd) == 3:
        return 1, 1, kd
    if len(kd) == 5:
        return kd[0], kd[1], kd[2:]
    raise ValueError('kernel_dim must be (t, x, y) or (out_channels, in_channels, t, x, y), not %r' % (kernel_dim,))


def _linear_stage(kernel_dim, bias, population, autopad=True, in_channels=None):
    out_ch, in_ch, ks = _split_kernel_dim(kernel_dim)
    if in_channels is not None:
        in_ch = in_channels
    if population:
        return Conv3d(in_ch, out_ch, ks, bias=bias, time_pad=True, autopad=autopad)
    return _ReceptiveField(in_ch, out_ch, (ks[0], 1, 1), bias=bias)


def _set_identity(conv):
    """Sets a convolution to pass its input through (a unit impulse at lag 0 and the kernel centre)."""
    co, ci = conv.out_channels, conv.in_channels
    kt, kx, ky = conv.kernel_size
    w = np.zeros((co, ci, kt, kx, ky))
    for c in range(min(co, ci)):
        w[c, c, 0, kx // 2, ky // 2] = 1.0
    conv.set_weight(w, flip=True)
    return conv


class _NonlinearModel(Layer):
    """Base of models with replaceable nonlinearities: assigning a plain callable wraps it as a layer."""
    _nonlinearity_names = ('nonlinearity',)

    def __setattr__(self, name, value):
        if name in self._nonlinearity_names and value is not None and not isinstance(value, torch.nn.Module):
            value = _Function(value)
        super().__setattr__(name, value)


class L(Layer):
    """A linear spatio-temporal filter.

    .. math::  y = w * x

    Parameters
    ----------
    kernel_dim : (t, x, y) or (out, in, t, x, y)
        kernel size in frames and pixels (starts at zero)
    bias : bool
        whether to add a bias
    population : bool
        True: a padded :class:`~convis.filters.Conv3d` (image output); False: an
        :class:`~convis.filters.RF` over the whole frame (time-series output)

    >>> L((10, 1, 1)).run(np.random.rand(100, 20, 20), dt=30)[0].shape
    torch.Size([1, 1, 100, 20, 20])
    """

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, population=True):
        super().__init__()
        self.conv = _linear_stage(kernel_dim, bias, population)

    def forward(self, x):
        return self.conv(x)


class RF(L):
    """A linear receptive field over the whole frame (:class:`L` with ``population=False``): one time series per channel.

    .. math::  y[t] = \\sum_{k, i, j} w[k, i, j]\\, x[t - k, i, j]
    """

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, population=False):
        super().__init__(kernel_dim, bias, population)


class LN(_NonlinearModel):
    """A linear filter followed by a static nonlinearity (rectification by default).

    .. math::  y = N(w * x), \\qquad N(u) = \\max(u, 0)

    Parameters as :class:`L`.  ``model.conv`` is the filter, ``model.nonlinearity`` can be replaced by any
    layer or callable.

    >>> m = LN((5, 5, 5))
    >>> m.conv.set_weight(np.random.randn(5, 5, 5)).kernel_size
    (5, 5, 5)
    >>> m.nonlinearity = lambda x: x ** 2
    """

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, population=True):
        super().__init__()
        self.conv = _linear_stage(kernel_dim, bias, population)
        self.nonlinearity = NLRectify()

    def forward(self, x):
        return self.nonlinearity(self.conv(x))


class RFN(LN):
    """:class:`LN` with a receptive field over the whole frame (``population=False``)."""

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, population=False):
        super().__init__(kernel_dim, bias, population)


class _StackedLN(_NonlinearModel):
    """``n`` LN stages in series: ``conv1, nonlinearity1, ..., convN, nonlinearityN``."""
    stages = 2
    _nonlinearity_names = tuple('nonlinearity%d' % i for i in range(1, 5))

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, population=True):
        super().__init__()
        out_ch = _split_kernel_dim(kernel_dim)[0]
        for i in range(1, self.stages + 1):
            last = i == self.stages
            conv = _linear_stage(kernel_dim, bias, population or not last, in_channels=None if i == 1 else out_ch)
            if i > 1:
                _set_identity(conv)
            setattr(self, 'conv%d' % i, conv)
            setattr(self, 'nonlinearity%d' % i, NLRectify())

    def forward(self, x):
        for i in range(1, self.stages + 1):
            x = getattr(self, 'nonlinearity%d' % i)(getattr(self, 'conv%d' % i)(x))
        return x


class LNLN(_StackedLN):
    """Two LN stages in series (also ``LNSN``); the second is an RF when ``population=False``.

    .. math::  y = N_2(w_2 * N_1(w_1 * x))

    Parameters as :class:`L` (both stages get ``kernel_dim``); the second stage starts as the identity.
    """
    stages = 2


LNSN = LNLN


class LNLNLN(_StackedLN):
    """Three LN stages in series (see :class:`LNLN`).

    .. math::  y = N_3(w_3 * N_2(w_2 * N_1(w_1 * x)))
    """
    stages = 3


class LNLNLNLN(_StackedLN):
    """Four LN stages in series (see :class:`LNLN`).

    .. math::  y = N_4(w_4 * N_3(w_3 * N_2(w_2 * N_1(w_1 * x))))
    """
    stages = 4


class LNCascade(Layer):
    """Any number of linear and nonlinear stages, added with :meth:`add_layer`.

    .. math::  y = N_n(L_n(\\dots N_1(L_1 x)))

    Parameters
    ----------
    n : int
        number of stages to create at once (each a Conv3d of ``kernel_dim`` and the default nonlinearity)
    kernel_dim, bias, autopad :
        for the created convolutions
    nonlinearity : layer or callable, optional
        the default nonlinearity (rectification when None)

    ``linearities`` and ``nonlinearities`` are :class:`List` s; the stages run pairwise in order.

    >>> m = LNCascade(3, kernel_dim=(5, 3, 3))
    >>> len(m.linearities), len(m.nonlinearities)
    (3, 3)
    """

    def __init__(self, n=0, kernel_dim=(1, 1, 1), bias=False, autopad=True, nonlinearity=None):
        super().__init__()
        self.default_nonlinearity = nonlinearity
        self.linearities = List()
        self.nonlinearities = List()
        for _ in range(int(n)):
            self.add_layer(kernel_dim=kernel_dim, bias=bias, autopad=autopad)

    def add_layer(self, linear=None, nonlinear=None, kernel_dim=(1, 1, 1), bias=False, autopad=True):
        """Appends a stage: ``linear`` (None: a new Conv3d of ``kernel_dim``, zero for the first stage and the
        identity after; False: no filter) and ``nonlinear`` (None: the default nonlinearity; False: none)."""
        if linear is None:
            linear = _linear_stage(kernel_dim, bias, True, autopad)
            if len(self.linearities) > 0:
                _set_identity(linear)
        if nonlinear is None:
            d = self.default_nonlinearity
            nonlinear = NLRectify() if d is None else (copy.deepcopy(d) if isinstance(d, torch.nn.Module) else d)
        self.linearities.append(linear)
        self.nonlinearities.append(nonlinear)
        return self

    def forward(self, x):
        for lin, nl in zip_longest(self.linearities, self.nonlinearities):
            if lin is not None:
                x = _first(lin(x))
            if nl is not None:
                x = _first(nl(x))
        return x


class LNFDLNF(_NonlinearModel):
    """Two LN stages, each followed by a subtracted ("feedback") temporal filter of its own output, with a
    per-pixel delay in between (also ``LNFDSNF``).

    .. math::  u = N_1(w_1 * x) - f_1 * N_1(w_1 * x), \\quad y = v - f_2 * v, \\quad v = N_2(w_2 * D(u))

    The feedback filters ``f_1, f_2`` are ``feedback_length`` frames long and 1 x 1 in space (starting at
    zero); ``D`` is a :class:`~convis.filters.VariableDelay`.  Other parameters as :class:`LNLN`.
    """
    _nonlinearity_names = ('nonlinearity1', 'nonlinearity2')

    def __init__(self, kernel_dim=(1, 1, 1), bias=False, feedback_length=50, population=True):
        super().__init__()
        out_ch = _split_kernel_dim(kernel_dim)[0]
        self.conv1 = _linear_stage(kernel_dim, bias, True)
        self.nonlinearity1 = NLRectify()
        self.feedback1 = Conv3d(out_ch, out_ch, (int(feedback_length), 1, 1), bias=False)
        self.delay = VariableDelay()
        self.conv2 = _set_identity(_linear_stage(kernel_dim, bias, population, in_channels=out_ch))
        self.nonlinearity2 = NLRectify()
        self.feedback2 = Conv3d(out_ch, out_ch, (int(feedback_length), 1, 1), bias=False)

    def forward(self, x):
        x = self.nonlinearity1(self.conv1(x))
        x = x - self.feedback1(x)
        x = self.nonlinearity2(self.conv2(self.delay(x)))
        return x - self.feedback2(x)


LNFDSNF = LNFDLNF


class McIntosh(Layer):
    """A two-layer convolutional network with a dense readout (McIntosh et al., NIPS 2016).

    .. math::  y_n[t] = \\sum_{c, i, j} r[n, c, i, j]\\, h_{c}[t, i, j], \\quad h = \\max(w_2 * \\max(w_1 * x, 0), 0)

    Parameters
    ----------
    filter_size : (t, x, y)
        kernel of the first layer (``layer1_channels`` channels)
    random_init : bool
        start both convolutions with positive random weights, each channel summing to 1 (else zeros)
    out_channels : int
        number of readout units (cells)
    filter_2_size : (t, x, y)
        kernel of the second layer (``layer2_channels`` channels)
    input_size : (x, y), optional
        frame size, to build the readout now; otherwise it is built on the first call (ones / size)

    The output is ``[batch, 1, time, 1, out_channels]``.  The readout weight is one Parameter object for
    the life of the model (optimizers keep it); a later input of another frame size raises an error
    unless :meth:`build_readout` is called for the new size.
    """

    def __init__(self, filter_size=(10, 5, 5), random_init=True, out_channels=1, filter_2_size=(1, 1, 1),
                 layer1_channels=8, layer2_channels=16, input_size=None):
        super().__init__()
        self.layer1 = Conv3d(1, layer1_channels, filter_size, bias=False)
        self.layer2 = Conv3d(layer1_channels, layer2_channels, filter_2_size, bias=False)
        if random_init:
            for conv in (self.layer1, self.layer2):
                w = torch.rand(conv.weight.shape)
                conv.set_weight(w / w.sum(dim=(1, 2, 3, 4), keepdim=True), flip=False)
        self.readout = Parameter(torch.zeros(int(out_channels), 0), doc='weights of the readout units over '
                                 '[channel, x, y] of the second layer', unit='')
        self._readout_size = None
        if input_size is not None:
            self.build_readout(*input_size)

    def build_readout(self, x, y):
        """(Re)initialises the readout for frames of ``x`` by ``y`` pixels (uniform weights summing to 1)."""
        n = self.layer2.out_channels * int(x) * int(y)
        with torch.no_grad():
            self.readout.data = torch.full((self.readout.shape[0], n), 1.0 / n, dtype=self.readout.dtype,
                                           device=self.readout.device)
            self.readout.grad = None
        self._readout_size = (int(x), int(y))
        return self

    def forward(self, x):
        h = torch.relu(self.layer2(torch.relu(self.layer1(x))))
        size = tuple(h.shape[3:])
        if self._readout_size is None:
            self.build_readout(*size)
        elif size != self._readout_size:
            raise ValueError('McIntosh: the readout was built for %s frames, the input has %s; call '
                             'build_readout(%d, %d) to start a new readout' % (self._readout_size, size, *size))
        b, c, t = h.shape[:3]
        flat = h.permute(0, 2, 1, 3, 4).reshape(b, t, -1)
        return (flat @ self.readout.t()).reshape(b, 1, t, 1, -1)

    def plot(self):
        """Shows the first layer's kernels and the readout weights."""
        from .utils import plot_5d_matshow
        import matplotlib.pyplot as plt
        plot_5d_matshow(self.layer1.weight)
        plt.figure()
        plt.imshow(self.readout.detach().cpu().numpy(), aspect='auto')
