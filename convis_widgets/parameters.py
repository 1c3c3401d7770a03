"""ParameterPanel: one control per scalar parameter of a model, grouped by sublayer.

Each row shows the parameter's symbol (``σ_C``, as in the equations; the code name otherwise) and
unit; the tooltip adds the code name, its doc, its VirtualRetina configuration key, its hard bounds
and its default.  What the control is follows the parameter's ``kind`` (see
:class:`convis.variables.Parameter`): a dropdown of the ``choices`` (the ON/OFF ``sign``), a
checkbox for a switch (disabled when the model implements one position only), an integer slider, or
a slider over the suggested range (``slider_range``; linear or logarithmic as ``scale`` says) with a
text box for exact values.  Every row has a reset button.  The range of a parameter without
metadata is taken around its value:

.. math:: [v/10,\\ 10 v] \\text{ (log scale)}, \\qquad [0,\\ 2v] \\text{ or } [2v,\\ 0] \\text{ (linear)},

clipped to the hard bounds (both finite bounds are the range themselves).

Numbers are shown with 4 significant figures, more only when the value has them (a typed 0.123456);
a slider sets values rounded to 4 significant figures (a thousand steps resolve no more).  A value
that is not a finite number, not a whole number for an integer, or outside the hard bounds is
refused with a message and never reaches the model; reset returns to the parameter's default (the
value it was constructed or configured with) and restores the slider's range.

The panel follows the model both ways: moving a control sets the parameter, and setting a parameter
in Python (``model.p.x = v``, ``Parameter.set``) moves its control through
:data:`convis.variables.parameter_set_hooks`; :meth:`ParameterPanel.refresh` re-reads every value
(for changes that bypass ``set``, like an optimizer step).

>>> panel = ParameterPanel(retina)
>>> panel.on_change(lambda name, value: print(name, value))
>>> panel                          # doctest: +SKIP   (shows the controls)
"""
import html
import logging
import math
import re
from collections import OrderedDict

import ipywidgets as widgets

from convis.locking import lock_of

from ._hooks import follow_parameters, unfollow_parameters
from .parameter_values import (NumberText, _default_of, _kind_of, _round_significant, _set,
                               _value_of, control_range, format_number, scalar_parameters)
from .sections import Sections

__all__ = ['ParameterPanel', 'ParameterControl', 'control_range', 'scalar_parameters', 'format_number',
           'section_title']

logger = logging.getLogger('convis_widgets')

_STEPS = 1000
_LABEL_WIDTH = '150px'

_SECTIONS = {'OPL': 'Outer plexiform layer', 'Bipolar': 'Gain control'}
"""Section titles by layer class (ganglion layers are named by their sign, see :func:`section_title`)."""

_RETINA_RECORDS = {'opl': "'opl', 'center', 'receptor', 'horizontal'", 'bipolar': "'bipolar', 'cgc_adaptation', "
                   "'cgc_attenuation'"}


def _symbol_html(symbol):
    """``'σ_C'`` as ``σ<sub>C</sub>`` (escaped)."""
    base, _, sub = symbol.partition('_')
    return html.escape(base) + ('<sub>%s</sub>' % html.escape(sub) if sub else '')


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
    choices = getattr(p, 'choices', None)
    if choices:
        parts.append('choices: %s' % ', '.join('%s (%s)' % (k, format_number(v)) for k, v in choices.items()))
    bounds = getattr(p, 'bounds', None)
    if bounds and (bounds[0] is not None or bounds[1] is not None):
        parts.append('bounds: [%s, %s]' % ('-inf' if bounds[0] is None else '%g' % bounds[0],
                                          'inf' if bounds[1] is None else '%g' % bounds[1]))
    parts.append('default: %s' % format_number(default))
    return '\n'.join(parts)


class ParameterControl(widgets.HBox):
    """One row of a :class:`ParameterPanel`: label, control (slider and exact value, checkbox or dropdown), reset.

    ``set_value(v)`` sets the parameter (as a user would); ``sync()`` moves the widgets to the
    parameter's current value and says whether they moved.  ``kind`` is 'float', 'int', 'bool' or
    'choice'; ``slider`` and ``text`` are None for checkboxes and dropdowns (``choice`` holds those).
    """

    def __init__(self, name, parameter, on_set, continuous_update=False):
        self.name = name
        self.parameter = parameter
        self._on_set = on_set
        self._busy = False
        value = _value_of(parameter)
        self.kind = _kind_of(parameter)
        self.choices = getattr(parameter, 'choices', None) if self.kind in ('bool', 'choice') else None
        if self.kind in ('bool', 'choice') and not self.choices:
            self.kind = 'float'
        self.is_int = self.kind == 'int'
        self._initial = value
        self.low, self.high, self.scale = control_range(parameter, value)
        unit = getattr(parameter, 'unit', '')
        tip = _tooltip(name, parameter, self.default)
        symbol = getattr(parameter, 'symbol', None)
        shown = _symbol_html(symbol) if symbol else html.escape(name.split('.')[-1])
        self.label = widgets.HTML(
            '<span class="convis-parameter-label" title="%s" style="white-space:nowrap"><b>%s</b>%s</span>'
            % (html.escape(tip), shown, ' [%s]' % html.escape(unit) if unit else ''), tooltip=tip,
            layout=widgets.Layout(width=_LABEL_WIDTH, min_width=_LABEL_WIDTH, flex='0 0 ' + _LABEL_WIDTH,
                                  overflow='hidden'))
        self.slider = self.text = self.choice = None
        if self.choices:
            self.choice = self._make_choice(value, tip)
            self.choice.observe(self._control_moved, 'value')
            controls = [self.choice]
        else:
            self.slider = self._make_slider(value, continuous_update)
            self.text = NumberText(value=format_number(value), continuous_update=False,
                                     tooltip='exact value' + (' in %s' % unit if unit else ''),
                                     layout=widgets.Layout(width='90px', flex='0 0 90px'))
            self.slider.observe(self._control_moved, 'value')
            self.text.observe(self._text_changed, 'value')
            controls = [self.slider, self.text]
        self.reset_button = widgets.Button(icon='undo',
                                           tooltip='reset to the default (%s)' % format_number(self.default),
                                           layout=widgets.Layout(width='36px', flex='0 0 36px'))
        self.reset_button.on_click(lambda _: self.reset())
        super().__init__([self.label] + controls + [self.reset_button],
                         layout=widgets.Layout(width='100%', align_items='center'))
        self.add_class('convis-parameter')
        self.add_class('convis-p-' + re.sub(r'[^A-Za-z0-9_-]', '-', name))

    def _make_choice(self, value, tip):
        values = list(self.choices.values())
        if self.kind == 'bool':
            box = widgets.Checkbox(value=bool(value), indent=False, description='', tooltip=tip,
                                   disabled=len(set(values)) < 2, layout=widgets.Layout(width='auto'))
            return box
        options = [(label, v) for label, v in self.choices.items()]
        return widgets.Dropdown(options=options, value=float(value) if float(value) in values else None,
                                tooltip=tip, layout=widgets.Layout(width='120px'))

    def _make_slider(self, value, continuous_update):
        layout = widgets.Layout(flex='1 1 auto', min_width='120px', width='auto')
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

    @property
    def default(self):
        """The value reset returns to: the parameter's default (constructed or configured), else its first value."""
        d = _default_of(self.parameter)
        if d is None:
            return self._initial
        return int(round(d)) if self.is_int else d

    def _set_range(self, low, high):
        self.low, self.high = low, high
        if self.slider is None:
            return
        with self.slider.hold_trait_notifications():
            if self.is_int:
                self.slider.min, self.slider.max = int(math.floor(low)), int(math.ceil(high))
            elif self.scale == 'log':
                lo, hi = math.log10(low), math.log10(high)
                self.slider.min, self.slider.max, self.slider.step = lo, hi, (hi - lo) / _STEPS
            else:
                self.slider.min, self.slider.max, self.slider.step = low, high, (high - low) / _STEPS

    def _extend_range(self, v):
        """Widens the slider to include ``v`` (a finite value typed or set beyond the suggested range)."""
        if not math.isfinite(v) or self.low <= v <= self.high or (self.scale == 'log' and v <= 0):
            return
        self._set_range(min(self.low, v), max(self.high, v))

    def _show(self, v):
        """Moves the widgets to ``v`` without setting the parameter again."""
        self._busy = True
        try:
            if self.choice is not None:
                shown = bool(v) if self.kind == 'bool' else float(v)
                if self.kind == 'bool' or shown in self.choices.values():
                    self.choice.value = shown
                return
            self._extend_range(v)
            if math.isfinite(v) and self.slider.value != v:
                self.slider.value = v
            text = format_number(v)
            if self.text.value != text:
                self.text.value = text
        finally:
            self._busy = False

    def _control_moved(self, change):
        if self._busy:
            return
        v = change['new']
        if self.kind == 'bool':
            v = 1.0 if v else 0.0
        elif self.kind == 'float':
            v = min(max(_round_significant(float(v)), self.low), self.high)
        self.set_value(v)

    def _text_changed(self, change):
        if not self._busy:
            self.set_value(change['new'])

    def _checked(self, v):
        """``v`` as the number to set; raises a ValueError for what is not a finite number (or not whole for int)."""
        try:
            f = float(v.strip() if isinstance(v, str) else v)
        except (TypeError, ValueError):
            raise ValueError('%s: %.40r is not a number' % (self.name, v)) from None
        if not math.isfinite(f):
            raise ValueError('%s: %g is not a finite number' % (self.name, f))
        if self.is_int:
            if f != round(f):
                raise ValueError('%s: %g is not a whole number' % (self.name, f))
            return int(round(f))
        if self.choices and f not in self.choices.values():
            raise ValueError('%s: %g is not one of the choices %s' % (self.name, f, ', '.join(self.choices)))
        return f

    def set_value(self, v):
        """Sets the parameter to ``v`` (checked: finite, bounds, kind); the widgets follow.  True when it was set."""
        ok = self._on_set(self, v)
        self._show(self.value)
        return ok

    def reset(self):
        """Sets the parameter back to its default and the slider back to its range."""
        default = self.default
        self.reset_button.tooltip = 'reset to the default (%s)' % format_number(default)
        ok = self.set_value(default)
        if ok and self.slider is not None:
            self._set_range(*control_range(self.parameter, default)[:2])
            self._show(self.value)
        return ok

    def sync(self):
        """Moves the widgets to the parameter's value; True when they moved."""
        v = self.value
        if self.choice is not None:
            same = self.choice.value == (bool(v) if self.kind == 'bool' else float(v))
        else:
            same = self.text.value == format_number(v)
        if same:
            return False
        self._show(v)
        return True


def section_title(model, group):
    """A title for people of the panel section ``group`` (a dotted sublayer name) of ``model``.

    The retina's stages are named by what they are ("Outer plexiform layer", "Gain control", "ON
    ganglion cells: input"), with the code name after; other groups keep their name.
    """
    try:
        module = model.get_submodule(group) if group != type(model).__name__ else model
    except AttributeError:
        return group
    title = _SECTIONS.get(type(module).__name__)
    m = re.match(r'^(.*)gang_(\d+)_(input|spikes)$', group)
    if m:
        inp = getattr(model.get_submodule(m.group(1).rstrip('.')) if m.group(1) else model,
                      'gang_%s_input' % m.group(2), None)
        sign = getattr(inp, 'sign', None)
        if sign is not None:
            kind = 'ON' if float(sign) > 0 else 'OFF'
            title = '%s ganglion cells: %s' % (kind, 'input current' if m.group(3) == 'input' else 'spikes')
    return '%s (%s)' % (title, group) if title else group


def _section_note(model, group):
    """Which output and recorded maps a retina section makes (the names ``run`` and ``record`` use)."""
    keys, ganglia = getattr(model, '_keys', None), getattr(model, '_ganglia', None)
    if keys is None or ganglia is None:
        return ''
    if group in _RETINA_RECORDS:
        return 'record: %s' % _RETINA_RECORDS[group]
    m = re.match(r'^gang_(\d+)_(input|spikes)$', group)
    if not m:
        return ''
    k = int(m.group(1))
    index = [g[0] for g in ganglia].index(k) if k in [g[0] for g in ganglia] else None
    if index is None or index >= len(keys):
        return ''
    return "output: %s &middot; record: 'ganglion_%d' (its input current)" % (html.escape(keys[index]), k)


class ParameterPanel(widgets.VBox):
    """Controls for every scalar parameter of a convis model, grouped by sublayer.

    Parameters
    ----------
    model : convis.Layer
        any layer, with or without parameter metadata
    continuous_update : bool
        False (default): a slider sets its parameter when released; True: while it is dragged
    group_by : 'accordion', 'tabs' or 'sections'
        how sublayers are shown ('sections': collapsible boxes, several open at once) (a model with one group shows its rows directly)
    include, exclude : sequence of str
        keep only (or drop) parameters whose dotted name contains one of these words

    Attributes
    ----------
    controls : OrderedDict
        dotted parameter name -> :class:`ParameterControl`
    groups : OrderedDict
        sublayer name -> the dotted names of its controls
    titles : list of str
        the section titles shown (see :func:`section_title`)
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
        if group_by not in ('accordion', 'tabs', 'sections'):
            raise ValueError("group_by must be 'accordion', 'tabs' or 'sections', not %r" % (group_by,))
        self.model = model
        self.lock = lock_of(model)  # the model's lock (convis.locking), held while a control sets a parameter
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
        boxes = []
        for g, cs in groups.items():
            note = _section_note(model, g)
            rows = ([widgets.HTML('<small style="color:#616161">%s</small>' % note)] if note else []) + cs
            boxes.append(widgets.VBox(rows, layout=widgets.Layout(width='100%')))
        if len(boxes) == 1:
            body = boxes[0]
        elif not boxes:
            body = widgets.HTML('<i>%s has no scalar parameters</i>' % html.escape(type(model).__name__))
        elif group_by == 'sections':   # collapsible boxes, several open at once
            body = Sections(boxes, titles=[section_title(model, g) for g in groups], open=[0])
        else:
            container = widgets.Accordion if group_by == 'accordion' else widgets.Tab
            body = container(children=boxes, titles=tuple(section_title(model, g) for g in groups))
        self.body = body
        super().__init__([widgets.HBox([reset_all, self.message]), body],
                         layout=widgets.Layout(min_width='600px', width='600px'))
        self.add_class('convis-parameter-panel')
        self._by_id = {id(c.parameter): c for c in self.controls.values()}
        self._hook = follow_parameters(self)

    @property
    def titles(self):
        """The section titles shown (one per group)."""
        return [section_title(self.model, g) for g in self.groups]

    def _retitle(self):
        if isinstance(self.body, (widgets.Accordion, widgets.Tab, Sections)):
            self.body.titles = tuple(self.titles)

    # ----------------------------------------------------------------- changes
    def on_change(self, callback, remove=False):
        """Calls ``callback(name, value)`` after each change of a parameter (from a control or from Python)."""
        if remove:
            self._callbacks.remove(callback)
        else:
            self._callbacks.append(callback)

    def _notify(self, name, value):
        self.version += 1
        if name.rsplit('.', 1)[-1] == 'sign':
            self._retitle()
        for cb in list(self._callbacks):
            cb(name, value)

    def _set_from_control(self, control, v):
        self._setting = control
        try:
            v = control._checked(v)
            with self.lock:
                _set(control.parameter, v)
        except (ValueError, TypeError) as e:
            logger.warning('cannot set %s to %.40r: %s', control.name, v, e)
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
        """Sets every parameter of the panel back to its default (constructed or configured value)."""
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
