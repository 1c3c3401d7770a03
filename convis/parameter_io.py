"""Parameter values in and out of a model: every name, shape and bound checked first, then all or nothing.

:meth:`Layer.set_parameters <convis.base.Layer.set_parameters>`, :meth:`~convis.base.Layer.load_parameters`
and :meth:`~convis.base.Layer.parse_config` go through :func:`apply_values`: a value of the wrong shape, out
of its parameter's bounds, of the wrong kind or not finite raises a :class:`ParameterError` (a
``ValueError``) before any parameter has changed; should applying fail all the same, the values from before
are restored.

Parameter files (``.npz``, written by :meth:`~convis.base.Layer.save_parameters`) are read by
:func:`read_parameter_file`, which checks every member's declared dtype, shape and size against the
parameter it is meant for *before* reading its data (a small compressed file cannot unpack into
gigabytes), never unpickles, and does not read members that are not parameters.

>>> import convis
>>> m = convis.models.LN((5, 3, 3))
>>> m.save_parameters('p.npz')
>>> m.load_parameters('p.npz')          # names of another model's file are ignored (warn=True reports them)
"""
import os
import warnings
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import torch

from .o import save_name
from .variables import _to_tensor

__all__ = ['ParameterError', 'ParameterFileError', 'ParameterNameError', 'MAX_HEADER_BYTES', 'MAX_RESHAPED_VALUES',
           'read_parameter_file', 'apply_values', 'configure_values', 'checked_config_items', 'load_values']

MAX_HEADER_BYTES = 10000
"""The largest ``.npy`` header (bytes) accepted in a parameter file (numpy writes far smaller ones)."""

MAX_RESHAPED_VALUES = 1 << 24
"""The most values (16 M) an array parameter (a kernel: 2 dimensions or more) may take when a value of
another size replaces it; numbers and vectors keep their shape."""


class ParameterError(ValueError):
    """A parameter value (or name) that cannot be applied; nothing was changed."""


class ParameterFileError(ParameterError):
    """A parameter file that cannot be read (not an npz archive, damaged, or holding unusable arrays)."""


class ParameterNameError(ParameterError, KeyError):
    """Names that match no parameter (or parameters left out) where ``strict=True`` asks for all of them."""

    def __str__(self):  # a KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ''


def short(v, n=200):
    """``repr(v)`` cut to about ``n`` characters (error messages quote values of any length)."""
    r = repr(v)
    return r if len(r) <= n else r[:n] + '...(%d characters)' % len(r)


# ---------------------------------------------------------------------------------------------- names
def match_names(slots, keys):
    """``(pairs, unknown)``: ``[(key, dotted parameter name)]`` for the keys that name a parameter (dotted, or
    the flat ``_``-joined name when it is unambiguous) and the list of keys that name none."""
    flat = {}
    for name in slots:
        flat.setdefault(save_name(name.replace('.', '_')), []).append(name)
    pairs, unknown = [], []
    for key in keys:
        target = key if key in slots else None
        if target is None and isinstance(key, str) and len(flat.get(save_name(key), [])) == 1:
            target = flat[save_name(key)][0]
        if target is None:
            unknown.append(key)
        else:
            pairs.append((key, target))
    return pairs, unknown


def _report(layer, unknown, missing, warn, strict, source):
    """Warns about (``warn`` or ``layer._debug``) or, with ``strict``, raises on ignored names."""
    parts = []
    if unknown:
        parts.append('%d name(s) match no parameter and are ignored: %s' % (len(unknown), short(list(unknown))))
    if missing:
        parts.append('%d parameter(s) not set (not in %s; they keep their values): %s'
                     % (len(missing), source, short(list(missing))))
    if not parts:
        return
    msg = '; '.join(parts)
    if strict:
        raise ParameterNameError('%s (strict=True: nothing was set; the model has %s)'
                                 % (msg, short(list(layer._parameter_slots()))))
    if warn or getattr(layer, '_debug', False):
        warnings.warn(msg, UserWarning, stacklevel=4)


# ---------------------------------------------------------------------------------------------- values
def _slot_shape(slot):
    if isinstance(slot, torch.Tensor):
        return tuple(slot.shape)
    return np.shape(slot.get())


def _shape_fits(shape, target):
    """Equal shapes, or the same values laid out alike (``()``, ``(1,)`` and ``(1, 1)`` for one number)."""
    shape, target = tuple(shape), tuple(target)
    return shape == target or [n for n in shape if n != 1] == [n for n in target if n != 1]


def shape_allowed(shape, target):
    """Whether a value of ``shape`` may replace a parameter of shape ``target``: the same layout (see
    :func:`_shape_fits`), or for kernels (2 dimensions or more) another size with as many dimensions and
    at most :data:`MAX_RESHAPED_VALUES` values (a fitted kernel of another length, loaded into a default
    model)."""
    shape, target = tuple(shape), tuple(target)
    if _shape_fits(shape, target):
        return True
    return len(shape) == len(target) >= 2 and int(np.prod(shape, dtype=np.float64)) <= MAX_RESHAPED_VALUES


def checked_value(name, slot, value, same_shape=True):
    """The value ``slot.set`` would store, checked: numeric, finite, of the parameter's shape (with
    ``same_shape``), inside its bounds and of its kind.  Raises a :class:`ParameterError` naming ``name``."""
    try:
        if isinstance(slot, torch.Tensor):
            new = _to_tensor(value, like=slot.data)
        else:
            new = np.asarray(value)
            if new.dtype.kind not in 'biuf':
                raise TypeError('not a number')
    except (TypeError, ValueError) as e:
        raise ParameterError('parameter %s: %s is not a numeric value (%s)' % (name, short(value), e)) from None
    shape = tuple(new.shape)
    if same_shape and not shape_allowed(shape, _slot_shape(slot)):
        raise ParameterError('parameter %s has shape %s; a value of shape %s does not fit it (%s)'
                             % (name, _slot_shape(slot), shape, short(value)))
    if isinstance(slot, torch.Tensor):
        if hasattr(slot, '_check_bounds'):
            try:
                slot._check_bounds(new)
            except ValueError as e:
                raise ParameterError('parameter %s: %s' % (name, e)) from None
        elif new.is_floating_point() and not bool(torch.isfinite(new).all()):
            raise ParameterError('parameter %s: the value holds NaN or infinite numbers' % name)
    elif new.dtype.kind == 'f' and not np.isfinite(new).all():
        raise ParameterError('parameter %s: the value holds NaN or infinite numbers' % name)
    return new


def _snapshot(slot):
    if isinstance(slot, torch.Tensor):
        return slot.detach().clone(), getattr(slot, 'default', None), getattr(slot, 'exact', None)
    return slot.get(), None, None


def _restore(slot, snap):
    value, default, exact = snap
    if isinstance(slot, torch.Tensor):
        with torch.no_grad():
            if value.shape == slot.data.shape:
                slot.data.copy_(value)
            else:
                slot.data = value
        if default is not None:
            slot.default = default
        if exact is not None:
            slot.exact = exact
    else:
        slot.set(value)


def _set(slot, value, configure):
    if configure and hasattr(slot, 'configure'):
        slot.configure(value)
    elif hasattr(slot, 'set'):
        slot.set(value)
    else:
        with torch.no_grad():
            if value.numel() == slot.numel():
                slot.data.copy_(value.reshape(slot.shape))
            else:
                slot.data = value.clone()


def apply_checked(items, configure=False):
    """Applies ``[(slot, checked value)]``; when one fails, restores every slot and re-raises."""
    snaps = [(slot, _snapshot(slot)) for slot, _ in items]
    try:
        for slot, value in items:
            _set(slot, value, configure)
    except BaseException:
        for slot, snap in reversed(snaps):
            _restore(slot, snap)
        raise


def apply_values(layer, d, warn=False, strict=False, same_shape=True, source='the dict', unknown=()):
    """Sets ``layer``'s parameters from ``d`` (name -> value) after checking every one (see the module).

    Names that match no parameter, and parameters that ``d`` leaves out, are ignored; they are reported
    with a ``UserWarning`` when ``warn`` (or ``layer._debug``) is set, and ``strict=True`` raises a
    :class:`ParameterNameError` (a KeyError and ValueError) for them instead.  ``same_shape=False`` lets
    a value replace a parameter of another shape (as :meth:`Parameter.set` does); ``unknown`` adds names
    found elsewhere (a file's other members) to those reported.
    """
    slots = layer._parameter_slots()
    pairs, other = match_names(slots, list(d))
    unknown = list(unknown) + other
    given = {target for _, target in pairs}
    missing = [n for n in slots if n not in given]
    _report(layer, unknown, missing if (warn or strict or getattr(layer, '_debug', False)) else [],
            warn, strict, source)
    items = [(slots[target], checked_value(target, slots[target], d[key], same_shape)) for key, target in pairs]
    apply_checked(items)


def checked_config_items(layer, config, prefix='', key='retina_config_key'):
    """``[(parameter, checked value)]`` for every parameter of ``layer`` that has a configuration key that
    ``config.get(prefix + key)`` gives; a bad value raises a :class:`ParameterError` naming the key."""
    items = []
    for name, p in layer._parameter_slots().items():
        k = getattr(p, key, None)
        if not k or k.startswith('--'):
            continue
        value = config.get(prefix + k, None)
        if value is None:
            continue
        try:
            items.append((p, checked_value(name, p, value)))
        except ParameterError as e:
            raise ParameterError('configuration key %r: %s' % (prefix + k, e)) from None
    return items


def configure_values(layer, config, prefix='', key='retina_config_key'):
    """Configures every parameter of ``layer`` that has a configuration key from ``config.get(prefix + key)``.

    All values are checked before any is set (a ValueError names the configuration key); keys the
    configuration does not have keep the parameter's value.  Configured values become the defaults.
    """
    apply_checked(checked_config_items(layer, config, prefix, key), configure=True)


# ---------------------------------------------------------------------------------------------- files
def _describe(filename):
    return repr(os.fspath(filename)) if isinstance(filename, (str, os.PathLike)) else short(filename, 80)


def _not_a_zip(filename, what):
    """A ParameterFileError saying what the file is instead of an npz archive."""
    head = b''
    try:
        if isinstance(filename, (str, os.PathLike)):
            with open(filename, 'rb') as f:
                head = f.read(8)
    except OSError:
        pass
    if isinstance(filename, (str, os.PathLike)) and os.path.getsize(filename) == 0:
        why = 'the file is empty'
    elif head.startswith(b'\x93NUMPY'):
        why = 'it is a single .npy array, not an .npz archive of named parameters'
    elif head.startswith(b'PK'):
        why = 'the zip archive is truncated or damaged (%s)' % what
    else:
        why = 'it is not a zip archive (%s)' % what
    return ParameterFileError('%s is not a parameter file written by save_parameters: %s' % (_describe(filename), why))


def _member_header(zf, info, where):
    """``(shape, fortran_order, dtype, header_bytes)`` of an npz member, read without its data."""
    with zf.open(info) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=MAX_HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=MAX_HEADER_BYTES)
            else:
                raise ValueError('.npy format version %s is not supported' % (version,))
        except (ValueError, EOFError, SyntaxError, TypeError) as e:
            raise ParameterFileError('%s: %s is not a readable .npy array (%s)' % (where, info.filename, short(str(e))))
        return shape, fortran, dtype, fp.tell()


def read_parameter_file(filename, slots):
    """``(values, unknown)`` from an npz parameter file: ``values`` an OrderedDict ``file key -> array`` for
    the members that name one of ``slots`` (checked before reading), ``unknown`` the keys of the others
    (not read).  Raises a :class:`ParameterFileError` naming the file and what is wrong with it."""
    where = _describe(filename)
    try:
        zf = zipfile.ZipFile(filename)
    except zipfile.BadZipFile as e:
        raise _not_a_zip(filename, str(e)) from None
    except EOFError as e:
        raise _not_a_zip(filename, 'ends early: %s' % e) from None
    with zf:
        members = OrderedDict()
        unknown = []
        for info in zf.infolist():
            if info.filename.endswith('.npy') and not info.is_dir():
                members[info.filename[:-4]] = info
            else:
                unknown.append(info.filename)
        pairs, other = match_names(slots, list(members))
        unknown = other + unknown
        values = OrderedDict()
        for key, target in pairs:
            info = members[key]
            expected = _slot_shape(slots[target])
            try:
                shape, fortran, dtype, header = _member_header(zf, info, where)
                if dtype.hasobject or dtype.kind not in 'biuf':
                    raise ParameterFileError('%s: %s holds values of dtype %s; parameters are numbers'
                                             % (where, info.filename, str(dtype)[:80]))
                if not shape_allowed(shape, expected):
                    raise ParameterFileError('%s: %s declares an array of shape %s; parameter %s has shape %s'
                                             % (where, info.filename, short(shape, 80), target, expected))
                size = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if info.file_size > size:
                    raise ParameterFileError('%s: %s unpacks into %d bytes, more than the %d its header declares '
                                             '(a damaged or forged file)' % (where, info.filename, info.file_size, size))
                with zf.open(info) as fp:
                    values[key] = np.lib.format.read_array(fp, allow_pickle=False,
                                                           max_header_size=MAX_HEADER_BYTES)
            except ParameterFileError:
                raise
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, NotImplementedError) as e:
                raise ParameterFileError('%s: member %s is damaged (%s)' % (where, info.filename, short(str(e))))
    return values, unknown


def load_values(layer, filename, warn=False, strict=False):
    """Reads a parameter file (see :func:`read_parameter_file`) and applies it with :func:`apply_values`."""
    slots = layer._parameter_slots()
    values, unknown = read_parameter_file(filename, slots)
    where = 'the file %s' % _describe(filename)
    try:
        apply_values(layer, values, warn=warn, strict=strict, source=where, unknown=unknown)
    except ParameterNameError:
        raise
    except ParameterError as e:
        raise ParameterFileError('%s: %s' % (_describe(filename), e)) from None
