"""Descriptions of convis objects as text and notebook HTML.

:func:`describe` works for layers, parameters, states, outputs, tensors and arrays.  The object
it returns prints as text in a console and renders as HTML in a notebook: a layer as the tree
of its sublayers with their parameters (value, unit, doc, VirtualRetina key) and states; an
output, a tensor or a kernel with its shape, statistics and a small embedded plot (a PNG drawn
with the Agg canvas, so pyplot and its backend are never touched).

:func:`animate`, :func:`animate_double_plot`, :func:`animate_to_video`, :func:`animate_to_html`,
:class:`OrthographicWrapper` and :func:`plot_3d_tensor_as_3d_plot` (from :mod:`convis.plotting`)
are available here as well.

>>> import convis
>>> convis.describe(convis.samples.moving_grating(100))
array shape (100, 20, 20) float64: min -1, max 1, mean -0.0005146
"""
import base64
import html
import importlib.util
import inspect
import io
import logging
from collections import OrderedDict

import numpy as np
import torch

from .layer import Layer
from .output import Output
from .o import O
from .plotting import (animate, animate_double_plot, animate_to_html, animate_to_video,  # noqa: F401
                       as_plot_array, OrthographicWrapper, plot_3d_tensor_as_3d_plot, plot_5d_matshow, plot_5d_time)
from .utils import make_tensor_5d
from .variables import _HTML_DESCRIBERS, State, VirtualParameter

__all__ = ['describe', 'describe_text', 'describe_dict', 'describe_html', 'describe_layer_with_html', 'help',
           'animate', 'animate_double_plot', 'animate_to_video', 'animate_to_html',
           'OrthographicWrapper', 'plot_3d_tensor_as_3d_plot', 'plotting_possible', 'plotting_exceptions']

logger = logging.getLogger('convis')

plotting_possible = importlib.util.find_spec('matplotlib') is not None
"""Whether matplotlib is installed (found without importing it)."""

plotting_exceptions = []
"""Exceptions raised while drawing the plots of HTML descriptions (the description is shown without them)."""


# ---------------------------------------------------------------------------------------------- dictionaries
def _kind(v):
    if isinstance(v, torch.nn.Module):
        return 'Layer'
    if isinstance(v, Output):
        return 'Output'
    if isinstance(v, torch.nn.Parameter):
        return 'Parameter'
    if isinstance(v, State):
        return 'State'
    if isinstance(v, VirtualParameter):
        return 'VirtualParameter'
    if isinstance(v, torch.Tensor):
        return 'tensor'
    if isinstance(v, np.ndarray):
        return 'array'
    if isinstance(v, O):
        return 'tree'
    return 'value'


def _first_paragraph(doc):
    return inspect.cleandoc(doc or '').split('\n\n')[0].replace('\n', ' ').strip()


def _class_name(v):
    return '%s.%s' % (type(v).__module__, type(v).__qualname__)


def _format_value(a):
    a = np.asarray(a)
    if a.size == 0:
        return 'empty, shape %s' % (a.shape,)
    if a.dtype.kind not in 'biuf':
        return repr(a.tolist()) if a.size <= 6 else 'shape %s, dtype %s' % (a.shape, a.dtype)
    if a.size == 1:
        return '%.6g' % float(a.ravel()[0])
    if a.size <= 6:
        return np.array2string(a.ravel().astype(float), precision=4, separator=', ')
    f = a.astype(float)
    return 'shape %s, range [%.4g, %.4g], mean %.4g' % (a.shape, np.nanmin(f), np.nanmax(f), np.nanmean(f))


def _summary(t, kind):
    """Shape, dtype, device and statistics of a tensor or array."""
    d = OrderedDict(kind=kind, shape=tuple(t.shape), dtype=str(t.dtype).replace('torch.', ''))
    if isinstance(t, torch.Tensor):
        d['device'] = str(t.device)
        d['requires_grad'] = bool(t.requires_grad)
    try:
        a = as_plot_array(t) if int(np.prod(t.shape)) > 0 else np.zeros(0)
    except TypeError:
        a = np.zeros(0)
    finite = a[np.isfinite(a)]
    if finite.size:
        d.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
                 std=float(finite.std()))
    if 'bool' in d['dtype']:
        d['count'] = int(a.sum())
    d['text'] = _format_value(a) if 0 < a.size <= 6 else _stats_text(d)
    return d


def _stats_text(d):
    parts = ['shape %s %s' % (d['shape'], d['dtype'])]
    if 'min' in d:
        parts.append('min %.4g, max %.4g, mean %.4g' % (d['min'], d['max'], d['mean']))
    if 'count' in d:
        parts.append('%d true' % d['count'])
    return ': '.join(parts)


def _parameter_dict(name, p):
    d = _summary(p, 'Parameter')
    d['name'] = name or getattr(p, 'name', '')
    a = as_plot_array(p)
    d['value'] = float(a.ravel()[0]) if a.size == 1 else (a.ravel().tolist() if a.size <= 6 else None)
    d['text'] = _format_value(a)
    for key, default in (('unit', ''), ('doc', ''), ('retina_config_key', None), ('bounds', (None, None)),
                         ('scale', 'linear'), ('slider_range', None)):
        d[key] = getattr(p, key, default)
    return d


def _virtual_dict(name, vp):
    value = vp.get()
    arr = np.asarray(value) if value is not None else np.zeros(0)
    text = _format_value(arr) if arr.dtype.kind in 'biuf' and arr.size else repr(value)
    return OrderedDict(kind='VirtualParameter', name=name or vp.name, value=value, text=text,
                       unit=getattr(vp, 'unit', ''), doc=getattr(vp, 'doc', ''),
                       retina_config_key=getattr(vp, 'retina_config_key', None))


def _state_dict(name, t):
    if t is None:
        return OrderedDict(kind='State', name=name, value=None, text='None (created from the first input)')
    d = _summary(t, 'State')
    d['name'] = name
    return d


def _layer_dict(layer, name='', depth=0, max_depth=None):
    params = OrderedDict((n, _parameter_dict(n, p)) for n, p in layer._parameters.items() if p is not None)
    states = OrderedDict()
    if isinstance(layer, Layer):
        params.update((n, _virtual_dict(n, vp)) for n, vp in layer._virtual_parameters.items())
        states.update((n, _state_dict(n, layer._buffers.get(n))) for n in layer._state_defaults)
    d = OrderedDict(kind='Layer', name=name, cls=_class_name(layer), doc=_first_paragraph(type(layer).__doc__),
                    parameters=params, states=states, sublayers=OrderedDict())
    for n, m in layer.named_children():
        if max_depth is None or depth < max_depth:
            d['sublayers'][n] = _layer_dict(m, n, depth + 1, max_depth)
        else:
            d['sublayers'][n] = OrderedDict(kind='Layer', name=n, cls=_class_name(m), truncated=True)
    return d


def _flatten_tree(o, prefix=''):
    for k, e in o._items_list():
        if isinstance(e, O):
            yield from _flatten_tree(e, prefix + k + '.')
        else:
            yield prefix + k, e


def describe_dict(v, max_depth=None):
    """A dictionary describing ``v`` (``'kind'`` says what it is; layers nest their ``'sublayers'``).

    >>> describe_dict(convis.Parameter(0.01, unit='s'))['unit']
    's'
    """
    kind = _kind(v)
    if kind == 'Layer':
        return _layer_dict(v, max_depth=max_depth)
    if kind == 'Parameter':
        return _parameter_dict('', v)
    if kind == 'VirtualParameter':
        return _virtual_dict('', v)
    if kind == 'State':
        d = _summary(v, 'State')
        d['doc'] = getattr(v, 'doc', '')
        return d
    if kind in ('tensor', 'array'):
        return _summary(v, kind)
    if kind == 'Output':
        return OrderedDict(kind='Output', outputs=OrderedDict(
            (k, _summary(o, 'tensor' if isinstance(o, torch.Tensor) else 'array')) for k, o in zip(v.keys, v)))
    if kind == 'tree':
        entries = OrderedDict()
        for k, e in _flatten_tree(v):
            entries[k] = describe_dict(e, 0) if isinstance(e, torch.nn.Module) else describe_dict(e, max_depth)
            entries[k]['name'] = k
        return OrderedDict(kind='tree', doc=v._doc, entries=entries)
    return OrderedDict(kind='value', type=type(v).__name__, text=repr(v), doc=_first_paragraph(type(v).__doc__))


# ---------------------------------------------------------------------------------------------- text
def _parameter_line(d):
    unit = (' ' + d['unit']) if d.get('unit') else ''
    line = '%s = %s%s' % (d['name'], d['text'], unit)
    if d.get('doc'):
        line += '  (%s)' % _first_paragraph(d['doc'])
    if d.get('retina_config_key'):
        line += '  [%s]' % d['retina_config_key']
    return line


def _layer_lines(d, indent=0):
    pad = '  ' * indent
    lines = [pad + ('%s: ' % d['name'] if d['name'] else '') + d['cls'] + (' ...' if d.get('truncated') else '')]
    if d.get('doc') and indent == 0:
        lines.append(pad + '  ' + d['doc'])
    lines += [pad + '  ' + _parameter_line(p) for p in d.get('parameters', {}).values()]
    lines += [pad + '  state %s: %s' % (n, s['text']) for n, s in d.get('states', {}).items()]
    for c in d.get('sublayers', {}).values():
        lines += _layer_lines(c, indent + 1)
    return lines


def _entry_line(name, d):
    """One line for an entry of a tree."""
    if d['kind'] in ('Parameter', 'VirtualParameter'):
        return _parameter_line(dict(d, name=name))
    if d['kind'] == 'Layer':
        return '%s: %s' % (name, d['cls'])
    if d['kind'] in ('tensor', 'array', 'State') and 'shape' in d:
        return '%s: %s' % (name, _stats_text(d))
    return '%s: %s' % (name, d.get('text', d['kind']))


def _text(d):
    kind = d['kind']
    if kind == 'Layer':
        return '\n'.join(_layer_lines(d))
    if kind in ('Parameter', 'VirtualParameter'):
        lines = ['%s %s' % (kind, _parameter_line(dict(d, name=d['name'] or 'value', doc='')))]
        if d.get('doc'):
            lines.append('  ' + d['doc'])
        if kind == 'Parameter':
            lines.append('  bounds %s, scale %s, %s' % (d['bounds'], d['scale'], _stats_text(d)))
        return '\n'.join(lines)
    if kind in ('tensor', 'array', 'State'):
        return '%s %s' % (kind, _stats_text(d) if len(d['shape']) else d['text'])
    if kind == 'Output':
        return '\n'.join(['Output with %d entries' % len(d['outputs'])] +
                         ['  %s: %s' % (k, _stats_text(o)) for k, o in d['outputs'].items()])
    if kind == 'tree':
        return '\n'.join([d['doc'] or 'tree'] + ['  ' + _entry_line(k, e) for k, e in d['entries'].items()])
    return d['text']


def describe_text(v, max_depth=None):
    """A plain-text description of ``v`` (what ``print(describe(v))`` shows)."""
    return _text(describe_dict(v, max_depth))


# ---------------------------------------------------------------------------------------------- html
_STYLE = ('<style>.convis-describe table{border-collapse:collapse;margin:2px 0 6px 0}'
          '.convis-describe td,.convis-describe th{padding:1px 8px;text-align:left;vertical-align:top;'
          'border-bottom:1px solid #ddd}.convis-describe .sub{margin-left:1.5em}'
          '.convis-describe summary{cursor:pointer}</style>')


def _esc(x):
    return html.escape('' if x is None else str(x))


def _draw_tensor(fig, a):
    """Draws a 5-d array (its first 4 batches and channels) into ``fig``.

    Up to 16 frames are tiled into one image; longer tensors show the spatial mean over time and the
    middle frame; tensors without spatial extent are drawn as lines.
    """
    a = make_tensor_5d(a)[:4, :4]
    n_t, spatial = a.shape[2], a.shape[3] * a.shape[4]
    if spatial == 1:
        plot_5d_time(a, ax=fig.add_subplot(), mean=(3, 4))
    elif n_t <= 16:
        ax = fig.add_subplot()
        im = plot_5d_matshow(a, ax=ax, border_val=np.nan)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.05)
    else:
        gs = fig.add_gridspec(1, 2, width_ratios=[3, 1])
        ax = fig.add_subplot(gs[0])
        plot_5d_time(a, ax=ax, mean=(3, 4), lw=1)
        ax.set_xlabel('time (steps), mean over space')
        ax2 = fig.add_subplot(gs[1])
        im = ax2.imshow(a[0, 0, n_t // 2], interpolation='nearest')
        ax2.set_title('t=%d' % (n_t // 2), fontsize='small')
        ax2.set_xticks([])
        ax2.set_yticks([])
        fig.colorbar(im, ax=ax2, fraction=0.08)


def plot_to_png(draw, figsize=(6.0, 2.0), dpi=72):
    """Runs ``draw(fig)`` on a new Agg figure (outside pyplot) and returns the PNG as base64 text.

    Returns None when matplotlib is missing or drawing fails (the exception is kept in
    ``plotting_exceptions``).
    """
    if not plotting_possible:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format='png', bbox_inches='tight')
        return base64.b64encode(buf.getvalue()).decode('ascii')
    except Exception as e:  # a description must render even when its plot cannot be drawn
        plotting_exceptions.append(e)
        logger.warning('could not draw the plot of a description: %r', e)
        return None


def _img(t):
    try:
        a = as_plot_array(t)
    except TypeError:
        return ''
    if a.size <= 1:
        return ''
    png = plot_to_png(lambda fig: _draw_tensor(fig, a))
    return '' if png is None else '<img src="data:image/png;base64,%s"/>' % png


def _table(header, rows):
    out = ['<table><tr>'] + ['<th>%s</th>' % _esc(h) for h in header] + ['</tr>']
    for r in rows:
        out += ['<tr>'] + ['<td>%s</td>' % c for c in r] + ['</tr>']
    out.append('</table>')
    return ''.join(out)


def _parameter_rows(params):
    return [('<b>%s</b>' % _esc(n), _esc(p['text']), _esc(p.get('unit', '')), _esc(p.get('doc', '')),
             '<code>%s</code>' % _esc(p['retina_config_key']) if p.get('retina_config_key') else '',
             _esc(p['bounds']) if 'bounds' in p else '') for n, p in params.items()]


def _layer_html(d, depth=0):
    title = '<b>%s</b> <code>%s</code>' % (_esc(d['name'] or d['cls'].rsplit('.', 1)[-1]), _esc(d['cls']))
    if d.get('truncated'):
        return '<div class="sub">%s ...</div>' % title
    out = ['<details%s><summary>%s %s</summary>' % (' open' if depth < 2 else '', title,
                                                    '<i>%s</i>' % _esc(d['doc']) if d['doc'] else '')]
    if d['parameters']:
        out.append(_table(['parameter', 'value', 'unit', 'doc', 'config key', 'bounds'],
                          _parameter_rows(d['parameters'])))
    if d['states']:
        out.append(_table(['state', 'value'], [('<b>%s</b>' % _esc(n), _esc(s['text']))
                                               for n, s in d['states'].items()]))
    out += ['<div class="sub">%s</div>' % _layer_html(c, depth + 1) for c in d['sublayers'].values()]
    out.append('</details>')
    return ''.join(out)


_SUMMARY_KEYS = ('shape', 'dtype', 'device', 'requires_grad', 'min', 'max', 'mean', 'std', 'count')


def _summary_table(named):
    """One row of shape, dtype and statistics for each ``(name, summary dict)``."""
    keys = [k for k in _SUMMARY_KEYS if any(k in d for _, d in named)]
    rows = [['<b>%s</b>' % _esc(n)] + [_esc('%.6g' % d[k] if isinstance(d.get(k), float) else d.get(k, ''))
                                       for k in keys] for n, d in named]
    return _table([''] + keys, rows)


def describe_html(v, max_depth=None):
    """An HTML description of ``v`` (what a notebook shows): tables, a layer tree, embedded plots."""
    d = describe_dict(v, max_depth)
    kind = d['kind']
    if kind == 'Layer':
        body = _layer_html(d)
    elif kind in ('Parameter', 'VirtualParameter'):
        body = '<b>%s</b> %s' % (_esc(kind), _table(['parameter', 'value', 'unit', 'doc', 'config key', 'bounds'],
                                                     _parameter_rows({d['name'] or 'value': d})))
        if kind == 'Parameter':
            body += _summary_table([(d['name'] or 'value', d)]) + _img(v)
    elif kind in ('tensor', 'array', 'State'):
        body = '<b>%s</b>%s%s' % (_esc(kind), _summary_table([('', d)]), _img(v))
    elif kind == 'Output':
        body = '<b>Output</b> with %d entries%s' % (len(v), _summary_table(list(d['outputs'].items())))
        for k, o in zip(v.keys, v):
            img = _img(o)
            body += '<div><b>%s</b><br/>%s</div>' % (_esc(k), img) if img else ''
    elif kind == 'tree':
        rows = [_parameter_rows({k: e})[0] if e['kind'] in ('Parameter', 'VirtualParameter') else
                ('<b>%s</b>' % _esc(k), _esc(_entry_line(k, e).split(': ', 1)[-1]), '', '', '', '')
                for k, e in d['entries'].items()]
        body = '<b>%s</b>%s' % (_esc(d['doc'] or 'tree'), _table(
            ['entry', 'value', 'unit', 'doc', 'config key', 'bounds'], rows))
    else:
        body = '<pre>%s</pre>' % _esc(d['text'])
    return '<div class="convis-describe">%s%s</div>' % (_STYLE, body)


_HTML_DESCRIBERS.append(describe_html)


def describe_layer_with_html(layer, max_depth=3):
    """The HTML tree of a layer, ``max_depth`` levels of sublayers deep."""
    return describe_html(layer, max_depth=max_depth)


# ---------------------------------------------------------------------------------------------- describe, help
def _help_text(v):
    if isinstance(v, torch.nn.Module):
        lines = [_class_name(v), inspect.cleandoc(type(v).__doc__ or '')]
        named = list(v.named_parameters())
        if isinstance(v, Layer):
            named += list(v.named_virtual_parameters())
        if named:
            lines.append('Parameters:')
        for n, p in named:
            d = _virtual_dict(n, p) if isinstance(p, VirtualParameter) else _parameter_dict(n, p)
            lines.append('  ' + _parameter_line(d))
        return '\n'.join(lines)
    if isinstance(v, (torch.nn.Parameter, VirtualParameter)):
        name = getattr(v, 'name', '') or 'value'
        unit = getattr(v, 'unit', '')
        key = getattr(v, 'retina_config_key', None)
        return '%s%s: %s%s' % (name, ' [%s]' % unit if unit else '', getattr(v, 'doc', '') or '(no doc)',
                                '\nconfig key: %s' % key if key else '')
    return '%s\n%s' % (_class_name(v), inspect.cleandoc(type(v).__doc__ or ''))


class Description(object):
    """What :func:`describe` and :func:`help` return: text in a console, HTML in a notebook."""

    def __init__(self, v, mode='describe', **kwargs):
        self.v = v
        self.mode = mode
        self.kwargs = kwargs

    def __repr__(self):
        return _help_text(self.v) if self.mode == 'help' else describe_text(self.v, **self.kwargs)

    __str__ = __repr__

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))

    def _repr_html_(self):
        if self.mode == 'help':
            return '<div class="convis-describe"><pre>%s</pre></div>' % _esc(repr(self))
        return describe_html(self.v, **self.kwargs)

    def to_dict(self):
        """The description as a dictionary (see :func:`describe_dict`)."""
        return describe_dict(self.v, **self.kwargs)


_Descriptor = Description


def describe(v, **kwargs):
    """Describes a layer, parameter, state, output, tensor or array (text in a console, HTML in a notebook).

    >>> convis.describe(model)          # the tree of sublayers, parameters and states
    >>> convis.describe(model.p.tau)    # value, unit, doc, VirtualRetina key, bounds
    """
    return Description(v, **kwargs)


def help(v):
    """Says what ``v`` is: its name and doc (a layer: its docstring and the doc of every parameter)."""
    return Description(v, mode='help')
