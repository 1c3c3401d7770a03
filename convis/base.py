"""The convis base classes: :class:`Layer`, :class:`Output` and :func:`prepare_input`.

A :class:`Layer` is a :class:`torch.nn.Module` that also keeps a *state* (the
memory of its filters), runs long inputs chunk by chunk with
``run(x, dt=...)`` (with results equal to one whole call), offers
tab-completable parameter trees (``.p .m .s .user_parameters``), and fits
itself to data (``set_optimizer``, ``optimize``, ``compute_loss``).

>>> import convis
>>> m = convis.models.LN((10, 5, 5))
>>> o = m.run(convis.samples.moving_grating(2000), dt=500)
>>> o[0].shape
torch.Size([1, 1, 2000, 20, 20])
"""
import contextlib
import difflib
import inspect
import logging
import threading
from collections import OrderedDict

import numpy as np
import torch

from . import parameter_io
from .o import Ox, save_name
from .locking import lock_of, locked
from .utils import _short_repr, make_tensor_5d, to_numpy
from .variables import Parameter, Resolution, State, VirtualParameter

__all__ = ['Layer', 'Model', 'Output', 'prepare_input', 'shape', 'Runner']

logger = logging.getLogger('convis')

show_progress = True
"""Show a progress bar (tqdm) on long ``run``/``optimize`` calls (10 chunks or more)."""

_local = threading.local()


def _call_depth():
    return getattr(_local, 'depth', 0)


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


def _check_states_finite(layer, before):
    """After a call of ``layer``: when a floating state became NaN or infinite, restores the states ``before``
    (a :meth:`Layer.get_state` snapshot) and raises a ValueError naming them (later chunks would inherit
    the NaN or infinity forever)."""
    # one sum over all states is NaN or infinite when any value is (or when large finite values overflow it)
    values = [v.detach().reshape(-1) for _, v in layer.named_states() if v is not None and v.is_floating_point()]
    if not values:
        return
    try:
        total = torch.cat(values).sum()
    except RuntimeError:  # states on several devices
        total = sum(v.sum().cpu() for v in values)
    if bool(torch.isfinite(total)):
        return
    bad = [path for path, v in layer.named_states()
           if v is not None and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        layer.set_state(before)
        raise ValueError('%s: the state %s became NaN or infinite in this call (the arithmetic overflowed: is the '
                         'input or a parameter far out of its range?); the state is restored to what it was '
                         'before the call' % (type(layer).__name__, ', '.join(bad)))


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
        from .utils import plot
        return plot(self[k], mode=mode, **kwargs)

    def __repr__(self):
        parts = ['%s: %s %s' % (k, tuple(o.shape) if hasattr(o, 'shape') else type(o).__name__,
                                str(getattr(o, 'dtype', '')).replace('torch.', ''))
                 for k, o in zip(self.keys, self._outs)]
        return 'Output(%s)' % '; '.join(parts)

    def _repr_html_(self):
        from .variable_describe import describe_html
        return describe_html(self)


def _first_output(o):
    return o[0] if isinstance(o, Output) else o


def _default_loss(target, output):
    """Sum of squared errors (the argument order, target first, follows the original toolbox).

    Output and target must have the same shape ``[batch, channel, time, x, y]``: a mismatch raises a
    ``ValueError`` that names both shapes and the likely fix (broadcasting would fit something else).
    """
    output = _first_output(output)
    target = _first_output(target)
    if tuple(output.shape) != tuple(target.shape):
        raise ValueError(_shape_mismatch_message(tuple(output.shape), tuple(target.shape)))
    return ((output - target) ** 2).sum()


def _shape_mismatch_message(out, target):
    """Why the model's output (shape ``out``) cannot be compared with the target, and what to change."""
    msg = ('the model output has shape %s but the target has shape %s; the default loss compares them '
           'element by element, so they must be equal' % (out, target))
    if len(out) == len(target) == 5:
        out_space, target_space = out[3] * out[4], target[3] * target[4]
        if out_space == 1 and target_space > 1:
            return msg + ('. The model gives one time series per channel (e.g. population=False): build it with '
                          'population=True for one response per pixel, or average the target over x and y')
        if out_space > 1 and target_space == 1:
            return msg + ('. The target is one time series: build the model with population=False (one receptive '
                          'field over the whole image), or give a target per pixel')
        if out[3:] != target[3:]:
            return msg + ('. The spatial sizes differ: give the target the input\'s size, or pad/crop it '
                          '(convis.utils.extend_to_match), or use a model that keeps the size (autopad)')
        if out[1] != target[1]:
            return msg + '. The numbers of channels differ: match the model\'s output channels to the target\'s'
    return msg + '. Make them match, or pass a loss_fn(target, output) that compares them'


class _OptimizerSelector(object):
    """``model.set_optimizer.<Name>(**kw)`` builds ``torch.optim.<Name>`` over the model's parameters.

    Tab-complete after ``set_optimizer.`` to see every optimizer.  The first argument may be a list of
    parameters; by default every parameter that requires a gradient is used.  ``LBFGS`` defaults to a
    strong-Wolfe line search, which keeps it stable on convex problems.  ``set_optimizer(instance)``
    selects an existing optimizer.
    """

    def __init__(self, layer):
        object.__setattr__(self, '_layer', layer)

    @staticmethod
    def _classes():
        return {name: c for name, c in vars(torch.optim).items()
                if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}

    def __dir__(self):
        return sorted(self._classes())

    def _build(self, cls, *args, **kwargs):
        layer = self._layer
        if args and not isinstance(args[0], (int, float)) and not isinstance(args[0], dict):
            params, args = list(args[0]), args[1:]
        else:
            params = [p for p in layer.parameters() if p.requires_grad]
        if not params:
            raise ValueError('the model has no parameters that require a gradient to optimize')
        if cls is torch.optim.LBFGS:
            kwargs.setdefault('line_search_fn', 'strong_wolfe')
        opt = cls(params, *args, **kwargs)
        layer._optimizer = opt
        return opt

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        classes = self._classes()
        if name not in classes:
            raise AttributeError('torch.optim has no optimizer %s; choices: %s'
                                 % (_short_repr(name), ', '.join(sorted(classes))))
        cls = classes[name]

        def make(*args, **kwargs):
            return self._build(cls, *args, **kwargs)
        make.__doc__ = cls.__doc__
        make.__name__ = name
        return make

    def __call__(self, opt, *args, **kwargs):
        if isinstance(opt, torch.optim.Optimizer):
            self._layer._optimizer = opt
            return opt
        if isinstance(opt, str):
            return getattr(self, opt)(*args, **kwargs)
        if inspect.isclass(opt) and issubclass(opt, torch.optim.Optimizer):
            return self._build(opt, *args, **kwargs)
        raise TypeError('set_optimizer takes an optimizer, an optimizer class or its name, not %s' % _short_repr(opt))

    def _reload(self):
        return self


class _FreezeOnInit(type):
    """Freezes a layer once its outermost ``__init__`` has returned (see :meth:`Layer.__setattr__`).

    Construction goes through ``type.__call__`` once, however many ``__init__`` s call
    ``super().__init__()``, so a subclass may assign anything in its ``__init__``.
    """

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        if isinstance(obj, Layer):
            obj.__dict__['_frozen'] = True
        return obj


class Layer(torch.nn.Module, metaclass=_FreezeOnInit):
    """Base class of every convis filter and model: a torch Module with state, chunked runs and fitting.

    Subclass it like a :class:`torch.nn.Module`::

        class Model(convis.Layer):
            def __init__(self):
                super().__init__()
                self.conv1 = convis.filters.Conv3d(1, 1, (20, 1, 1))
                self.conv2 = convis.filters.Conv3d(1, 1, (1, 10, 10))
            def forward(self, x):
                return torch.relu(self.conv2(torch.relu(self.conv1(x))))

    Attributes assigned as :class:`~convis.variables.Parameter` are parameters
    (with units and ranges), those assigned as :class:`~convis.variables.State`
    are states (carried from chunk to chunk).  Once built, a layer is frozen against
    typos: assigning a name that is not a parameter, state, sublayer or existing attribute
    raises an ``AttributeError`` that names the closest ones (``retina.opl.sigma_centre = 0.1``
    suggests ``sigma_center``).  New Parameters, States and sublayers may still be added, and
    names starting with ``_`` are free.  Calling a layer runs one chunk;
    ``run(x, dt=k)`` runs any length in chunks of ``k`` frames, under
    ``torch.no_grad``, with the same result as one call.
    """
    dims = 5

    def __init__(self, *args, **kwargs):
        super().__init__()
        lock_of(self)  # before any sublayer is assigned: sublayers join this lock
        object.__setattr__(self, '_state_defaults', OrderedDict())
        object.__setattr__(self, '_virtual_parameters', OrderedDict())
        self._state_stack = []
        self._parameter_stack = []
        self._optimizer_stack = []
        self._all_stack = []
        self._stored = {}
        self._optimizer = None
        self._use_cuda = False
        self._target = None
        self._resolution = None
        self._debug = False
        self.set_optimizer = _OptimizerSelector(self)

    # ------------------------------------------------------------------ attributes
    def __setattr__(self, name, value):
        if self.__dict__.get('_frozen') and not name.startswith('_') and not self._knows_attribute(name, value):
            raise AttributeError(self._unknown_attribute_message(name))
        states = self.__dict__.get('_state_defaults')
        if states is not None:
            if isinstance(value, State) or name in states:
                if name not in states:
                    self.register_state(name, value)
                else:
                    self._buffers[name] = None if value is None else _plain_tensor(value)
                return
            if isinstance(value, VirtualParameter):
                if not value.name:
                    value.name = name
                self._virtual_parameters[name] = value
                self.__dict__.pop(name, None)
                return
            if name in self._virtual_parameters:
                self._virtual_parameters[name].set(value)
                return
            params = self.__dict__.get('_parameters')
            if (params is not None and name in params and params[name] is not None
                    and not isinstance(value, torch.nn.Parameter) and value is not None):
                current = params[name]
                if hasattr(current, 'set'):
                    current.set(value)
                else:
                    with torch.no_grad():
                        current.copy_(torch.as_tensor(value, dtype=current.dtype))
                return
        if isinstance(value, Parameter) and not value.name:
            value.name = name
        super().__setattr__(name, value)

    _NEW_ATTRIBUTE_TYPES = (torch.nn.Module, torch.nn.Parameter, State, VirtualParameter)

    def _knows_attribute(self, name, value):
        """Whether a frozen layer accepts ``name = value``: a known name, or an explicit new Parameter,
        State or sublayer."""
        if isinstance(value, self._NEW_ATTRIBUTE_TYPES) or name in self.__dict__ or hasattr(type(self), name):
            return True
        d = self.__dict__
        return any(name in d.get(k, ()) for k in ('_parameters', '_buffers', '_modules', '_virtual_parameters'))

    def _attribute_names(self):
        d = self.__dict__
        names = set(d) | set(dir(type(self)))
        for k in ('_parameters', '_buffers', '_modules', '_virtual_parameters'):
            names.update(d.get(k, ()))
        return sorted(n for n in names if not n.startswith('_'))

    def _unknown_attribute_message(self, name):
        close = difflib.get_close_matches(name, self._attribute_names(), n=3, cutoff=0.6)
        hint = ('; did you mean %s?' % ' or '.join(repr(c) for c in close)) if close else ''
        return ('%s has no parameter, state, sublayer or attribute %r%s (a built layer accepts new names only '
                'for Parameters, States and sublayers; assign other attributes in __init__, or use a name '
                'starting with "_")' % (type(self).__name__, name[:80], hint))

    def __getattr__(self, name):
        vp = self.__dict__.get('_virtual_parameters')
        if vp is not None and name in vp:
            return vp[name]
        return super().__getattr__(name)

    def register_state(self, name, value=None, default=None):
        """Registers ``name`` as a state with an initial value (and the default ``clear_state`` restores).

        A state registered as ``None`` is created by the layer on its first forward call
        (its shape usually depends on the input); ``clear_state`` sets it back to ``None``.
        """
        t = None if value is None else _plain_tensor(value)
        if default is None and t is not None:
            default = t.detach().clone()
        elif default is not None:
            default = _plain_tensor(default).detach().clone()
        self.__dict__.pop(name, None)
        self._state_defaults[name] = default
        self._buffers[name] = t
        self._non_persistent_buffers_set.add(name)
        return t

    @property
    def lock(self):
        """The model's re-entrant lock (see :mod:`convis.locking`), shared by all layers of one model tree.

        Running the model, changing its state or parameters, the widgets and the Runner hold it; hold it
        yourself to make several calls atomic: ``with retina.lock: retina.clear_state(); retina.run(x)``.
        """
        return lock_of(self)

    # ------------------------------------------------------------------ devices
    @locked
    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)
        probe = fn(torch.zeros(1))
        self._target = (probe.device, probe.dtype if probe.is_floating_point() else None)
        for name, default in list(self._state_defaults.items()):
            if default is not None:
                self._state_defaults[name] = fn(default)
        return result

    def cuda(self, device=None):
        """Moves parameters and states to the GPU, in place (returns the layer)."""
        if not torch.cuda.is_available():
            raise RuntimeError('.cuda() was called, but no CUDA device is available (torch %s, CUDA %s). '
                               'Run on the CPU, or install a CUDA build of torch.' % (torch.__version__, torch.version.cuda))
        for m in self.modules():
            if isinstance(m, Layer):
                m._use_cuda = True
        return super().cuda(device)

    def cpu(self):
        """Moves parameters and states to the CPU, in place (returns the layer)."""
        for m in self.modules():
            if isinstance(m, Layer):
                m._use_cuda = False
        return super().cpu()

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and device.type == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError('.to(%r) was called, but no CUDA device is available' % str(device))
        for m in self.modules():
            if isinstance(m, Layer) and device is not None:
                m._use_cuda = device.type == 'cuda'
        return super().to(*args, **kwargs)

    @property
    def device(self):
        """The device of the layer's parameters and states."""
        return self._device_dtype()[0]

    @property
    def dtype(self):
        """The floating point type of the layer's parameters."""
        return self._device_dtype()[1]

    def _device_dtype(self):
        for p in self.parameters():
            if p.is_floating_point():
                return p.device, p.dtype
        for b in self.buffers():
            if b is not None and b.is_floating_point():
                return b.device, b.dtype
        if self._target is not None:
            return self._target[0], self._target[1] or torch.get_default_dtype()
        return torch.device('cpu'), torch.get_default_dtype()

    # ------------------------------------------------------------------ resolution
    @property
    def resolution(self):
        """The :class:`~convis.variables.Resolution` this layer converts physical units with.

        A layer without its own follows the global default; models pass theirs to all sublayers.
        """
        return self._resolution if self._resolution is not None else _default_resolution()

    @resolution.setter
    def resolution(self, res):
        self.set_resolution(res)

    def set_resolution(self, res=None, **kwargs):
        """Gives this layer and all its sublayers one shared resolution object, or changes single fields.

        ``set_resolution(Resolution(...))`` shares that object; ``set_resolution(steps_per_second=1000)``
        changes only the fields named (steps per second, pixels per degree, input luminosity range) and
        keeps the others; ``set_resolution()`` makes the layer follow the global default again.

        >>> retina.set_resolution(steps_per_second=1000)   # still 5 px/deg and a luminosity range of 255
        """
        if res is None:
            own = self._resolution
            res = own.copy(**kwargs) if kwargs and own is not None and own is not _default_resolution() \
                else Resolution(**kwargs)
        elif kwargs:
            raise TypeError('set_resolution takes a Resolution or fields (%s), not both' % ', '.join(sorted(kwargs)))
        elif not isinstance(res, Resolution):
            raise TypeError('resolution must be a convis.variables.Resolution, not %s' % _short_repr(res))
        for m in self.modules():
            if isinstance(m, Layer):
                m._resolution = res
        return res

    # ------------------------------------------------------------------ calling and running
    def _prepare_input(self, a):
        if isinstance(a, Output):
            a = a[0]
        if isinstance(a, (torch.Tensor, np.ndarray, list, tuple, int, float, np.number)):
            device, dtype = self._device_dtype()
            t = _as_tensor(a, dtype=dtype, device=device)
            if self.dims == 5:
                t = _model_5d(t)
            _check_finite(t)
            return t
        if _is_stream(a):
            raise TypeError('%s was called with a stream: use .run(stream, dt=..., max_t=...)' % type(self).__name__)
        return a

    @locked
    def __call__(self, *args, **kwargs):
        depth = _call_depth()
        if depth == 0 and self.dims is not None:
            args = tuple(self._prepare_input(a) for a in args)
        # the outermost call keeps the states from before: a call that fails (or whose arithmetic leaves a
        # state NaN or infinite) changes no state
        before = self.get_state() if depth == 0 else None
        _local.depth = depth + 1
        try:
            out = super().__call__(*args, **kwargs)
        except BaseException:
            if before is not None:
                self.set_state(before)
            raise
        finally:
            _local.depth = depth
        if before is not None:
            _check_states_finite(self, before)
        return out

    @locked
    def run(self, the_input, dt=None, t=0, detach=True, max_t=None, progress=None):
        """Runs the model over ``the_input`` in chunks of ``dt`` frames and returns an :class:`Output`.

        ``the_input`` may be a numpy array or tensor (1 to 5 dimensions, see ``make_tensor_5d``), an
        :class:`Output` (its first entry) or a stream (anything with ``get(n)``; give ``max_t`` when it has
        no length).  ``t`` is the first frame, ``max_t`` the frame to stop before.  The state carries from
        chunk to chunk, so the result equals one call on the whole input.

        With ``detach=True`` (the default) the run builds no autograd graph and memory stays flat over
        any length; ``detach=False`` keeps the graph through every chunk (for gradients).

        Bad values never poison later chunks: NaN or infinite input raises a ``ValueError`` before the chunk
        runs, and a chunk whose arithmetic leaves a state NaN or infinite (or that fails in any way) raises
        with the state restored to what it was before that chunk (the check costs two reductions over the
        states per chunk: about 0.1 ms for the default retina at 50x50 pixels).
        """
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        t = _check_frames('t', t)
        max_t = _check_frames('max_t', max_t, allow_none=True)
        grad_ctx = torch.no_grad() if detach else contextlib.nullcontext()
        collected, keys = [], None
        with grad_ctx:
            for chunk in self._chunks(the_input, dt, t, max_t, progress):
                o = self(chunk)
                outs, k = (list(o), o.keys) if isinstance(o, Output) else ([o], ['output'])
                if keys is None:
                    collected = [[] for _ in outs]
                keys = k
                for i, x in enumerate(outs):
                    collected[i].append(x.detach() if detach and isinstance(x, torch.Tensor) else x)
                if detach:
                    self.detach_state()
        if keys is None:
            raise ValueError('the input has no frames to run (t=%d, max_t=%s)' % (t, max_t))
        return Output([_join(c) for c in collected], keys=keys)

    def _chunks(self, the_input, dt, t, max_t, progress):
        """Yields 5-d chunks of the input (numpy or tensor slices, or frames read from a stream)."""
        if _is_stream(the_input):
            yield from _stream_chunks(the_input, dt, t, max_t, progress)
            return
        if isinstance(the_input, Output):
            the_input = the_input[0]
        if not isinstance(the_input, torch.Tensor):
            the_input = np.asarray(the_input)
            if the_input.dtype == object or the_input.dtype.kind not in 'biuf':
                raise TypeError('cannot run on input of dtype %s' % the_input.dtype)
        x = _model_5d(the_input)
        end = x.shape[2] if max_t is None else min(x.shape[2], max_t)
        for s, e in _progress(_chunk_bounds(t, end, dt), progress, 'run'):
            yield x[:, :, s:e]

    def forward(self, *args, **kwargs):
        raise NotImplementedError('%s does not define forward()' % type(self).__name__)

    # ------------------------------------------------------------------ state
    def _state_slots(self):
        for prefix, m in self.named_modules():
            if isinstance(m, Layer):
                for name in m._state_defaults:
                    yield (prefix + '.' + name if prefix else name), m, name

    def named_states(self):
        """(dotted name, tensor or None) for every state of the model."""
        return [(path, m._buffers[name]) for path, m, name in self._state_slots()]

    @locked
    def get_state(self):
        """A snapshot (copies) of every state, as an OrderedDict ``dotted.name -> tensor``."""
        return OrderedDict((path, None if m._buffers[name] is None else m._buffers[name].detach().clone())
                           for path, m, name in self._state_slots())

    @locked
    def set_state(self, d):
        """Sets states from a dict made by :meth:`get_state` (values are copied)."""
        slots = {path: (m, name) for path, m, name in self._state_slots()}
        unknown = [k for k in d if k not in slots]
        if unknown:
            raise KeyError('unknown state(s) %s; the model has %s' % (unknown, list(slots)))
        for k, v in d.items():
            m, name = slots[k]
            m._buffers[name] = None if v is None else _plain_tensor(v).detach().clone()

    @locked
    def push_state(self):
        """Pushes a snapshot of the state onto a stack (see :meth:`pop_state`)."""
        self._state_stack.append(self.get_state())

    @locked
    def pop_state(self):
        """Restores the state pushed last."""
        self.set_state(_pop(self._state_stack, 'pop_state'))

    @locked
    def clear_state(self):
        """Sets every state back to its default (the steady state a layer starts in)."""
        for path, m, name in self._state_slots():
            default = m._state_defaults[name]
            m._buffers[name] = None if default is None else default.clone()

    @locked
    def detach_state(self):
        """Cuts the autograd graph at the current state (truncated back-propagation)."""
        for path, m, name in self._state_slots():
            v = m._buffers[name]
            if v is not None and v.requires_grad:
                m._buffers[name] = v.detach()

    # ------------------------------------------------------------------ parameters
    def named_virtual_parameters(self):
        for prefix, m in self.named_modules():
            if isinstance(m, Layer):
                for name, vp in m._virtual_parameters.items():
                    yield (prefix + '.' + name if prefix else name), vp

    def init_all_parameters(self):
        """Pushes every VirtualParameter's value into what depends on it again (``init_var``); returns the layer."""
        for _, vp in self.named_virtual_parameters():
            vp.init_var()
        return self

    def get_parameters(self):
        """Every parameter's value as an OrderedDict ``dotted.name -> numpy array`` (lossless names)."""
        d = OrderedDict((name, p.detach().cpu().numpy().copy()) for name, p in self.named_parameters())
        for name, vp in self.named_virtual_parameters():
            v = np.asarray(vp.get()) if vp.get() is not None else None
            if v is not None and v.dtype.kind in 'biuf':
                d[name] = v
        return d

    def _parameter_slots(self):
        slots = OrderedDict(self.named_parameters())
        slots.update(self.named_virtual_parameters())
        return slots

    @locked
    def set_parameters(self, d, warn=False, strict=False):
        """Sets parameters from a dict ``name -> value`` (dotted names, or the flat ``_``-joined names of ``.p._all``).

        Every value is checked first (numeric, finite, of the parameter's shape, inside its bounds, of
        its kind); a bad one raises a ``ValueError`` (:class:`~convis.parameter_io.ParameterError`) and
        nothing changes.  Names that match no parameter and parameters missing from ``d`` are ignored,
        as in the original toolbox; ``warn=True`` (or ``self._debug``) reports them with a ``UserWarning``,
        ``strict=True`` raises a ``KeyError`` (and ``ValueError``) for them instead, setting nothing.
        """
        parameter_io.apply_values(self, d, warn=warn, strict=strict)

    def save_parameters(self, filename, filetype='npz'):
        """Saves every parameter to an npz file, one array per dotted parameter name."""
        if filetype != 'npz':
            raise ValueError('save_parameters supports filetype="npz" only, not %r' % (filetype,))
        np.savez(filename, **self.get_parameters())

    @locked
    def load_parameters(self, filename, filetype='npz', warn=False, strict=False):
        """Loads parameters saved by :meth:`save_parameters`: all of them, or none.

        Every member's declared shape and size is checked against its parameter before it is read (no
        pickles, members that are not parameters are not read), then every value as in
        :meth:`set_parameters`.  A damaged or foreign file raises a
        :class:`~convis.parameter_io.ParameterFileError` (a ``ValueError``) naming the file; names on either
        side that do not match are ignored (``warn``, ``strict`` as in :meth:`set_parameters`).
        """
        if filetype != 'npz':
            raise ValueError('load_parameters supports filetype="npz" only, not %r' % (filetype,))
        parameter_io.load_values(self, filename, warn=warn, strict=strict)

    @locked
    def push_parameters(self):
        """Pushes a copy of all parameter values onto a stack."""
        self._parameter_stack.append(self.get_parameters())

    @locked
    def pop_parameters(self):
        """Restores the parameter values pushed last."""
        parameter_io.apply_values(self, _pop(self._parameter_stack, 'pop_parameters'), same_shape=False)

    def push_optimizer(self):
        self._optimizer_stack.append(self._optimizer)

    def pop_optimizer(self):
        self._optimizer = _pop(self._optimizer_stack, 'pop_optimizer')

    def get_all(self):
        """Parameters, state and optimizer (with a copy of its internal state) in one dict."""
        opt = self._optimizer
        return {'parameters': self.get_parameters(), 'state': self.get_state(), 'optimizer': opt,
                'optimizer_state': None if opt is None else _clone_nested(opt.state_dict())}

    @locked
    def set_all(self, d):
        parameter_io.apply_values(self, d['parameters'], same_shape=False)
        self.set_state(d['state'])
        self._optimizer = d['optimizer']
        if d['optimizer'] is not None and d.get('optimizer_state') is not None:
            d['optimizer'].load_state_dict(_clone_nested(d['optimizer_state']))

    @locked
    def push_all(self):
        """Pushes parameters, state and optimizer onto a stack of their own."""
        self._all_stack.append(self.get_all())

    @locked
    def pop_all(self):
        self.set_all(_pop(self._all_stack, 'pop_all'))

    @locked
    def store_all(self, name):
        """Stores parameters, state and optimizer under ``name`` (see :meth:`retrieve_all`)."""
        self._stored[name] = self.get_all()

    @locked
    def retrieve_all(self, name):
        """Restores what :meth:`store_all` stored under ``name`` (the entry is kept)."""
        if name not in self._stored:
            raise KeyError('nothing stored as %s; stored: %s' % (_short_repr(name), list(self._stored)))
        self.set_all(self._stored[name])

    def fit_parameters(self, names):
        """Chooses the parameters to fit: those named (dotted names like ``'opl.sigma_center'``, or the
        Parameters themselves, e.g. from ``.p``) require a gradient, every other one does not.

        Returns the list of chosen Parameters (give it to ``set_optimizer.<Name>(...)``, or let the optimizer
        take every parameter that requires a gradient).  An unknown name raises a ``KeyError`` naming the
        closest ones.  See :mod:`convis.fitting`.
        """
        from .fitting import fit_parameters
        return fit_parameters(self, names)

    def requires_grad_(self, requires_grad=True):
        """Sets whether every (floating point) parameter is fitted; returns the layer."""
        for p in self.parameters():
            if p.is_floating_point():
                p.requires_grad_(requires_grad)
        return self

    @locked
    def parse_config(self, config, prefix='', key='retina_config_key'):
        """Sets every parameter that has a configuration key from ``config`` (anything with ``get(dotted_key)``).

        Keys missing from the configuration keep their current value (a :class:`~convis.retina.Retina`
        gives them their defaults); every value is checked before any is set, and an invalid one raises a
        ``ValueError`` naming the key, with nothing changed.  A configured value becomes the parameter's
        default (what ``reset`` and the widgets' reset buttons return to).
        """
        parameter_io.configure_values(self, config, prefix, key)

    # ------------------------------------------------------------------ trees
    @property
    def p(self):
        """Tab-completable tree of all parameters: ``model.p.bipolar.g_leak``; assign to set a value."""
        return Ox.from_dotted(self._parameter_slots().items(), doc='Parameters of the model (see also .user_parameters)')

    @property
    def user_parameters(self):
        """The parameters a user can set (those with a ``set`` method), as a tree."""
        return Ox.from_dotted([(n, p) for n, p in self._parameter_slots().items() if hasattr(p, 'set')],
                              doc='Parameters of the model that can be set by the user')

    @property
    def m(self):
        """Tab-completable tree of all sub-modules (the model itself is ``_self``)."""
        return Ox.from_dotted([(n if n else '_self', m) for n, m in self.named_modules()], doc='Modules of the model')

    @property
    def s(self):
        """Tab-completable tree of all states (current values)."""
        return Ox.from_dotted(self.named_states(), doc='Current state of the model')

    # ------------------------------------------------------------------ fitting
    def _as_model_tensor(self, x, missing=False):
        """``x`` as a tensor of the model's dtype and device; with ``missing``, NaN marks an entry that was not
        recorded (targets: the losses of :mod:`convis.losses` leave it out) and only infinities are refused."""
        device, dtype = self._device_dtype()
        t = _as_tensor(x, dtype=dtype, device=device)
        if self.dims == 5:
            t = _model_5d(t)
        _check_finite(torch.where(torch.isnan(t), torch.zeros_like(t), t) if missing else t,
                      'the target' if missing else 'input')
        return t

    def _fit_chunks(self, inp, outp, dt, t):
        x = self._as_model_tensor(inp).detach()  # data: a graph that made them (e.g. y = goal_model(x)) is not fitted
        y = self._as_model_tensor(outp, missing=True).detach()
        if x.shape[2] != y.shape[2]:
            raise ValueError('input has %d frames but the target has %d' % (x.shape[2], y.shape[2]))
        return x, y, _chunk_bounds(t, x.shape[2], dt)

    @locked
    def optimize(self, inp, outp, optimizer=None, loss_fn=None, dt=None, t=0, t_skip=0, progress=None):
        """Fits the parameters so that the output for ``inp`` approaches ``outp``; returns the loss per chunk.

        Uses the optimizer chosen with ``set_optimizer`` (or ``optimizer``).  Each call starts from the
        cleared state, runs ``[t, t_skip)`` without fitting (warm-up), then makes one optimizer step per
        chunk of ``dt`` frames (truncated back-propagation: the state is carried, the graph is cut at chunk
        boundaries).  ``loss_fn(target, output)`` defaults to the sum of squared errors.  After each step the
        parameters are clipped into their hard ``bounds`` (a NaN parameter raises).  The model's state
        is restored afterwards.  Without ``dt`` the whole input is one chunk and one loss is returned.
        """
        optimizer = optimizer if optimizer is not None else self._optimizer
        if optimizer is None:
            raise RuntimeError('no optimizer selected: call e.g. model.set_optimizer.Adam() first, '
                               'or pass optimizer=...')
        loss_fn = loss_fn or _default_loss
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        x, y, chunks = self._fit_chunks(inp, outp, dt, _check_frames('t', t))
        t_skip = _check_frames('t_skip', t_skip)
        losses = []
        self.push_state()
        self.clear_state()
        try:
            for s, e in _progress(chunks, progress, 'optimize'):
                xc, yc = x[:, :, s:e], y[:, :, s:e]
                if e <= t_skip:
                    with torch.no_grad():
                        self(xc)
                    continue
                start_state = self.get_state()

                def closure():
                    self._enforce_bounds()  # a line search may try values out of bounds: the loss sees them clipped
                    self.set_state(start_state)
                    optimizer.zero_grad()
                    loss = loss_fn(yc, self(xc))
                    loss.backward()
                    return loss
                loss = optimizer.step(closure)
                self._enforce_bounds()
                self.detach_state()
                losses.append(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))
        finally:
            self.pop_state()
        return losses if dt is not None else (losses[0] if losses else None)

    def _enforce_bounds(self):
        """After an optimizer step: clips every parameter into its hard bounds; a NaN parameter is an error."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if not p.is_floating_point():
                    continue
                if bool(torch.isnan(p).any()):
                    raise RuntimeError('parameter %s became NaN during fitting (try a smaller learning rate)' % name)
                lo, hi = getattr(p, 'bounds', (None, None))
                if lo is not None or hi is not None:
                    p.clamp_(min=lo, max=hi)

    @locked
    def compute_loss(self, inp, outp, loss_fn=None, dt=None, t=0):
        """The loss per chunk of ``dt`` frames (like :meth:`optimize`, without changing anything).

        Starts from the cleared state, restores the model's state afterwards and computes no gradients.
        """
        loss_fn = loss_fn or _default_loss
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        x, y, chunks = self._fit_chunks(inp, outp, dt, _check_frames('t', t))
        losses = []
        self.push_state()
        self.clear_state()
        try:
            with torch.no_grad():
                for s, e in chunks:
                    losses.append(float(loss_fn(y[:, :, s:e], self(x[:, :, s:e]))))
        finally:
            self.pop_state()
        return losses if dt is not None else losses[0]

    # ------------------------------------------------------------------ impulse responses and display
    def adapting_luminance(self):
        """The uniform luminance (input units) the model starts adapted to after :meth:`clear_state`.

        A layer that starts in the steady state of a uniform screen says so with an ``init_luminance``
        attribute (None: half the ``input_luminosity_range``, as the retina's OPL does); the first such
        layer found in :meth:`modules` order answers.  0 for models without one.
        """
        for m in self.modules():
            if isinstance(m, Layer) and hasattr(m, 'init_luminance'):
                lum = m.init_luminance
                return float(m.resolution.input_luminosity_range / 2 if lum is None else lum)
        return 0.0

    @locked
    def impulse_response(self, shp=(500, 10, 10), dt=500, amplitude=1.0, background=None):
        """The response to an impulse at the centre of the first frame, relative to the background's response.

        .. math:: r = M(b + a\\,\\delta_{t,0}\\delta_{i,c_x}\\delta_{j,c_y}) - M(b)

        Both runs start from the cleared state on a uniform ``(t, x, y)`` screen of luminance ``b``
        (``background``, input units; default :meth:`adapting_luminance`, the grey the model starts
        adapted to), so a model that adapts to grey shows its true impulse response and not its
        reaction to a screen going dark.  ``amplitude`` is the height of the impulse (input units).
        The model's state is preserved (pushed and popped).  Returns an :class:`Output` of differences
        (of spike counts, for spiking outputs: a single noisy trial).
        """
        if len(shp) != 3:
            raise ValueError('shp must be (t, x, y), not %s' % _short_repr(shp))
        b = self.adapting_luminance() if background is None else float(background)
        if not (np.isfinite(b) and np.isfinite(amplitude)):
            raise ValueError('background (%r) and amplitude (%r) must be finite' % (b, amplitude))
        grey = np.full(shp, b, dtype=np.float32)
        x = grey.copy()
        x[0, shp[1] // 2, shp[2] // 2] += amplitude
        self.push_state()
        try:
            self.clear_state()
            o = self.run(x, dt=dt)
            self.clear_state()
            o_grey = self.run(grey, dt=dt)
        finally:
            self.pop_state()
        return Output([a - g for a, g in zip(o, o_grey)], keys=o.keys)

    def plot_impulse(self, shp=(500, 10, 10), dt=500):
        """Plots the temporal response at the centre to a one-frame impulse; returns the :class:`Output`."""
        from .utils import plot_5d_time
        o = self.impulse_response(shp, dt)
        for k in range(len(o)):
            out = o[k]
            cx, cy = out.shape[3] // 2, out.shape[4] // 2
            plot_5d_time(out[:, :, :, cx:cx + 1, cy:cy + 1], mean=(3, 4))
        return o

    def plot_impulse_space(self, shp=(1, 20, 20), dt=500):
        """Plots the spatial response to a one-frame impulse; returns the :class:`Output`."""
        from .utils import plot_5d_matshow
        o = self.impulse_response(shp, dt)
        plot_5d_matshow(o[0][:, :, :10])
        return o

    def _repr_html_(self):
        from .variable_describe import describe_html
        return describe_html(self)


Model = Layer


def _default_resolution():
    from .variables import default_resolution
    return default_resolution


def _pop(stack, what):
    if not stack:
        raise IndexError('%s: nothing was pushed' % what)
    return stack.pop()


def _plain_tensor(v):
    if isinstance(v, torch.Tensor):
        return v.as_subclass(torch.Tensor) if type(v) is not torch.Tensor else v
    return torch.as_tensor(np.asarray(v, dtype=np.float32))


def _clone_nested(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: _clone_nested(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_clone_nested(v) for v in x)
    return x


def _check_frames(name, v, allow_none=False, positive=False):
    if v is None:
        if allow_none:
            return None
        raise ValueError('%s must be given' % name)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)):
        raise TypeError('%s must be a number of frames, not %s' % (name, _short_repr(v)))
    if isinstance(v, (float, np.floating)) and not float(v).is_integer():
        raise ValueError('%s must be a whole number of frames, not %s' % (name, _short_repr(v)))
    v = int(v)
    if v < 0 or (positive and v == 0):
        raise ValueError('%s must be %s number of frames, not %d' % (name, 'a positive' if positive else 'a non-negative', v))
    return v


def _chunk_bounds(t, end, dt):
    """``(start, stop)`` frame pairs covering ``[t, end)`` in chunks of ``dt`` frames (one chunk without dt)."""
    step = dt if dt is not None else max(end - t, 1)
    return [(s, min(s + step, end)) for s in range(t, end, step)]


def _join(chunks):
    if len(chunks) == 1:
        return chunks[0]
    if all(isinstance(c, torch.Tensor) for c in chunks):
        return torch.cat(chunks, dim=2)
    return chunks


def _progress(iterable, progress, desc):
    n = len(iterable)
    if progress is None:
        progress = show_progress and n >= 10
    if not progress:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, unit='chunk', leave=False)


def _stream_chunks(stream, dt, t, max_t, progress):
    """Reads exactly the requested frames from a stream, chunk by chunk."""
    try:
        length = len(stream)
    except TypeError:
        length = None
    end = length if max_t is None else (max_t if length is None else min(length, max_t))
    if end is None:
        raise ValueError('the stream has no defined end: give max_t (the number of frames to run)')
    for s, e in _progress(_chunk_bounds(t, end, dt), progress, 'run'):
        frames = stream.get(e - s)
        if frames is None:
            return
        if not isinstance(frames, torch.Tensor):
            frames = np.asarray(frames)
        frames = _model_5d(frames)
        if frames.shape[2] == 0:
            return
        yield frames


from .runner import Runner  # noqa: E402  (the runner builds on Layer)
