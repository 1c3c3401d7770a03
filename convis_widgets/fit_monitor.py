"""FitMonitor: a live view of a fit running in a background thread (:func:`convis.fitting.iter_fit`).

It shows the loss per epoch (training and held out, on a log scale), the trajectory of every fitted scalar
parameter (with its unit and bounds), and the model's prediction against the target at a chosen pixel or
cell (a trace over time, and both maps at a chosen time).  **Stop** ends the fit before the next chunk it
would run and puts back the parameters of the last finished epoch; **Resume** continues from there (a new
optimizer: LBFGS's history starts afresh); **Apply best parameters** sets those of the epoch with the lowest
held-out loss (the training loss without a held-out recording).

The fit holds the model's lock (``model.lock``) during each epoch and releases it between epochs, so other
users of the model (an explorer's preview, the user's own cells) run between epochs.  The display is
throttled: it is redrawn at most once every ``interval`` seconds (and once at the end), and sends only the
loss and parameter series, one trace and two maps of the chosen time.

>>> monitor = FitMonitor(retina, stimulus, target, convis.losses.mse('bipolar'),   # doctest: +SKIP
...                      parameters=['bipolar.g_leak', 'opl.sigma_center'], epochs=20)
>>> monitor                                                           # doctest: +SKIP
>>> monitor.wait(); monitor.records[-1]['loss']                       # doctest: +SKIP
"""
import html
import logging
import math
import threading
import time

import bqplot
import ipywidgets as widgets
import numpy as np
import torch

import convis
from convis.fitting import fit_parameters, iter_fit
from convis.losses import select
from .spikes import TITLE_STYLE

__all__ = ['FitMonitor']

logger = logging.getLogger('convis_widgets')


class _Stopped(Exception):
    """Raised between chunks of a fit when Stop was pressed."""


def _bounds_text(p):
    lo, hi = getattr(p, 'bounds', None) or (None, None)
    if lo is None and hi is None:
        return ''
    return '[%s, %s]' % ('-inf' if lo is None else '%g' % lo, 'inf' if hi is None else '%g' % hi)


class FitMonitor(widgets.VBox):
    """Runs ``iter_fit(model, inp, target, loss_fn, ...)`` in a background thread and shows it live.

    Parameters
    ----------
    model : convis.Layer
    inp, target : arrays or tensors ``[b, c, t, x, y]`` (or fewer dimensions, as ``iter_fit`` takes them)
        the stimulus and the recording; NaN in the target: not recorded
    loss_fn : callable
        ``loss_fn(target, output)`` (:mod:`convis.losses`)
    parameters : list of names or Parameters, or None
        what is fitted (:func:`convis.fitting.fit_parameters`); None: those that already require a gradient
    held_out : (inp, target) or None
        a recording not fitted on (its loss is drawn too, and chooses the best parameters)
    output, region, rate
        what the prediction shown is: ``select(model(inp), output, region)`` (as in :mod:`convis.losses`),
        turned into a rate (Hz) by ``rate`` when given (compare a rate with spike counts of many trials:
        the target shown is its mean over the batch, divided by the step when ``rate`` is given)
    epochs : int
        epochs of each run (Start and each Resume)
    interval : float
        the display is redrawn at most once every ``interval`` seconds
    start : bool
        start the fit at once
    **fit_kwargs
        passed to :func:`convis.fitting.iter_fit` (``dt``, ``t_skip``, ``max_iter``, ``optimizer``, ...)

    Attributes
    ----------
    records : list of dict
        every epoch's record (epochs numbered on across Resume)
    redraws : int
        how often the display was redrawn
    """

    def __init__(self, model, inp, target, loss_fn=None, parameters=None, held_out=None, output=0, region=None,
                 rate=None, epochs=20, interval=0.25, start=True, **fit_kwargs):
        self.model = model
        self.inp, self.target, self.loss_fn = inp, target, loss_fn
        self.held_out, self.fit_kwargs = held_out, dict(fit_kwargs)
        self.output, self.region, self.rate = output, region, rate
        self.epochs, self.interval = int(epochs), float(interval)
        if parameters is not None:
            fit_parameters(model, parameters)
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not self.params:
            raise ValueError('no parameter of the %s requires a gradient: give parameters=[...]' % type(model).__name__)
        self.records = []
        self.redraws = 0
        self._callbacks = []
        self.error = None
        self._start_values = self._values()
        self._thread = None
        self._stop = threading.Event()
        self._last_draw = -math.inf
        self._prediction = None
        y = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target).detach()
        y = y.double().cpu().numpy()
        while y.ndim < 5:
            y = y[None] if y.ndim >= 3 else y[..., None]
        y = np.nanmean(y, axis=0)[0] if y.shape[0] > 1 else y[0, 0]
        self._target = y / model.resolution.dt if rate is not None else y     # [t, x, y]
        self._build()
        if start:
            self.start()

    # ----------------------------------------------------------------- layout
    def _build(self):
        t, h, w = self._target.shape
        xs, ys = bqplot.LinearScale(), bqplot.LogScale()
        self.loss_lines = bqplot.Lines(x=[], y=[[], []], scales={'x': xs, 'y': ys}, colors=['#1565c0', '#e65100'],
                                       labels=['training', 'held out'], marker='circle', marker_size=16)
        self.loss_figure = bqplot.Figure(
            marks=[self.loss_lines], title='loss (training blue, held out orange)', title_style=TITLE_STYLE,
            axes=[bqplot.Axis(scale=xs, label='epoch', tick_format='d'),
                  bqplot.Axis(scale=ys, orientation='vertical', label='loss', tick_format='.2~r', label_offset='55px')],
            layout=widgets.Layout(width='380px', height='260px'),
            fig_margin={'top': 40, 'bottom': 45, 'left': 75, 'right': 15})
        self.parameter_lines, figures, self._parameter_figures = {}, [], []
        for name, p in self.params:
            if p.numel() != 1:
                continue
            px, py = bqplot.LinearScale(), bqplot.LinearScale()
            line = bqplot.Lines(x=[], y=[], scales={'x': px, 'y': py}, colors=['#2e7d32'], marker='circle',
                                marker_size=12)
            unit = getattr(p, 'unit', '') or ''
            bounds = _bounds_text(p)
            fig = bqplot.Figure(marks=[line], title=name, title_style=TITLE_STYLE,
                                axes=[bqplot.Axis(scale=px, label='epoch', tick_format='d'),
                                      bqplot.Axis(scale=py, orientation='vertical', label=(unit or 'value'),
                                                  tick_format='.3g', label_offset='45px')],
                                layout=widgets.Layout(width='250px', height='190px'),
                                fig_margin={'top': 35, 'bottom': 40, 'left': 60, 'right': 10})
            fig.add_class('convis-fit-parameter')
            self.parameter_lines[name] = line
            self._parameter_figures.append(fig)
            figures.append(widgets.VBox([fig, widgets.HTML('<small style="color:#616161">%s</small>' % html.escape(
                ('bounds %s %s' % (bounds, unit)).strip() if bounds else ('no bounds' + (' (%s)' % unit if unit else ''))))]))
        arrays = ['%s (%d values)' % (n, p.numel()) for n, p in self.params if p.numel() != 1]
        if arrays:
            figures.append(widgets.HTML('<small>also fitted: %s</small>' % html.escape(', '.join(arrays))))

        tx, ty = bqplot.LinearScale(), bqplot.LinearScale()
        self.trace_lines = bqplot.Lines(x=[], y=[[], []], scales={'x': tx, 'y': ty}, colors=['#424242', '#c62828'],
                                        labels=['target', 'prediction'])
        self.time_line = bqplot.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={'x': tx, 'y': bqplot.LinearScale(min=0.0, max=1.0)},
                                      colors=['#888888'], line_style='dashed', stroke_width=1)
        unit = 'Hz' if self.rate is not None else 'output'
        self.trace_figure = bqplot.Figure(
            marks=[self.trace_lines, self.time_line], title='target (black) and prediction (red)',
            title_style=TITLE_STYLE,
            axes=[bqplot.Axis(scale=tx, label='time (s)'),
                  bqplot.Axis(scale=ty, orientation='vertical', label=unit, label_offset='50px')],
            layout=widgets.Layout(width='420px', height='260px'),
            fig_margin={'top': 40, 'bottom': 45, 'left': 65, 'right': 15})
        self.row = widgets.BoundedIntText(value=h // 2, min=0, max=h - 1, description='row',
                                          layout=widgets.Layout(width='140px'))
        self.column = widgets.BoundedIntText(value=w // 2, min=0, max=w - 1, description='column',
                                             layout=widgets.Layout(width='140px'))
        self.time = widgets.IntSlider(value=t // 2, min=0, max=t - 1, description='frame',
                                      layout=widgets.Layout(width='300px'))
        for c in (self.row, self.column, self.time):
            c.observe(lambda change: self._draw_prediction(), 'value')
        colors = bqplot.ColorScale(scheme='viridis')
        self.maps = []
        map_boxes = []
        for title in ('target', 'prediction') if h * w > 1 else ():   # no maps of a single cell
            heat = bqplot.GridHeatMap(color=np.zeros((h, w)), scales={'row': bqplot.OrdinalScale(reverse=True),
                                                                       'column': bqplot.OrdinalScale(),
                                                                       'color': colors})
            fig = bqplot.Figure(marks=[heat], title=title, title_style=TITLE_STYLE,
                                layout=widgets.Layout(width='200px', height='215px'),
                                fig_margin={'top': 45, 'bottom': 10, 'left': 10, 'right': 10}, padding_x=0, padding_y=0)
            self.maps.append(heat)
            map_boxes.append(fig)
        self.stop_button = widgets.Button(description='Stop', icon='stop', tooltip='stop the fit before its next chunk')
        self.resume_button = widgets.Button(description='Resume', icon='play',
                                            tooltip='continue from the last finished epoch')
        self.best_button = widgets.Button(description='Apply best parameters', icon='check',
                                          tooltip='set the parameters of the epoch with the lowest (held-out) loss',
                                          layout=widgets.Layout(width='200px'))
        self.stop_button.on_click(lambda _: self.stop(wait=False))
        self.resume_button.on_click(lambda _: self.resume())
        self.best_button.on_click(lambda _: self.apply_best())
        self.status = widgets.HTML('')
        self.status.add_class('convis-fit-status')
        super().__init__([
            widgets.HBox([self.stop_button, self.resume_button, self.best_button, self.status]),
            widgets.HBox([self.loss_figure, self.trace_figure], layout=widgets.Layout(flex_flow='row wrap')),
            widgets.HBox([widgets.VBox([self.row, self.column, self.time])] + map_boxes,
                         layout=widgets.Layout(flex_flow='row wrap')),
            widgets.HBox(figures, layout=widgets.Layout(flex_flow='row wrap'))])
        self.add_class('convis-fit-monitor')
        self._show_state('ready')

    # ----------------------------------------------------------------- running
    @property
    def running(self):
        """Whether the fit's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self):
        """Starts (or resumes) the fit in a background thread for ``epochs`` epochs; no-op while running."""
        if self.running:
            return
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name='convis-fit', daemon=True)
        self._thread.start()
        self._show_state('running')

    resume = start

    def stop(self, wait=True, timeout=60.0):
        """Stops the fit before the next chunk it would run; the parameters of the last finished epoch are put
        back.  With ``wait``, returns when the thread has ended (True) or after ``timeout`` seconds (False)."""
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def wait(self, timeout=600.0):
        """Waits until the fit has ended (finished, stopped or failed); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _check(self):
        if self._stop.is_set():
            raise _Stopped()

    def _run(self):
        offset = len(self.records)
        state = 'done'
        try:
            for record in iter_fit(self.model, self.inp, self.target, self.loss_fn, epochs=self.epochs,
                                   held_out=self.held_out, check=self._check, **self.fit_kwargs):
                record = dict(record, epoch=record['epoch'] + offset)
                self.records.append(record)
                if time.monotonic() - self._last_draw >= self.interval:
                    self.redraw()
                self._check()
        except _Stopped:
            state = 'stopped'
            self._set_values(self.records[-1]['parameters'] if self.records else self._start_values)
        except Exception as error:  # shown in the status line and kept; the thread ends
            state = 'failed'
            self.error = error
            logger.exception('the fit failed')
            if self.records:
                self._set_values(self.records[-1]['parameters'])
        self.redraw(state)

    # ----------------------------------------------------------------- parameters
    def _values(self):
        return {n: (float(p) if p.numel() == 1 else p.detach().cpu().tolist()) for n, p in self.params}

    def _set_values(self, values):
        with self.model.lock:
            with torch.no_grad():
                for n, p in self.params:
                    if n in values:
                        p.copy_(torch.as_tensor(values[n], dtype=p.dtype, device=p.device).reshape(p.shape))

    @property
    def best(self):
        """The record with the lowest held-out loss (the lowest loss without a held-out recording), or None."""
        if not self.records:
            return None
        held = all(r['held_out_loss'] is not None for r in self.records)
        return min(self.records, key=lambda r: r['held_out_loss'] if held else r['loss'])

    def apply_best(self):
        """Sets the parameters of :attr:`best` (stops a running fit first); returns that record."""
        self.stop(wait=True)
        best = self.best
        if best is not None:
            self._set_values(best['parameters'])
            self._prediction = None
            self.redraw('best of epoch %d applied' % best['epoch'])
        return best

    # ----------------------------------------------------------------- display
    def _predict(self):
        """The model's prediction ``[t, x, y]`` for the whole ``inp`` in one run (from the cleared state; the
        model's state is kept)."""
        with self.model.fresh_state(), torch.no_grad():
            out = select(self.model.run(self.inp), self.output, self.region)
            if self.rate is not None:
                out = self.rate(out)
        return out[0, 0].detach().double().cpu().numpy()

    def redraw(self, state=None):
        """Redraws the curves, the parameters and the prediction now (the fit calls this, throttled)."""
        self._last_draw = time.monotonic()
        self.redraws += 1
        records = list(self.records)
        epochs = [r['epoch'] for r in records]
        held = [r['held_out_loss'] for r in records if r['held_out_loss'] is not None]
        for fig in [self.loss_figure] + [line_fig for line_fig in self._parameter_figures]:
            fig.axes[0].num_ticks = max(2, min(len(epochs), 8))     # whole epochs, not repeated labels
        with self.loss_lines.hold_sync():
            self.loss_lines.x = np.asarray(epochs, dtype=float)
            self.loss_lines.y = [np.asarray([r['loss'] for r in records], dtype=float),
                                 np.asarray(held if len(held) == len(records) else [np.nan] * len(records), dtype=float)]
        for name, line in self.parameter_lines.items():
            with line.hold_sync():
                line.x = np.asarray(epochs, dtype=float)
                line.y = np.asarray([r['parameters'][name] for r in records], dtype=float)
        if records or self._prediction is None:
            try:
                self._prediction = self._predict()
            except Exception as error:  # a prediction that fails is shown, the fit goes on
                self.error = error
                logger.exception('the prediction failed')
        self._draw_prediction()
        self._show_state(state or 'running')
        for callback in list(self._callbacks):
            try:
                callback(self)
            except Exception:  # a failing follower must not stop the fit
                logger.exception('a FitMonitor callback failed')

    def on_redraw(self, callback):
        """Calls ``callback(monitor)`` after every redraw (throttled; e.g. to move sliders to the fitted values)."""
        self._callbacks.append(callback)

    def _draw_prediction(self):
        t, r, c, y = self.time.value, self.row.value, self.column.value, self._target
        p = self._prediction
        dt = self.model.resolution.dt
        times = np.arange(y.shape[0]) * dt
        with self.trace_lines.hold_sync():
            self.trace_lines.x = times
            self.trace_lines.y = [y[:, r, c], p[:, r, c] if p is not None and p.shape == y.shape
                                  else np.full(y.shape[0], np.nan)]
        self.time_line.x = [t * dt, t * dt]
        if not self.maps:
            return
        frames = [y[t], p[t] if p is not None and p.shape == y.shape else np.zeros_like(y[t])]
        finite = np.concatenate([f[np.isfinite(f)] for f in frames])
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            self.maps[0].scales['color'].min, self.maps[0].scales['color'].max = lo, max(hi, lo + 1e-12)
        for heat, frame in zip(self.maps, frames):
            heat.color = np.where(np.isfinite(frame), frame, np.nan)

    def _show_state(self, state):
        text = state
        if self.records:
            r = self.records[-1]
            text += ': epoch %d, loss %.4g' % (r['epoch'], r['loss'])
            if r['held_out_loss'] is not None:
                text += ', held out %.4g' % r['held_out_loss']
            text += ' (%d evaluations, %.2g s)' % (r['evaluations'], r['seconds'])
        if self.error is not None:
            text += ' <span style="color:#c62828">%s</span>' % html.escape('%s: %s' % (
                type(self.error).__name__, str(self.error)[:200]))
        self.status.value = text

    def close(self):
        """Stops the fit (no thread is left behind) and closes the widgets."""
        if getattr(self, '_stop', None) is not None:
            self.stop(wait=True)
        super().close()
