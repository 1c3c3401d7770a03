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

__all__ = ['grating', 'bar', 'checkerboard', 'flash', 'noise', 'STIMULI', 'make_stimulus', 'load_stimulus',
           'PHYSICAL_PARAMETERS', 'physical_stimulus']


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


PHYSICAL_PARAMETERS = OrderedDict([
    ('contrast', (1.0, '', 'Michelson contrast (L_max - L_min) / (L_max + L_min)', (0.0, 1.0))),
    ('background', (0.5, '', 'mean luminance as a fraction of the input range', (0.0, 1.0))),
    ('duration', (5.0, 's', 'length of the stimulus', (0.01, 600.0))),
    ('spatial_frequency', (0.25, 'cycles/deg', 'grating and checkerboard: spatial frequency', (0.01, 50.0))),
    ('speed', (10.0, 'deg/s', 'grating and bar: drift speed', (-1000.0, 1000.0))),
    ('angle', (0.0, 'deg', 'grating and bar: direction of motion', (-360.0, 360.0))),
    ('bar_width', (1.0, 'deg', 'bar: width', (0.01, 100.0))),
    ('reversal', (0.25, 's', 'checkerboard: time between contrast reversals', (0.001, 60.0))),
    ('onset', (0.5, 's', 'flash: start', (0.0, 600.0))),
    ('flash_duration', (1.0, 's', 'flash: length', (0.001, 600.0))),
    ('radius', (0.0, 'deg', 'flash: spot radius (0: full field)', (0.0, 100.0))),
])
"""Stimulus parameters in physical units: name -> (default, unit, meaning, (low, high))."""

USES = {'grating': ('spatial_frequency', 'speed', 'angle'), 'bar': ('bar_width', 'speed', 'angle'),
        'checkerboard': ('spatial_frequency', 'reversal'), 'flash': ('onset', 'flash_duration', 'radius'),
        'noise': ()}
"""The physical parameters each stimulus uses besides contrast, background and duration."""


def physical_stimulus(name, size=(64, 64), pixel_per_degree=5.0, steps_per_second=100.0, luminance_range=1.0,
                      **parameters):
    r"""The stimulus ``name`` from parameters in physical units, as luminances ``(t, x, y)`` (float32).

    ``size`` in pixels; ``pixel_per_degree`` and ``steps_per_second`` convert degrees and seconds (take them from
    the model's resolution); ``luminance_range`` is the input's full scale (255 for the retina).  Parameters
    (:data:`PHYSICAL_PARAMETERS`, defaults there): ``contrast`` (Michelson), ``background`` (fraction of the range),
    ``duration`` (s), ``spatial_frequency`` (cycles/deg), ``speed`` (deg/s), ``angle`` (deg), ``bar_width`` (deg),
    ``reversal`` (s), ``onset`` and ``flash_duration`` (s), ``radius`` (deg).  The luminance is
    :math:`L = L_0 (1 + c\,s)` with :math:`L_0` the background and :math:`s \in [-1, 1]` the pattern; a grating of
    spatial frequency :math:`k` drifting at speed :math:`v` has the temporal frequency :math:`k v` (Hz).

    >>> v = physical_stimulus('grating', (32, 32), pixel_per_degree=5.0, steps_per_second=100.0, duration=1.0)
    >>> v.shape
    (100, 32, 32)
    """
    if name not in STIMULI:
        raise ValueError('unknown stimulus %r; choose one of %s' % (name, list(STIMULI)))
    unknown = sorted(set(parameters) - set(PHYSICAL_PARAMETERS))
    if unknown:
        raise ValueError('unknown stimulus parameters %s; known: %s' % (unknown, list(PHYSICAL_PARAMETERS)))
    p = OrderedDict((k, float(v[0])) for k, v in PHYSICAL_PARAMETERS.items())
    for k, v in parameters.items():
        low, high = PHYSICAL_PARAMETERS[k][3]
        if not low <= float(v) <= high:
            raise ValueError('%s must be in [%g, %g] %s, not %r' % (k, low, high, PHYSICAL_PARAMETERS[k][1], v))
        p[k] = float(v)
    ppd, sps = float(pixel_per_degree), float(steps_per_second)
    if not (ppd > 0 and sps > 0):
        raise ValueError('pixel_per_degree (%r) and steps_per_second (%r) must be positive' % (ppd, sps))
    t = max(1, int(round(p['duration'] * sps)))
    x, y = (int(v) for v in size)
    mean = p['background'] * float(luminance_range)
    common = dict(t=t, x=x, y=y, dt=1.0 / sps, mean=mean, contrast=2 * mean * p['contrast'])
    if name == 'grating':
        kw = dict(period=ppd / p['spatial_frequency'], frequency=p['speed'] * p['spatial_frequency'],
                  angle=p['angle'])
    elif name == 'bar':
        kw = dict(width=p['bar_width'] * ppd, speed=p['speed'] * ppd, angle=p['angle'])
    elif name == 'checkerboard':
        kw = dict(square=ppd / (2 * p['spatial_frequency']), reversal=p['reversal'])
    elif name == 'flash':
        kw = dict(onset=p['onset'], duration=p['flash_duration'], radius=p['radius'] * ppd or None)
    else:
        kw = {}
    return make_stimulus(name, **dict(common, **kw))


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
