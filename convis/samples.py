"""Sample stimuli, kernels and masks, and a random LN model that makes input/output pairs for fitting.

Every stimulus is a numpy array ``(t, x, y)`` (frames, then pixels).  Speeds and sizes are given per
frame and per pixel (or in image-relative units, as documented per function), unless
``frames_per_second`` / ``pixel_per_degree`` are passed: then times are in seconds, speeds per second,
and sizes and positions in degrees.

>>> import convis
>>> convis.samples.moving_grating(2000, 50, 50).shape
(2000, 50, 50)
>>> inp, out = convis.samples.generate_sample_data(input='random', size=(2000, 20, 20))
>>> inp.shape, tuple(out.shape)
((2000, 20, 20), (1, 1, 2000, 20, 20))
"""
import math

import numpy as np

from .models import LN

__all__ = ['text_kernel', 'gabor_kernel', 'mask_square', 'mask_circle', 'sigmoid', 'sparse_input',
           'moving_grating', 'moving_bar', 'moving_bars', 'random_checker_stimulus', 'pulse', 'chirp',
           'StimulusSize', 'default_stimulus_size', 'default_stimulus_size_cuda', 'SampleGenerator',
           'generate_sample_data']

_FONT = {  # 3 x 5 pixel letters, rows top to bottom
    'c': ['.##', '#..', '#..', '#..', '.##'],
    'o': ['.#.', '#.#', '#.#', '#.#', '.#.'],
    'n': ['##.', '#.#', '#.#', '#.#', '#.#'],
    'v': ['#.#', '#.#', '#.#', '#.#', '.#.'],
    'i': ['.#.', '...', '.#.', '.#.', '.#.'],
    's': ['.##', '#..', '.#.', '..#', '##.'],
}


def text_kernel():
    """A 16 x 16 binary kernel that reads "con" over "vis" (a recognisable spatial pattern)."""
    kernel = np.zeros((16, 16))
    for row, word in ((2, 'con'), (9, 'vis')):
        for k, letter in enumerate(word):
            glyph = np.array([[c == '#' for c in line] for line in _FONT[letter]], dtype=float)
            kernel[row:row + 5, 2 + 4 * k:5 + 4 * k] = glyph
    return kernel


def gabor_kernel(phi=2.0, size=16, resolution=2.0, f=10.0, phase=0.0, sigma_x=1.0, sigma_y=1.0):
    """A Gabor patch: a sine grating under a Gaussian envelope.

    .. math::  g(x, y) = \\exp\\left(-\\frac{x^2}{2\\sigma_x^2} - \\frac{y^2}{2\\sigma_y^2}\\right)
               \\sin\\left(\\frac{f}{2\\pi} (x \\sin\\phi + y \\cos\\phi) + \\mathrm{phase}\\right)

    ``x, y`` are grid units of ``resolution`` pixels, centred; ``size`` is the side in pixels; ``phi`` the
    orientation in radians; ``sigma_x, sigma_y`` the envelope widths in grid units.
    """
    vals = (np.arange(size) - (size - 1) / 2.0) / resolution
    xg, yg = np.meshgrid(vals, vals, indexing='ij')
    envelope = np.exp(-xg ** 2 / (2.0 * sigma_x ** 2) - yg ** 2 / (2.0 * sigma_y ** 2))
    return envelope * np.sin(f / (2 * np.pi) * (xg * np.sin(phi) + yg * np.cos(phi)) + phase)


def _centre(n, center_on_pixel):
    return n // 2 if center_on_pixel else (n - 1) / 2.0


def mask_square(x=20, y=20, width=1, center_on_pixel=True):
    """A ``(1, x, y)`` mask that is 1 within ``width`` pixels of the centre in x and in y, 0 elsewhere.

    ``width`` is the half-width (``|i - c| <= width``), so the square has ``2 width + 1`` pixels a side when
    ``center_on_pixel`` puts the centre on pixel ``(x//2, y//2)`` (otherwise it is the geometric centre).
    Multiply a ``(t, x, y)`` stimulus with it.
    """
    i = np.abs(np.arange(x) - _centre(x, center_on_pixel))[:, None]
    j = np.abs(np.arange(y) - _centre(y, center_on_pixel))[None, :]
    return ((i <= width) & (j <= width)).astype(float)[None]


def mask_circle(x=20, y=20, radius=1, smooth=True, sharpness=5.0, center_on_pixel=True):
    """A ``(1, x, y)`` disc mask of ``radius`` pixels, with a sigmoid edge when ``smooth``.

    .. math::  m(r) = \\frac{1}{1 + \\exp(-s (R - r))} \\quad (\\text{or } [r \\le R])
    """
    i = (np.arange(x) - _centre(x, center_on_pixel))[:, None]
    j = (np.arange(y) - _centre(y, center_on_pixel))[None, :]
    r = np.sqrt(i ** 2 + j ** 2)
    if smooth:
        return sigmoid(sharpness * (radius - r))[None]
    return (r <= radius).astype(float)[None]


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def sparse_input(t=2000, x=20, y=20, p=0.01, seed=None):
    """Random binary frames: each pixel is 1 with probability ``p`` (a number, or one value per frame).

    >>> float(sparse_input(1000, 10, 10, p=0.1, seed=1).mean().round(2))
    0.1
    """
    rng = np.random.default_rng(seed)
    if np.ndim(p) > 0:
        p = np.asarray(p, dtype=float)
        return (rng.random((len(p), x, y)) < p[:, None, None]).astype(float)
    return (rng.random((t, x, y)) < p).astype(float)


def _grid(n, pixel_per_degree):
    """Pixel coordinates: [-1, 1] across the image, or degrees from the centre."""
    if pixel_per_degree is None:
        return np.linspace(-1.0, 1.0, n)
    return (np.arange(n) - (n - 1) / 2.0) / float(pixel_per_degree)


def moving_grating(t=2000, x=20, y=20, vt=1.0 / 200, vx=3.0, vy=2.0, p=0.01, frames_per_second=None,
                   pixel_per_degree=None):
    """A drifting sine grating with values in [-1, 1].

    .. math::  s(k, i, j) = \\sin(v_t\\,k + v_x X_i + v_y Y_j)

    ``k`` is the frame index (or the time in seconds with ``frames_per_second``); ``X, Y`` run from -1 to
    1 across the image (or are degrees from the centre with ``pixel_per_degree``).  ``vt`` is in radians
    per frame (per second), ``vx, vy`` in radians per half image (per degree).  ``p`` is not used (it is
    accepted for compatibility).
    """
    times = np.arange(t, dtype=float)
    if frames_per_second is not None:
        times = times / float(frames_per_second)
    T, X, Y = np.meshgrid(times, _grid(x, pixel_per_degree), _grid(y, pixel_per_degree), indexing='ij')
    return np.sin(vt * T + vx * X + vy * Y)


def moving_bar(t=2000, x=20, y=20, bar_pos=-1.0, bar_direction=0.0, bar_width=1.0, bar_v=0.01,
               frames_per_second=None, pixel_per_degree=None, sharp=False, temporal_smoothing=1.0):
    """A bright bar (1 on 0) moving across the image, smoothed in time unless ``sharp``.

    The bar is perpendicular to ``bar_direction`` (radians, 0 = along x) and its centre is at
    ``bar_pos + bar_v * k`` along that direction at frame ``k``.  Without ``pixel_per_degree``,
    positions are in units of the image's half-extent along the direction (-1 is one edge, 1 the other),
    ``bar_width`` is in pixels and ``bar_v`` in half-extents per frame; with ``pixel_per_degree`` the
    position is in degrees from the centre, the width in degrees and the speed in degrees per frame.
    With ``frames_per_second`` the speed is per second and ``temporal_smoothing`` in seconds.

    Unless ``sharp``, the stimulus is the sharp bar convolved in time with a Gaussian of
    ``temporal_smoothing`` frames, computed exactly:

    .. math::  s = \\Phi\\left(\\frac{d - c(k) + w/2}{|v| \\sigma_t}\\right) - \\Phi\\left(\\frac{d - c(k) - w/2}{|v| \\sigma_t}\\right)
    """
    from scipy.special import ndtr
    px = np.arange(x) - (x - 1) / 2.0
    py = np.arange(y) - (y - 1) / 2.0
    cos_d, sin_d = math.cos(bar_direction), math.sin(bar_direction)
    dist = px[:, None] * cos_d + py[None, :] * sin_d
    if pixel_per_degree is None:
        scale = (x - 1) / 2.0 * abs(cos_d) + (y - 1) / 2.0 * abs(sin_d)
        width = float(bar_width)
    else:
        scale = float(pixel_per_degree)
        width = float(bar_width) * scale
    step_v = bar_v / float(frames_per_second) if frames_per_second is not None else bar_v
    sigma_t = temporal_smoothing * float(frames_per_second) if frames_per_second is not None else temporal_smoothing
    centres = (bar_pos + step_v * np.arange(t)) * scale
    offset = dist[None] - centres[:, None, None]
    spread = abs(step_v) * scale * sigma_t
    if sharp or spread == 0:
        return (np.abs(offset) <= width / 2.0).astype(float)
    return ndtr((offset + width / 2.0) / spread) - ndtr((offset - width / 2.0) / spread)


moving_bars = moving_bar


def random_checker_stimulus(t=2000, x=20, y=20, checker_size=5, seed=123, frames_per_second=None,
                            pixel_per_degree=None):
    """Flickering checks of ``checker_size`` pixels (degrees with ``pixel_per_degree``), each frame drawn
    uniformly from [0, 1) with the random generator seeded by ``seed`` (None: a fresh seed).

    ``frames_per_second`` does not change anything (every frame is new); it is accepted for compatibility.

    >>> np.array_equal(random_checker_stimulus(10, seed=1), random_checker_stimulus(10, seed=1))
    True
    """
    size = checker_size * pixel_per_degree if pixel_per_degree is not None else checker_size
    size = max(1, int(round(size)))
    rng = np.random.default_rng(seed)
    checks = rng.random((t, -(-x // size), -(-y // size)))
    return checks.repeat(size, axis=1).repeat(size, axis=2)[:, :x, :y]


def pulse(t=2000, x=20, y=20, pulse_length=100, frames_per_second=None, pixel_per_degree=None):
    """A full-field square wave: 1 for ``pulse_length`` frames (seconds with ``frames_per_second``), then 0, repeating.

    >>> pulse(6, 1, 1, pulse_length=2).flatten().tolist()
    [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    length = pulse_length * frames_per_second if frames_per_second is not None else pulse_length
    length = max(1, int(round(length)))
    on = (np.arange(t) % (2 * length)) < length
    return np.broadcast_to(on.astype(float)[:, None, None], (t, x, y)).copy()


def chirp(t=2000, x=20, y=20, pulse_on=500, pulse_off=1000, amp_on=1500, amp_off=2500, amp_freq=5.0, amp_1=0.0,
          amp_2=1.0, freq_on=3000, freq_off=4000, freq_1=0.1, freq_2=10.0, stimulus_off=4500, scale=True,
          frames_per_second=1000.0, pixel_per_degree=None):
    """A full-field chirp: a light step, an amplitude-modulated sine and a frequency sweep (values in [0, 1]).

    Times (``pulse_on`` ... ``stimulus_off``) are in frames, frequencies in Hz at ``frames_per_second``:

    * ``[pulse_on, pulse_off)``: 1 (0 before, and 0.5 between the segments up to ``stimulus_off``);
    * ``[amp_on, amp_off)``: :math:`0.5 + 0.5\\,a(k) \\sin(2\\pi f_a k/\\mathrm{fps})`, ``a`` rising linearly from
      ``amp_1`` to ``amp_2``;
    * ``[freq_on, freq_off)``: :math:`0.5 + 0.5 \\sin(\\varphi(k))`, the frequency rising linearly from ``freq_1``
      to ``freq_2`` Hz;
    * from ``stimulus_off`` on: 0.

    With ``scale`` the whole timeline (``stimulus_off`` frames) is stretched to ``t`` frames, frequencies
    included, so the stimulus looks the same at any length.
    """
    fps = float(frames_per_second)
    if scale:
        s = float(t) / float(stimulus_off)
        pulse_on, pulse_off, amp_on, amp_off, freq_on, freq_off, stimulus_off = (
            v * s for v in (pulse_on, pulse_off, amp_on, amp_off, freq_on, freq_off, stimulus_off))
        fps = fps * s
    k = np.arange(t, dtype=float)
    trace = np.where((k >= pulse_off) & (k < stimulus_off), 0.5, 0.0)
    trace[(k >= pulse_on) & (k < pulse_off)] = 1.0
    seg = (k >= amp_on) & (k < amp_off)
    if seg.any():
        rel = (k[seg] - amp_on) / max(amp_off - amp_on, 1e-12)
        amp = amp_1 + (amp_2 - amp_1) * rel
        trace[seg] = 0.5 + 0.5 * amp * np.sin(2 * np.pi * amp_freq * (k[seg] - amp_on) / fps)
    seg = (k >= freq_on) & (k < freq_off)
    if seg.any():
        tt = (k[seg] - freq_on) / fps
        duration = max(freq_off - freq_on, 1e-12) / fps
        phase = 2 * np.pi * (freq_1 * tt + 0.5 * (freq_2 - freq_1) / duration * tt ** 2)
        trace[seg] = 0.5 + 0.5 * np.sin(phase)
    return np.broadcast_to(trace[:, None, None], (t, x, y)).copy()


class StimulusSize(object):
    """The stimulus generators with a preset size: ``StimulusSize(t, x, y).moving_grating(vt=0.01)``.

    ``pixel_per_degree`` and ``frames_per_second`` are kept as attributes; ``frames_per_second`` is used by
    :meth:`chirp`.  With ``prepare`` the stimuli come back as 5-d tensors (on the GPU with ``cuda``).
    """

    def __init__(self, t=2000, x=20, y=20, pixel_per_degree=10, frames_per_second=1000.0, cuda=False, prepare=False):
        self.t, self.x, self.y = int(t), int(x), int(y)
        self.pixel_per_degree = pixel_per_degree
        self.frames_per_second = frames_per_second
        self.cuda = cuda
        self.prepare = prepare or cuda

    def _out(self, a):
        if not self.prepare:
            return a
        from .output import prepare_input
        return prepare_input(a, cuda=self.cuda)

    def moving_grating(self, **kw):
        return self._out(moving_grating(self.t, self.x, self.y, **kw))

    def moving_bar(self, **kw):
        return self._out(moving_bar(self.t, self.x, self.y, **kw))

    moving_bars = moving_bar

    def random_checker_stimulus(self, **kw):
        return self._out(random_checker_stimulus(self.t, self.x, self.y, **kw))

    def sparse_input(self, **kw):
        return self._out(sparse_input(self.t, self.x, self.y, **kw))

    def pulse(self, **kw):
        return self._out(pulse(self.t, self.x, self.y, **kw))

    def chirp(self, **kw):
        kw.setdefault('frames_per_second', self.frames_per_second)
        return self._out(chirp(self.t, self.x, self.y, **kw))


default_stimulus_size = StimulusSize()
default_stimulus_size_cuda = StimulusSize(cuda=True)
cuda = default_stimulus_size_cuda


def _random(kind, shape, rng, p):
    if kind in ('random', 'randn'):
        return rng.standard_normal(shape)
    if kind == 'rand':
        return rng.random(shape)
    if kind == 'sparse':
        return (rng.random(shape) < p).astype(float)
    raise ValueError("unknown kind %r: use 'random'/'randn', 'rand', 'sparse' or an array" % (kind,))


class SampleGenerator(LN):
    """An LN model with a random kernel that makes input/output pairs (for trying out fitting).

    .. math::  y = \\max(k * x, 0)

    Parameters
    ----------
    kernel : 'random'/'randn', 'rand', 'sparse', or an array (t, x, y) / (out, in, t, x, y)
        normal, uniform [0, 1) or Bernoulli(``p``) values of ``kernel_size``, or the kernel itself
        (the impulse response; ``conv.weight`` holds it flipped)
    kernel_size : (t, x, y)
        size of a random kernel in frames and pixels
    dt : int
        chunk length for running the model
    p : float
        probability of a 1 in sparse kernels and inputs
    seed : int, optional
        seed of the generator's random numbers (kernel and inputs)

    >>> g = SampleGenerator('sparse', kernel_size=(20, 5, 5), p=0.05, seed=0)
    >>> x, y = g.generate()
    >>> m = convis.models.LN((50, 10, 10))
    >>> optimizer = m.set_optimizer.Adam()
    >>> losses = m.optimize(x, y)
    """

    def __init__(self, kernel='random', kernel_size=(10, 5, 5), dt=100, p=0.1, seed=None):
        super().__init__()
        self.rng = np.random.default_rng(seed)
        if isinstance(kernel, str):
            kernel = _random(kernel, tuple(kernel_size), self.rng, p)
        self.conv.set_weight(kernel)
        self.requires_grad_(False)
        self.dt = int(dt)
        self.sparse_p = p

    def generate(self, input='random', size=(2000, 20, 20), p=None):
        """Returns ``(x, y)``: an input (numpy, ``size`` (t, x, y) unless an array is given) and the model's
        output for it (a tensor ``[1, 1, t, x, y]``), computed from the cleared state in chunks of ``dt``.

        ``input`` is 'random'/'randn' (normal), 'rand' (uniform [0, 1)), 'sparse' (Bernoulli ``p``) or an
        array / tensor of 3 or 5 dimensions.
        """
        if isinstance(input, str):
            x = _random(input, tuple(size), self.rng, self.sparse_p if p is None else p).astype(np.float32)
        else:
            x = input
        self.clear_state()
        y = self.run(x, dt=self.dt)[0]
        self.clear_state()
        return x, y


def _default_generator():
    g = globals().get('_g')
    if g is None:
        g = SampleGenerator('random', kernel_size=(10, 5, 5), dt=100)
        globals()['_g'] = g
    return g


def __getattr__(name):
    if name == '_g':
        return _default_generator()
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def generate_sample_data(input='random', size=(2000, 20, 20)):
    """Random input and the output of the session's sample LN model, ``convis.samples._g`` (see
    :class:`SampleGenerator`; its 10 x 5 x 5 kernel is random, drawn once per session when first used).

    Returns ``(x, y)``: a numpy input of ``size`` (or the array given) and the output tensor.  Works for any size.

    >>> x, y = generate_sample_data('random', (500, 10, 10))
    >>> x.shape, tuple(y.shape)
    ((500, 10, 10), (1, 1, 500, 10, 10))
    """
    return _default_generator().generate(input=input, size=size)
