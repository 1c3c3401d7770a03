"""Matplotlib plots and animations of 5-d tensors ``[batch, channel, time, x, y]``.

Every function accepts numpy arrays, tensors (also with ``requires_grad`` or on
the GPU), :class:`convis.Parameter` objects, boolean spike tensors and the
first entry of an :class:`convis.Output`.  Fewer than 5 dimensions are read as
:func:`convis.utils.make_tensor_5d` documents.

matplotlib is imported inside the functions, never when convis is imported,
and the backend is never changed.  Functions that draw into one axes take an
``ax`` keyword (default: pyplot's current axes); functions that lay out a
whole figure take ``fig`` (default: pyplot's current figure if it is empty,
otherwise a new one).

:func:`animate`, :func:`animate_double_plot`, :func:`animate_to_video` (mp4 through the ffmpeg of
``imageio-ffmpeg``) and :func:`animate_to_html` (a JavaScript player) animate a 3-d ``(t, x, y)``
or 5-d array; batches and channels of a 5-d array are tiled into each frame.

>>> import convis
>>> inp = convis.samples.moving_grating(2000, 50, 50)
>>> convis.utils.plot_tensor(inp[None, None])
"""
import numpy as np
import torch

from .tensors import make_tensor_5d, to_numpy

__all__ = ['plot', 'plot_5d_matshow', 'plot_5d_time', 'plot_tensor', 'plot_tensor_with_channels',
           'tile_5d', 'as_plot_array', 'animate', 'animate_double_plot', 'animate_to_video', 'animate_to_html',
           'OrthographicWrapper', 'plot_3d_tensor_as_3d_plot']


def as_plot_array(x):
    """A float numpy copy of anything plottable (tensor, Parameter, array, bool spikes, Output).

    An :class:`convis.Output` gives its first entry; integer and boolean data become float32.
    """
    if hasattr(x, '_outs') and hasattr(x, 'keys'):
        if len(x) == 0:
            raise ValueError('cannot plot an empty Output')
        x = x[0]
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_complex():
            raise TypeError('cannot plot complex data')
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()
    a = to_numpy(x)
    if a.dtype == object or a.dtype.kind not in 'biuf':
        raise TypeError('cannot plot data of dtype %s' % a.dtype)
    if a.dtype.kind != 'f' or a.dtype == np.float16:
        a = a.astype(np.float32)
    return a


def _as_5d(x):
    a = make_tensor_5d(as_plot_array(x))
    if a.size == 0:
        raise ValueError('cannot plot an empty tensor of shape %s' % (a.shape,))
    return a


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt
    return plt.gca()


def _figure(fig):
    """The figure to lay a multi-panel plot out in: ``fig``, pyplot's empty current figure or a new one."""
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt
    current = plt.gcf()
    return current if not current.axes else plt.figure()


def _as_dims(d):
    if isinstance(d, (int, np.integer)):
        return (int(d),)
    return tuple(int(i) for i in d)


def _border_value(a, border_val):
    if isinstance(border_val, str):
        funcs = {'max': np.nanmax, 'min': np.nanmin, 'mean': np.nanmean}
        if border_val not in funcs:
            raise ValueError("border_val must be a number or 'max', 'min' or 'mean', not %r" % border_val)
        return float(funcs[border_val](a))
    return float(border_val)


def tile_5d(w, dims=((0, 1, 3), (2, 4)), border=True, border_val=0.0, lead=()):
    """Arranges a 5-d tensor as one image: the axes in ``dims[0]`` run down, those in ``dims[1]`` across.

    Within each group the last axis varies fastest, so with the default ``dims`` frames (x, y) are
    placed side by side in time, and batches/channels are stacked below each other.  With
    ``border=True`` tiles are separated by one row/column of ``border_val`` (a number or ``'max'``,
    ``'min'``, ``'mean'`` of ``w``).  Axes in ``lead`` are kept in front (one image each).

    >>> tile_5d(np.ones((1, 1, 3, 2, 2))).shape
    (2, 8)
    """
    a = _as_5d(w)
    if len(dims) != 2:
        raise ValueError('dims must be two groups of axes (rows, columns), not %r' % (dims,))
    rows, cols, lead = _as_dims(dims[0]), _as_dims(dims[1]), _as_dims(lead)
    if sorted(rows + cols + lead) != [0, 1, 2, 3, 4] or not rows or not cols:
        raise ValueError('dims %r (with lead axes %r) must split the 5 axes 0..4 into rows and columns'
                         % (dims, lead))
    if border:
        bv = _border_value(a, border_val)
        pads = [(0, 0)] * 5
        pads[rows[-1]] = (0, 1)
        pads[cols[-1]] = (0, 1)
        a = np.pad(a, pads, mode='constant', constant_values=bv)
    t = a.transpose(lead + rows + cols)
    shape = t.shape
    n_lead = len(lead)
    n_rows = int(np.prod(shape[n_lead:n_lead + len(rows)]))
    img = t.reshape(shape[:n_lead] + (n_rows, -1))
    if border:
        img = img[..., :-1, :-1]
    return img


def plot_5d_matshow(w, border=True, dims=[(0, 1, 3), (2, 4)], border_val=0.0, **kwargs):
    """Plots a 5-d tensor as one image of tiled spatial maps (see :func:`tile_5d`).

    The 5 axes are split into two groups, the rows and the columns of the image; by default
    ``dims=[(0, 1, 3), (2, 4)]`` puts the frames of each time step side by side.  ``border_val`` (a
    number or ``'max'``, ``'min'``, ``'mean'``) separates the tiles.  Other keyword arguments go to
    ``Axes.matshow`` (``ax=`` picks the axes).  Returns the ``AxesImage``; ``.get_array()`` is the image.

    >>> convis.utils.plot_5d_matshow(inp[None, None, ::200])
    """
    ax = _axes(kwargs.pop('ax', None))
    img = tile_5d(w, dims=dims, border=border, border_val=border_val)
    return ax.matshow(img, **kwargs)


def plot_5d_time(w, lsty='-', mean=(), time=(2,), *args, **kwargs):
    """Line plot over time of a 5-d tensor: one line for every index of the axes not averaged.

    The axes in ``time`` (flattened in order) form the horizontal axis; the axes in ``mean`` are
    averaged; ``mean=True`` averages every other axis (one line).  Other arguments go to
    ``Axes.plot`` (``ax=`` picks the axes).  Returns the list of ``Line2D``.

    >>> convis.utils.plot_5d_time(o[0], mean=(3, 4))
    """
    ax = _axes(kwargs.pop('ax', None))
    a = _as_5d(w)
    time = _as_dims(time)
    if mean is True:
        mean = tuple(d for d in range(5) if d not in time)
    elif mean is None or mean is False:
        mean = ()
    mean = _as_dims(mean)
    if set(mean) & set(time) or not set(mean + time) <= set(range(5)) or not time:
        raise ValueError('mean %r and time %r must be distinct axes among 0..4' % (mean, time))
    if mean:
        a = a.mean(axis=mean, keepdims=True)
    rest = tuple(d for d in range(5) if d not in time)
    t = a.transpose(time + rest)
    t = t.reshape(int(np.prod(t.shape[:len(time)])), -1)
    return ax.plot(t, lsty, *args, **kwargs)


def plot(x, mode=None, **kwargs):
    """Plots a tensor by its shape, or as ``mode`` says.

    ``mode=None``: a single frame is shown as an image (:func:`plot_5d_matshow`), data without
    spatial extent as lines (:func:`plot_5d_time`), anything else with :func:`plot_tensor`.
    ``'lines'`` plots the spatial mean of every batch/channel over time, ``'matshow'`` tiles all
    frames, ``'tensor'`` calls :func:`plot_tensor`.

    >>> convis.utils.plot(inp[None, None])
    """
    a = _as_5d(x)
    if mode is None:
        if a.shape[2] == 1:
            mode = 'matshow'
        elif a.shape[3] * a.shape[4] == 1:
            mode = 'lines'
        else:
            mode = 'tensor'
    if mode == 'lines':
        return plot_5d_time(a, mean=(3, 4), **kwargs)
    if mode == 'matshow':
        return plot_5d_matshow(a, **kwargs)
    if mode == 'tensor':
        return plot_tensor(a, **kwargs)
    raise ValueError("mode must be None, 'lines', 'matshow' or 'tensor', not %r" % (mode,))


def _range(lim, n, name):
    if lim is None:
        return slice(0, n)
    if isinstance(lim, (int, np.integer)):
        lim = (0, int(lim))
    lo, hi = (0 if lim[0] is None else int(lim[0])), (n if lim[1] is None else int(lim[1]))
    lo, hi = max(lo, 0), min(hi, n)
    if hi <= lo:
        raise ValueError('%s=%r selects nothing of %d entries' % (name, lim, n))
    return slice(lo, hi)


def _example_positions(nx, ny, max_lines):
    """Up to ``max_lines`` pixel positions spread over an ``nx`` by ``ny`` grid."""
    if max_lines <= 0:
        return []
    side = int(np.ceil(np.sqrt(max_lines)))
    xs = np.unique(np.linspace(0, nx - 1, min(nx, side) + 2)[1:-1].round().astype(int)) if nx > 2 else np.arange(nx)
    ys = np.unique(np.linspace(0, ny - 1, min(ny, side) + 2)[1:-1].round().astype(int)) if ny > 2 else np.arange(ny)
    return [(int(i), int(j)) for i in xs for j in ys][:max_lines]


def _frame_times(n_t, n_examples):
    return np.unique(np.linspace(0, n_t - 1, max(1, min(n_examples, n_t))).round().astype(int))


def _resize(fig, width, height):
    w, h = fig.get_size_inches()
    if w < width or h < height:
        fig.set_size_inches(max(w, width), max(h, height))


def _summary_lines(ax, a, color='k', label_prefix=''):
    """Draws min, max and mean over all non-time axes of ``a``; returns the mean trace."""
    flat = a.transpose(2, 0, 1, 3, 4).reshape(a.shape[2], -1)
    mean = flat.mean(axis=1)
    steps = np.arange(a.shape[2])
    ax.plot(steps, flat.min(axis=1), color=color, lw=0.8, ls=':', label=label_prefix + 'min')
    ax.plot(steps, flat.max(axis=1), color=color, lw=0.8, ls='--', label=label_prefix + 'max')
    ax.plot(steps, mean, color=color, lw=2, label=label_prefix + 'mean')
    return mean


def plot_tensor(t, n_examples=5, max_lines=16, tlim=None, xlim=None, ylim=None, resize_small_figures=True,
                title='Output Tensor', fig=None, **kwargs):
    """Plots a 5-d tensor as a line plot over time and a row of example frames.

    The line plot shows the min, max and mean over all other axes and up to ``max_lines`` example
    pixel traces (of batch 0, channel 0, spread over space); dashed vertical lines mark the times of
    the ``n_examples`` frames shown below (batch 0, channel 0, one colour scale).

    Parameters
    ----------
    t : tensor or array, the data
    n_examples : int, number of frames (equally spaced in time)
    max_lines : int, maximum number of example traces
    tlim : int or (start, stop), the time range (steps) plotted
    xlim, ylim : int or (start, stop), the pixel ranges shown in the example frames
    resize_small_figures : bool, enlarge a figure too small for the frames
    title : str, the figure title
    fig : matplotlib Figure to draw in (default: see the module doc)

    Other keyword arguments go to ``imshow``.  Returns the list of axes (traces first).

    >>> convis.utils.plot_tensor(inp[None, None], n_examples=10, max_lines=42)
    """
    a = _as_5d(t)
    a = a[:, :, _range(tlim, a.shape[2], 'tlim')]
    fig = _figure(fig)
    times = _frame_times(a.shape[2], n_examples)
    if resize_small_figures:
        _resize(fig, 1.6 * len(times) + 1, 4.5)
    gs = fig.add_gridspec(2, len(times), height_ratios=[1.4, 1], hspace=0.45)
    ax_lines = fig.add_subplot(gs[0, :])
    steps = np.arange(a.shape[2])
    for k, (i, j) in enumerate(_example_positions(a.shape[3], a.shape[4], max_lines)):
        ax_lines.plot(steps, a[0, 0, :, i, j], lw=0.5, alpha=0.6, label='example' if k == 0 else '_example')
    _summary_lines(ax_lines, a)
    for ti in times:
        ax_lines.axvline(ti, color='gray', ls='--', lw=0.5)
    ax_lines.set_xlim(0, max(a.shape[2] - 1, 1))
    ax_lines.set_xlabel('time (steps)')
    ax_lines.legend(loc='upper right', fontsize='small')
    frames = a[0, 0][:, _range(xlim, a.shape[3], 'xlim'), _range(ylim, a.shape[4], 'ylim')]
    kwargs.setdefault('vmin', float(np.nanmin(frames[times])))
    kwargs.setdefault('vmax', float(np.nanmax(frames[times])))
    kwargs.setdefault('interpolation', 'nearest')
    axes = [ax_lines]
    for k, ti in enumerate(times):
        ax = fig.add_subplot(gs[1, k])
        ax.imshow(frames[ti], **kwargs)
        ax.set_title('t=%d' % ti, fontsize='small')
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    if title:
        fig.suptitle(title)
    return axes


def plot_tensor_with_channels(t, n_examples=7, max_lines=9, fig=None, **kwargs):
    """Plots a 5-d tensor with every batch and channel: traces per channel and a row of frames each.

    The top panel shows, for every (batch, channel) in its own colour, the mean over space (thick),
    the min-max band (shaded) and up to ``max_lines`` example pixel traces; below, one row per
    (batch, channel) shows ``n_examples`` frames side by side (one colour scale for all rows).

    Parameters
    ----------
    t : tensor or array, the data
    n_examples : int, number of frames (equally spaced in time)
    max_lines : int, maximum number of example traces per (batch, channel)
    fig : matplotlib Figure to draw in (default: see the module doc)

    Other keyword arguments go to ``imshow``.  Returns the list of axes (traces first).

    >>> inp = np.concatenate([-1.0 * inp[None, None], 2.0 * inp[None, None]], axis=0)
    >>> convis.utils.plot_tensor_with_channels(inp)
    """
    a = _as_5d(t)
    fig = _figure(fig)
    n_b, n_c = a.shape[0], a.shape[1]
    times = _frame_times(a.shape[2], n_examples)
    gs = fig.add_gridspec(1 + n_b * n_c, 1, height_ratios=[2.5] + [1] * (n_b * n_c), hspace=0.4)
    _resize(fig, 1.4 * len(times) + 1.5, 3 + 1.2 * n_b * n_c)
    ax_lines = fig.add_subplot(gs[0])
    steps = np.arange(a.shape[2])
    colors = ['C%d' % (k % 10) for k in range(n_b * n_c)]
    positions = _example_positions(a.shape[3], a.shape[4], max_lines)
    frames = a[:, :, times]
    kwargs.setdefault('vmin', float(np.nanmin(frames)))
    kwargs.setdefault('vmax', float(np.nanmax(frames)))
    kwargs.setdefault('interpolation', 'nearest')
    kwargs.setdefault('aspect', 'equal')
    axes = [ax_lines]
    for b in range(n_b):
        for c in range(n_c):
            k = b * n_c + c
            flat = a[b, c].reshape(a.shape[2], -1)
            ax_lines.fill_between(steps, flat.min(axis=1), flat.max(axis=1), color=colors[k], alpha=0.15, lw=0)
            for i, j in positions:
                ax_lines.plot(steps, a[b, c, :, i, j], color=colors[k], lw=0.4, alpha=0.5, label='_example')
            ax_lines.plot(steps, flat.mean(axis=1), color=colors[k], lw=2, label='mean b%d c%d' % (b, c))
            ax = fig.add_subplot(gs[1 + k])
            ax.imshow(tile_5d(frames[b:b + 1, c:c + 1], dims=[(0, 1, 3), (2, 4)], border_val=np.nan), **kwargs)
            ax.set_ylabel('b%d c%d' % (b, c), fontsize='small')
            ax.set_xticks([(a.shape[4] + 1) * n + a.shape[4] / 2.0 - 0.5 for n in range(len(times))])
            ax.set_xticklabels(['t=%d' % ti for ti in times], fontsize='x-small')
            ax.set_yticks([])
            axes.append(ax)
    for ti in times:
        ax_lines.axvline(ti, color='gray', ls='--', lw=0.5)
    ax_lines.set_xlim(0, max(a.shape[2] - 1, 1))
    ax_lines.set_xlabel('time (steps)')
    ax_lines.legend(loc='upper right', fontsize='small')
    return axes


def _video(ar):
    """A ``(t, x, y)`` float array from a 3-d array, or a 4-/5-d one with batches and channels tiled."""
    a = as_plot_array(ar)
    if a.ndim == 3:
        return a
    if a.ndim < 3:
        raise ValueError('animations need a 3-d (t, x, y) or 5-d array, not shape %s' % (a.shape,))
    return tile_5d(make_tensor_5d(a), dims=[(0, 3), (1, 4)], lead=(2,), border_val=np.nan)


def _build_animation(fig, ar, skip, interval, scrolling_plot=False, window_length=200, **kwargs):
    from matplotlib.animation import FuncAnimation
    skip = int(skip)
    if skip < 1:
        raise ValueError('skip must be a positive number of steps, not %r' % skip)
    frames = _video(ar)
    steps = list(range(0, frames.shape[0], skip))
    kwargs.setdefault('cmap', 'gray')
    kwargs.setdefault('interpolation', 'nearest')
    kwargs.setdefault('vmin', float(np.nanmin(frames)))
    kwargs.setdefault('vmax', float(np.nanmax(frames)))
    if scrolling_plot:
        gs = fig.add_gridspec(1, 2, width_ratios=[1, 2])
        ax = fig.add_subplot(gs[0])
        ax_trace = fig.add_subplot(gs[1])
        trace = np.nanmean(frames.reshape(frames.shape[0], -1), axis=1)
        ax_trace.plot(np.arange(len(trace)), trace, color='k', lw=1)
        marker = ax_trace.axvline(0, color='C3')
        ax_trace.set_xlabel('time (steps)')
        ax_trace.set_ylabel('mean')
    else:
        ax = fig.add_subplot()
    image = ax.imshow(frames[0], **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    title = ax.set_title('t=0')

    def update(i):
        image.set_data(frames[i])
        title.set_text('t=%d' % i)
        if scrolling_plot:
            marker.set_xdata([i, i])
            ax_trace.set_xlim(i - window_length, i + 1)
        return [image, title]

    return FuncAnimation(fig, update, frames=steps, interval=interval, blit=False)


def _agg_figure(scrolling_plot):
    """A figure outside pyplot for writing animations: every frame is drawn once, by the writer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class _WriterCanvas(FigureCanvasAgg):
        def draw_idle(self, *args, **kwargs):
            """Nothing shows this canvas: the writer's own draw of each frame is enough."""

    fig = Figure(figsize=(9, 3.5) if scrolling_plot else (4.5, 4), dpi=72)
    _WriterCanvas(fig)
    return fig


def animate(ar, skip=10, interval=100, **kwargs):
    """Animates a 3-d ``(t, x, y)`` or 5-d array in a new pyplot figure; returns the ``FuncAnimation``.

    Every ``skip``-th frame is shown, ``interval`` ms apart; one colour scale for all frames.  Batches
    and channels of a 5-d array are tiled (batches down, channels across).  Other keyword arguments go to
    ``imshow``.  Use an interactive backend (``%matplotlib widget``), or :func:`animate_to_video` /
    :func:`animate_to_html` for an embedded animation.

    >>> anim = convis.animate(convis.samples.moving_grating(5000))
    """
    import matplotlib.pyplot as plt
    return _build_animation(plt.figure(), ar, skip, interval, **kwargs)


def animate_double_plot(ar, skip=10, interval=200, window_length=200, **kwargs):
    """Animates a 3-d or 5-d array as a frame beside a scrolling trace of the spatial mean.

    ``window_length`` steps of the trace are visible; a red line marks the current frame.
    Returns the ``FuncAnimation`` (in a new pyplot figure).
    """
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(9, 3.5))
    return _build_animation(fig, ar, skip, interval, scrolling_plot=True, window_length=window_length, **kwargs)


def _html(text):
    try:
        from IPython.display import HTML
    except ImportError:
        return _HTMLText(text)
    return HTML(text)


class _HTMLText(object):
    def __init__(self, data):
        self.data = data

    def _repr_html_(self):
        return self.data


def _ffmpeg_path():
    import matplotlib
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return matplotlib.rcParams['animation.ffmpeg_path']


def animate_to_video(ar, skip=10, interval=100, scrolling_plot=False, window_length=200, **kwargs):
    """Animates a 3-d or 5-d array as an mp4 video embedded in HTML (a notebook shows a player).

    Frames are every ``skip``-th step, ``interval`` ms apart (``1000/interval`` frames per second);
    ``scrolling_plot`` adds the trace of :func:`animate_double_plot`.  ffmpeg comes from
    ``imageio-ffmpeg``.  Returns an ``IPython.display.HTML`` (its ``.data`` is the ``<video>`` tag).

    >>> convis.variable_describe.animate_to_video(convis.samples.moving_grating(5000))
    """
    import matplotlib
    anim = _build_animation(_agg_figure(scrolling_plot), ar, skip, interval, scrolling_plot, window_length, **kwargs)
    with matplotlib.rc_context({'animation.ffmpeg_path': _ffmpeg_path(), 'animation.writer': 'ffmpeg'}):
        return _html(anim.to_html5_video())


def animate_to_html(ar, skip=10, interval=100, scrolling_plot=False, window_length=200, **kwargs):
    """Animates a 3-d or 5-d array as a JavaScript player with embedded PNG frames.

    Arguments as :func:`animate_to_video`.  Returns an ``IPython.display.HTML``.

    >>> convis.variable_describe.animate_to_html(convis.samples.moving_grating(5000))
    """
    anim = _build_animation(_agg_figure(scrolling_plot), ar, skip, interval, scrolling_plot, window_length, **kwargs)
    return _html(anim.to_jshtml())


class OrthographicWrapper(object):
    """A context manager under which every 3-d axes is drawn with an orthographic projection.

    Plots shown or saved inside the ``with`` block use the projection; afterwards each axes
    draws with its own projection type again.  The same object can be entered again.

    >>> with convis.variable_describe.OrthographicWrapper():
    ...     plot_3d_tensor_as_3d_plot(ar)
    """

    def __enter__(self):
        from mpl_toolkits.mplot3d.axes3d import Axes3D
        original = Axes3D.get_proj
        self._original = original

        def get_proj(ax):
            focal_length = ax._focal_length
            ax._focal_length = np.inf
            try:
                return original(ax)
            finally:
                ax._focal_length = focal_length

        Axes3D.get_proj = get_proj
        return self

    def __exit__(self, *exc):
        from mpl_toolkits.mplot3d.axes3d import Axes3D
        Axes3D.get_proj = self._original
        return False


def _axes_3d(ax):
    if ax is not None:
        if getattr(ax, 'name', '') != '3d':
            raise ValueError("ax must be a 3-d axes (projection='3d')")
        return ax
    import matplotlib.pyplot as plt
    fig = plt.gcf()
    current = fig.axes[-1] if fig.axes else None
    if current is not None and current.name == '3d':
        return current
    spec = current.get_subplotspec() if current is not None else None
    if current is not None:
        current.remove()
    return fig.add_subplot(spec if spec is not None else 111, projection='3d')


def plot_3d_tensor_as_3d_plot(ar, ax=None, scale_ar=None, num_levels=20, contour_cmap='coolwarm_r',
                              contourf_cmap='gray', view=(25, 65)):
    """Shows a ``(t, x, y)`` tensor (a kernel, a short video) as contour plots stacked along time.

    Every frame becomes a filled contour plot (``contourf_cmap``) with contour lines (``contour_cmap``)
    at height t; the sides show the planes y=0 (x against t) and x=0 (y against t).  A 5-d input
    shows its batch 0, channel 0.

    Parameters
    ----------
    ar : tensor or array, ``(t, x, y)`` or 5-d
    ax : a 3-d axes (default: the current axes, turned into a 3-d one)
    scale_ar : array that sets the contour levels (to compare several plots; default ``ar``)
    num_levels : int, number of contour levels
    view : (elevation, azimuth) in degrees

    Returns the axes.  Meant for short tensors (a contour plot per frame).

    >>> plot_3d_tensor_as_3d_plot(convis.numerical_filters.gauss_filter_3d(0.1, 0.05)[:20])
    """
    a = as_plot_array(ar)
    if a.ndim != 3:
        a = make_tensor_5d(a)[0, 0]
    scale = as_plot_array(scale_ar) if scale_ar is not None else a
    lo, hi = float(np.nanmin(scale)), float(np.nanmax(scale))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    levels = np.linspace(lo, hi, max(int(num_levels), 2))
    ax = _axes_3d(ax)
    n_t, n_x, n_y = a.shape
    xs, ys = np.meshgrid(np.arange(n_x), np.arange(n_y), indexing='ij')
    for i in range(n_t):
        ax.contourf(xs, ys, a[i], zdir='z', offset=i, levels=levels, cmap=contourf_cmap, alpha=0.6)
        ax.contour(xs, ys, a[i], zdir='z', offset=i, levels=levels, cmap=contour_cmap, linewidths=0.6)
    ts, xt = np.meshgrid(np.arange(n_t), np.arange(n_x), indexing='ij')
    ax.contourf(xt, ts, a[:, :, 0], zdir='y', offset=0, levels=levels, cmap=contourf_cmap, alpha=0.8)
    ts, yt = np.meshgrid(np.arange(n_t), np.arange(n_y), indexing='ij')
    ax.contourf(yt, ts, a[:, 0, :], zdir='x', offset=0, levels=levels, cmap=contourf_cmap, alpha=0.8)
    ax.set_xlim(0, max(n_x - 1, 1))
    ax.set_ylim(0, max(n_y - 1, 1))
    ax.set_zlim(0, max(n_t - 1, 1))
    ax.set_xlabel('x')
    ax.set_ylabel('y')
    ax.set_zlabel('t')
    ax.view_init(elev=view[0], azim=view[1])
    return ax
