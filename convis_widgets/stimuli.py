"""Stimuli for the explorer: gratings, bars, checkerboards, flashes, noise; arrays and videos.

Every generator returns a float32 video ``(t, x, y)`` of luminance in ``[mean - contrast/2,
mean + contrast/2]`` (0..1 for the defaults); times are in seconds and converted with ``dt``
(seconds per frame), sizes are in pixels.  For example the drifting grating is

.. math:: L(t, x, y) = m + \\frac{c}{2} \\sin 2\\pi\\left(\\frac{x \\cos\\theta + y \\sin\\theta}{P} - f t\\right)

with period :math:`P` (px), temporal frequency :math:`f` (Hz) and direction :math:`\\theta`.

>>> v = make_stimulus('grating', t=500, x=64, y=64, dt=0.001)
>>> v.shape
(500, 64, 64)
"""
import math
from collections import OrderedDict

import numpy as np

import convis

__all__ = ['grating', 'bar', 'checkerboard', 'flash', 'noise', 'STIMULI', 'make_stimulus', 'load_stimulus']


def _grid(t, x, y, dt):
    tt = (np.arange(t, dtype=np.float32) * dt)[:, None, None]
    xx = np.arange(x, dtype=np.float32)[None, :, None] - (x - 1) / 2.0
    yy = np.arange(y, dtype=np.float32)[None, None, :] - (y - 1) / 2.0
    return tt, xx, yy


def grating(t=500, x=64, y=64, dt=0.001, period=16.0, frequency=4.0, angle=0.0, contrast=1.0, mean=0.5):
    """A drifting sine grating: ``period`` px, ``frequency`` Hz, direction ``angle`` (degrees)."""
    tt, xx, yy = _grid(t, x, y, dt)
    a = math.radians(angle)
    phase = (xx * math.cos(a) + yy * math.sin(a)) / period - frequency * tt
    return (mean + 0.5 * contrast * np.sin(2 * np.pi * phase)).astype(np.float32)


def bar(t=500, x=64, y=64, dt=0.001, width=4.0, speed=100.0, angle=0.0, contrast=1.0, mean=0.5):
    """A bright bar of ``width`` px through the centre at t = 0, moving at ``speed`` px/s (wrapping around)."""
    tt, xx, yy = _grid(t, x, y, dt)
    a = math.radians(angle)
    span = abs(x * math.cos(a)) + abs(y * math.sin(a)) + width
    centre = (speed * tt + span / 2.0) % span - span / 2.0
    pos = (xx * math.cos(a) + yy * math.sin(a)) - centre
    inside = np.abs(pos) <= width / 2.0
    return (mean + contrast * (inside - 0.5)).astype(np.float32)


def checkerboard(t=500, x=64, y=64, dt=0.001, square=8.0, reversal=0.25, contrast=1.0, mean=0.5):
    """A checkerboard of ``square`` px that reverses its contrast every ``reversal`` seconds."""
    tt, xx, yy = _grid(t, x, y, dt)
    board = ((np.floor(xx / square) + np.floor(yy / square)) % 2) * 2 - 1
    sign = np.where((np.floor(tt / reversal) % 2) == 0, 1.0, -1.0)
    return (mean + 0.5 * contrast * board * sign).astype(np.float32)


def flash(t=500, x=64, y=64, dt=0.001, onset=0.1, duration=0.2, radius=None, contrast=1.0, mean=0.5):
    """A full-field flash (or a spot of ``radius`` px) from ``onset`` for ``duration`` seconds."""
    tt, xx, yy = _grid(t, x, y, dt)
    on = (tt >= onset) & (tt < onset + duration)
    space = np.ones((1, x, y), bool) if radius is None else (xx ** 2 + yy ** 2 <= radius ** 2)
    return (mean - 0.5 * contrast + contrast * (on & space)).astype(np.float32)


def noise(t=500, x=64, y=64, dt=0.001, contrast=1.0, mean=0.5, seed=0):
    """Binary white noise (each pixel and frame independently bright or dark)."""
    rng = np.random.default_rng(seed)
    return (mean + contrast * (rng.integers(0, 2, size=(t, x, y)) - 0.5)).astype(np.float32)


STIMULI = OrderedDict([('grating', grating), ('bar', bar), ('checkerboard', checkerboard), ('flash', flash),
                       ('noise', noise)])
"""The generated stimuli the explorer offers, by name."""


def make_stimulus(name, t=500, x=64, y=64, dt=0.001, **kwargs):
    """The stimulus ``name`` (one of :data:`STIMULI`) as a float32 video ``(t, x, y)``."""
    if name not in STIMULI:
        raise ValueError('unknown stimulus %r; choose one of %s' % (name, list(STIMULI)))
    for what, v in (('t', t), ('x', x), ('y', y)):
        if int(v) < 1:
            raise ValueError('%s must be at least 1, not %r' % (what, v))
    return STIMULI[name](t=int(t), x=int(x), y=int(y), dt=dt, **kwargs)


def load_stimulus(source, max_frames=None):
    """A stimulus from an array/tensor (1-d to 5-d), an :class:`convis.Output`, or a video or image file.

    Files are read with imageio; colour frames are averaged to luminance and scaled to 0..1.
    Returns a float32 array ``[b, c, t, x, y]``.
    """
    if isinstance(source, str):
        import imageio.v3 as iio
        frames = iio.imread(source)
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 4:
            frames = frames[..., :3].mean(axis=-1)
        elif frames.ndim == 3 and frames.shape[-1] in (3, 4):
            frames = frames[..., :3].mean(axis=-1)
        if frames.max() > 1.0:
            frames = frames / 255.0
        source = frames
    if isinstance(source, convis.Output):
        source = source[0]
    a = convis.utils.to_numpy(source).astype(np.float32)
    a = convis.utils.make_tensor_5d(a)
    if max_frames is not None:
        a = a[:, :, :max_frames]
    if a.size == 0:
        raise ValueError('the stimulus has no frames')
    if not np.isfinite(a).all():
        raise ValueError('the stimulus contains NaN or infinite values')
    return a
