"""Tab-completable trees of parameters, modules and states.

``model.p`` (parameters), ``model.m`` (modules), ``model.s`` (states) and
``model.user_parameters`` are :class:`Ox` objects: attribute bags whose
attributes are the children of a node, so that IPython completes
``model.p.bipolar.<TAB>``.  Printing a node lists its choices.

Two special attributes help in large trees:

* ``._all``: every leaf in one flat bag, named by its path joined with ``_``
  (``retina.p._all.bipolar_g_leak``);
* ``._search.<word>``: the leaves whose flat name contains ``word``
  (``retina.p._search.leak.bipolar_g_leak``).

Assigning to a leaf sets the value in place: ``model.p.bipolar.g_leak = 10``.
"""
import contextlib
import re
from collections import OrderedDict

import numpy as np
import torch

__all__ = ['O', 'Ox', 'save_name']

_REPLACEMENTS = [(' ', '_'), ('-', '_'), ('+', '_'), ('*', '_'), ('&', '_'), (':', '_'), ('!', '_'),
                 ('.', '_dot_'), ('<', 'lt'), ('>', 'gt'), ('=', 'eq'), ('(', ''), (')', ''),
                 ('[', ''), (']', ''), ('{', ''), ('}', '')]


def save_name(n):
    """Turns any name into a valid Python identifier (``'0'`` -> ``'n0'``, ``'a-b'`` -> ``'a_b'``)."""
    if not isinstance(n, str):
        n = getattr(n, 'name', None) or str(n)
    for a, b in _REPLACEMENTS:
        n = n.replace(a, b)
    n = re.sub(r'\W', '_', n)
    if n == '' or n[0].isdigit():
        n = 'n' + n
    return n


def _set_leaf(leaf, value):
    """Sets a leaf value in place (Parameter.set, VirtualParameter.set or tensor copy)."""
    if hasattr(leaf, 'set') and callable(leaf.set):
        leaf.set(value)
    elif isinstance(leaf, torch.Tensor):
        new = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value),
                              dtype=leaf.dtype, device=leaf.device)
        with torch.no_grad():
            if new.numel() == leaf.numel():
                leaf.data.copy_(new.reshape(leaf.shape))
            else:
                leaf.data = new
    else:
        raise TypeError('cannot set a value on %r' % (leaf,))


class O(object):
    """An attribute bag: ``O(a=1, b=2).a == 1``; names can also be looked up with ``o['a']``.

    Assigning to an existing name sets the leaf value in place; new names cannot be
    added by attribute assignment (a typo raises instead of creating a new entry).  A tree of a model's
    values (``model.p``, ``model.s``) holds the model's lock while it sets one.
    """
    _doc = ''
    _lock = None

    def __init__(self, _doc='', _lock=None, **kwargs):
        object.__setattr__(self, '_items', OrderedDict())
        object.__setattr__(self, '_doc', _doc)
        object.__setattr__(self, '_lock', _lock)
        for k, v in kwargs.items():
            self._items[save_name(k)] = v

    def __call__(self, **kwargs):
        for k, v in kwargs.items():
            self._items[save_name(k)] = v
        return self

    def __getattr__(self, name):
        items = object.__getattribute__(self, '_items')
        if name in items:
            return items[name]
        raise AttributeError('%r has no entry %r. Choices: %s' % (
            type(self).__name__, name, ', '.join(items.keys()) or '(none)'))

    def __setattr__(self, name, value):
        if name in self._items:
            current = self._items[name]
            if isinstance(current, O):
                raise AttributeError('%r is a group, not a value: set one of its entries (%s)' % (
                    name, ', '.join(current._keys())))
            with self._lock if self._lock is not None else contextlib.nullcontext():
                _set_leaf(current, value)
        else:
            raise AttributeError('no entry %r to set. Choices: %s' % (name, ', '.join(self._items.keys())))

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self._items.values())[key]
        if key in self._items:
            return self._items[key]
        s = save_name(key)
        if s in self._items:
            return self._items[s]
        if '.' in key:
            node = self
            for part in key.split('.'):
                node = node[part]
            return node
        raise KeyError(key)

    def __setitem__(self, key, value):
        self._items[save_name(key)] = value

    def __contains__(self, key):
        return key in self._items or save_name(key) in self._items

    def __dir__(self):
        return list(self._items.keys()) + ['_all', '_search']

    def __iter__(self):
        return iter(self._items.values())

    def __len__(self):
        return len(self._items)

    def _keys(self):
        return list(self._items.keys())

    def _values(self):
        return list(self._items.values())

    def _items_list(self):
        return list(self._items.items())

    def __repr__(self):
        head = (self._doc + '\n') if self._doc else ''
        return head + 'Choices: ' + (', '.join(self._items.keys()) or '(none)')

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


class Ox(O):
    """A tree of :class:`O` nodes with ``_all`` (flat view) and ``_search`` (substring search).

    Dicts given as values become sub-trees: ``Ox(opl={'tau': t}).opl.tau is t``.
    """

    def __init__(self, _doc='', **kwargs):
        super().__init__(_doc, **{k: type(self)(_doc, **v) if isinstance(v, dict) else v for k, v in kwargs.items()})

    @classmethod
    def from_dotted(cls, pairs, doc='', lock=None):
        """Builds a tree from ``(dotted.name, value)`` pairs, losslessly (nested dicts are merged deeply);
        ``lock`` (a model's lock) is held while a value is set through the tree."""
        root = cls(_doc=doc, _lock=lock)
        for name, value in pairs:
            parts = [p for p in name.split('.') if p != ''] or ['_self']
            node = root
            for part in parts[:-1]:
                key = save_name(part)
                child = node._items.get(key)
                if not isinstance(child, Ox):
                    child = cls(_doc=doc, _lock=lock)
                    node._items[key] = child
                node = child
            node._items[save_name(parts[-1])] = value
        return root

    def _flatten(self, sep='_', prefix=''):
        out = OrderedDict()
        for k, v in self._items.items():
            name = prefix + sep + k if prefix else k
            if isinstance(v, Ox):
                out.update(v._flatten(sep, name))
            else:
                out[name] = v
        return out

    @property
    def _all(self):
        """Every leaf in one flat bag, named by its path joined with ``_``."""
        return O(_doc='All entries (flat)', **self._flatten('_'))

    @property
    def _search(self):
        """``._search.<word>`` gives the leaves whose flat name contains ``word``."""
        return _Search(self._flatten('_'))

    @property
    def _dict(self):
        return OrderedDict((k, v._dict if isinstance(v, Ox) else v) for k, v in self._items.items())


class _Search(object):
    def __init__(self, flat):
        object.__setattr__(self, '_flat', flat)

    def __dir__(self):
        words = set()
        for k in self._flat:
            words.update(w for w in k.split('_') if w)
        return sorted(words)

    def __getattr__(self, word):
        if word.startswith('__'):
            raise AttributeError(word)
        found = OrderedDict((k, v) for k, v in self._flat.items() if word.lower() in k.lower())
        return O(_doc='Entries matching %r' % word, **found)

    def __repr__(self):
        return 'Search: type ._search.<word> to find entries. Entries: ' + ', '.join(self._flat.keys())
