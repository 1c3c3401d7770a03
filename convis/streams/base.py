"""The stream protocol and the streams that live in memory.

A stream hands out frames in order: ``get(n)`` returns the next ``n`` frames as a
numpy array ``(n, x, y)`` (colour streams: ``(channel, n, x, y)``, the layout
:func:`convis.utils.make_tensor_5d` reads as channels) and advances.  A finite
stream returns fewer frames at its end and then empty arrays (0 frames); an
infinite one never ends.  Sinks accept frames with ``put(frames)``.
:meth:`convis.Layer.run` and :class:`convis.Runner` use only this protocol.

>>> s = SequenceStream(np.ones((3, 5, 2)))
>>> s.get(2).shape, s.get(2).shape, s.get(2).shape
((2, 5, 2), (1, 5, 2), (0, 5, 2))
"""
import io
import logging
import threading

import numpy as np

__all__ = ['Stream', 'RandomStream', 'SequenceStream', 'RepeatingStream', 'ProcessingStream']

logger = logging.getLogger('convis.streams')

ENDS = ('stop', 'repeat')


def check_count(n, name='n'):
    """A whole, non-negative number of frames (numpy integers and whole floats accepted)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer, float, np.floating)):
        raise TypeError('%s must be a number of frames, not %r' % (name, n))
    if isinstance(n, (float, np.floating)) and not float(n).is_integer():
        raise ValueError('%s must be a whole number of frames, not %r' % (name, n))
    if n < 0:
        raise ValueError('%s must not be negative, not %r' % (name, n))
    return int(n)


def as_float_frames(a):
    """``a`` as a float array (integers become float32; float32/float64 are kept)."""
    a = np.asarray(a)
    if a.dtype.kind in 'biu':
        return a.astype(np.float32)
    if a.dtype.kind != 'f':
        raise TypeError('frames must be numbers, not dtype %s' % a.dtype)
    return a


def frames_time_first(frames, channels=None):
    """Public frames (``(t, x, y)``, colour ``(c, t, x, y)``, or one ``(x, y)`` frame) as time-first.

    Tensors are copied to numpy; a 5-d ``[1, c, t, x, y]`` array loses its batch axis.
    """
    if hasattr(frames, 'detach'):
        frames = frames.detach().cpu().numpy()
    a = as_float_frames(frames)
    if a.ndim == 5:
        if a.shape[0] != 1:
            raise ValueError('a stream takes one batch of frames, not a batch of %d' % a.shape[0])
        a = a[0]
        if a.shape[0] == 1 and not channels:
            a = a[0]
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        return a
    if a.ndim == 4:
        return np.moveaxis(a, 0, 1)
    raise ValueError('frames must be (x, y), (t, x, y), (channel, t, x, y) or [1, channel, t, x, y] '
                     'arrays, not shape %s' % (a.shape,))


def frames_public(a):
    """Time-first frames back in the public layout (``(t, x, y)`` or ``(c, t, x, y)``)."""
    return a if a.ndim == 3 else np.moveaxis(a, 1, 0)


class ClosedOnExit(object):
    """``with obj: ...`` closes ``obj`` (its ``close()``) at the end of the block, also after an error."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Stream(ClosedOnExit):
    """A source or sink of frames: the protocol every convis stream follows.

    ``get(n)`` returns the next ``n`` frames as a float array ``(n, x, y)`` (``(c, n, x, y)`` for colour
    streams) and advances; a finite stream returns fewer frames at its end, then 0 frames.  ``put(frames)``
    appends frames to a sink.  ``len(stream)`` is the number of frames of a finite stream (infinite streams
    raise ``TypeError``, so give ``max_t`` to ``Layer.run``).  ``available(n)`` says whether ``n`` frames can
    be read now; ``get_image()`` is the last frame read or written; iterating yields single frames.  Streams
    are context managers (``close()`` on exit) and are safe to share between two threads (a lock guards
    every call).

    Parameters
    ----------
    size : (int, int) or None
        frame shape ``(x, y)`` in pixels (``None``: taken from the data)
    pixel_per_degree : float
        spatial resolution of the frames in pixels per degree (metadata for models)
    end : 'stop' or 'repeat'
        what a finite stream does at its end: stop (return 0 frames) or start again from its first
        frame (the stream becomes infinite)

    Subclasses implement ``_read(n)`` (time-first frames, at most ``n``; 0 at the end), ``_length()``
    (frames in the source, ``None`` if infinite), ``_seek(i)`` (to rewind), ``_write(frames)`` (sinks) and
    ``_close()``/``_flush()``.
    """
    channels = None

    def __init__(self, size=None, pixel_per_degree=10, end='stop'):
        if end not in ENDS:
            raise ValueError('end must be one of %s, not %r' % (ENDS, end))
        self.size = None if size is None else tuple(int(s) for s in size)
        self.pixel_per_degree = pixel_per_degree
        self.end = end
        self.t = 0
        self.frames_written = 0
        self.closed = False
        self._pos = 0
        self._last = None
        self._lock = threading.RLock()

    # -------------------------------------------------------------- what subclasses provide
    def _read(self, n):
        raise io.UnsupportedOperation('%s cannot be read from' % type(self).__name__)

    def _length(self):
        return None

    def _seek(self, i):
        raise io.UnsupportedOperation('%s cannot seek' % type(self).__name__)

    def _seek_position(self, i):
        """A ``_seek`` for sources that read at ``self._pos``: only checks that frame ``i`` exists."""
        n = self._length()
        if n is not None and i > n:
            raise ValueError('cannot seek to frame %d of %d' % (i, n))

    def _write(self, frames):
        raise io.UnsupportedOperation('%s does not accept frames (put)' % type(self).__name__)

    def _flush(self):
        pass

    def _close(self):
        pass

    # -------------------------------------------------------------- the protocol
    def _check_open(self):
        if self.closed:
            raise ValueError('%s is closed' % self._name())

    def _name(self):
        return type(self).__name__

    def _empty(self):
        shape = self.size if self.size is not None else (0, 0)
        if self.channels:
            return np.zeros((self.channels, 0) + shape, dtype=np.float32)
        return np.zeros((0,) + shape, dtype=np.float32)

    def get(self, n):
        """The next ``n`` frames, ``(n, x, y)`` (fewer at the end of a finite stream, 0 after it)."""
        n = check_count(n)
        with self._lock:
            self._check_open()
            parts, got, rewound = [], 0, False
            while got < n:
                a = self._read(n - got)
                k = 0 if a is None else a.shape[0]
                if k == 0:
                    if self.end == 'repeat' and not rewound:
                        self._seek(0)
                        self._pos = 0
                        rewound = True
                        continue
                    break
                rewound = False
                parts.append(a)
                got += k
                self._pos += k
            self.t += got
            if not parts:
                return self._empty()
            out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            self._last = out[-1].copy()
            return frames_public(out)

    def put(self, frames):
        """Appends frames (``(t, x, y)``, one ``(x, y)`` frame, ``(c, t, x, y)``, a tensor or ``[1, c, t, x, y]``)."""
        with self._lock:
            self._check_open()
            a = frames_time_first(frames, self.channels)
            if a.shape[0] == 0:
                return
            self._write(a)
            self.frames_written += a.shape[0]
            self._last = a[-1].copy()

    def __len__(self):
        length = None if self.end == 'repeat' else self._length()
        if length is None:
            raise TypeError('%s is infinite: it has no length (give max_t to run it)' % self._name())
        return length

    def __bool__(self):
        return True

    @property
    def remaining(self):
        """Frames left to read (``None`` for an infinite stream)."""
        length = None if self.end == 'repeat' else self._length()
        return None if length is None else max(length - self._pos, 0)

    def available(self, n=1):
        """Whether ``n`` frames can be read now."""
        if self.closed:
            return False
        r = self.remaining
        if r is None:
            return self.end != 'repeat' or bool(self._length())
        return r >= n

    def tell(self):
        """The position (frames read since the start of the source or the last seek)."""
        return self._pos

    def seek(self, i):
        """Moves to frame ``i`` of the source (where the stream supports it)."""
        i = check_count(i, 'i')
        with self._lock:
            self._check_open()
            self._seek(i)
            self._pos = i

    def rewind(self):
        """Goes back to the first frame."""
        self.seek(0)

    def get_image(self):
        """The last frame read or written, ``(x, y)`` (``(c, x, y)`` for colour); zeros before any."""
        if self._last is not None:
            return np.array(self._last)
        if self.size is None:
            return None
        return np.zeros(((self.channels,) if self.channels else ()) + self.size, dtype=np.float32)

    def __iter__(self):
        while True:
            f = self.get(1)
            if f.shape[-3] == 0:
                return
            yield f[0] if f.ndim == 3 else f[:, 0]

    def flush(self):
        """Makes what was written so far complete on disk (for file sinks)."""
        with self._lock:
            if not self.closed:
                self._flush()

    def close(self):
        """Finishes the stream (file sinks complete their files); further get/put raise ``ValueError``."""
        with self._lock:
            if not self.closed:
                try:
                    self._close()
                finally:
                    self.closed = True

    def __repr__(self):
        try:
            length = '%d frames' % len(self)
        except TypeError:
            length = 'infinite'
        return '<%s %s, size %s, at frame %d%s>' % (self._name(), length, self.size, self._pos,
                                                     ', closed' if self.closed else '')


class RandomStream(Stream):
    """An endless stream of uniform noise frames: ``mean + level * U(0, 1)`` per pixel and frame.

    Parameters
    ----------
    size : (int, int)
        frame shape in pixels
    pixel_per_degree : float
        resolution metadata (pixels per degree)
    level : float
        range of the noise (input units, e.g. luminance)
    mean : float
        offset added to the noise (input units)
    seed : int or None
        seed of the generator (``None``: a fresh random seed)

    >>> RandomStream(size=(10, 10), level=100.2, mean=128.0, seed=1).get(5).shape
    (5, 10, 10)
    """

    def __init__(self, size=(50, 50), pixel_per_degree=10, level=1.0, mean=0.0, seed=None, dtype=np.float32):
        super().__init__(size=size, pixel_per_degree=pixel_per_degree)
        self.level = float(level)
        self.mean = float(mean)
        self.dtype = np.dtype(dtype)
        self._rng = np.random.default_rng(seed)

    def _read(self, n):
        a = self._rng.random((n,) + self.size, dtype=self.dtype)
        a *= self.level
        a += self.mean
        return a

    def _seek(self, i):
        if i != self._pos:
            raise io.UnsupportedOperation('RandomStream cannot seek')


class SequenceStream(Stream):
    """Frames held in memory: reads them in order and appends what is put, keeping at most ``max_frames``.

    A growing buffer: a model's output is ``put`` here (the oldest frames are dropped beyond
    ``max_frames``) and read back with ``.sequence`` (a copy of the frames held) or ``get``.
    Frames put must have the shape of the frames held.

    Parameters
    ----------
    sequence : array ``(t, x, y)`` or ``(c, t, x, y)``, optional
        the initial frames (``np.ones((0, 10, 10))`` makes an empty buffer of 10x10 frames)
    size : (int, int), optional
        frame shape when ``sequence`` is not given (otherwise it is taken from the first put)
    max_frames : int or None
        frames kept at most (``None``: unlimited)

    >>> out = SequenceStream(np.ones((0, 10, 10)), max_frames=10000)
    >>> out.put(np.zeros((100, 10, 10)))
    >>> out.sequence.shape
    (100, 10, 10)
    """

    def __init__(self, sequence=None, size=None, pixel_per_degree=10, max_frames=5000, end='stop'):
        super().__init__(size=size, pixel_per_degree=pixel_per_degree, end=end)
        self.max_frames = None if max_frames is None else check_count(max_frames, 'max_frames')
        if self.max_frames == 0:
            raise ValueError('max_frames must be at least 1 (or None for no limit)')
        self._buf = None
        self._start = self._end = self._cursor = 0
        if sequence is not None:
            self._set_sequence(sequence)

    def _set_sequence(self, sequence):
        a = frames_time_first(sequence)
        if self.max_frames is not None and a.shape[0] > self.max_frames:
            a = a[-self.max_frames:]
        self.channels = a.shape[1] if a.ndim == 4 else None
        self.size = tuple(a.shape[-2:])
        self._buf = np.array(a, copy=True)
        self._start, self._end, self._cursor, self._pos = 0, a.shape[0], 0, 0

    @property
    def sequence(self):
        """A copy of the frames held, ``(t, x, y)`` (``(c, t, x, y)`` for colour)."""
        with self._lock:
            if self._buf is None:
                return self._empty()
            return frames_public(self._buf[self._start:self._end].copy())

    @sequence.setter
    def sequence(self, value):
        with self._lock:
            self._set_sequence(value)

    @property
    def frame_shape(self):
        return None if self._buf is None else self._buf.shape[1:]

    def _read(self, n):
        if self._buf is None:
            return None
        k = min(n, self._end - self._cursor)
        a = self._buf[self._cursor:self._cursor + k].copy()
        self._cursor += k
        return a

    def _length(self):
        return self._end - self._start

    @property
    def remaining(self):
        if self.end == 'repeat':
            return None
        return self._end - self._cursor

    def available(self, n=1):
        if self.closed:
            return False
        if self.end == 'repeat':
            return self._end > self._start
        return self._end - self._cursor >= n

    def tell(self):
        return self._cursor - self._start

    def _seek(self, i):
        if i > self._end - self._start:
            raise ValueError('cannot seek to frame %d: the stream holds %d frames' % (i, self._end - self._start))
        self._cursor = self._start + i

    def _write(self, a):
        if self._buf is None:
            self._buf = np.zeros((0,) + a.shape[1:], dtype=a.dtype)
            self.channels = a.shape[1] if a.ndim == 4 else None
            self.size = tuple(a.shape[-2:])
        if a.shape[1:] != self._buf.shape[1:]:
            raise ValueError('%s holds frames of shape %s; cannot put frames of shape %s'
                             % (self._name(), self._buf.shape[1:], a.shape[1:]))
        n = a.shape[0]
        keep = self.max_frames
        if keep is not None and n > keep:
            a, n = a[-keep:], keep
        if keep is not None and self._end - self._start + n > keep:
            self._start = self._end + n - keep
            if self._cursor < self._start:
                logger.debug('%s dropped %d unread frames', self._name(), self._start - self._cursor)
                self._cursor = self._start
        if self._end + n > self._buf.shape[0]:
            held = self._buf[self._start:self._end]
            cap = max(self._buf.shape[0], 16)
            while cap < held.shape[0] + n:
                cap *= 2
            if keep is not None:
                cap = min(cap, 2 * keep)
            if cap == self._buf.shape[0]:
                self._buf[:held.shape[0]] = held
            else:
                new = np.empty((cap,) + self._buf.shape[1:], dtype=self._buf.dtype)
                new[:held.shape[0]] = held
                self._buf = new
            self._cursor -= self._start
            self._end -= self._start
            self._start = 0
        self._buf[self._end:self._end + n] = a
        self._end += n


class RepeatingStream(SequenceStream):
    """Frames in memory played in a loop forever (an infinite stream); ``put`` appends to the loop.

    >>> s = RepeatingStream(np.arange(3.)[:, None, None] * np.ones((3, 2, 2)))
    >>> s.get(7)[:, 0, 0]
    array([0., 1., 2., 0., 1., 2., 0.])
    """

    def __init__(self, sequence=None, size=None, pixel_per_degree=10):
        super().__init__(sequence, size=size, pixel_per_degree=pixel_per_degree, max_frames=None, end='repeat')


class ProcessingStream(Stream):
    """Frames of ``input_stream`` passed through ``model`` (a convis Layer or any callable) as they are read.

    ``get(n) = post(model(pre(input_stream.get(n))))``.  A Layer keeps its state from call to call, so
    the frames equal ``model.run`` over the whole input.  Model outputs are returned as numpy ``(t, x, y)``
    (the first output, batch 0; ``(c, t, x, y)`` for several channels).

    >>> import convis
    >>> s = ProcessingStream(RandomStream((10, 10)), lambda x: 2 * x)
    """

    def __init__(self, input_stream, model, pre=None, post=None):
        if isinstance(input_stream, np.ndarray) or not callable(getattr(input_stream, 'get', None)):
            raise TypeError('input_stream must be a stream (with get(n)), not %s' % type(input_stream).__name__)
        super().__init__(size=getattr(input_stream, 'size', None),
                         pixel_per_degree=getattr(input_stream, 'pixel_per_degree', 10))
        self.input_stream, self.model, self.pre, self.post = input_stream, model, pre, post

    def _read(self, n):
        import torch
        frames = self.input_stream.get(n)
        if np.shape(frames)[-3] == 0:
            return None
        x = self.pre(frames) if self.pre is not None else frames
        with torch.no_grad():
            y = self.model(x)
        if hasattr(self.model, 'detach_state'):
            self.model.detach_state()
        y = model_output_frames(y)
        if self.post is not None:
            y = self.post(y)
        a = frames_time_first(y)
        self.size = tuple(a.shape[-2:])
        self.channels = a.shape[1] if a.ndim == 4 else None
        return a

    def _length(self):
        try:
            return len(self.input_stream)
        except TypeError:
            return None

    def _close(self):
        close = getattr(self.input_stream, 'close', None)
        if close is not None:
            close()


def model_output_frames(y, index=0):
    """Output ``index`` (a number or a key) of a model (an ``Output``, tuple or 5-d tensor) as numpy frames.

    Batch 0 is taken; one channel gives ``(t, x, y)``, several ``(c, t, x, y)``.  A plain tensor is
    output 0, named ``'output'``.
    """
    is_output = isinstance(y, (list, tuple)) or (hasattr(y, 'keys') and hasattr(y, '__getitem__')
                                                  and not hasattr(y, 'shape'))
    if is_output:
        y = y[index]
    elif index not in (0, 'output'):
        raise KeyError('the model has one output (0 or "output"), not %r' % (index,))
    if hasattr(y, 'detach'):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 5:
        y = y[0]
        if y.shape[0] == 1:
            y = y[0]
    return y
