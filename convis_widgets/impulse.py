"""ImpulseResponsePanel: the temporal and spatial impulse responses of a model, kept up to date.

The model gets a unit impulse at the centre pixel of the first frame,

.. math:: x(t, i, j) = a\\,\\delta_{t,0}\\,\\delta_{i,c_x}\\,\\delta_{j,c_y},

from its cleared state (the model's own state is pushed before and popped after).  The panel
plots the response at the centre over time for every output of the model (ON and OFF of a
retina, as bqplot lines) and shows the whole spatio-temporal response in a
:class:`~convis_widgets.tensor_view.TensorView` per output, whose time cursor chooses the moment
of the spatial response (a red line marks it in the plot).  With ``auto=True`` it recomputes in
a background thread whenever a parameter of the model is set.

>>> panel = ImpulseResponsePanel(retina, shape=(300, 21, 21))
>>> retina.p.bipolar.g_leak = 20.0      # the panel recomputes
"""
import time

import bqplot
import ipywidgets as widgets
import numpy as np
import torch

import convis

from ._hooks import follow_parameters, unfollow_parameters
from .tensor_view import TensorView, sync_views
from .worker import LatestWorker

__all__ = ['ImpulseResponsePanel', 'impulse_response']

_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']


def impulse_response(model, shape=(300, 21, 21), amplitude=1.0, chunk=None, check=None):
    """The model's responses to an impulse at the centre of the first frame, as a list of numpy arrays and keys.

    ``shape`` is ``(t, x, y)`` in frames and pixels.  ``check()`` is called between chunks of
    ``chunk`` frames (it may raise to stop).  Returns ``(outputs, keys)``; each output is
    ``[b, c, t, x, y]`` float32.
    """
    t, x, y = (int(v) for v in shape)
    device, dtype = model.device, model.dtype
    stim = torch.zeros((1, 1, t, x, y), device=device, dtype=dtype)
    stim[0, 0, 0, x // 2, y // 2] = amplitude
    chunk = t if chunk is None else int(chunk)
    collected, keys = None, None
    with torch.no_grad():
        model.push_state()
        try:
            model.clear_state()
            for s in range(0, t, chunk):
                if check is not None:
                    check()
                o = model(stim[:, :, s:s + chunk])
                outs = list(o) if isinstance(o, convis.Output) else [o]
                keys = list(o.keys) if isinstance(o, convis.Output) else ['output']
                if collected is None:
                    collected = [[] for _ in outs]
                for i, out in enumerate(outs):
                    collected[i].append(convis.utils.make_tensor_5d(out.detach()).float().cpu().numpy())
        finally:
            model.pop_state()
    return [np.concatenate(c, axis=2) for c in collected], keys


class ImpulseResponsePanel(widgets.VBox):
    """Temporal impulse responses at the centre (lines) and spatial responses (animated views) of a model.

    Parameters
    ----------
    model : convis.Layer
    shape : (t, x, y)
        length (frames) and size (pixels) of the impulse input
    amplitude : float or None
        height of the impulse (default: the model's ``resolution.input_luminosity_range``, a full-range flash)
    time : float or None
        seconds after the impulse shown in the spatial views (default: the peak of the first output)
    auto : bool
        recompute in a background thread whenever a parameter of the model is set
    """

    def __init__(self, model, shape=(300, 21, 21), amplitude=None, time=None, auto=True):
        self.model = model
        self.shape = tuple(int(v) for v in shape)
        self.amplitude = float(model.resolution.input_luminosity_range if amplitude is None else amplitude)
        self.output_keys = []
        self.responses = []
        self.compute_seconds = None
        self.computed = 0
        dt = model.resolution.dt
        self._x = bqplot.LinearScale()
        self._y = bqplot.LinearScale()
        self.lines = bqplot.Lines(x=np.zeros(1), y=np.zeros(1), scales={'x': self._x, 'y': self._y},
                                  display_legend=True, colors=_COLORS)
        self.cursor = bqplot.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={'x': self._x, 'y': self._y},
                                   colors=['#d62728'], line_style='dashed', stroke_width=1)
        self.figure = bqplot.Figure(
            marks=[self.lines, self.cursor], title='impulse response at the centre',
            axes=[bqplot.Axis(scale=self._x, label='time after the impulse (s)'),
                  bqplot.Axis(scale=self._y, orientation='vertical', label='response')],
            layout=widgets.Layout(width='420px', height='260px'), legend_location='top-right',
            fig_margin={'top': 40, 'bottom': 45, 'left': 60, 'right': 10})
        self.views = []
        self._view_box = widgets.HBox([])
        self.status = widgets.HTML('')
        self._initial_time = time
        self._dt = dt
        self.worker = None
        self._hook = None
        super().__init__([self.figure, self._view_box, self.status])
        self.add_class('convis-impulse-panel')
        self.compute()
        if auto:
            self.worker = LatestWorker('convis-impulse', on_error=self._show_error)
            self._ids = {id(p) for p in model.parameters()}
            self._hook = follow_parameters(self)

    def compute(self, check=None):
        """Recomputes the responses now (in the calling thread) and updates the plot and views."""
        t0 = time.perf_counter()
        outs, keys = impulse_response(self.model, self.shape, self.amplitude, chunk=max(50, self.shape[0] // 4),
                                      check=check)
        self.compute_seconds = time.perf_counter() - t0
        self._show(outs, keys)
        self.computed += 1
        return outs

    def update(self):
        """Recomputes in the background thread (the newest request wins); synchronous without ``auto``."""
        if self.worker is None:
            self.compute()
        else:
            self.worker.submit(lambda gen: self.compute(check=lambda: self.worker.check(gen)))

    def _show(self, outs, keys):
        t = outs[0].shape[2]
        times = np.arange(t) * self._dt
        centre = np.stack([o[0, 0, :, o.shape[3] // 2, o.shape[4] // 2] for o in outs])
        self.responses, self.output_keys = outs, keys
        with self.lines.hold_sync():
            self.lines.x = times
            self.lines.y = centre
            self.lines.labels = list(keys)
        if not self.views or len(self.views) != len(outs):
            for v in self.views:
                v.close()
            self.views = [TensorView(o, title=k, colormap='RdBu', symmetric=True, dt=self._dt,
                                     zoom=max(1, 128 // max(o.shape[3], o.shape[4]))) for o, k in zip(outs, keys)]
            frame = (int(round(self._initial_time / self._dt)) if self._initial_time is not None
                     else int(np.argmax(np.abs(centre[0]))))
            for v in self.views:
                v.frame = frame
                v.observe(self._frame_moved, 'frame')
            self._links = sync_views(*self.views) if len(self.views) > 1 else []
            self._view_box.children = self.views
        else:
            for v, o in zip(self.views, outs):
                v.set_data(o)
                m = float(np.abs(o).max())
                if m > 0 and not (v.vmin <= -m and m <= v.vmax):
                    v.rescale(-m, m)
        self._update_cursor()
        self.status.value = ''

    def _frame_moved(self, change):
        self._update_cursor()

    def _update_cursor(self):
        if not self.views:
            return
        lo = min(float(np.min(self.lines.y)), 0.0)
        hi = max(float(np.max(self.lines.y)), 0.0)
        x = self.views[0].frame * self._dt
        with self.cursor.hold_sync():
            self.cursor.x = [x, x]
            self.cursor.y = [lo, hi if hi > lo else lo + 1.0]

    def _show_error(self, generation, error):
        self.status.value = '<span style="color:#c62828">impulse response failed: %s</span>' % error

    def _parameter_was_set(self, p):
        if id(p) in self._ids:
            self.update()

    def close(self):
        """Stops following the model, ends the worker thread and closes the widgets."""
        if getattr(self, '_hook', None) is not None:
            unfollow_parameters(self._hook)
        if getattr(self, 'worker', None) is not None:
            self.worker.close()
        for v in getattr(self, 'views', []):
            v.close()
        super().close()

