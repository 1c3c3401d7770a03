"""The values of scalar parameters as the widgets read, write, range and show them.

:func:`scalar_parameters` lists a model's scalar parameters; :func:`format_number` writes a value with 4
significant figures (more only when the value has them); :func:`control_range` is the slider range of a
parameter (see :mod:`convis_widgets.parameters` for the rule); :class:`NumberText` is the text box for exact
values.  :mod:`convis_widgets.parameters` re-exports every name here.
"""
import math

import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from convis.variables import VirtualParameter

__all__ = ['scalar_parameters', 'format_number', 'control_range', 'NumberText']


def scalar_parameters(model):
    """``(dotted name, parameter)`` of every scalar parameter of a model (Parameters and numeric VirtualParameters)."""
    found = []
    for name, p in model.named_parameters():
        if p.numel() == 1 and (p.is_floating_point() or p.dtype in (torch.int32, torch.int64, torch.int16)):
            found.append((name, p))
    named_virtual = getattr(model, 'named_virtual_parameters', None)
    if named_virtual is not None:
        for name, vp in named_virtual():
            v = vp.get()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v):
                found.append((name, vp))
    return found


def format_number(v):
    """``v`` with 4 significant figures, or up to 7 when the value has them: 0.8, 599, 0.2993, 0.123456."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v) or v == 0:
        return '%g' % v
    for digits in range(4, 8):
        s = '%.*g' % (digits, v)
        if abs(float(s) - v) <= 1e-7 * abs(v):
            return s
    return s


def _round_significant(v, digits=4):
    return float('%.*g' % (digits, v)) if math.isfinite(v) and v != 0 else v


def _kind_of(p):
    kind = getattr(p, 'kind', None)
    if kind is not None:
        return kind
    if isinstance(p, VirtualParameter):
        return 'int' if isinstance(p.get(), (int, np.integer)) else 'float'
    return 'float' if p.is_floating_point() else 'int'


def _value_of(p):
    if isinstance(p, VirtualParameter):
        v = p.get()
        return int(v) if isinstance(v, (int, np.integer)) else float(v)
    v = p.detach().reshape(-1)[0]
    if not p.is_floating_point():
        return int(v)
    if getattr(p, 'kind', None) == 'int' and math.isfinite(float(v)):
        return int(round(float(v)))
    if p.dtype in (torch.float32, torch.float16, torch.bfloat16):
        # show the decimal the user typed (0.005), not the float32 next to it (0.004999999888)
        return float('%.7g' % float(v))
    return float(v)


def _set(p, v):
    if hasattr(p, 'set'):
        p.set(v)
    else:
        with torch.no_grad():
            p.fill_(v)


def _default_of(p):
    """The parameter's own default (None when it has none: plain tensors and VirtualParameters)."""
    d = getattr(p, 'default', None)
    if d is None or isinstance(p, VirtualParameter):
        return None
    d = np.asarray(d).reshape(-1)
    return float(d[0]) if d.size == 1 else None


def control_range(p, value=None):
    """``(low, high, scale)`` a slider for parameter ``p`` should offer (see the module doc).

    Uses ``p.slider_range``, ``p.bounds`` and ``p.scale`` where they exist; the current value is
    always inside the returned range when it is finite.  A log scale needs a positive range; it falls
    back to linear.  The range is always finite.
    """
    value = _value_of(p) if value is None else float(value)
    if not math.isfinite(value):
        value = 0.0
    scale = getattr(p, 'scale', 'linear')
    bounds = getattr(p, 'bounds', None) or (None, None)
    blo = None if bounds[0] is None or not math.isfinite(bounds[0]) else float(bounds[0])
    bhi = None if bounds[1] is None or not math.isfinite(bounds[1]) else float(bounds[1])
    suggested = getattr(p, 'slider_range', None)
    if suggested is not None and all(math.isfinite(float(s)) for s in suggested):
        lo, hi = float(suggested[0]), float(suggested[1])
    elif blo is not None and bhi is not None:
        lo, hi = blo, bhi
    elif scale == 'log' and value > 0:
        lo, hi = value / 10.0, value * 10.0
    elif value > 0:
        lo, hi = 0.0, 2.0 * value
    elif value < 0:
        lo, hi = 2.0 * value, 0.0
    else:
        lo, hi = -1.0, 1.0
    if blo is not None:
        lo, hi = max(lo, blo), max(hi, blo)
    if bhi is not None:
        lo, hi = min(lo, bhi), min(hi, bhi)
    lo, hi = min(lo, value), max(hi, value)
    if scale == 'log' and lo <= 0:
        if value > 0:
            lo = value / 1000.0
        else:
            scale = 'linear'
    if not hi > lo:
        pad = abs(lo) if lo != 0 else 1.0
        lo2, hi2 = lo - pad, hi + pad
        if blo is not None:
            lo2 = max(lo2, blo)
        if bhi is not None:
            hi2 = min(hi2, bhi)
        lo, hi = lo2, hi2
    return lo, hi, scale


class NumberText(widgets.Text):
    """A text box for an exact value: numbers assigned to ``value`` are shown as :func:`format_number` writes them."""
    value = traitlets.Union([traitlets.Unicode(), traitlets.Float()], default_value='',
                            help='the text shown (a number assigned is formatted)').tag(sync=True)

    @traitlets.validate('value')
    def _as_text(self, proposal):
        v = proposal['value']
        return v if isinstance(v, str) else format_number(v)
