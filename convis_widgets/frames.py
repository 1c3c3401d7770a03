"""Frames as the browser receives them: quantised to uint8, batched, compressed.

A frame of a ``[batch, channel, time, x, y]`` tensor is one ``(x, y)`` image.
:func:`quantise` maps values to 256 levels with a fixed colour scale,

.. math:: q = \\mathrm{round}(255\\,\\mathrm{clip}((v - v_{min}) / (v_{max} - v_{min}), 0, 1))

so that the same value always has the same colour, from frame to frame and from run to run.
:func:`encode_batch` packs consecutive frames into one binary buffer (``'zlib-delta'``: the
first frame, then the differences of consecutive frames modulo 256, zlib-compressed; smooth
videos compress up to twice as well this way, noise better without); :func:`decode_batch` is the exact inverse (the
browser does the same in ``labextension/src/codec.ts``).  :func:`frame_checksum` is the
Adler-32 checksum the browser shows as ``data-frame-checksum``.

>>> q = quantise(np.linspace(0, 1, 8).reshape(2, 2, 2), 0.0, 1.0)
>>> header, buf = encode_batch(q, start=0)
>>> np.array_equal(decode_batch(header, buf), q)
True
"""
import zlib

import numpy as np
import torch

__all__ = ['quantise', 'dequantise', 'color_range', 'encode_batch', 'decode_batch', 'frame_checksum',
           'ENCODINGS']

ENCODINGS = ('zlib-delta', 'zlib', 'raw')
AUTO_SAMPLE = 8
"""Frames on which ``encoding='auto'`` compares the encodings of a longer batch."""


def _as_float_array(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().to('cpu', torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def quantise(values, vmin, vmax):
    """Maps ``values`` (array or tensor) to uint8 levels 0..255 between ``vmin`` and ``vmax`` (clipped).

    NaN becomes 0.  ``vmax`` must be larger than ``vmin``.
    """
    if not vmax > vmin:
        raise ValueError('vmax (%r) must be larger than vmin (%r)' % (vmax, vmin))
    a = _as_float_array(values)
    scaled = (a - np.float32(vmin)) * np.float32(255.0 / (vmax - vmin))
    np.clip(scaled, 0, 255, out=scaled)
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.rint(scaled).astype(np.uint8)


def dequantise(levels, vmin, vmax):
    """The value at the centre of each uint8 level (the inverse of :func:`quantise` to within half a level)."""
    return vmin + np.asarray(levels, dtype=np.float64) * ((vmax - vmin) / 255.0)


def color_range(values, symmetric=False, percentile=None):
    """A colour scale ``(vmin, vmax)`` for ``values``: their range (or percentiles), never empty.

    ``symmetric=True`` centres the scale on 0 (for signed responses); ``percentile=p`` uses the
    ``p``-th and ``100 - p``-th percentiles instead of the extremes.  Constant values get a
    scale of width 1 around them.
    """
    a = _as_float_array(values)
    a = a[np.isfinite(a)]
    if a.size == 0:
        lo, hi = 0.0, 1.0
    elif percentile:
        lo, hi = (float(v) for v in np.percentile(a, [percentile, 100 - percentile]))
    else:
        lo, hi = float(a.min()), float(a.max())
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if not hi - lo > 1e-12 * max(1.0, abs(hi), abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def encode_batch(frames, start, encoding='zlib-delta', level=1):
    """Packs uint8 frames ``(count, height, width)`` into a message header and one binary buffer.

    ``start`` is the index of the first frame.  ``encoding='auto'`` tries ``'zlib-delta'`` and
    ``'zlib'`` and keeps the smaller (differences win on smooth videos, plain zlib on noise and
    sparse spikes); on batches of more than ``2 * AUTO_SAMPLE`` frames it compares them on the first
    ``AUTO_SAMPLE`` frames only.  ``level`` is the zlib compression level
    (1 is fast and already removes most of the redundancy of delta-coded frames).
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 3:
        raise ValueError('frames must be (count, height, width), not %s' % (frames.shape,))
    if encoding not in ENCODINGS + ('auto',):
        raise ValueError('encoding must be one of %s or auto, not %r' % (ENCODINGS, encoding))
    if encoding == 'auto':
        if len(frames) > 2 * AUTO_SAMPLE:
            # judged on the first frames: the content of one batch (a model's output) rarely changes in kind
            sample = [encode_batch(frames[:AUTO_SAMPLE], start, e, level) for e in ('zlib-delta', 'zlib')]
            return encode_batch(frames, start, min(sample, key=lambda c: len(c[1]))[0]['encoding'], level)
        candidates = [encode_batch(frames, start, e, level) for e in ('zlib-delta', 'zlib')]
        return min(candidates, key=lambda c: len(c[1]))
    count, height, width = frames.shape
    if encoding == 'zlib-delta':
        delta = frames.copy()
        np.subtract(frames[1:], frames[:-1], out=delta[1:])
        buf = zlib.compress(delta.tobytes(), level)
    elif encoding == 'zlib':
        buf = zlib.compress(frames.tobytes(), level)
    else:
        buf = frames.tobytes()
    header = {'type': 'frames', 'start': int(start), 'count': int(count), 'height': int(height),
              'width': int(width), 'encoding': encoding}
    return header, buf


def decode_batch(header, buffer):
    """The uint8 frames ``(count, height, width)`` of a header and buffer made by :func:`encode_batch`."""
    data = bytes(buffer)
    if header['encoding'] in ('zlib', 'zlib-delta'):
        data = zlib.decompress(data)
    frames = np.frombuffer(data, dtype=np.uint8).reshape(header['count'], header['height'], header['width'])
    if header['encoding'] == 'zlib-delta':
        frames = np.cumsum(frames, axis=0, dtype=np.uint8)
    return frames.copy()


def frame_checksum(frame):
    """Adler-32 of one uint8 frame (row-major), as the browser shows it in ``data-frame-checksum``."""
    return zlib.adler32(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
