"""Parameters, states and the resolution that turns physical units into steps.

A :class:`Parameter` is a :class:`torch.nn.Parameter` that also knows what it
means: a doc string, a physical unit, the VirtualRetina configuration key it
maps to, hard bounds and a scale hint (``'linear'`` or ``'log'``) for sliders.

A :class:`State` marks a tensor that a layer carries from one chunk of input to
the next (the memory of a filter).  Layers register states automatically when a
``State`` is assigned as an attribute.

A :class:`Resolution` converts seconds and degrees into steps and pixels; it and
the global default resolution live in :mod:`convis.resolution` and are
re-exported here (``convis.variables.Resolution`` keeps working).
"""
import copy
import html
import math

import numpy as np
import torch

from .resolution import (_BUILT_IN_RESOLUTION, Resolution, ResolutionInfo, default_resolution,  # noqa: F401
                         reset_default_resolution, set_pixel_per_degree, set_steps_per_second,
                         user_default_resolution)

__all__ = ['Variable', 'Parameter', 'State', 'VirtualParameter', 'Resolution', 'as_parameter',
           'is_variable', 'default_resolution', 'set_steps_per_second', 'set_pixel_per_degree',
           'user_default_resolution', 'reset_default_resolution', 'create_hierarchical_dict',
           'create_hierarchical_dict_with_nodes', 'create_hierarchical_Ox',
           'create_Ox_from_torch_iterator_dicts', 'dict_with_dots_to_hierarchical_dict']


_HTML_DESCRIBERS = []
"""Where :mod:`convis.variable_describe` registers ``describe_html`` when it is imported (``import convis`` does):
the core types show themselves in notebooks with it, without importing the display code that builds on them."""


def _describe_html(x):
    """The notebook HTML of ``x``: the registered describer's, or the escaped ``repr`` when none is registered."""
    if _HTML_DESCRIBERS:
        return _HTML_DESCRIBERS[-1](x)
    return '<pre>%s</pre>' % html.escape(repr(x))


def _to_tensor(value, like=None):
    """Converts numbers, numeric strings, sequences, arrays and tensors into a tensor."""
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in '.e') else int(value)
        except ValueError:
            raise ValueError('cannot interpret %r as a number' % value) from None
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError('cannot convert %r to a tensor' % (value,))
        t = torch.as_tensor(arr)
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
    elif not t.is_floating_point() and t.dtype != torch.bool:
        t = t.to(torch.get_default_dtype())
    elif t.dtype == torch.float64:
        t = t.to(torch.get_default_dtype())
    return t


parameter_set_hooks = []
"""Callables ``hook(parameter)`` called after every :meth:`Parameter.set` (widgets follow values with it)."""


class Parameter(torch.nn.Parameter):
    """A model parameter with a physical meaning.

    ``Parameter(x, default=None, **kw)`` wraps a number, an array or a tensor.
    Numbers become 1-element tensors of shape ``(1,)``.

    Keyword arguments (all optional):

    doc : str
        what the parameter does
    unit : str
        physical unit ('s', 'deg', 'Hz', ...; '' for dimensionless)
    retina_config_key : str
        the VirtualRetina XML key the value is read from (``config_key`` is an alias)
    bounds : (min, max)
        hard limits; setting a value outside raises a ``ValueError``.  Either may be None.
    slider_range : (min, max)
        a range a slider should offer (defaults to something around the value)
    scale : 'linear' or 'log'
        how a slider should move through the range
    kind : 'float', 'int', 'bool' or 'choice'
        what values mean: a number, a whole number, a switch (0 off, 1 on) or one of ``choices``
        (default: 'int' for integer data, 'choice' when ``choices`` are given, else 'float').
        Every element of a value must fit its kind; widgets show a slider, an integer slider,
        a checkbox or a dropdown.
    choices : dict or sequence
        the values allowed, ``{label: value}`` or a sequence of values (labelled ``'%g'``); for
        'bool' the default is ``{'off': 0, 'on': 1}``; leave out a value a model does not implement
    symbol : str
        the symbol of the equations (``'σ_C'``: what follows ``_`` is a subscript); widgets label
        the parameter with it
    requires_grad : bool
        whether the parameter is fitted (default True)

    Bounds and slider ranges must be finite numbers (None for no bound), and values finite.
    Other keyword arguments become attributes.

    Examples
    --------
    >>> tau = Parameter(0.01, doc='time constant of the centre', unit='s', bounds=(0, None), scale='log')
    >>> tau.set(0.02)
    >>> float(tau)
    0.02
    >>> sign = Parameter(1.0, kind='choice', choices={'ON': 1, 'OFF': -1})
    >>> sign.set(0.37)
    Traceback (most recent call last):
    ValueError: parameter: 0.37 is not one of the choices ON (1), OFF (-1)
    """

    def __new__(cls, x=0.0, default=None, requires_grad=True, **kwargs):
        data = _to_tensor(x)
        if data.dim() == 0:
            data = data.reshape(1)
        if requires_grad and not data.is_floating_point():
            requires_grad = False
        obj = torch.nn.Parameter.__new__(cls, data, requires_grad)
        return obj

    def __init__(self, x=0.0, default=None, requires_grad=True, doc='', unit='', bounds=(None, None),
                 scale='linear', slider_range=None, retina_config_key=None, config_key=None, kind=None,
                 choices=None, **kwargs):
        self.doc = doc
        self.unit = unit
        self.bounds = _finite_pair('bounds', bounds, allow_none=True) if bounds is not None else (None, None)
        if scale not in ('linear', 'log'):
            raise ValueError("scale must be 'linear' or 'log', not %r" % (scale,))
        self.scale = scale
        self.slider_range = _finite_pair('slider_range', slider_range) if slider_range is not None else None
        self.kind, self.choices = _kind_and_choices(kind, choices, self.data)
        self.retina_config_key = retina_config_key if retina_config_key is not None else config_key
        self.name = kwargs.pop('name', '')
        for k, v in kwargs.items():
            setattr(self, k, v)
        self._check_bounds(self.data)
        self.default = np.array(self.data.detach().cpu().numpy()) if default is None else np.array(default)

    @property
    def name(self):
        """The attribute name the parameter was assigned to."""
        return self.__dict__.get('_name', '')

    @name.setter
    def name(self, v):
        self.__dict__['_name'] = v

    @property
    def config_key(self):
        """Alias of ``retina_config_key``."""
        return self.retina_config_key

    def _meta(self):
        return dict(self.__dict__)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self).__new__(type(self), self.data.clone(), requires_grad=self.requires_grad)
        memo[id(self)] = result
        result.__dict__.update(copy.deepcopy(self._meta(), memo))
        return result

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (type(self), self.data.detach().cpu(), self.requires_grad, self._meta()))

    def __repr__(self):
        unit = ' %s' % self.unit if self.unit else ''
        name = self.name or 'Parameter'
        values = self.data.detach().cpu().numpy()
        shown = np.array2string(values.ravel()[:6], precision=6, separator=', ')
        return '%s(%s%s%s, shape=%s)' % (name, shown, '...' if values.size > 6 else '', unit, tuple(values.shape))

    def __array__(self, dtype=None, copy=None):
        a = self.data.detach().cpu().numpy()
        return a.astype(dtype) if dtype is not None else a

    def __float__(self):
        return float(self.detach())

    def _repr_html_(self):
        return _describe_html(self)

    def _check_bounds(self, t):
        """Raises a ValueError unless every element of ``t`` is finite, inside the bounds and fits the kind."""
        lo, hi = self.bounds
        if t.numel() == 0 or t.dtype == torch.bool:
            return
        name = self.name or 'parameter'
        if t.is_floating_point():
            if torch.isnan(t).any():
                raise ValueError('%s: value is NaN' % name)
            if not torch.isfinite(t).all():
                raise ValueError('%s: %g is not finite' % (name, float(t[~torch.isfinite(t)].reshape(-1)[0])))
        choices = getattr(self, 'choices', None)
        if choices:
            dtype = t.dtype if t.is_floating_point() else torch.float64
            allowed = torch.tensor(list(choices.values()), dtype=dtype, device=t.device)
            bad = ~(t.reshape(-1, 1).to(dtype) == allowed).any(dim=1)
            if bad.any():
                raise ValueError('%s: %g is not one of the choices %s' % (
                    name, float(t.reshape(-1)[bad][0]), ', '.join('%s (%g)' % kv for kv in choices.items())))
        elif getattr(self, 'kind', 'float') == 'int' and t.is_floating_point() and (t != torch.round(t)).any():
            raise ValueError('%s: %g is not a whole number' % (name, float(t[t != torch.round(t)].reshape(-1)[0])))
        if lo is not None and float(t.min()) < lo:
            raise ValueError('%s: %g is below the lower bound %g%s' % (
                self.name or 'parameter', float(t.min()), lo, ' ' + self.unit if self.unit else ''))
        if hi is not None and float(t.max()) > hi:
            raise ValueError('%s: %g is above the upper bound %g%s' % (
                self.name or 'parameter', float(t.max()), hi, ' ' + self.unit if self.unit else ''))

    def set(self, value):
        """Sets the value in place (numbers, numeric strings, arrays or tensors).

        The Parameter object stays the same, so optimizers that hold it keep working.
        A value of the same number of elements keeps the shape; another shape replaces the data.
        """
        new = _to_tensor(value, like=self.data)
        self._check_bounds(new)
        with torch.no_grad():
            if new.numel() == self.data.numel():
                self.data.copy_(new.reshape(self.data.shape))
            else:
                self.data = new.clone()
        for hook in tuple(parameter_set_hooks):
            hook(self)
        return self

    def get(self):
        """Returns the value as a numpy array."""
        return self.data.detach().cpu().numpy().copy()

    def reset(self):
        """Sets the parameter back to its default value."""
        return self.set(self.default)

    def configure(self, value):
        """Sets the value and makes it the default (what :meth:`reset` returns to), as a configuration does.

        >>> sign = Parameter(1.0)
        >>> sign.configure(-1).set(1).reset()      # back to the configured -1, not the constructor's 1
        """
        self.set(value)
        self.default = self.get()
        return self

    def requires_grad_(self, requires_grad=True):
        """Changes in place whether this parameter is fitted."""
        super().requires_grad_(requires_grad)
        return self


def _finite_pair(what, pair, allow_none=False):
    """``(low, high)`` as floats, checked: finite (or None where allowed) and ``low <= high``."""
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise ValueError('%s must be a pair (low, high), not %.60r' % (what, pair)) from None
    out = []
    for v in (lo, hi):
        if v is None and allow_none:
            out.append(None)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError('%s must hold numbers, not %.60r' % (what, v)) from None
        if not math.isfinite(f):
            raise ValueError('%s must be finite numbers%s, not %r'
                             % (what, ' (None for no bound)' if allow_none else '', f))
        out.append(f)
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise ValueError('%s: the low end %g is above the high end %g' % (what, out[0], out[1]))
    return tuple(out)


_KINDS = ('float', 'int', 'bool', 'choice')


def _kind_and_choices(kind, choices, data):
    """The checked ``kind`` and ``choices`` (an ordered ``{label: float value}`` or None) of a Parameter."""
    if kind is None:
        kind = 'choice' if choices is not None else ('int' if not data.is_floating_point() else 'float')
    if kind not in _KINDS:
        raise ValueError('kind must be one of %s, not %.60r' % (', '.join(_KINDS), kind))
    if kind == 'bool' and choices is None:
        choices = {'off': 0, 'on': 1}
    if kind in ('float', 'int') and choices is not None:
        raise ValueError("choices need kind='choice' or 'bool', not %r" % kind)
    if choices is None:
        if kind == 'choice':
            raise ValueError("kind='choice' needs choices")
        return kind, None
    pairs = choices.items() if hasattr(choices, 'items') else [('%g' % float(v), v) for v in choices]
    out = {}
    for label, v in pairs:
        f = float(v)
        if not math.isfinite(f) or (kind == 'bool' and f not in (0.0, 1.0)):
            raise ValueError('choice %r: %r is not %s' % (label, v, 'finite' if kind != 'bool' else '0 or 1'))
        out[str(label)] = f
    if not out:
        raise ValueError('choices must not be empty')
    return kind, out


def _rebuild_parameter(cls, data, requires_grad, meta):
    p = cls.__new__(cls, data, requires_grad=requires_grad)
    p.__dict__.update(meta)
    return p


as_parameter = Parameter


class _VariableMeta(type(torch.Tensor)):
    """Makes every convis variable (Parameter, State, VirtualParameter) an instance of :class:`Variable`."""

    def __instancecheck__(cls, obj):
        if super().__instancecheck__(obj):
            return True
        return cls is Variable and isinstance(obj, (Parameter, VirtualParameter))

    def __subclasscheck__(cls, sub):
        if super().__subclasscheck__(sub):
            return True
        return cls is Variable and isinstance(sub, type) and issubclass(sub, (Parameter, VirtualParameter))


class Variable(torch.Tensor, metaclass=_VariableMeta):
    """A tensor that carries what it means: extra keyword arguments become attributes.

    ``Variable(x=0.0, requires_grad=False, **kw)`` wraps a number, array or tensor (numbers keep
    their 0-d shape).  ``doc``, ``unit`` or ``retina_config_key`` are the usual keywords.  Every
    :class:`Parameter`, :class:`State` and :class:`VirtualParameter` counts as a Variable
    (``isinstance(p, Variable)``), and :func:`is_variable` tells them from plain tensors.
    Operations on a Variable give plain tensors.

    >>> v = Variable([1.0, 2.0], doc='gain of each channel', unit='')
    >>> v.set([3.0, 4.0]).get()
    array([3., 4.], dtype=float32)
    """
    __torch_function__ = torch._C._disabled_torch_function_impl
    _is_convis_variable = True

    def __new__(cls, x=0.0, requires_grad=False, **kwargs):
        data = _to_tensor(0.0 if x is None else x)
        obj = torch.Tensor._make_subclass(cls, data, bool(requires_grad) and data.is_floating_point())
        obj.doc = kwargs.pop('doc', '')
        for k, v in kwargs.items():
            setattr(obj, k, v)
        return obj

    def set(self, value):
        """Replaces the value in place (numbers, numeric strings, arrays or tensors); returns the Variable.

        A value with the same number of elements keeps the shape; another shape replaces the data.
        """
        new = _to_tensor(value, like=self.data)
        with torch.no_grad():
            if new.numel() == self.data.numel():
                self.data.copy_(new.reshape(self.data.shape))
            else:
                self.data = new.clone()
        return self

    def get(self):
        """A numpy copy of the value."""
        return self.data.detach().cpu().numpy().copy()

    def __array__(self, dtype=None, copy=None):
        a = self.data.detach().cpu().numpy()
        return a.astype(dtype) if dtype is not None else a

    def __repr__(self):
        values = self.data.detach().cpu().numpy()
        shown = np.array2string(values.ravel()[:6], precision=6, separator=', ')
        doc = getattr(self, 'doc', '')
        return '%s(%s%s, shape=%s%s)' % (type(self).__name__, shown, '...' if values.size > 6 else '',
                                        tuple(values.shape), ', doc=%r' % doc[:60] if doc else '')

    def _repr_html_(self):
        return _describe_html(self)


class State(Variable):
    """Marks a tensor as the state of a layer (memory carried between chunks).

    Assigning a ``State`` to a layer attribute registers it: it is then part of
    ``get_state``/``set_state``/``push_state``/``pop_state``/``clear_state``,
    moves with ``.cuda()``/``.to()``, and is detached between chunks of ``run``.
    Later assignments of plain tensors to the same name keep it a state.

    >>> class Integrator(convis.Layer):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.total = State(torch.zeros(1))
    """

    def __new__(cls, x=None, **kwargs):
        kwargs['requires_grad'] = False
        return super().__new__(cls, x, **kwargs)


def is_variable(x):
    """True for convis Variables: Parameters, States, VirtualParameters and plain :class:`Variable` s."""
    return isinstance(x, Variable)


class VirtualParameter(object):
    """A configuration value that is not a tensor, and that other values depend on.

    ``VirtualParameter(func=None, var=None, call=None, value=None, dependencies=[], kwargs_dependencies={}, **kw)``

    ``set(v)`` stores ``func(v)`` (or ``v`` when func returns None), calls
    ``update()`` on every dependant, and writes the value into ``var`` (a
    Parameter or tensor) when one is given.  ``set_callback_arguments(*deps, **kwdeps)``
    makes the value ``func(*[d.get() for d in deps], **{k: d.get()})`` recomputed
    whenever one of the dependencies changes.

    >>> a = VirtualParameter(float, value=2.0)
    >>> b = VirtualParameter(lambda x: 2 * x).set_callback_arguments(a)
    >>> a.set(3.0); b.get()
    6.0
    """

    def __init__(self, func=None, var=None, call=None, value=None, dependencies=(), kwargs_dependencies=None, **kwargs):
        self.func = func
        self.var = var
        self.call = call
        self.value = value
        self.callbacks = []
        self.dependencies = []
        self.kwargs_dependencies = {}
        self.name = kwargs.pop('name', '')
        self.doc = kwargs.pop('doc', '')
        self.unit = kwargs.pop('unit', '')
        self.retina_config_key = kwargs.pop('retina_config_key', kwargs.pop('config_key', None))
        for k, v in kwargs.items():
            setattr(self, k, v)
        if dependencies or kwargs_dependencies:
            self.set_callback_arguments(*dependencies, **(kwargs_dependencies or {}))

    def set_callback_arguments(self, *deps, **kwdeps):
        """Makes this value a function of other (Virtual)Parameters, re-evaluated when they change."""
        self.dependencies = list(deps)
        self.kwargs_dependencies = dict(kwdeps)
        for d in list(deps) + list(kwdeps.values()):
            if isinstance(d, VirtualParameter) and self not in d.callbacks:
                d.callbacks.append(self)
        self.update()
        return self

    @staticmethod
    def _value_of(d):
        if hasattr(d, 'get') and callable(d.get):
            return d.get()
        return d

    def _push(self):
        if self.var is not None and self.value is not None:
            if hasattr(self.var, 'set'):
                self.var.set(self.value)
            else:
                with torch.no_grad():
                    self.var.data = _to_tensor(self.value, like=self.var.data)
        if self.call is not None:
            self.call(self.value)
        for c in self.callbacks:
            c.update()

    def set(self, v):
        """Sets the value (through ``func``) and updates every dependant."""
        result = self.func(v) if self.func is not None else None
        self.value = v if result is None else result
        self._push()
        return self

    def update(self):
        """Recomputes the value from the dependencies."""
        if self.func is None or not (self.dependencies or self.kwargs_dependencies):
            return self
        args = [self._value_of(d) for d in self.dependencies]
        kwargs = {k: self._value_of(d) for k, d in self.kwargs_dependencies.items()}
        self.value = self.func(*args, **kwargs)
        self._push()
        return self

    def init_var(self):
        """Pushes the current value into ``var`` again."""
        self._push()
        return self

    def get(self):
        return self.value

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return 'VirtualParameter(%s=%r)' % (self.name or 'value', self.value)


def dict_with_dots_to_hierarchical_dict(d):
    """Nests a dict with dotted keys, losslessly: ``{'a.b': 1, 'a.c': 2}`` becomes ``{'a': {'b': 1, 'c': 2}}``.

    Sub-dicts are merged deeply; an empty key, and a value whose key is also a prefix of other keys,
    are kept under ``'_self'``.

    >>> dict_with_dots_to_hierarchical_dict({'opl.tau': 1, 'opl.sigma': 2, 'bipolar.g_leak': 3})
    {'opl': {'tau': 1, 'sigma': 2}, 'bipolar': {'g_leak': 3}}
    """
    out = {}
    for key, value in d.items():
        parts = [p for p in key.split('.') if p] or ['_self']
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if part not in node else {'_self': child}
            node = child
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]['_self'] = value
        else:
            node[parts[-1]] = value
    return out


def create_Ox_from_torch_iterator_dicts(iterator, doc=''):
    """Builds a tab-completable tree (:class:`convis.o.Ox`) from ``(dotted_name, value)`` pairs.

    >>> p = create_Ox_from_torch_iterator_dicts(retina.named_parameters())
    >>> p.bipolar.g_leak
    """
    from .o import Ox
    return Ox.from_dotted(iterator.items() if hasattr(iterator, 'items') else iterator, doc=doc)


def _dotted_items(items):
    """``(dotted name, value)`` pairs of a Layer (its parameters), a dict or an iterable of pairs."""
    if isinstance(items, torch.nn.Module):
        pairs = list(items.named_parameters())
        if hasattr(items, 'named_virtual_parameters'):
            pairs += list(items.named_virtual_parameters())
        return pairs
    return list(items.items()) if hasattr(items, 'items') else list(items)


def create_hierarchical_dict(items):
    """Nests dotted names into dicts: ``{'opl.tau': 1, 'opl.sigma': 2}`` gives ``{'opl': {'tau': 1, 'sigma': 2}}``.

    ``items`` is a dict, an iterable of ``(dotted name, value)`` pairs (``model.named_parameters()``)
    or a Layer (its parameters, virtual ones included).  Nothing is lost: names sharing a module are
    merged, and a value whose name is also a prefix of others is kept under ``'_self'``.

    >>> create_hierarchical_dict([('opl.tau', 1), ('opl.sigma', 2), ('bipolar.g_leak', 3)])
    {'opl': {'tau': 1, 'sigma': 2}, 'bipolar': {'g_leak': 3}}
    """
    return dict_with_dots_to_hierarchical_dict(_pairs_to_dict(_dotted_items(items)))


def _pairs_to_dict(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError('the name %r occurs twice' % (k,))
        d[k] = v
    return d


def create_hierarchical_dict_with_nodes(layer):
    """The module tree of a layer as nested dicts that hold the modules themselves too.

    Every level is ``{'_self': module, <parameter, state or virtual parameter name>: value, <child
    name>: {...}}``, so ``d['opl']['_self']`` is the OPL layer and ``d['opl']['sigma_center']`` its
    parameter.  Without a module (a dict or pairs) it is :func:`create_hierarchical_dict`.
    """
    if not isinstance(layer, torch.nn.Module):
        return create_hierarchical_dict(layer)
    node = {'_self': layer}
    for name, p in layer.named_parameters(recurse=False):
        node[name] = p
    for name in getattr(layer, '_state_defaults', {}):
        node[name] = layer._buffers.get(name)
    node.update(getattr(layer, '_virtual_parameters', {}))
    for name, child in layer.named_children():
        node[name] = create_hierarchical_dict_with_nodes(child)
    return node


def create_hierarchical_Ox(items, doc=''):
    """:func:`create_hierarchical_dict` as a tab-completable :class:`convis.o.Ox` tree."""
    return create_Ox_from_torch_iterator_dicts(_dotted_items(items), doc=doc)
