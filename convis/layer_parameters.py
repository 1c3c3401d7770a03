"""The parameter side of :class:`convis.Layer`: get, set, save, load, push and pop values; parameter trees.

Every value given is checked by :mod:`convis.parameter_io` before any is set (all or nothing).
:class:`LayerParameters` is a mixin of :class:`~convis.Layer`; it relies on the layer's modules and states.
"""
from collections import OrderedDict

import numpy as np

from . import parameter_io
from .locking import lock_of, locked
from .o import Ox
from .optimizing import _clone_nested, _pop
from .tensors import _short_repr

__all__ = ['LayerParameters']


class LayerParameters(object):
    """The parameter methods of :class:`convis.Layer` (a mixin): values as dicts, files, stacks, configurations
    and the tab-completable trees ``.p .m .s .user_parameters``."""

    def named_virtual_parameters(self):
        for prefix, m in self.named_modules():
            if isinstance(m, LayerParameters):
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

    @locked
    def parse_config(self, config, prefix='', key='retina_config_key'):
        """Sets every parameter that has a configuration key from ``config`` (anything with ``get(dotted_key)``).

        Keys missing from the configuration keep their current value (a :class:`~convis.retina.Retina`
        gives them their defaults); every value is checked before any is set, and an invalid one raises a
        ``ValueError`` naming the key, with nothing changed.  A configured value becomes the parameter's
        default (what ``reset`` and the widgets' reset buttons return to).
        """
        parameter_io.configure_values(self, config, prefix, key)

    @property
    def p(self):
        """Tab-completable tree of all parameters: ``model.p.bipolar.g_leak``; assign to set a value."""
        return Ox.from_dotted(self._parameter_slots().items(), doc='Parameters of the model (see also .user_parameters)',
                              lock=lock_of(self))

    @property
    def user_parameters(self):
        """The parameters a user can set (those with a ``set`` method), as a tree."""
        return Ox.from_dotted([(n, p) for n, p in self._parameter_slots().items() if hasattr(p, 'set')],
                              doc='Parameters of the model that can be set by the user', lock=lock_of(self))

    @property
    def m(self):
        """Tab-completable tree of all sub-modules (the model itself is ``_self``)."""
        return Ox.from_dotted([(n if n else '_self', m) for n, m in self.named_modules()], doc='Modules of the model')

    @property
    def s(self):
        """Tab-completable tree of all states (current values)."""
        return Ox.from_dotted(self.named_states(), doc='Current state of the model', lock=lock_of(self))
