"""Pin as A: the ModelExplorer keeps one parameter set as A and compares the current one with it.

``explorer.pin()`` (the "pin as A" button) copies the model as it is (``copy.deepcopy``: its parameters,
with a lock of its own, :mod:`convis.locking`) and keeps tuning the original.  After every preview the
explorer's worker runs the copy A on the same stimulus (only when the stimulus or the shown outputs
changed: A's parameters do not), in the same job, so the user's model never runs twice at once and A's
results follow the current ones in order.  The comparison box then shows, for every shown output, A,
the current set and their difference ``current - A`` (diverging colour map, scale symmetric around 0),
with A and the current set on one colour scale, and the table of the parameters that differ (name, A
value, current value, unit).  ``explorer.unpin()`` returns to the normal view.

>>> explorer.pin()                                        # doctest: +SKIP
>>> explorer.panel.set_value('bipolar.lambda_amp', 0.0)   # doctest: +SKIP
>>> explorer.wait(); explorer.comparison.differences      # doctest: +SKIP
[('bipolar.lambda_amp', 100.0, 0.0, 'Hz')]
"""
import copy
import html
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np
import torch
from ipywidgets import jslink

import convis
from convis.utils import _short_repr

from .frames import color_range
from .spikes import RateFilter, is_spike_output
from .tensor_view import TensorView, sync_views

__all__ = ['Comparison', 'parameter_differences', 'shown_outputs']

DIFF_COLORMAP = 'RdBu'
"""Colour map of the difference views (diverging; the scale is symmetric around 0)."""


def _value(v):
    """A number for a one-element array, else the array (for the table and for tests)."""
    a = np.asarray(v)
    return a.reshape(-1)[0].item() if a.size == 1 else a


def parameter_differences(a, current, units):
    """``[(name, A value, current value, unit)]`` of the parameters whose values differ between the dicts
    ``a`` and ``current`` (``name -> array``, as ``model.get_parameters()`` gives), in ``current``'s order."""
    rows = []
    for name, value in current.items():
        if name not in a:
            continue
        x, y = np.asarray(a[name]), np.asarray(value)
        if x.shape != y.shape or not np.array_equal(x, y):
            rows.append((name, _value(x), _value(y), units.get(name, '')))
    return rows


def _units(model):
    units = OrderedDict((n, getattr(p, 'unit', '') or '') for n, p in model.named_parameters())
    units.update((n, getattr(p, 'unit', '') or '') for n, p in model.named_virtual_parameters())
    return units


def shown_outputs(model, x, keys, model_keys, record=None, rates=False, dt=None, rate_tau=None, check=None,
                  chunk=100):
    """The outputs ``keys`` of ``model`` run on ``x`` from the cleared state, as the explorer shows them.

    ``model_keys`` are the model's output names, ``record`` the inner stages recorded after them (the
    retina's ``record``; None leaves it alone); spike outputs become rates (Hz, :class:`RateFilter` with
    ``dt`` and ``rate_tau`` s) when ``rates``.  Runs in chunks of ``chunk`` frames, calling ``check()``
    between them.  Returns ``key -> float32 array [b, c, t, x, y]``.
    """
    collected = OrderedDict((k, []) for k in keys)
    with torch.no_grad(), model.lock:
        old = getattr(model, 'record', None)
        model.clear_state()
        if record is not None:
            model.record = tuple(record)
        try:
            for s in range(0, x.shape[2], chunk):
                if check is not None:
                    check()
                o = model(x[:, :, s:s + chunk])
                outs = list(o) if isinstance(o, convis.Output) else [o]
                by_key = dict(zip(list(model_keys) + list(record or ()), outs))
                for k in keys:
                    collected[k].append(convis.utils.make_tensor_5d(by_key[k].detach()).float().cpu().numpy())
        finally:
            if record is not None:
                model.record = old
    result = OrderedDict()
    for k, parts in collected.items():
        a = np.concatenate(parts, axis=2)
        result[k] = RateFilter(dt, rate_tau)(a) if rates and is_spike_output(k) else a.astype(np.float32)
    return result


class Comparison(object):
    """The "pin as A" part of a :class:`~convis_widgets.explorer.ModelExplorer`: a button and a box.

    Attributes
    ----------
    box : ipywidgets.VBox
        what the explorer shows: the button, and while pinned the table and the views
    model_a : convis.Layer or None
        the pinned copy of the model (None when nothing is pinned)
    differences : list of tuples
        ``(name, A value, current value, unit)`` of the parameters that differ (after each preview)
    a_outputs, diffs : dict
        output key -> float32 ``[b, c, t, x, y]``: A's shown outputs and ``current - A``
    views : dict
        output key -> ``(A view, current view, difference view)``
    """

    def __init__(self, explorer):
        self.explorer = explorer
        self.model_a = None
        self.pinned = None
        self.differences = []
        self.a_outputs, self.diffs, self.views = OrderedDict(), OrderedDict(), OrderedDict()
        self._cache = None
        self._links = []
        self.button = widgets.Button(description='pin as A', icon='thumb-tack',
                                     tooltip='keep the current parameters as A and compare the next ones with them')
        self.button.add_class('convis-pin-button')
        self.button.on_click(lambda _: self.unpin() if self.pinned is not None else self.pin())
        self.table = widgets.HTML('')
        self.table.add_class('convis-pin-table')
        self.grid = widgets.HBox([], layout=widgets.Layout(flex_flow='row wrap'))
        self.box = widgets.VBox([self.button])
        self.box.add_class('convis-pin')

    @property
    def active(self):
        """True while a parameter set is pinned."""
        return self.pinned is not None

    def pin(self):
        """Keeps a copy of the model with its current parameters as A; the next previews compare with it."""
        e = self.explorer
        e.worker.interrupt()
        with e.lock:
            self.model_a = copy.deepcopy(e.model)
            self.pinned = e.model.get_parameters()
            self._cache = None
            self.differences = []
            self.table.value = self._table_html()
        self.button.description, self.button.icon = 'unpin A', 'times'
        self.box.children = [self.button, self.table, self.grid]
        e.schedule()

    def unpin(self):
        """Drops A and returns the explorer to its normal view."""
        with self.explorer.lock:
            self.model_a, self.pinned, self._cache = None, None, None
            self.differences = []
            self.a_outputs, self.diffs = OrderedDict(), OrderedDict()
            self._close_views()
        self.button.description, self.button.icon = 'pin as A', 'thumb-tack'
        self.box.children = [self.button]

    def update(self, generation, keys, views, record):
        """Runs A when needed and shows A, the current outputs and ``current - A`` (in the explorer's job).

        ``keys`` and ``views`` are the outputs the preview just showed, ``record`` the stages it recorded.
        """
        e = self.explorer
        if self.model_a is None:
            return
        record = tuple(record) if e.stages else None
        key = (e._x, tuple(keys), record, e.rates, e.rate_tau)
        if self._cache is None or self._cache[0] is not e._x or self._cache[1:] != key[1:]:
            self.a_outputs = shown_outputs(self.model_a, e._x, keys, e.model_keys, record, e.rates, e.dt, e.rate_tau,
                                           check=lambda: e.worker.check(generation))
            self._cache = key
        e.worker.check(generation)
        self.differences = parameter_differences(self.pinned, e.model.get_parameters(), _units(e.model))
        current = OrderedDict((k, v.values()) for k, v in zip(keys, views))
        self.diffs = OrderedDict((k, current[k] - self.a_outputs[k]) for k in keys
                                 if current[k].shape == self.a_outputs[k].shape)
        self._show(keys, views, current)
        self.table.value = self._table_html()

    def _show(self, keys, views, current):
        if list(self.views) != list(keys):
            self._close_views()
            for k, v in zip(keys, views):
                kw = dict(dt=v.dt, compact=True, zoom=v.zoom or 2, unit=v.unit)
                self.views[k] = (TensorView(title='A: %s' % v.title, colormap=v.colormap, **kw),
                                 TensorView(title='current: %s' % v.title, colormap=v.colormap, **kw),
                                 TensorView(title='current − A', colormap=DIFF_COLORMAP, **kw))
            flat = [w for triple in self.views.values() for w in triple]
            self._links = (sync_views(*flat) if len(flat) > 1 else []) + [
                jslink((self.explorer.input_view, 'frame'), (flat[0], 'frame'))]
            self.grid.children = [widgets.VBox(list(triple)) for triple in self.views.values()]
        for k in keys:
            a_view, cur_view, diff_view = self.views[k]
            a, cur = self.a_outputs[k], current[k]
            lo, hi = color_range(np.concatenate([a.ravel(), cur.ravel()]))
            for view, data in ((a_view, a), (cur_view, cur)):
                view.rescale(lo, hi)
                view.set_data(data)
            if k in self.diffs:
                diff_view.rescale(*color_range(self.diffs[k], symmetric=True))
                diff_view.set_data(self.diffs[k])

    def _table_html(self):
        if self.pinned is None:
            return ''
        if not self.differences:
            return '<small style="color:#616161">A pinned; no parameter differs from A yet</small>'
        rows = ''.join('<tr>%s</tr>' % ''.join('<td style="padding:0 8px 0 0">%s</td>' % c for c in tuple(
            html.escape(_short_repr(c, 60) if not isinstance(c, str) else c) for c in row)) for row in self.differences)
        return ('<table class="convis-pin-differences" style="font-size:12px"><tr><th align="left">parameter</th>'
                '<th align="left">A</th><th align="left">current</th><th align="left">unit</th></tr>%s</table>' % rows)

    def _close_views(self):
        for link in self._links:
            link.close()
        self._links = []
        for triple in self.views.values():
            for v in triple:
                v.close()
        self.views = OrderedDict()
        self.grid.children = []

    def close(self):
        """Drops A and closes the views."""
        self.model_a, self.pinned = None, None
        self._close_views()
