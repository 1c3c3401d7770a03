"""TensorView: an animated view of a 5-d tensor, played in the browser.

The kernel keeps the frames of a ``[batch, channel, time, x, y]`` tensor quantised to uint8
with a fixed colour scale (:func:`~convis_widgets.frames.quantise`) and sends the selected
(batch, channel) slice to the browser once, in compressed batches of frames
(:func:`~convis_widgets.frames.encode_batch`), paced by a byte budget shared by all views
(:mod:`convis_widgets._sender`).  The browser plays them on a canvas: play/pause, scrubbing,
frame rate, loop, colour map, batch/channel choice, nearest-neighbour zoom, and the time course
of a clicked pixel, without asking the kernel for anything.  Playing costs no bandwidth;
only new data does.

>>> import numpy as np
>>> from convis_widgets import TensorView
>>> view = TensorView(np.random.rand(1, 1, 100, 32, 32), colormap='viridis')
>>> view                                      # doctest: +SKIP   (shows the player)
>>> view.put(np.random.rand(10, 32, 32))      # appends 10 frames (a Runner can write into it)
>>> view.n_frames
110
"""
import logging
import re
import threading

import numpy as np
import torch
import traitlets
from ipywidgets import DOMWidget, jslink

import convis

from ._frontend import MODULE_NAME, MODULE_VERSION
from ._sender import BatchSender
from .embed import animation_html, embed, html_page, panels_of, poster_html, save_movie
from .frames import color_range, encode_batch, frame_checksum, quantise

__all__ = ['TensorView', 'sync_views', 'COLORMAPS']

logger = logging.getLogger('convis_widgets')

COLORMAPS = ('gray', 'viridis', 'magma', 'inferno', 'RdBu', 'coolwarm', 'hot')
"""The colour maps the browser knows (labextension/src/colormaps.ts)."""


def _as_5d_array(data, output=0):
    """A float32 numpy array ``[b, c, t, x, y]`` of a tensor, array or one entry of an Output."""
    if isinstance(data, convis.Output):
        data = data[output]
    if isinstance(data, torch.Tensor):
        data = data.detach().to('cpu', torch.float32).numpy()
    a = np.asarray(data)
    if a.dtype == object or a.dtype.kind not in 'biuf':
        raise TypeError('TensorView needs numeric data, not %s' % a.dtype)
    a = convis.utils.make_tensor_5d(a.astype(np.float32, copy=False))
    if min(a.shape) == 0 and a.shape[2] != 0:
        raise ValueError('cannot show data of shape %s' % (a.shape,))
    return a


class _Store(object):
    """Growable storage of frames ``[b, c, t, x, y]`` (float values and their uint8 levels)."""

    def __init__(self, shape):
        b, c, _, x, y = shape
        self.shape = (b, c, x, y)
        self.count = 0
        self.values = np.zeros((b, c, 0, x, y), np.float32)
        self.levels = np.zeros((b, c, 0, x, y), np.uint8)
        self.clipped = np.zeros(0, np.int64)   # values outside the colour scale, per frame

    def reserve(self, n):
        if n <= self.values.shape[2]:
            return
        cap = max(n, 2 * self.values.shape[2], 16)
        b, c, x, y = self.shape
        values = np.zeros((b, c, cap, x, y), np.float32)
        levels = np.zeros((b, c, cap, x, y), np.uint8)
        values[:, :, :self.count] = self.values[:, :, :self.count]
        levels[:, :, :self.count] = self.levels[:, :, :self.count]
        clipped = np.zeros(cap, np.int64)
        clipped[:self.count] = self.clipped[:self.count]
        self.values, self.levels, self.clipped = values, levels, clipped

    def drop(self, k):
        n = self.count - k
        self.values[:, :, :n] = self.values[:, :, k:self.count].copy()
        self.levels[:, :, :n] = self.levels[:, :, k:self.count].copy()
        self.clipped[:n] = self.clipped[k:self.count].copy()
        self.count = n

    def set_frames(self, start, a, vmin, vmax):
        """Stores the values ``a`` as frames ``start...``: their levels and how many of them the scale clips."""
        stop = start + a.shape[2]
        self.values[:, :, start:stop] = a
        self.levels[:, :, start:stop] = quantise(a, vmin, vmax)
        outside = (a < vmin) | (a > vmax)
        self.clipped[start:stop] = outside.sum(axis=(0, 1, 3, 4))

    def clipped_fraction(self):
        """The fraction of the stored values outside the colour scale (0 when empty)."""
        b, c, x, y = self.shape
        n = self.count * b * c * x * y
        return float(self.clipped[:self.count].sum()) / n if n else 0.0


class TensorView(DOMWidget):
    """An animated view of a 5-d tensor ``[batch, channel, time, x, y]`` (or one output of an Output).

    Frames are quantised to 256 levels between ``vmin`` and ``vmax`` (fixed once chosen, so the
    colours of a value do not change from frame to frame or run to run), sent as zlib-compressed
    temporal differences, and played in the browser.

    Parameters
    ----------
    data : tensor, array, Output or None
        1-d to 5-d (read as :func:`convis.utils.make_tensor_5d` does); None for a view that is
        filled later with :meth:`put` or :meth:`set_data`.
    output : int or str
        which entry of an :class:`convis.Output` to show
    vmin, vmax : float
        colour scale (default: the range of the first data; ``symmetric=True`` centres it on 0)
    colormap : str
        one of :data:`COLORMAPS`
    fps : float
        frames per second of playback
    dt : float
        seconds of model time per frame (for the time axis; default: the global resolution)
    max_frames : int or None
        keep at most this many frames (oldest dropped) when frames are appended with :meth:`put`
    title, unit : str
        shown above the player and beside the colour bar

    Examples
    --------
    >>> o = retina.run(x, dt=500)
    >>> TensorView(o, output='ganglion_spikes_ON', colormap='hot')
    """
    _model_name = traitlets.Unicode('TensorViewModel').tag(sync=True)
    _model_module = traitlets.Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = traitlets.Unicode(MODULE_VERSION).tag(sync=True)
    _view_name = traitlets.Unicode('TensorViewView').tag(sync=True)
    _view_module = traitlets.Unicode(MODULE_NAME).tag(sync=True)
    _view_module_version = traitlets.Unicode(MODULE_VERSION).tag(sync=True)

    frame = traitlets.Int(0, help='the frame shown (the time cursor; link it to synchronise views)').tag(
        sync=True, echo_update=False)
    n_frames = traitlets.Int(0, read_only=True, help='number of frames').tag(sync=True)
    height = traitlets.Int(0, read_only=True, help='pixels along x (rows)').tag(sync=True)
    width = traitlets.Int(0, read_only=True, help='pixels along y (columns)').tag(sync=True)
    n_batch = traitlets.Int(1, read_only=True, help='batch size of the data').tag(sync=True)
    n_channel = traitlets.Int(1, read_only=True, help='channels of the data').tag(sync=True)
    batch = traitlets.Int(0, help='the batch index shown').tag(sync=True)
    channel = traitlets.Int(0, help='the channel shown').tag(sync=True)
    playing = traitlets.Bool(False, help='whether the browser plays the frames').tag(sync=True)
    fps = traitlets.Float(25.0, help='playback speed in frames per second').tag(sync=True)
    loop = traitlets.Bool(True, help='start again after the last frame').tag(sync=True)
    colormap = traitlets.Unicode('gray', help='colour map: one of %s' % (COLORMAPS,)).tag(sync=True)
    zoom = traitlets.Float(0.0, help='screen pixels per data pixel (0: automatic, about 256 px wide)').tag(
        sync=True)
    vmin = traitlets.Float(0.0, help='value shown with the first colour').tag(sync=True)
    vmax = traitlets.Float(1.0, help='value shown with the last colour').tag(sync=True)
    unit = traitlets.Unicode('', help='unit of the values').tag(sync=True)
    title = traitlets.Unicode('', help='title above the player').tag(sync=True)
    dt = traitlets.Float(0.001, help='seconds of model time per frame').tag(sync=True)
    selected_pixel = traitlets.List(traitlets.Int(), default_value=[], help='[x, y] of the clicked pixel').tag(
        sync=True)
    data_version = traitlets.Int(0, read_only=True, help='increases whenever the frame data changes').tag(
        sync=True)
    clipped = traitlets.Float(0.0, read_only=True, help='fraction of the values outside [vmin, vmax] (shown with '
                              'the end colours; the colour bar flags it)').tag(sync=True)
    compact = traitlets.Bool(False, help='a smaller player: its options (fps, loop, colour map, zoom) behind a '
                             'button').tag(sync=True)

    def __init__(self, data=None, output=0, vmin=None, vmax=None, symmetric=False, colormap='gray', fps=25.0,
                 dt=None, max_frames=None, title='', unit='', encoding='auto', **kwargs):
        super().__init__(colormap=colormap, fps=fps, title=title, unit=unit,
                         dt=convis.default_resolution.dt if dt is None else dt, **kwargs)
        self._lock = threading.RLock()
        self._store = None
        self._generation = 0
        self._ready = False
        self._symmetric = symmetric
        self._fixed_scale = vmin is not None and vmax is not None
        self._scale_set = False
        self._updating_scale = False
        self.max_frames = max_frames
        self.encoding = encoding
        self.batch_frames = None
        self._sender = BatchSender(self._send_range, name='convis-tensorview')
        self.bytes_sent = 0
        self.messages_sent = 0
        if vmin is not None or vmax is not None:
            lo = vmin if vmin is not None else (-abs(vmax) if symmetric else 0.0)
            hi = vmax if vmax is not None else 1.0
            self._set_scale(lo, hi)
        self.on_msg(self._handle_frontend_msg)
        if data is not None:
            self.set_data(_as_5d_array(data, output))

    # ----------------------------------------------------------------- validation
    @traitlets.validate('colormap')
    def _valid_colormap(self, proposal):
        if proposal['value'] not in COLORMAPS:
            raise traitlets.TraitError('colormap must be one of %s, not %r' % (COLORMAPS, proposal['value']))
        return proposal['value']

    @traitlets.validate('fps')
    def _valid_fps(self, proposal):
        if not 0 < proposal['value'] <= 1000:
            raise traitlets.TraitError('fps must be in (0, 1000], not %r' % proposal['value'])
        return proposal['value']

    @traitlets.validate('batch', 'channel')
    def _valid_selection(self, proposal):
        name = proposal['trait'].name
        n = self.n_batch if name == 'batch' else self.n_channel
        if not 0 <= proposal['value'] < max(n, 1):
            raise traitlets.TraitError('%s must be in [0, %d), not %r' % (name, n, proposal['value']))
        return proposal['value']

    @traitlets.validate('frame')
    def _valid_frame(self, proposal):
        return int(min(max(proposal['value'], 0), max(self.n_frames - 1, 0)))

    # ----------------------------------------------------------------- colour scale
    def _set_scale(self, lo, hi):
        if not hi > lo:
            raise ValueError('vmax (%r) must be larger than vmin (%r)' % (hi, lo))
        self._updating_scale = True
        try:
            with self.hold_trait_notifications():
                self.vmin, self.vmax = float(lo), float(hi)
        finally:
            self._updating_scale = False
        self._scale_set = True

    @traitlets.observe('vmin', 'vmax')
    def _scale_changed(self, change):
        if self._updating_scale:
            return
        self._fixed_scale = True
        self._scale_set = True
        if self.vmax > self.vmin:
            self._requantise()

    def rescale(self, vmin=None, vmax=None, symmetric=None, percentile=None):
        """Sets a new colour scale (by default the range of the current data) and re-sends the frames."""
        with self._lock:
            if symmetric is not None:
                self._symmetric = symmetric
            if vmin is None or vmax is None:
                if self._store is None or self._store.count == 0:
                    raise ValueError('no data to take the colour range from: give vmin and vmax')
                lo, hi = color_range(self._store.values[:, :, :self._store.count], self._symmetric, percentile)
                vmin = lo if vmin is None else vmin
                vmax = hi if vmax is None else vmax
            self._set_scale(vmin, vmax)
            self._fixed_scale = True
            self._requantise()

    def _requantise(self):
        with self._lock:
            s = self._store
            if s is None or s.count == 0:
                return
            s.set_frames(0, s.values[:, :, :s.count].copy(), self.vmin, self.vmax)
            self._update_clipped()
            self._new_generation()
            self._queue_all()

    def _ensure_scale(self, values):
        if not self._scale_set:
            self._set_scale(*color_range(values, self._symmetric))

    # ----------------------------------------------------------------- data
    def set_data(self, data, output=0):
        """Replaces all frames (tensor, array or Output entry; 1-d to 5-d); the colour scale is kept once set."""
        a = _as_5d_array(data, output)
        with self._lock:
            self.begin_update(a.shape[2], shape=a.shape)
            self.write(0, a)

    def begin_update(self, n_frames, shape=None):
        """Starts new content of ``n_frames`` frames (a new generation: older batches not yet sent are dropped).

        ``shape`` (any 5-d shape, its time length ignored) changes the frame size or batch/channel count.
        The browser keeps showing the old frames until :meth:`write` replaces them.  Returns the generation.
        """
        with self._lock:
            if shape is not None or self._store is None:
                if shape is None:
                    raise ValueError('the first update needs the shape of the data')
                b, c, _, x, y = (int(v) for v in shape)
                if self._store is None or self._store.shape != (b, c, x, y):
                    self._store = _Store((b, c, 0, x, y))
                    self._set_shape(b, c, x, y)
            self._store.reserve(n_frames)
            self._store.count = int(n_frames)
            self._store.levels[:, :, :n_frames] = 0
            self._store.values[:, :, :n_frames] = 0
            self._store.clipped[:n_frames] = 0
            self.set_trait('n_frames', int(n_frames))
            self._new_generation()
            self._sender.replace([])
            return self._generation

    def write(self, start, data, output=0):
        """Writes frames ``[start, start + t)`` of the current content (from :meth:`begin_update`) and sends them.

        ``data`` has the shape ``[b, c, t, x, y]`` of the content (fewer dimensions as in make_tensor_5d).
        """
        a = _as_5d_array(data, output)
        with self._lock:
            s = self._store
            if s is None:
                raise ValueError('call begin_update (or set_data) before write')
            self._check_shape(a)
            start = int(start)
            stop = start + a.shape[2]
            if start < 0 or stop > s.count:
                raise ValueError('frames [%d, %d) are outside the content of %d frames' % (start, stop, s.count))
            self._ensure_scale(a)
            s.set_frames(start, a, self.vmin, self.vmax)
            self._update_clipped()
            self._bump_version()
            self._queue(start, stop, cursor_first=start <= self.frame < stop)

    def put(self, frames, output=0):
        """Appends frames (a stream's ``put``: a Runner can write its output into the view).

        ``frames`` is ``[b, c, t, x, y]`` (or ``(t, x, y)``, ...) with the batch, channel and frame size of
        the view; the first ``put`` into an empty view sets them (and the colour scale, unless given).
        ``Runner(model, input, output=view)`` fills the view live; ``runner.stop()`` keeps it open, while
        ``runner.close()`` closes its outputs, this view included.
        """
        a = _as_5d_array(frames, output)
        with self._lock:
            if self._store is None:
                self._store = _Store(a.shape)
                self._set_shape(a.shape[0], a.shape[1], a.shape[3], a.shape[4])
            self._check_shape(a)
            self._ensure_scale(a)
            s = self._store
            start = s.count
            s.reserve(start + a.shape[2])
            s.count = start + a.shape[2]
            s.set_frames(start, a, self.vmin, self.vmax)
            dropped = 0
            if self.max_frames is not None and s.count > self.max_frames:
                dropped = s.count - int(self.max_frames)
                s.drop(dropped)
                self._new_generation()
                self._sender.replace([])
                self._send_control({'type': 'drop', 'count': dropped})
            self.set_trait('n_frames', s.count)
            self._update_clipped()
            self._bump_version()
            if dropped:
                self._queue_all()
            else:
                self._queue(start, s.count, cursor_first=False)

    def _update_clipped(self):
        self.set_trait('clipped', self._store.clipped_fraction())

    @property
    def speed(self):
        """Playback speed relative to real time: ``fps * dt`` (25 frames/s of 10 ms frames play at 1/4)."""
        return self.fps * self.dt

    def frames(self, batch=None, channel=None):
        """The quantised uint8 frames ``(t, x, y)`` of one batch and channel (the shown ones by default)."""
        with self._lock:
            if self._store is None:
                return np.zeros((0, self.height, self.width), np.uint8)
            b = self.batch if batch is None else batch
            c = self.channel if channel is None else channel
            return self._store.levels[b, c, :self._store.count].copy()

    def values(self):
        """The float32 values ``[b, c, t, x, y]`` of the current content (before quantisation)."""
        with self._lock:
            if self._store is None:
                return np.zeros((1, 1, 0, self.height, self.width), np.float32)
            return self._store.values[:, :, :self._store.count].copy()

    def frame_checksum(self, i=None):
        """Adler-32 of frame ``i`` (the current frame by default), as the browser shows in data-frame-checksum."""
        frames = self.frames()
        return frame_checksum(frames[self.frame if i is None else i])

    def _check_shape(self, a):
        b, c, x, y = self._store.shape
        if (a.shape[0], a.shape[1], a.shape[3], a.shape[4]) != (b, c, x, y):
            raise ValueError('frames of shape %s do not fit a view of [%d, %d, t, %d, %d]' % (a.shape, b, c, x, y))

    def _set_shape(self, b, c, x, y):
        with self.hold_trait_notifications():
            self.set_trait('n_batch', int(b))
            self.set_trait('n_channel', int(c))
            self.set_trait('height', int(x))
            self.set_trait('width', int(y))
            if self.batch >= b:
                self.batch = 0
            if self.channel >= c:
                self.channel = 0
        self.batch_frames = int(np.clip(128 * 1024 // max(1, x * y), 1, 64))

    def _new_generation(self):
        self._generation += 1
        self._bump_version()

    def _bump_version(self):
        self.set_trait('data_version', self.data_version + 1)

    # ----------------------------------------------------------------- sending
    def _ranges(self, start, stop):
        step = self.batch_frames or 16
        return [(s, min(s + step, stop)) for s in range(start, stop, step)]

    def _queue(self, start, stop, cursor_first):
        ranges = self._ranges(start, stop)
        urgent = 0
        if cursor_first and ranges:
            first = next((i for i, (s, e) in enumerate(ranges) if s <= self.frame < e), 0)
            ranges = ranges[first:] + ranges[:first]
            urgent = 1      # the batch on screen goes out at once, even while the byte budget is in debt
        if self._ready:
            self._sender.extend([(self._generation,) + r for r in ranges], urgent=urgent)

    def _queue_all(self):
        self._sender.replace([])
        if self._store is not None and self._store.count:
            self._queue(0, self._store.count, cursor_first=True)

    def _send_control(self, content):
        if self._ready:
            content = dict(content, generation=self._generation, version=self.data_version,
                           n_frames=self._store.count if self._store is not None else 0)
            self.send(content)

    def _send_range(self, item):
        generation, start, stop = item
        with self._lock:
            s = self._store
            if generation != self._generation or s is None or stop > s.count:
                return 0
            levels = s.levels[self.batch, self.channel, start:stop]
            header, buf = encode_batch(levels, start, self.encoding)
            header.update(generation=generation, version=self.data_version, n_frames=s.count)
        self.send(header, buffers=[buf])
        self.bytes_sent += len(buf)
        self.messages_sent += 1
        return len(buf) + 200

    def _handle_frontend_msg(self, _widget, content, buffers):
        if content.get('type') == 'export':
            self._send_export()
        elif content.get('type') == 'request':
            with self._lock:
                self._ready = True
                self._send_control({'type': 'clear'})
                self._queue_all()

    @traitlets.observe('batch', 'channel')
    def _selection_changed(self, change):
        with self._lock:
            self._new_generation()
            self._queue_all()

    # ----------------------------------------------------------------- kernel-free exports (embed.py)
    def _repr_mimebundle_(self, **kwargs):
        """The widget, and beside it a still (:func:`~.embed.poster_html`) for pages that cannot draw widgets.

        JupyterLab and Voila draw the widget; ``nbconvert --to html`` of a notebook saved without widget state
        shows the still where the view was (without it: nothing but a ``text/plain`` repr).
        """
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None and self.n_frames > 0:
            data['text/html'] = poster_html(panels_of(self)[0])
        return data

    def to_html(self, **kwargs):
        """A self-contained HTML player of the shown batch and channel (a str; see :func:`~.embed.animation_html`).

        It needs no kernel and no widget JavaScript: it plays in ``nbconvert --to html`` pages, Voila and
        plain files; where scripts are stripped (GitHub) its poster frame remains.
        """
        return animation_html(panels_of(self), **kwargs)

    def _send_export(self):
        """Answers the Export button: :meth:`to_html` as an HTML page in one buffer, which the browser downloads."""
        try:
            text = html_page(self.to_html(), self.title).encode('utf-8')
        except ValueError as e:
            logger.warning('TensorView export failed: %s', e)
            return
        name = re.sub(r'[^A-Za-z0-9_.-]+', '_', self.title).strip('_') or 'tensorview'
        self.send({'type': 'export', 'filename': name + '.html', 'size': len(text)}, buffers=[text])

    def embed(self, **kwargs):
        """Shows :meth:`to_html` as a cell output of its own, which survives export (the live view does not).

        Keyword arguments: ``poster`` (frame index), ``max_size`` (pixels), ``max_frames``, ``zoom``, ``fps``.
        """
        embed(panels_of(self), **kwargs)

    def save(self, path, fps=None, scale=None):
        """Writes the shown batch and channel as ``.mp4`` or ``.gif`` with the view's colours; returns the path.

        ``fps`` in frames per second (default: the view's ``fps``); ``scale``: movie pixels per data pixel.
        Raises ``OSError`` (unwritable path) or ``RuntimeError`` (encoder failure) naming the path.
        """
        return save_movie(panels_of(self)[0], path, fps, scale)

    def wait_sent(self, timeout=10.0):
        """Blocks until every queued batch was sent (for scripts and tests); True when done."""
        return self._sender.wait_idle(timeout)

    def close(self):
        """Stops sending and closes the widget (no thread is left behind)."""
        self._sender.close()
        super().close()


def sync_views(*views):
    """Gives several TensorViews one time cursor (a browser-side link of their ``frame``); returns the links.

    Playing or scrubbing one view moves the others; each keeps its own data and colours.

    >>> links = sync_views(view_input, view_on, view_off)
    """
    if len(views) < 2:
        raise ValueError('sync_views needs at least two views')
    for v in views:
        if not isinstance(v, TensorView):
            raise TypeError('sync_views takes TensorViews, not %r' % (v,))
    return [jslink((a, 'frame'), (b, 'frame')) for a, b in zip(views[:-1], views[1:])]
