"""SweepView: small multiples of a sweep's results, one panel per parameter set.

A sweep (:func:`convis.sweep`) returns an ``xarray.Dataset`` with one dimension per swept parameter.
:class:`SweepView` lays one of its variables out as a grid of panels: the values of one swept dimension
down the rows, of another along the columns (a one-parameter sweep lays out in a row).  Each panel shows
what is left of the variable for its parameter set:

* frames (``time, y, x``): an animated :class:`~convis_widgets.tensor_view.TensorView`, every panel
  quantised with one colour scale, the range of all panels together (global minimum and maximum), and
  one shared time cursor;
* a curve (one dimension left, e.g. a firing rate over ``time`` or a response over ``spatial_frequency``;
  a second dimension gives one line per value): a bqplot figure with axes labelled with their units, every
  panel on one shared value scale (global minimum and maximum).

Titles carry each panel's parameter values with their units (``opl.sigma_surround = 0.5 deg``).  Sweeps of
more than two parameters need ``sel=`` to fix the others.

>>> ds = convis.sweep(retina, stim, {'opl.sigma_surround': [0.15, 0.5, 1.0], 'bipolar.lambda_amp': [0, 100]})
>>> SweepView(ds, var='ganglion_spikes_ON', rows='opl.sigma_surround', cols='bipolar.lambda_amp')
"""
import html

import ipywidgets as widgets
import numpy as np

from .frames import color_range
from .tensor_view import COLORMAPS, TensorView, sync_views

__all__ = ['SweepView', 'sweep_dims', 'FRAME_DIMS']

FRAME_DIMS = ('batch', 'channel', 'time', 'y', 'x')
"""The dimensions of an output's frames in a sweep's Dataset (``batch`` and ``channel`` only when > 1)."""

SWEEP_DIMS = ('set', 'file')
"""Dimensions that are parameter sets without a parameter coordinate: labelled sets, files of run_files."""

LINE_COLORS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f')


def _short(value, limit=80):
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def sweep_dims(data):
    """The swept dimensions of a sweep's variable (or Dataset): ``set``, ``file``, or a parameter's
    dimension (its coordinate has the ``doc`` attribute that :func:`convis.sweep` gives parameters)."""
    return [d for d in data.dims if d in SWEEP_DIMS or (d in data.coords and 'doc' in data.coords[d].attrs)]


def _format_value(v):
    if isinstance(v, (float, np.floating)):
        return '%.4g' % v
    return _short(v, 40)


def _coord_label(data, dim, index):
    """``name = value unit`` of position ``index`` along ``dim`` (a labelled set also names its parameters)."""
    value = data.coords[dim].values[index] if dim in data.coords else index
    unit = data.coords[dim].attrs.get('units', '') if dim in data.coords else ''
    if dim in SWEEP_DIMS:
        text = _format_value(value)
        extra = ['%s = %s%s' % (name, _format_value(c.values[index]), (' ' + c.attrs['units']) if c.attrs.get('units')
                                else '') for name, c in data.coords.items()
                 if name != dim and c.dims == (dim,) and 'doc' in c.attrs]
        return text + (' (%s)' % ', '.join(extra) if extra else '')
    return '%s = %s%s' % (dim, _format_value(value), (' ' + unit) if unit else '')


def _fixed_label(data, dim, asked):
    """``name = value unit`` of a dimension fixed by ``sel`` (the value found, which may be the nearest)."""
    if dim not in data.coords:
        return '%s = %s' % (dim, _format_value(asked))
    c = data.coords[dim]
    unit = c.attrs.get('units', '')
    return '%s = %s%s' % (dim, _format_value(c.values.item()), (' ' + unit) if unit else '')


class SweepView(widgets.VBox):
    """Small multiples of one variable of a sweep's Dataset: a grid of panels over one or two swept parameters.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        the result of :func:`convis.sweep` (or :func:`convis.run_files`, dimension ``file``)
    var : str or None
        the variable to show (None: the only one of the Dataset)
    rows, cols : str or None
        the swept dimensions down the rows and along the columns.  By default a one-parameter sweep lays
        out in a row (``cols``), a two-parameter sweep takes its first dimension as ``rows``
    sel : dict or None
        ``dimension -> value`` fixing the other swept dimensions (needed beyond two); values are matched
        exactly, or to the nearest for numbers
    kind : 'auto', 'frames' or 'curves'
        'auto': frames when ``time, y, x`` are left in a panel, curves when one or two dimensions are left
    x : str or None
        the curves' horizontal dimension (default: the last dimension left); a second dimension left gives
        one line per value, with a legend
    colormap : str
        colour map of frames (one of :data:`~convis_widgets.tensor_view.COLORMAPS`)
    symmetric : bool
        a colour (or value) scale centred on 0, for signed responses
    unit : str or None
        unit of the values (default: the variable's ``units`` attribute)
    zoom : float
        screen pixels per data pixel of frames (0: automatic)
    fps : float
        playback speed of frames, frames per second

    Attributes
    ----------
    panels : list of lists
        the panel widgets, ``panels[row][col]`` (TensorViews or bqplot Figures)
    titles : list of lists of str
        each panel's title: its parameter values with units
    vmin, vmax : float
        the shared colour (frames) or value (curves) scale: the range of all panels
    """

    def __init__(self, ds, var=None, rows=None, cols=None, sel=None, kind='auto', x=None, colormap='gray',
                 symmetric=False, unit=None, zoom=0.0, fps=25.0, width='260px', height='200px'):
        data = self._variable(ds, var)
        if colormap not in COLORMAPS:
            raise ValueError('SweepView: colormap must be one of %s, not %s' % (COLORMAPS, _short(repr(colormap))))
        if kind not in ('auto', 'frames', 'curves'):
            raise ValueError("SweepView: kind must be 'auto', 'frames' or 'curves', not %s" % _short(repr(kind)))
        data = self._select(data, sel or {})
        self.rows, self.cols = self._layout(data, rows, cols, sel or {})
        self.var = data.name
        self.unit = data.attrs.get('units', '') if unit is None else str(unit)
        content = [d for d in data.dims if d not in (self.rows, self.cols)]
        self.kind = self._kind(kind, content)
        order = [d for d in (self.rows, self.cols) if d is not None] + content
        self.data = data.transpose(*order)
        values = np.asarray(self.data.values, dtype=np.float64)
        if symmetric:
            lo, hi = color_range(values, symmetric=True)
        else:
            lo, hi = color_range(values)
        self.vmin, self.vmax = float(lo), float(hi)
        n_rows = data.sizes[self.rows] if self.rows else 1
        n_cols = data.sizes[self.cols] if self.cols else 1
        self.titles = [[self._title(data, r, c) for c in range(n_cols)] for r in range(n_rows)]
        cells = [[self._cell(r, c) for c in range(n_cols)] for r in range(n_rows)]
        if self.kind == 'frames':
            self.panels = [[self._frames_panel(a, t, colormap, zoom, fps) for a, t in zip(row, titles)]
                           for row, titles in zip(cells, self.titles)]
            flat = [v for row in self.panels for v in row]
            self._links = sync_views(*flat) if len(flat) > 1 else []
        else:
            self._links = []
            self._curves_setup(content, x, width, height)
            self.panels = [[self._curve_panel(a) for a in row] for row in cells]
        self.header = widgets.HTML(self._header_text(sel or {}))
        if self.kind == 'curves':  # titles above the figures, wrapped (bqplot centres and clips long titles)
            self.labels = [[widgets.HTML('<div style="font-size:12px;font-weight:bold;max-width:%s">%s</div>'
                                         % (width, html.escape(t))) for t in row] for row in self.titles]
            items = [widgets.VBox([lab, p]) for lrow, prow in zip(self.labels, self.panels) for lab, p in zip(lrow, prow)]
        else:
            items = [p for row in self.panels for p in row]
        grid = widgets.GridBox(items, layout=widgets.Layout(
            grid_template_columns='repeat(%d, max-content)' % n_cols, grid_gap='4px 8px'))
        super().__init__([self.header, grid])
        self.grid = grid
        self.add_class('convis-sweep-view')

    # ----------------------------------------------------------------- checks
    @staticmethod
    def _variable(ds, var):
        names = list(ds.data_vars) if hasattr(ds, 'data_vars') else None
        if names is None:  # a DataArray
            if var is not None and var != ds.name:
                raise KeyError('SweepView: the DataArray is %r, not %s' % (ds.name, _short(repr(var))))
            return ds if ds.name is not None else ds.rename('values')
        numeric = [k for k in names if ds[k].dtype.kind in 'biuf' and sweep_dims(ds[k])]
        if var is None:
            if len(numeric) != 1:
                raise ValueError('SweepView: give var=, one of %s' % _short(numeric, 300))
            var = numeric[0]
        if var not in names:
            raise KeyError('SweepView: the Dataset has no variable %s; its variables are %s'
                           % (_short(repr(var)), _short(names, 300)))
        if ds[var].dtype.kind not in 'biuf':
            raise TypeError('SweepView: variable %r is not numeric (%s)' % (var, ds[var].dtype))
        return ds[var]

    @staticmethod
    def _select(data, sel):
        if not isinstance(sel, dict):
            raise TypeError('SweepView: sel must be a dict dimension -> value, not %s' % _short(repr(sel)))
        for dim, value in sel.items():
            if dim not in data.dims:
                raise KeyError('SweepView: sel names %s, which is not a dimension of %r; its dimensions are %s'
                               % (_short(repr(dim)), data.name, list(data.dims)))
            coord = data.coords[dim].values if dim in data.coords else np.arange(data.sizes[dim])
            if coord.dtype.kind in 'biuf' and np.ndim(value) == 0 and isinstance(value, (int, float, np.number)):
                i = int(np.argmin(np.abs(coord.astype(np.float64) - float(value))))
            else:
                hits = [i for i, c in enumerate(coord) if c == value]
                if not hits:
                    raise KeyError('SweepView: %s has no value %s; its values are %s'
                                   % (dim, _short(repr(value)), _short(list(coord), 200)))
                i = hits[0]
            data = data.isel({dim: i})
        return data

    @staticmethod
    def _layout(data, rows, cols, sel):
        for name, dim in (('rows', rows), ('cols', cols)):
            if dim is not None and dim not in data.dims:
                fixed = ' (it is fixed by sel)' if dim in sel else ''
                raise KeyError('SweepView: %s=%s is not a dimension of %r%s; its dimensions are %s'
                               % (name, _short(repr(dim)), data.name, fixed, list(data.dims)))
        if rows is not None and rows == cols:
            raise ValueError('SweepView: rows and cols are both %r' % rows)
        swept = sweep_dims(data)
        free = [d for d in swept if d not in (rows, cols)]
        if rows is None and cols is None:
            if len(swept) > 2:
                raise ValueError('SweepView: %r is swept over %d dimensions %s; a grid shows two: fix the others '
                                 'with sel={dim: value, ...} (and choose rows= and cols=)'
                                 % (data.name, len(swept), swept))
            if len(swept) == 2:
                return swept[0], swept[1]
            return None, (swept[0] if swept else None)
        if free:
            if rows is None and cols is not None and len(free) == 1:
                return free[0], cols
            if cols is None and rows is not None and len(free) == 1:
                return rows, free[0]
            raise ValueError('SweepView: the swept dimensions %s are neither rows nor cols: fix them with '
                             'sel={dim: value, ...}' % free)
        return rows, cols

    @staticmethod
    def _kind(kind, content):
        spatial = [d for d in content if d in FRAME_DIMS]
        frames = all(d in content for d in ('time', 'y', 'x')) and len(spatial) == len(content)
        if kind == 'auto':
            kind = 'frames' if frames else 'curves'
        if kind == 'frames' and not frames:
            raise ValueError('SweepView: frames need the dimensions time, y, x in each panel; left are %s' % content)
        if kind == 'curves' and not 1 <= len(content) <= 2:
            raise ValueError('SweepView: a curve panel needs one dimension (or two: one line per value of the '
                             'second) left in each panel; left are %s (fix more with sel=)' % content)
        return kind

    # ----------------------------------------------------------------- panels
    def _cell(self, r, c):
        index = {}
        if self.rows is not None:
            index[self.rows] = r
        if self.cols is not None:
            index[self.cols] = c
        return self.data.isel(index)

    def _title(self, data, r, c):
        parts = []
        if self.rows is not None:
            parts.append(_coord_label(data, self.rows, r))
        if self.cols is not None:
            parts.append(_coord_label(data, self.cols, c))
        return ', '.join(parts) or str(data.name)

    def _header_text(self, sel):
        fixed = ', '.join(_fixed_label(self.data, d, v) for d, v in sel.items())
        scale = '%s: %s from %.4g to %.4g%s' % (
            'colour scale' if self.kind == 'frames' else 'value scale', html.escape(str(self.var)),
            self.vmin, self.vmax, (' ' + html.escape(self.unit)) if self.unit else '')
        return '<b>%s</b><br><small style="color:#616161">%s%s</small>' % (
            html.escape(str(self.var)), scale, ('; ' + html.escape(fixed)) if fixed else '')

    def _frames_panel(self, cell, title, colormap, zoom, fps):
        a = np.asarray(cell.transpose(*[d for d in FRAME_DIMS if d in cell.dims]).values, dtype=np.float32)
        for axis, d in enumerate(FRAME_DIMS[:2]):
            if d not in cell.dims:
                a = np.expand_dims(a, axis)
        t = cell.coords['time'].values if 'time' in cell.coords else None
        dt = float(t[1] - t[0]) if t is not None and len(t) > 1 else None
        return TensorView(np.nan_to_num(a, nan=self.vmin), vmin=self.vmin, vmax=self.vmax, colormap=colormap,
                          title=title, unit=self.unit, zoom=zoom, fps=fps, dt=dt, compact=True)

    def _curves_setup(self, content, x, width, height):
        import bqplot
        if x is None:
            x = content[-1]
        if x not in content:
            raise KeyError('SweepView: x=%s is not a dimension left in the panels (%s)' % (_short(repr(x)), content))
        self.x = x
        self.lines_dim = next((d for d in content if d != x), None)
        coord = self.data.coords[x] if x in self.data.coords else None
        self.x_values = np.asarray(coord.values if coord is not None else np.arange(self.data.sizes[x]),
                                   dtype=np.float64)
        self.x_unit = coord.attrs.get('units', '') if coord is not None else ''
        self.y_scale = bqplot.LinearScale(min=self.vmin, max=self.vmax)
        self._figure_layout = dict(width=width, height=height)

    def _curve_panel(self, cell):
        import bqplot
        xs = bqplot.LinearScale()
        if self.lines_dim is None:
            ys = [np.asarray(cell.values, dtype=np.float64)]
            labels = [str(self.var)]
        else:
            cell = cell.transpose(self.lines_dim, self.x)
            ys = list(np.asarray(cell.values, dtype=np.float64))
            labels = [_coord_label(cell, self.lines_dim, i) for i in range(cell.sizes[self.lines_dim])]
        marks = [bqplot.Lines(x=self.x_values, y=y, scales={'x': xs, 'y': self.y_scale}, labels=[label],
                              colors=[LINE_COLORS[i % len(LINE_COLORS)]], display_legend=self.lines_dim is not None)
                 for i, (y, label) in enumerate(zip(ys, labels))]
        x_label = '%s (%s)' % (self.x, self.x_unit) if self.x_unit else str(self.x)
        y_label = '%s (%s)' % (self.var, self.unit) if self.unit else str(self.var)
        fig = bqplot.Figure(marks=marks, axes=[
            bqplot.Axis(scale=xs, label=x_label),
            bqplot.Axis(scale=self.y_scale, orientation='vertical', label=y_label, label_offset='40px')],
            fig_margin={'top': 10, 'bottom': 45, 'left': 60, 'right': 10},
            layout=widgets.Layout(**self._figure_layout))
        fig.add_class('convis-sweep-panel')
        return fig

    def close(self):
        """Closes every panel and the links of their time cursors."""
        for link in getattr(self, '_links', []):
            link.close()
        for row in getattr(self, 'panels', []):
            for p in row:
                p.close()
        super().close()
