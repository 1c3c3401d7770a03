"""ImpulseResponsePanel: the temporal and spatial impulse responses of a model, kept up to date.

A model that adapts to a uniform grey (the retina's OPL starts adapted to ``init_luminance``, half
the luminosity range by default) must be probed on that grey: an impulse on a black screen shows
mostly the reaction to the screen going dark.  The panel therefore runs the model twice from its
cleared state, on the adapting grey ``b`` with and without an impulse of height ``a`` at the centre
pixel of the first frame, and shows the difference,

.. math:: r(t, i, j) = M\\big(b + a\\,\\delta_{t,0}\\,\\delta_{i,c_x}\\,\\delta_{j,c_y}\\big) - M(b),

(the model's own state is pushed before and popped after).  On a :class:`convis.retina.Retina` it
shows the linear stages (OPL, bipolar, ganglion input currents of the ON and OFF layers) this way and
the spiking outputs as firing rates (Hz): spike counts averaged over ``trials`` noisy repetitions and
smoothed with a Gaussian of ``rate_sigma`` seconds.  On other models it shows every output.

Each plot has its legend as a labelled list beside it (never over the data); ON traces are solid,
OFF traces dashed in another colour.  Below, a :class:`~convis_widgets.tensor_view.TensorView` per
map shows the spatial response at its peak frame, with a colour bar in the map's unit; its time
cursor is marked by a dashed grey line in its plot.  With ``auto=True`` the panel recomputes in a
background thread whenever a parameter of the model is set.

>>> panel = ImpulseResponsePanel(retina, shape=(100, 21, 21))
>>> retina.p.bipolar.g_leak = 20.0      # the panel recomputes
"""
import collections
import time

import bqplot
import ipywidgets as widgets
import numpy as np
import torch

import convis

from ._hooks import follow_parameters, unfollow_parameters
from .tensor_view import TensorView
from .worker import LatestWorker, take_over

__all__ = ['ImpulseResponsePanel', 'impulse_response', 'firing_rate', 'Impulse']

ON_COLOR, OFF_COLOR = '#d95f02', '#1f5fa8'
_COLORS = ['#222222', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf']

Impulse = collections.namedtuple('Impulse', 'responses keys baseline background')
Impulse.__doc__ = """Result of :func:`impulse_response`.

responses : list of arrays ``[1, c, t, x, y]``: trial mean with the impulse minus trial mean without
keys : the output keys of the model
baseline : list of arrays ``[1, c, t, x, y]``: trial mean of the response to the grey alone
background : the grey's luminance (input units)
"""


def impulse_response(model, shape=(300, 21, 21), amplitude=1.0, chunk=None, check=None, background=None,
                     trials=1, record=None, averaged=None):
    """The model's response to an impulse at the centre of the first frame, relative to its response to grey.

    Runs one batch of ``2 * trials`` uniform screens of luminance ``background`` (input units;
    default ``model.adapting_luminance()``), the first ``trials`` with an impulse of ``amplitude``
    added at the centre pixel of frame 0, from the cleared state (the model's state is kept).
    ``shape`` is ``(t, x, y)`` in frames and pixels.  ``check()`` is called between chunks of
    ``chunk`` frames (it may raise to stop).  ``record`` temporarily replaces the model's ``record``
    (a retina's intermediate maps).  The outputs named in ``averaged`` (default: all) are averaged over
    the trials; the others (deterministic ones) are taken from the first trial of each half.
    Returns an :class:`Impulse` of float32 arrays.
    """
    t, x, y = (int(v) for v in shape)
    trials = int(trials)
    if min(t, x, y, trials) < 1:
        raise ValueError('shape %r and trials %r must be positive' % (tuple(shape), trials))
    b = float(model.adapting_luminance() if background is None else background)
    if not (np.isfinite(b) and np.isfinite(amplitude)):
        raise ValueError('background (%r) and amplitude (%r) must be finite' % (b, amplitude))
    stim = torch.full((2 * trials, 1, t, x, y), b, device=model.device, dtype=model.dtype)
    stim[:trials, 0, 0, x // 2, y // 2] += amplitude
    chunk = t if chunk is None else int(chunk)
    collected, keys = None, None
    with torch.no_grad(), model.fresh_state():   # holds the lock: one step for every other user
        old_record = getattr(model, 'record', None)
        try:
            if record is not None:
                model.record = tuple(record)
            for s in range(0, t, chunk):
                if check is not None:
                    check()
                o = model(stim[:, :, s:s + chunk])
                outs = list(o) if isinstance(o, convis.Output) else [o]
                keys = list(o.keys) if isinstance(o, convis.Output) else ['output']
                if collected is None:
                    collected = [[] for _ in outs]
                for i, (key, out) in enumerate(zip(keys, outs)):
                    a = convis.utils.make_tensor_5d(out.detach()).float()
                    if averaged is None or key in averaged:
                        pair = torch.stack([a[:trials].mean(0), a[trials:].mean(0)])
                    else:
                        pair = a[[0, trials]]
                    collected[i].append(pair.cpu().numpy())
        finally:
            if record is not None:
                model.record = old_record
    pairs = [np.concatenate(c, axis=2) for c in collected]
    return Impulse([p[:1] - p[1:] for p in pairs], keys, [p[1:] for p in pairs], b)


def firing_rate(counts, dt, sigma):
    """Spike counts per step (averaged over trials) as a firing rate in Hz, smoothed along the last axis.

    .. math:: \\rho(t) = \\frac{1}{dt} \\sum_k n_k\\, g_\\sigma(t - k\\,dt), \\qquad \\sum_k g_\\sigma(k\\,dt) = 1

    ``dt`` and ``sigma`` (the Gaussian's standard deviation) in seconds; ``sigma = 0`` does not
    smooth.  The ends are padded with their mirror image, so a constant rate stays constant.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not (dt > 0 and sigma >= 0):
        raise ValueError('dt (%r) must be positive and sigma (%r) not negative' % (dt, sigma))
    rate = counts / dt
    half = int(np.ceil(3 * sigma / dt))
    if half == 0 or counts.shape[-1] < 2:
        return rate
    k = np.exp(-0.5 * (np.arange(-half, half + 1) * dt / sigma) ** 2)
    k /= k.sum()
    pad = min(half, counts.shape[-1] - 1)
    padded = np.pad(rate, [(0, 0)] * (rate.ndim - 1) + [(pad, pad)], mode='reflect')
    padded = np.pad(padded, [(0, 0)] * (rate.ndim - 1) + [(half - pad, half - pad)], mode='edge')
    return np.apply_along_axis(lambda r: np.convolve(r, k, mode='valid'), -1, padded)


def _style(label):
    """(colour, line style) of a trace: ON solid orange, OFF dashed blue, others solid by position."""
    if label.endswith('OFF') or '_OFF_' in label:
        return OFF_COLOR, 'dashed'
    if label.endswith('ON') or '_ON_' in label:
        return ON_COLOR, 'solid'
    return None, 'solid'


def _plan(model):
    """What to record and show: (record, groups); a group is (title, y label, unit, [(key, label, kind)]).

    ``kind`` is ``'linear'`` (response minus the grey's, with a spatial map) or ``'rate'`` (a firing rate).
    """
    from convis.retina import Retina
    if not isinstance(model, Retina):
        return None, [('impulse response at the centre', 'response - response to grey', 'a.u.', None)]
    use = model._use
    linear = []
    if use['opl'] and (model._has_opl or model._custom['opl']):
        linear.append(('opl', 'OPL', 'linear'))
    if use['bipolar'] and (model._has_cgc or model._custom['bipolar']):
        linear.append(('bipolar', 'bipolar', 'linear'))
    ganglia, rates = [], []
    if use['gang']:
        for i, (k, has_spikes) in enumerate(model._ganglia):
            sign = model._keys[i][len('ganglion_spikes_'):]
            ganglia.append(('ganglion_%d' % k, 'ganglion input ' + sign, 'linear'))
            if use['spikes'] and has_spikes:
                rates.append((model._keys[i], 'firing rate ' + sign, 'rate'))
    record = tuple(dict.fromkeys(tuple(model.record) + tuple(k for k, _, _ in linear + ganglia)))
    groups = [g for g in (('OPL and bipolar (minus grey)', 'potential', 'a.u.', linear),
                          ('ganglion input current (minus grey)', 'current', 'Hz', ganglia),
                          ('ganglion firing rate (mean of trials)', 'rate', 'Hz', rates)) if g[3]]
    return record, groups


class ImpulseResponsePanel(widgets.VBox):
    """Temporal impulse responses at the centre (lines) and spatial responses (animated maps) of a model.

    Parameters
    ----------
    model : convis.Layer
    shape : (t, x, y)
        length (frames) and size (pixels) of the impulse input
    amplitude : float or None
        height of the impulse in input units (default: the model's ``resolution.input_luminosity_range``)
    time : float or None
        seconds after the impulse shown in the spatial maps (default: each map's peak)
    auto : bool
        recompute in a background thread whenever a parameter of the model is set
    trials : int
        noisy repetitions averaged for the firing rates (a retina's spiking outputs)
    rate_sigma : float
        standard deviation (s) of the Gaussian that smooths the firing rates
    background : float or None
        luminance of the grey the impulse is shown on (default: ``model.adapting_luminance()``)

    After a computation, ``traces`` maps each label to its centre trace (the y of its line),
    ``responses`` maps each key to its ``[1, c, t, x, y]`` response minus the grey's, and ``rates``
    maps each spiking output's key to its firing rate at the centre (Hz).
    """

    def __init__(self, model, shape=(300, 21, 21), amplitude=None, time=None, auto=True, trials=16,
                 rate_sigma=0.005, background=None):
        self.model = model
        self.shape = tuple(int(v) for v in shape)
        self.amplitude = float(model.resolution.input_luminosity_range if amplitude is None else amplitude)
        self.trials, self.rate_sigma, self.background = int(trials), float(rate_sigma), background
        self.output_keys, self.responses, self.rates, self.traces = [], {}, {}, {}
        self.compute_seconds = None
        self.computed = 0
        self._dt = model.resolution.dt
        self._record, groups = _plan(model)
        self._fixed_frame = None if time is None else int(round(time / self._dt))
        self.figures, self.lines, self.cursors, self.legends, self._groups = [], {}, [], [], []
        self._scales = []
        boxes = []
        for title, ylabel, unit, members in groups:
            fig, cursor = self._figure(title, '%s (%s)' % (ylabel, unit))
            legend = widgets.HTML('', layout=widgets.Layout(width='170px', margin='40px 0 0 0'))
            legend.add_class('convis-impulse-legend')
            self.figures.append(fig)
            self.cursors.append(cursor)
            self.legends.append(legend)
            self._groups.append({'unit': unit, 'members': members})
            boxes.append(widgets.HBox([fig, legend]))
        self.views = []
        self._view_group = []
        self._view_box = widgets.HBox([], layout=widgets.Layout(flex_flow='row wrap'))
        self.status = widgets.HTML('')
        self.worker = None
        self._hook = None
        self._moving = False
        super().__init__([widgets.HBox(boxes, layout=widgets.Layout(flex_flow='row wrap')), self._view_box,
                          self.status])
        self.add_class('convis-impulse-panel')
        self.compute()
        if auto:
            take_over(model, 'impulse panel', self)   # a re-run cell's older panel stops following the model
            self.worker = LatestWorker('convis-impulse', on_error=self._show_error, lock=model.lock)
            self._ids = {id(p) for p in model.parameters()}
            self._hook = follow_parameters(self)

    def _figure(self, title, ylabel):
        xs, ys = bqplot.LinearScale(), bqplot.LinearScale()
        cursor = bqplot.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={'x': xs, 'y': ys}, colors=['#888888'],
                              line_style='dashed', stroke_width=1)
        fig = bqplot.Figure(
            marks=[cursor], title=title,
            axes=[bqplot.Axis(scale=xs, label='time after the impulse (s)'),
                  bqplot.Axis(scale=ys, orientation='vertical', label=ylabel, label_offset='45px')],
            layout=widgets.Layout(width='380px', height='250px'),
            fig_margin={'top': 40, 'bottom': 45, 'left': 65, 'right': 15})
        self._scales.append((xs, ys))
        return fig, cursor

    def compute(self, check=None):
        """Recomputes the responses now (in the calling thread) and updates the plots and maps."""
        t0 = time.perf_counter()
        spiking = [key for g in self._groups for key, _, kind in (g['members'] or []) if kind == 'rate']
        result = impulse_response(self.model, self.shape, self.amplitude, chunk=max(50, self.shape[0] // 4),
                                  check=check, background=self.background, trials=self.trials if spiking else 1,
                                  record=self._record, averaged=spiking)
        self.compute_seconds = time.perf_counter() - t0
        self._show(result)
        self.computed += 1
        return result.responses

    def update(self):
        """Recomputes in the background thread (the newest request wins); synchronous without ``auto``."""
        if self.worker is None:
            self.compute()
        else:
            self.worker.submit(lambda gen: self.compute(check=lambda: self.worker.check(gen)))

    def _show(self, result):
        by_key = dict(zip(result.keys, result.responses))
        base = dict(zip(result.keys, result.baseline))
        self.output_keys, self.responses = list(result.keys), by_key
        t = result.responses[0].shape[2]
        times = np.arange(t) * self._dt
        maps = []
        for gi, group in enumerate(self._groups):
            members = group['members'] or [(k, k, 'linear') for k in result.keys]
            fig = self.figures[gi]
            legend = []
            for j, (key, label, kind) in enumerate(members):
                if kind == 'rate':
                    counts = (by_key[key] + base[key])[0, 0, :, self.shape[1] // 2, self.shape[2] // 2]
                    y = firing_rate(counts, self._dt, self.rate_sigma)
                    self.rates[key] = y
                else:
                    r = by_key[key]
                    y = r[0, 0, :, r.shape[3] // 2, r.shape[4] // 2]
                    maps.append((gi, key, label, group['unit'], r))
                color, dash = _style(label)
                color = color or _COLORS[j % len(_COLORS)]
                self.traces[label] = np.asarray(y, dtype=np.float64)
                self._line(fig, label, times, y, color, dash)
                legend.append(_legend_item(label, color, dash))
            self.legends[gi].value = '<div style="font-size:12px;line-height:1.6">%s</div>' % ''.join(legend)
        self._show_maps(maps)
        self.status.value = ''

    def _line(self, fig, label, times, y, color, dash):
        line = self.lines.get(label)
        if line is None:
            xs, ys = self._scales[self.figures.index(fig)]
            line = bqplot.Lines(x=times, y=np.asarray(y, np.float64), scales={'x': xs, 'y': ys}, colors=[color],
                                line_style=dash, stroke_width=2, labels=[label], display_legend=False)
            self.lines[label] = line
            fig.marks = list(fig.marks) + [line]
        else:
            with line.hold_sync():
                line.x, line.y = times, np.asarray(y, np.float64)

    def _show_maps(self, maps):
        peaks = [self._fixed_frame if self._fixed_frame is not None
                 else int(np.argmax(np.abs(r[0, 0]).max(axis=(1, 2)))) for _, _, _, _, r in maps]
        if len(self.views) != len(maps):
            for v in self.views:
                v.close()
            self.views, self._view_group = [], []
            for (gi, key, label, unit, r), peak in zip(maps, peaks):
                v = TensorView(r, title=label, unit=unit, colormap='RdBu', symmetric=True, dt=self._dt,
                               zoom=max(1, 128 // max(r.shape[3], r.shape[4])))
                v.observe(self._frame_moved, 'frame')
                self.views.append(v)
                self._view_group.append(gi)
            self._view_box.children = self.views
            follow = [True] * len(maps)
        else:
            follow = [getattr(v, '_at_peak', True) for v in self.views]
            for v, (_, _, _, _, r) in zip(self.views, maps):
                v.set_data(r)
                m = float(np.abs(r).max())
                if m > 0 and not (v.vmin <= -m and m <= v.vmax):
                    v.rescale(-m, m)
        for v, peak, f in zip(self.views, peaks, follow):
            if f:
                self._moving = True
                try:
                    v.frame = peak
                finally:
                    self._moving = False
                v._at_peak = True
        for gi in dict.fromkeys(self._view_group):  # each plot's cursor starts at its first map's frame
            self._update_cursor(self.views[self._view_group.index(gi)])
        for gi, cursor in enumerate(self.cursors):
            if gi not in self._view_group:
                cursor.visible = False

    def _frame_moved(self, change):
        view = change['owner']
        if not self._moving:
            view._at_peak = False
        self._update_cursor(view)

    def _update_cursor(self, view):
        if view not in self.views:
            return
        gi = self._view_group[self.views.index(view)]
        ys = [np.asarray(m.y, np.float64) for m in self.figures[gi].marks if m is not self.cursors[gi]]
        lo = min([float(np.min(y)) for y in ys if y.size] + [0.0])
        hi = max([float(np.max(y)) for y in ys if y.size] + [0.0])
        x = view.frame * self._dt
        with self.cursors[gi].hold_sync():
            self.cursors[gi].x = [x, x]
            self.cursors[gi].y = [lo, hi if hi > lo else lo + 1.0]

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


def _legend_item(label, color, dash):
    border = {'solid': 'solid', 'dashed': 'dashed'}.get(dash, 'dotted')
    return ('<div class="convis-legend-item"><span style="display:inline-block;width:28px;vertical-align:middle;'
            'border-top:3px %s %s;margin-right:6px"></span>%s</div>' % (border, color, label))
