"""Spike-triggered analysis: the average (:func:`sta`) and covariance (:func:`stc`) of the stimulus before spikes.

Both look **backward** in time from each spike, over a window of ``filter_shape = (lags, width,
height)`` centred on the spike's pixel.  Index ``k`` of the time axis is the stimulus ``k`` steps
before the spike (``k = 0`` is the spike's own step), the same order as a convis kernel or impulse
response, so the STA of a linear-nonlinear neuron is proportional to its kernel.  Spikes whose window
would leave the stimulus (too early, or too close to the border) are left out, and they are not
counted either.

>>> stim = np.random.randn(20000, 10, 10)
>>> spikes = convis.filters.spiking.Poisson(seed=0).run(100 * np.maximum(0, stim), dt=5000)[0]
>>> convis.analysis.sta(stim, spikes, filter_shape=(5, 3, 3))[0, 1, 1]   # about 1.25 = E[s max(0, s)] / E[max(0, s)]: the pixel itself, lag 0
"""
import numpy as np

from .output import Output
from .utils import make_tensor_5d, to_numpy

__all__ = ['sta', 'stc', 'spike_triggered_windows']

_BLOCK = 1 << 22  # values gathered at a time (32 MB of float64)


def _as_5d(a, what):
    if isinstance(a, Output):
        a = a[0]
    arr = to_numpy(a)
    if arr.dtype == object or arr.dtype.kind not in 'biuf':
        raise TypeError('%s must be numeric, not of dtype %s' % (what, arr.dtype))
    if arr.ndim == 0 or arr.ndim > 5:
        raise ValueError('%s must have 1 to 5 dimensions ([batch, channel,] time, x, y), not %d' % (what, arr.ndim))
    return make_tensor_5d(arr)


def _spike_selection(stim, spikes, filter_shape, binary, threshold):
    """The stimulus as [n, T, X, Y] and the indices ``(trial, t, x, y)`` of every spike with a whole window."""
    shape = tuple(int(s) for s in filter_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError('filter_shape must be three positive lengths (lags, width, height), not %r' % (filter_shape,))
    s5, k5 = _as_5d(stim, 'stim'), _as_5d(spikes, 'spikes')
    if s5.shape[2:] != k5.shape[2:]:
        raise ValueError('stim and spikes must cover the same frames and pixels: %s vs %s (time, x, y)'
                         % (s5.shape[2:], k5.shape[2:]))
    for axis, name in ((0, 'batch'), (1, 'channel')):
        if s5.shape[axis] not in (1, k5.shape[axis]):
            raise ValueError('stim has %d entries along the %s axis, spikes %d' % (s5.shape[axis], name, k5.shape[axis]))
    s5 = np.broadcast_to(s5, k5.shape[:2] + s5.shape[2:])
    stim4 = np.asarray(s5, dtype=np.float64).reshape((-1,) + s5.shape[2:])
    k4 = k5.reshape((-1,) + k5.shape[2:])
    mask = (k4 != 0) if binary else (k4 >= threshold)
    L, w, h = shape
    _, T, X, Y = stim4.shape
    valid = np.zeros(mask.shape[1:], dtype=bool)
    valid[L - 1:, w // 2:X - (w - 1 - w // 2), h // 2:Y - (h - 1 - h // 2)] = True
    trial, t, x, y = np.nonzero(mask & valid[None])
    if trial.size == 0:
        raise ValueError('no spike has a whole window of %s inside the stimulus (%d spikes in all)'
                         % (shape, int(mask.sum())))
    return stim4, (trial, t, x, y), shape


def _windows(stim4, idx, shape):
    """Yields the windows of blocks of spikes as arrays ``[spikes, lags, width, height]``."""
    L, w, h = shape
    trial, t, x, y = idx
    lag = np.arange(L)[None, :, None, None]
    di = np.arange(w)[None, None, :, None] - w // 2
    dj = np.arange(h)[None, None, None, :] - h // 2
    step = max(1, _BLOCK // (L * w * h))
    for s in range(0, trial.size, step):
        sl = slice(s, s + step)
        yield stim4[trial[sl, None, None, None], t[sl, None, None, None] - lag,
                    x[sl, None, None, None] + di, y[sl, None, None, None] + dj]


def spike_triggered_windows(stim, spikes, filter_shape=(10, 1, 1), binary=True, threshold=0.5):
    """The stimulus window before every spike, as an array ``[spikes, lags, width, height]`` (see :func:`sta`)."""
    stim4, idx, shape = _spike_selection(stim, spikes, filter_shape, binary, threshold)
    return np.concatenate(list(_windows(stim4, idx, shape)), axis=0)


def sta(stim, spikes, filter_shape=(10, 1, 1), binary=True, threshold=0.5):
    """The spike-triggered average: the mean stimulus window before the spikes.

    .. math:: \\mathrm{STA}[k, i, j] = \\frac{1}{N} \\sum_{n=1}^{N} s(t_n - k,\\ x_n + i - \\lfloor w/2 \\rfloor,\\ y_n + j - \\lfloor h/2 \\rfloor)

    over the ``N`` spikes ``(t_n, x_n, y_n)`` whose window lies inside the stimulus.

    Parameters
    ----------
    stim : array or tensor, ``(time, x, y)`` (or 1-d to 5-d, see ``convis.utils.make_tensor_5d``)
        the stimulus; with several batch entries or channels it is paired with the spikes' entries
        (or broadcast, if it has one)
    spikes : array, tensor or Output, the same frames and pixels as ``stim``
        the spike trains of the cells at every pixel
    filter_shape : (lags, width, height)
        the window: ``lags`` steps back from the spike (the spike's step included) and ``width x
        height`` pixels centred on the spike's pixel (the spike's pixel is at ``[w // 2, h // 2]``)
    binary : bool
        True: every non-zero entry of ``spikes`` is one spike; False: entries ``>= threshold`` are
    threshold : float
        see ``binary``

    Returns a float64 array of ``filter_shape``.  Raises a ``ValueError`` when no spike has a whole
    window.

    Examples
    --------
    >>> k = convis.analysis.sta(stimulus, o[0], filter_shape=(20, 5, 5))
    >>> plt.plot(k[:, 2, 2])   # the temporal profile at the centre, lag 0 first
    """
    stim4, idx, shape = _spike_selection(stim, spikes, filter_shape, binary, threshold)
    total = np.zeros(shape)
    for block in _windows(stim4, idx, shape):
        total += block.sum(axis=0)
    return total / idx[0].size


def stc(stim, spikes, filter_shape=(10, 1, 1), binary=True, threshold=0.5, centered=True):
    """The spike-triggered covariance of the stimulus windows before the spikes (see :func:`sta`).

    .. math:: \\mathrm{STC} = \\frac{1}{N - 1} \\sum_{n=1}^{N} (v_n - \\mathrm{STA})(v_n - \\mathrm{STA})^T

    where ``v_n`` is the window of spike ``n`` flattened in the order ``(lag, x, y)``.  With
    ``centered=False`` it returns the raw second moment ``sum v_n v_n^T / N`` instead.  Returns a
    float64 array of shape ``(D, D)`` with ``D = lags * width * height``; reshape an eigenvector with
    ``v.reshape(filter_shape)``.

    Examples
    --------
    >>> C = convis.analysis.stc(stimulus, o[0], filter_shape=(10, 1, 1))
    >>> values, vectors = np.linalg.eigh(C - np.cov(stimulus_windows.T))
    """
    stim4, idx, shape = _spike_selection(stim, spikes, filter_shape, binary, threshold)
    D, N = int(np.prod(shape)), idx[0].size
    total, outer = np.zeros(D), np.zeros((D, D))
    for block in _windows(stim4, idx, shape):
        flat = block.reshape(block.shape[0], D)
        total += flat.sum(axis=0)
        outer += flat.T @ flat
    if not centered:
        return outer / N
    if N < 2:
        raise ValueError('the spike-triggered covariance needs at least 2 spikes with whole windows, not %d' % N)
    mean = total / N
    return (outer - N * np.outer(mean, mean)) / (N - 1)
