"""Spikes as the explorer shows them: smoothed firing rates (Hz), and a raster and PSTH of one clicked cell.

:class:`RateFilter` turns spike counts per time step into a firing rate with a causal exponential kernel,

.. math:: r_t = a\\, r_{t-1} + (1 - a)\\, \\frac{n_t}{dt}, \\qquad a = e^{-dt/\\tau}

(a constant count rate :math:`n/dt` is reached unchanged), carrying :math:`r` from chunk to chunk, so a
preview computed in sub-chunks gives the same rates as one computed whole.  :class:`CellPanel` plots the
spike times of a cell (one row per spiking output) and its peri-stimulus time histogram in Hz.

>>> f = RateFilter(dt=0.01, tau=0.02)
>>> r = f(np.ones((1, 1, 200, 1, 1)))     # one spike per 10 ms step
>>> round(float(r[0, 0, -1, 0, 0]))
100
"""
import math

import bqplot
import ipywidgets as widgets
import numpy as np

__all__ = ['RateFilter', 'CellPanel', 'is_spike_output']

RATE_TAU = 0.02
"""Time constant of the explorer's rate smoothing (s)."""


COLORS = [('orange', '#e6550d'), ('blue', '#3182bd'), ('green', '#31a354'), ('purple', '#756bb1')]
"""The colours of the outputs in the raster and the PSTH (named in the PSTH's title)."""
TITLE_STYLE = {'font-size': '13px'}


def is_spike_output(key):
    """Whether an output named ``key`` holds spike counts (the retina's ``ganglion_spikes_ON`` and the like)."""
    return 'spike' in str(key).lower()


class RateFilter(object):
    """Causal exponential smoothing of spike counts ``[b, c, t, x, y]`` into rates (Hz), exact across chunks.

    ``dt`` (seconds per step) and ``tau`` (the kernel's time constant, s) must be positive.
    :meth:`reset` starts from a rate of 0.
    """

    def __init__(self, dt, tau=RATE_TAU):
        if not (dt > 0 and tau > 0):
            raise ValueError('dt (%r) and tau (%r) must be positive seconds' % (dt, tau))
        self.dt, self.tau = float(dt), float(tau)
        self.a = math.exp(-self.dt / self.tau)
        self._last = None

    def reset(self):
        self._last = None

    def __call__(self, counts):
        n = np.asarray(counts, dtype=np.float64)
        if n.ndim != 5:
            raise ValueError('spike counts must be [b, c, t, x, y], not of shape %s' % (n.shape,))
        # one step over all cells at a time: each frame is a contiguous block (scipy's lfilter along axis 2
        # strides through the array and took 14 ms for 400 frames of 64 x 64, this 2 ms)
        rate = np.empty(n.shape, dtype=np.float32)
        r = np.zeros(n.shape[:2] + n.shape[3:]) if self._last is None else self._last.copy()
        gain = (1 - self.a) / self.dt
        step = np.empty_like(r)
        for t in range(n.shape[2]):
            np.multiply(n[:, :, t], gain, out=step)
            r *= self.a
            r += step
            rate[:, :, t] = r
        self._last = r
        return rate


class CellPanel(widgets.HBox):
    """A raster (spike times, one row per spiking output) and a PSTH (Hz) of one cell; empty until shown.

    The figures join the page only with the first :meth:`show` (a bqplot figure laid out while hidden
    has a negative width).  ``bin`` is the PSTH's bin width in seconds.
    """

    def __init__(self, dt, bin=0.05):
        super().__init__([], layout=widgets.Layout(flex_flow='row wrap'))
        self.add_class('convis-cell-panel')
        self.dt, self.bin = float(dt), float(bin)
        self.cell, self.spike_times, self.psth = None, {}, {}
        self.raster_figure = self.psth_figure = None

    def _figures(self):
        xs, ys = bqplot.LinearScale(), bqplot.OrdinalScale()
        self._raster_scales = {'x': xs, 'y': ys}
        self._y_axis = bqplot.Axis(scale=ys, orientation='vertical', label='output', label_offset='50px')
        self.raster_figure = bqplot.Figure(
            marks=[], title='spikes', fig_margin={'top': 35, 'bottom': 45, 'left': 80, 'right': 10},
            axes=[bqplot.Axis(scale=xs, label='time (s)'), self._y_axis], title_style=TITLE_STYLE,
            layout=widgets.Layout(width='400px', height='170px'))
        px, py = bqplot.LinearScale(), bqplot.LinearScale(min=0.0)
        self._psth_scales = {'x': px, 'y': py}
        self.psth_figure = bqplot.Figure(
            marks=[], title='PSTH (%g ms bins)' % (1000 * self.bin),
            fig_margin={'top': 35, 'bottom': 45, 'left': 60, 'right': 10},
            axes=[bqplot.Axis(scale=px, label='time (s)'),
                  bqplot.Axis(scale=py, orientation='vertical', label='rate (Hz)', label_offset='40px')],
            title_style=TITLE_STYLE, layout=widgets.Layout(width='400px', height='170px'))
        self.children = [self.raster_figure, self.psth_figure]

    def show(self, cell, counts):
        """Plots cell ``(row, column)`` of ``counts`` (an ordered dict: output name -> counts ``(t,)`` per step)."""
        if self.raster_figure is None:
            self._figures()
        self.cell = tuple(int(v) for v in cell)
        names = list(counts)
        width = max(1, int(round(self.bin / self.dt)))
        lines = []
        for name in names:
            c = np.asarray(counts[name], dtype=np.float64)
            steps = np.nonzero(c > 0)[0]
            self.spike_times[name] = steps * self.dt
            edges = np.arange(0, len(c) + width, width)[:len(c) // width + (len(c) % width > 0) + 1]
            sums = np.add.reduceat(c, edges[:-1]) if len(c) else np.zeros(0)
            spans = np.minimum(edges[1:], len(c)) - edges[:-1]
            self.psth[name] = sums / (spans * self.dt)
            lines.append((name, edges[:-1] * self.dt, self.psth[name]))
        self._raster_scales['y'].domain = [_short(n) for n in names]
        # one colour per output, the same in the raster and the PSTH (named in the PSTH's title)
        self._rasters = [
            bqplot.Scatter(x=np.asarray(self.spike_times[n], np.float64),
                           y=np.asarray([_short(n)] * len(self.spike_times[n]), dtype=object),
                           scales=self._raster_scales, marker='square', default_size=10,
                           colors=[COLORS[i % len(COLORS)][1]])
            for i, n in enumerate(names)]
        self.raster_figure.marks = self._rasters
        self.raster_figure.title = 'x=%d, y=%d: %s spikes' % (self.cell + (', '.join(
            '%s %d' % (_short(n), len(self.spike_times[n])) for n in names),))
        top = _nice_ceiling(max([float(np.max(r)) for _, _, r in lines if len(r)] + [1.0]))
        self._psth_scales['y'].min, self._psth_scales['y'].max = 0.0, top
        self.psth_figure.axes[1].tick_values = np.linspace(0.0, top, 5)
        self.psth_figure.marks = [
            bqplot.Lines(x=t, y=r, scales=self._psth_scales, colors=[COLORS[i % len(COLORS)][1]],
                         interpolation='step-after', labels=[_short(n)])
            for i, (n, t, r) in enumerate(lines)]
        self.psth_figure.title = 'PSTH, %g ms bins (%s)' % (1000 * self.bin, ', '.join(
            '%s %s' % (_short(n), COLORS[i % len(COLORS)][0]) for i, n in enumerate(names)))


def _nice_ceiling(v):
    """The smallest of 1, 2, 4, 6, 8 or 10 times a power of ten that is at least ``v`` (> 0): axis tops
    whose quarters are round numbers (40 Hz: ticks 0, 10, 20, 30, 40)."""
    power = 10.0 ** math.floor(math.log10(v))
    return next(m * power for m in (1, 2, 4, 6, 8, 10) if m * power >= v * (1 - 1e-12))


def _short(name):
    return str(name).replace('ganglion_spikes_', '').replace('_', ' ')
