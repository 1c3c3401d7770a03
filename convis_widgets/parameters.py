"""ParameterPanel: one slider per scalar parameter of a model, grouped by sublayer.

Each row shows the parameter's name and unit (the tooltip adds its doc, its VirtualRetina
configuration key, its hard bounds and its default), a slider over its suggested range
(``slider_range``; linear or logarithmic as ``scale`` says), a text box for exact values and a
reset button.  The range of a parameter without metadata is taken around its value:

.. math:: [v/10,\\ 10 v] \\text{ (log scale)}, \\qquad [0,\\ 2v] \\text{ or } [2v,\\ 0] \\text{ (linear)},

clipped to the hard bounds (both finite bounds are the range themselves).

The panel follows the model both ways: moving a control sets the parameter (hard bounds are
checked; an error is shown, never swallowed), and setting a parameter in Python
(``model.p.x = v``, ``Parameter.set``) moves its slider through
:data:`convis.variables.parameter_set_hooks`; :meth:`ParameterPanel.refresh` re-reads every value
(for changes that bypass ``set``, like an optimizer step).

>>> panel = ParameterPanel(retina)
>>> panel.on_change(lambda name, value: print(name, value))
>>> panel                          # doctest: +SKIP   (shows the sliders)
"""
import html
import logging
import math
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np
import torch

from convis.variables import VirtualParameter

from ._hooks import follow_parameters, unfollow_parameters

__all__ = ['ParameterPanel', 'ParameterControl', 'control_range', 'scalar_parameters']

logger = logging.getLogger('convis_widgets')

_STEPS = 1000


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


def _value_of(p):
    if isinstance(p, VirtualParameter):
        return float(p.get())
    v = p.detach().reshape(-1)[0]
    if not p.is_floating_point():
        return int(v)
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


def _default_of(p, initial):
    d = getattr(p, 'default', None)
    if d is not None and not isinstance(p, VirtualParameter):
        d = np.asarray(d).reshape(-1)
        if d.size == 1:
            return float(d[0])
    return initial


def control_range(p, value=None):
    """``(low, high, scale)`` a slider for parameter ``p`` should offer (see the module doc).

    Uses ``p.slider_range``, ``p.bounds`` and ``p.scale`` where they exist; the current value is
    always inside the returned range.  A log scale needs a positive range; it falls back to linear.
    """
    value = _value_of(p) if value is None else float(value)
    scale = getattr(p, 'scale', 'linear')
    bounds = getattr(p, 'bounds', None) or (None, None)
    blo = None if bounds[0] is None else float(bounds[0])
    bhi = None if bounds[1] is None else float(bounds[1])
    suggested = getattr(p, 'slider_range', None)
    if suggested is not None:
        lo, hi = float(suggested[0]), float(suggested[1])
    elif blo is not None and bhi is not None and math.isfinite(blo) and math.isfinite(bhi):
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


def _tooltip(name, p, default):
    parts = [name]
    if getattr(p, 'doc', ''):
        parts.append(p.doc)
    unit = getattr(p, 'unit', '')
    if unit:
        parts.append('unit: %s' % unit)
    key = getattr(p, 'retina_config_key', None)
    if key:
        parts.append('VirtualRetina: %s' % key)
    bounds = getattr(p, 'bounds', None)
    if bounds and (bounds[0] is not None or bounds[1] is not None):
        parts.append('bounds: [%s, %s]' % ('-inf' if bounds[0] is None else '%g' % bounds[0],
                                          'inf' if bounds[1] is None else '%g' % bounds[1]))
    parts.append('default: %g' % default)
    return '\n'.join(parts)


class ParameterControl(widgets.HBox):
    """One row of a :class:`ParameterPanel`: label, slider, exact value, reset.

    ``set_value(v)`` sets the parameter (as a user would); ``sync()`` moves the widgets to the
    parameter's current value and says whether they moved.
    """

    def __init__(self, name, parameter, on_set, continuous_update=False):
        self.name = name
        self.parameter = parameter
        self._on_set = on_set
        self._busy = False
        value = _value_of(parameter)
        self.is_int = isinstance(value, int)
        self.default = _default_of(parameter, value)
        self.low, self.high, self.scale = control_range(parameter, value)
        short = name.split('.')[-1]
        unit = getattr(parameter, 'unit', '')
        tip = _tooltip(name, parameter, self.default)
        self.label = widgets.HTML(
            '<span title="%s"><b>%s</b>%s</span>' % (html.escape(tip), html.escape(short),
                                                     ' [%s]' % html.escape(unit) if unit else ''),
            tooltip=tip, layout=widgets.Layout(width='190px'))
        self.slider = self._make_slider(value, continuous_update)
        self.text = (widgets.IntText if self.is_int else widgets.FloatText)(
            value=value, layout=widgets.Layout(width='100px'),
            tooltip='exact value' + (' in %s' % unit if unit else ''))
        self.reset_button = widgets.Button(icon='undo', tooltip='reset to the default (%g)' % self.default,
                                           layout=widgets.Layout(width='36px'))
        self.slider.observe(self._slider_moved, 'value')
        self.text.observe(self._text_changed, 'value')
        self.reset_button.on_click(lambda _: self.reset())
        super().__init__([self.label, self.slider, self.text, self.reset_button])
        self.add_class('convis-parameter')

    def _make_slider(self, value, continuous_update):
        layout = widgets.Layout(width='240px')
        if self.is_int:
            return widgets.IntSlider(value=value, min=int(math.floor(self.low)), max=int(math.ceil(self.high)),
                                     readout=False, continuous_update=continuous_update, layout=layout)
        if self.scale == 'log':
            lo, hi = math.log10(self.low), math.log10(self.high)
            return widgets.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=(hi - lo) / _STEPS,
                                          readout=False, continuous_update=continuous_update, layout=layout)
        return widgets.FloatSlider(value=value, min=self.low, max=self.high, step=(self.high - self.low) / _STEPS,
                                   readout=False, continuous_update=continuous_update, layout=layout)

    @property
    def value(self):
        """The parameter's current value."""
        return _value_of(self.parameter)

    def _extend_range(self, v):
        """Widens the slider to include ``v`` (a value typed or set beyond the suggested range)."""
        if self.low <= v <= self.high:
            return
        self.low, self.high = min(self.low, v), max(self.high, v)
        if self.scale == 'log':
            if v <= 0:
                return
            lo, hi = math.log10(self.low), math.log10(self.high)
            with self.slider.hold_trait_notifications():
                self.slider.min, self.slider.max, self.slider.step = lo, hi, (hi - lo) / _STEPS
        elif self.is_int:
            self.slider.min, self.slider.max = int(math.floor(self.low)), int(math.ceil(self.high))
        else:
            with self.slider.hold_trait_notifications():
                self.slider.min, self.slider.max = self.low, self.high
                self.slider.step = (self.high - self.low) / _STEPS

    def _show(self, v):
        """Moves slider and text to ``v`` without setting the parameter again."""
        self._busy = True
        try:
            self._extend_range(v)
            if self.slider.value != v:
                self.slider.value = v
            if self.text.value != v:
                self.text.value = v
        finally:
            self._busy = False

    def _slider_moved(self, change):
        if not self._busy:
            self.set_value(change['new'])

    def _text_changed(self, change):
        if not self._busy:
            self.set_value(change['new'])

    def set_value(self, v):
        """Sets the parameter to ``v`` (bounds are checked); the widgets follow.  Returns True when it was set."""
        v = int(round(v)) if self.is_int else float(v)
        ok = self._on_set(self, v)
        self._show(v if ok else self.value)
        return ok

    def reset(self):
        """Sets the parameter back to its default."""
        return self.set_value(self.default)

    def sync(self):
        """Moves the widgets to the parameter's value; True when they moved."""
        v = self.value
        shown = self.text.value
        same = (v == shown) if self.is_int else math.isclose(v, shown, rel_tol=1e-6, abs_tol=1e-12)
        if same:
            return False
        self._show(v)
        return True


class ParameterPanel(widgets.VBox):
    """Sliders for every scalar parameter of a convis model, grouped by sublayer.

    Parameters
    ----------
    model : convis.Layer
        any layer, with or without parameter metadata
    continuous_update : bool
        False (default): a slider sets its parameter when released; True: while it is dragged
    group_by : 'accordion' or 'tabs'
        how sublayers are shown (a model with one group shows its rows directly)
    include, exclude : sequence of str
        keep only (or drop) parameters whose dotted name contains one of these words

    Attributes
    ----------
    controls : OrderedDict
        dotted parameter name -> :class:`ParameterControl`
    version : int
        increases on every change of a parameter seen by the panel (cheap to poll)

    Examples
    --------
    >>> panel = ParameterPanel(retina, exclude=['spikes'])
    >>> panel.controls['bipolar.g_leak'].set_value(20.0)   # as if the slider moved
    >>> retina.p.bipolar.g_leak = 10.0                      # the slider follows
    """

    def __init__(self, model, continuous_update=False, group_by='accordion', include=None, exclude=None):
        self._hook = None
        if group_by not in ('accordion', 'tabs'):
            raise ValueError("group_by must be 'accordion' or 'tabs', not %r" % (group_by,))
        self.model = model
        self.controls = OrderedDict()
        self.version = 0
        self._callbacks = []
        self._setting = None
        self.message = widgets.HTML('', layout=widgets.Layout(min_height='1.5em'))
        self.message.add_class('convis-parameter-message')
        groups = OrderedDict()
        for name, p in scalar_parameters(model):
            if include and not any(w in name for w in include):
                continue
            if exclude and any(w in name for w in exclude):
                continue
            control = ParameterControl(name, p, self._set_from_control, continuous_update)
            self.controls[name] = control
            group = name.rsplit('.', 1)[0] if '.' in name else type(model).__name__
            groups.setdefault(group, []).append(control)
        self.groups = OrderedDict((g, [c.name for c in cs]) for g, cs in groups.items())
        reset_all = widgets.Button(description='Reset all', icon='undo', tooltip='every parameter to its default')
        reset_all.on_click(lambda _: self.reset_all())
        boxes = [widgets.VBox(cs) for cs in groups.values()]
        if len(boxes) == 1:
            body = boxes[0]
        elif not boxes:
            body = widgets.HTML('<i>%s has no scalar parameters</i>' % html.escape(type(model).__name__))
        else:
            container = widgets.Accordion if group_by == 'accordion' else widgets.Tab
            body = container(children=boxes, titles=tuple(groups.keys()))
        self.body = body
        super().__init__([widgets.HBox([reset_all, self.message]), body],
                         layout=widgets.Layout(min_width='600px', width='600px'))
        self.add_class('convis-parameter-panel')
        self._by_id = {id(c.parameter): c for c in self.controls.values()}
        self._hook = follow_parameters(self)

    # ----------------------------------------------------------------- changes
    def on_change(self, callback, remove=False):
        """Calls ``callback(name, value)`` after each change of a parameter (from a control or from Python)."""
        if remove:
            self._callbacks.remove(callback)
        else:
            self._callbacks.append(callback)

    def _notify(self, name, value):
        self.version += 1
        for cb in list(self._callbacks):
            cb(name, value)

    def _set_from_control(self, control, v):
        self._setting = control
        try:
            _set(control.parameter, v)
        except (ValueError, TypeError) as e:
            logger.warning('cannot set %s to %r: %s', control.name, v, e)
            self.message.value = '<span style="color:#c62828">%s</span>' % html.escape(str(e))
            return False
        finally:
            self._setting = None
        self.message.value = ''
        self._notify(control.name, v)
        return True

    def _parameter_was_set(self, p):
        control = self._by_id.get(id(p))
        if control is None or control is self._setting or control.parameter is not p:
            return
        if control.sync():
            self._notify(control.name, control.value)

    def refresh(self, notify=True):
        """Moves every control to its parameter's current value; returns the names that moved.

        With ``notify`` the change callbacks run for each of them (as for any other change).
        """
        moved = [name for name, c in self.controls.items() if c.sync()]
        if notify:
            for name in moved:
                self._notify(name, self.controls[name].value)
        return moved

    def reset_all(self):
        """Sets every parameter of the panel back to its default."""
        for c in self.controls.values():
            c.reset()

    def set_value(self, name, value):
        """Sets a parameter by its dotted name, as if its control moved; True when it was set."""
        if name not in self.controls:
            raise KeyError('no control for %r; the panel has %s' % (name, list(self.controls)))
        return self.controls[name].set_value(value)

    def values(self):
        """The current values as an OrderedDict ``dotted name -> number``."""
        return OrderedDict((n, c.value) for n, c in self.controls.items())

    def close(self):
        """Stops following the model and closes the widgets."""
        hook = getattr(self, '_hook', None)
        if hook is not None:
            unfollow_parameters(hook)
        for c in getattr(self, 'controls', {}).values():
            c.close()
        super().close()

