"""The convis base class :class:`Layer`: a :class:`torch.nn.Module` with state, chunked runs and fitting.

A :class:`Layer` keeps a *state* (the memory of its filters), runs long inputs chunk by chunk with
``run(x, dt=...)`` (with results equal to one whole call) or ``run_iter`` (one output per chunk),
offers tab-completable parameter trees (``.p .m .s .user_parameters``, from
:class:`~convis.layer_parameters.LayerParameters`), and fits itself to data (``set_optimizer``,
``optimize``, ``compute_loss``, from :class:`~convis.optimizing.Optimizing`).

>>> import convis
>>> m = convis.models.LN((10, 5, 5))
>>> o = m.run(convis.samples.moving_grating(2000), dt=500)
>>> o[0].shape
torch.Size([1, 1, 2000, 20, 20])
"""
import contextlib
import difflib
import logging
import threading
from collections import OrderedDict

import numpy as np
import torch

from . import variables
from .chunking import _check_frames, _chunk_bounds, _join, _progress, _stream_chunks
from .layer_parameters import LayerParameters
from .locking import lock_of, locked
from .optimizing import Optimizing, _OptimizerSelector, _pop
from .output import Output, _as_tensor, _check_finite, _is_stream, _model_5d
from .plotting import plot_5d_matshow, plot_5d_time
from .tensors import _short_repr
from .variables import Parameter, Resolution, State, VirtualParameter, _describe_html

__all__ = ['Layer', 'Model']

logger = logging.getLogger('convis')


_local = threading.local()


def _call_depth():
    return getattr(_local, 'depth', 0)


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


class Layer(LayerParameters, Optimizing, torch.nn.Module, metaclass=_FreezeOnInit):
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
                with lock_of(self):
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
                with lock_of(self):
                    self._virtual_parameters[name].set(value)
                return
            params = self.__dict__.get('_parameters')
            if (params is not None and name in params and params[name] is not None
                    and not isinstance(value, torch.nn.Parameter) and value is not None):
                current = params[name]
                with lock_of(self):              # a parameter changes only between runs
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
        d = self.__dict__
        if name in d or name in d['_buffers'] or name in d['_parameters'] or name in d['_modules'] \
                or name in d.get('_virtual_parameters', ()):
            return True
        return hasattr(type(self), name) or isinstance(value, self._NEW_ATTRIBUTE_TYPES)

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
        grad_ctx = torch.no_grad() if detach else contextlib.nullcontext()
        collected, keys = [], None
        with grad_ctx:
            for o in self.run_iter(the_input, dt=dt, t=t, detach=detach, max_t=max_t, progress=progress):
                if keys is None:
                    collected = [[] for _ in o]
                keys = o.keys
                for i, x in enumerate(o):
                    collected[i].append(x)
        if keys is None:
            raise ValueError('the input has no frames to run (t=%d, max_t=%s)' % (t, max_t))
        return Output([_join(c) for c in collected], keys=keys)

    def run_iter(self, the_input, dt=None, t=0, detach=True, max_t=None, progress=None):
        """Runs the model chunk by chunk like :meth:`run`, yielding one :class:`Output` per chunk of ``dt`` frames.

        The arguments are those of :meth:`run` (checked at once, before the first chunk); joined along time
        the outputs equal ``run``'s.  Stop early by leaving the loop (or calling ``close()`` on the iterator):
        nothing more runs, and the state is the one after the last chunk run.  The model's lock is held
        during each chunk only, so another thread may use the model between two chunks.

        >>> for o in retina.run_iter(x, dt=500):
        ...     rate.append(o[0].mean())
        ...     if cancelled:
        ...         break
        """
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        t = _check_frames('t', t)
        max_t = _check_frames('max_t', max_t, allow_none=True)
        return self._iter_chunks(self._chunks(the_input, dt, t, max_t, progress), detach)

    def _iter_chunks(self, chunks, detach):
        for chunk in chunks:
            with self.lock, (torch.no_grad() if detach else contextlib.nullcontext()):
                o = self(chunk)
                outs, keys = (list(o), o.keys) if isinstance(o, Output) else ([o], ['output'])
                if detach:
                    outs = [x.detach() if isinstance(x, torch.Tensor) else x for x in outs]
                    self.detach_state()
            yield Output(outs, keys=keys)

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

    @contextlib.contextmanager
    def fresh_state(self):
        """A block that runs from the cleared state; the state from before is restored after it, also when it raises.

        Holds the model's lock for the whole block.  It replaces ``push_state(); clear_state(); try: ...
        finally: pop_state()``:

        >>> with retina.fresh_state():
        ...     o = retina.run(x, dt=500)    # as a new retina would; retina keeps the state it had before
        """
        with self.lock:
            self.push_state()
            try:
                self.clear_state()
                yield self
            finally:
                self.pop_state()

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
        with self.fresh_state():
            o = self.run(x, dt=dt)
            self.clear_state()
            o_grey = self.run(grey, dt=dt)
        return Output([a - g for a, g in zip(o, o_grey)], keys=o.keys)

    def plot_impulse(self, shp=(500, 10, 10), dt=500):
        """Plots the temporal response at the centre to a one-frame impulse; returns the :class:`Output`."""
        o = self.impulse_response(shp, dt)
        for k in range(len(o)):
            out = o[k]
            cx, cy = out.shape[3] // 2, out.shape[4] // 2
            plot_5d_time(out[:, :, :, cx:cx + 1, cy:cy + 1], mean=(3, 4))
        return o

    def plot_impulse_space(self, shp=(1, 20, 20), dt=500):
        """Plots the spatial response to a one-frame impulse; returns the :class:`Output`."""
        o = self.impulse_response(shp, dt)
        plot_5d_matshow(o[0][:, :, :10])
        return o

    def _repr_html_(self):
        return _describe_html(self)


Model = Layer


def _default_resolution():
    return variables.default_resolution


def _plain_tensor(v):
    if isinstance(v, torch.Tensor):
        return v.as_subclass(torch.Tensor) if type(v) is not torch.Tensor else v
    return torch.as_tensor(np.asarray(v, dtype=np.float32))
