"""Filter kernels as numpy arrays: exponential low-pass cascades, high-pass, Gaussians, IIR coefficients.

Time constants are in seconds and widths in degrees; a :class:`~convis.variables.Resolution`
(the global default when none is given) converts them into steps and pixels.

The exponential kernels are the exact impulse responses of the recursive filters in
:mod:`convis.filters.temporal`: one stage ``y[s] = e*y[s-1] + (1-e)*x[s]`` with
``e = exp(-dt/tau)`` has the impulse response ``(1-e)*e**k``; ``n`` further identical stages
(VirtualRetina's ``E_{n,tau}``, ``n = 0`` is a single exponential) give

.. math::  h_n[k] = (1-e)^{n+1} \\binom{k+n}{n} e^k, \\qquad \\sum_k h_n[k] = 1

Kernels are cut where the remaining tail holds less than ``epsilon`` of the total (a *relative*
tolerance), then normalised so that the DC gain is exact.

>>> k = exponential_filter_1d(tau=0.01)   # 10 ms at the default 1000 steps per second
>>> round(float(k.sum()), 6), len(k)
(1.0, 70)
"""
import math
import warnings

import numpy as np

__all__ = ['exponential_filter_1d', 'exponential_filter_3d', 'exponential_filter_5d',
           'exponential_highpass_filter_1d', 'exponential_highpass_filter_3d', 'exponential_highpass_filter_5d',
           'gauss_filter_2d', 'gauss_filter_3d', 'gauss_filter_5d', 'ab_filter_exp', 'ab_filter_exp_cascade',
           'deriche_coefficients', 'concatenate_time', 'sum_kernels']


def _resolution(resolution):
    if resolution is None:
        from .variables import default_resolution
        return default_resolution
    return resolution


def _decay(tau, resolution):
    """``e = exp(-dt/tau)`` for a time constant in seconds (0 for tau = 0)."""
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise ValueError('tau must be a non-negative time in seconds, not %r' % (tau,))
    if tau == 0:
        return 0.0
    return math.exp(-_resolution(resolution).dt / tau)


def _make_even_or_odd(k, even):
    if even is None or (len(k) % 2 == 0) == bool(even):
        return k
    return np.concatenate([k, np.zeros(1)])


def exponential_filter_1d(tau=0.01, n=0, normalize=True, resolution=None, amplification=1.0,
                          max_length=100000, min_steps=1, even=None, epsilon=1e-3):
    """The impulse response of ``n+1`` cascaded first-order low-pass filters with time constant ``tau``.

    .. math::  h_n[k] = A\\,(1-e)^{n+1} \\binom{k+n}{n} e^k, \\qquad e = \\exp(-\\Delta t/\\tau)

    Parameters
    ----------
    tau : float
        time constant of each stage in seconds (0 gives the identity ``[A]``)
    n : int
        number of additional stages (VirtualRetina's ``center-n__uint``; 0 = one exponential)
    normalize : bool
        scale the truncated kernel so that it sums to ``amplification`` exactly (DC gain);
        otherwise the samples are returned as they are (sum ``A(1 - tail)``)
    resolution : Resolution, optional
        converts seconds to steps (default: the global resolution)
    amplification : float
        the gain ``A``
    max_length, min_steps : int
        bounds on the number of taps (a warning is given when ``max_length`` cuts the kernel short)
    even : bool, optional
        pad with one zero tap to make the length even (True) or odd (False)
    epsilon : float
        relative tolerance: the dropped tail holds less than ``epsilon`` of the kernel's mass

    >>> k = exponential_filter_1d(0.005, resolution=convis.variables.Resolution(steps_per_second=1000))
    >>> np.allclose(k[:3] / k[0], np.exp(-np.arange(3) / 5.0))
    True
    """
    n = int(n)
    if n < 0:
        raise ValueError('the cascade order n must be >= 0, not %d' % n)
    if not 0 < epsilon < 1:
        raise ValueError('epsilon must lie in (0, 1), not %r' % (epsilon,))
    e = _decay(tau, resolution)
    if e == 0.0:
        k = np.zeros(max(1, int(min_steps)))
        k[0] = amplification
        return _make_even_or_odd(k, even)
    mean = (n + 1) * e / (1 - e)
    sd = math.sqrt((n + 1) * e) / (1 - e)
    length = int(mean + 12 * sd + 20)
    while True:
        idx = np.arange(length, dtype=np.float64)
        ratios = e * (idx[:-1] + n + 1) / (idx[:-1] + 1)
        k = (1 - e) ** (n + 1) * np.concatenate([[1.0], np.cumprod(ratios)])
        tail = 1.0 - np.cumsum(k)
        below = np.nonzero(tail <= epsilon)[0]
        if len(below) or length >= max_length:
            break
        length = min(2 * length, int(max_length))
    n_taps = int(below[0]) + 1 if len(below) else length
    if n_taps > max_length:
        warnings.warn('exponential kernel (tau=%g s, n=%d) cut at max_length=%d taps; its tail holds %.3g of its mass'
                      % (tau, n, max_length, tail[int(max_length) - 1]))
        n_taps = int(max_length)
    n_taps = max(n_taps, int(min_steps))
    if n_taps > len(k):
        k = np.concatenate([k, np.zeros(n_taps - len(k))])
    k = k[:n_taps]
    if normalize:
        k = k / k.sum()
    return _make_even_or_odd(amplification * k, even)


def exponential_filter_3d(*args, **kwargs):
    """:func:`exponential_filter_1d` shaped ``(t, 1, 1)``."""
    return exponential_filter_1d(*args, **kwargs)[:, None, None]


def exponential_filter_5d(*args, **kwargs):
    """:func:`exponential_filter_1d` shaped ``(1, 1, t, 1, 1)`` (a ``[out, in, t, x, y]`` kernel)."""
    return exponential_filter_1d(*args, **kwargs)[None, None, :, None, None]


def exponential_highpass_filter_1d(tau=0.01, relative_weight=0.1, normalize=True, resolution=None,
                                   max_length=100000, min_steps=1, n=0, epsilon=1e-3):
    """The high-pass ``delta - w * E_{n,tau}``: the input minus a weighted low-passed copy.

    .. math::  h[k] = \\delta[k] - w\\, h_n[k], \\qquad \\sum_k h[k] = 1 - w

    This is VirtualRetina's undershoot / transient filter ``T_{w,tau}`` (the low-pass reads the
    current input).  ``relative_weight`` is ``w``; the other arguments are those of
    :func:`exponential_filter_1d` (``normalize`` makes the DC gain exactly ``1 - w``).

    >>> k = exponential_highpass_filter_1d(0.02, 0.7)
    >>> round(float(k.sum()), 6)
    0.3
    """
    k = -relative_weight * exponential_filter_1d(tau, n=n, normalize=normalize, resolution=resolution,
                                                 max_length=max_length, min_steps=min_steps, epsilon=epsilon)
    k[0] += 1.0
    return k


def exponential_highpass_filter_3d(*args, **kwargs):
    """:func:`exponential_highpass_filter_1d` shaped ``(t, 1, 1)``."""
    return exponential_highpass_filter_1d(*args, **kwargs)[:, None, None]


def exponential_highpass_filter_5d(*args, **kwargs):
    """:func:`exponential_highpass_filter_1d` shaped ``(1, 1, t, 1, 1)``."""
    return exponential_highpass_filter_1d(*args, **kwargs)[None, None, :, None, None]


def _gauss_1d(sigma_px, half_width, even):
    if even:
        grid = np.arange(-half_width, half_width) + 0.5
    else:
        grid = np.arange(-half_width, half_width + 1, dtype=np.float64)
    return np.exp(-grid ** 2 / (2.0 * sigma_px ** 2)) / (sigma_px * math.sqrt(2 * math.pi))


def gauss_filter_2d(x_sig, y_sig=None, normalize=True, resolution=None, even=False, border_factor=1.0,
                    epsilon=1e-3):
    """A sampled 2-d Gaussian with standard deviations ``x_sig``, ``y_sig`` in degrees.

    .. math::  g[i, j] \\propto \\exp\\left(-\\frac{i^2}{2\\sigma_x^2} - \\frac{j^2}{2\\sigma_y^2}\\right)

    with ``sigma`` converted to pixels by the resolution's ``pixel_per_degree``.  The kernel
    reaches out to where the profile falls below ``epsilon`` of its peak (times ``border_factor``),
    so its side is odd (``2h + 1``; even, shifted by half a pixel, with ``even=True``).  A sigma
    of 0 gives ``[[1]]``.  With ``normalize`` (the default) it sums to 1; otherwise the values are
    the samples of the continuous density.

    >>> g = gauss_filter_2d(0.1, 0.1)   # 1 pixel at 10 pixels per degree
    >>> g.shape, round(float(g.sum()), 6)
    ((9, 9), 1.0)
    """
    if y_sig is None:
        y_sig = x_sig
    ppd = _resolution(resolution).pixel_per_degree
    profiles = []
    for sig in (x_sig, y_sig):
        sig = float(sig)
        if not math.isfinite(sig) or sig < 0:
            raise ValueError('a Gaussian needs a non-negative sigma in degrees, not %r' % (sig,))
        sig_px = sig * ppd
        if sig_px == 0:
            profiles.append(np.ones(1))
            continue
        half_width = max(1, int(math.ceil(border_factor * sig_px * math.sqrt(-2.0 * math.log(epsilon)))))
        profiles.append(_gauss_1d(sig_px, half_width, even))
    g = np.outer(profiles[0], profiles[1])
    if normalize:
        g = g / g.sum()
    return g


def gauss_filter_3d(*args, **kwargs):
    """:func:`gauss_filter_2d` shaped ``(1, x, y)``."""
    return gauss_filter_2d(*args, **kwargs)[None]


def gauss_filter_5d(*args, **kwargs):
    """:func:`gauss_filter_2d` shaped ``(1, 1, 1, x, y)``."""
    return gauss_filter_2d(*args, **kwargs)[None, None, None]


def ab_filter_exp(tau, step=0.001):
    """IIR coefficients ``(a, b)`` of the first-order low-pass (for :func:`scipy.signal.lfilter`).

    .. math::  y[s] = e\\,y[s-1] + (1-e)\\,x[s] \\iff a = [1, -e],\\ b = [1-e], \\qquad e = \\exp(-\\mathrm{step}/\\tau)

    ``tau`` and ``step`` are in seconds.
    """
    e = math.exp(-step / tau) if tau > 0 else 0.0
    return np.array([1.0, -e]), np.array([1.0 - e])


def ab_filter_exp_cascade(tau, n, step=0.001):
    """IIR coefficients ``(a, b)`` of ``n+1`` cascaded first-order low-passes (the kernel of
    :func:`exponential_filter_1d` with the same ``n``).

    .. math::  H(z) = \\left(\\frac{1-e}{1 - e z^{-1}}\\right)^{n+1}, \\quad
               a_j = \\binom{n+1}{j} (-e)^j,\\ b = [(1-e)^{n+1}]
    """
    n = int(n)
    e = math.exp(-step / tau) if tau > 0 else 0.0
    a = np.array([math.comb(n + 1, j) * (-e) ** j for j in range(n + 2)])
    return a, np.array([(1.0 - e) ** (n + 1)])


def deriche_coefficients(density):
    """Coefficients of the recursive (Deriche, order 0) approximation of a Gaussian of ``1/density`` pixels.

    .. math::  \\alpha = 1.695\\,\\mathrm{density},\\ e = e^{-\\alpha},\\ k = \\frac{(1-e)^2}{1 + 2\\alpha e - e^2}

    ``A1 = k``, ``A2 = k e (alpha-1)``, ``A3 = k e (alpha+1)``, ``A4 = -k e^2``, ``B1 = 2e``, ``B2 = -e^2``:
    the causal pass ``y[i] = A1 x[i] + A2 x[i-1] + B1 y[i-1] + B2 y[i-2]`` plus the anti-causal pass
    with ``A3, A4`` has a DC gain of exactly 1.
    """
    alpha = 1.695 * np.asarray(density, dtype=np.float64)
    e = np.exp(-alpha)
    k = (1 - e) ** 2 / (1 + 2 * alpha * e - e ** 2)
    return {'A1': k, 'A2': k * e * (alpha - 1), 'A3': k * e * (alpha + 1), 'A4': -k * e ** 2,
            'B1': 2 * e, 'B2': -e ** 2}


def concatenate_time(a, b):
    """Concatenates two kernels ``(t, x, y)`` in time, zero-padding the smaller one centred in space."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    x = max(a.shape[1], b.shape[1])
    y = max(a.shape[2], b.shape[2])
    return np.concatenate([_centre_pad(a, x, y), _centre_pad(b, x, y)], axis=0)


def _centre_pad(k, x, y):
    dx, dy = x - k.shape[1], y - k.shape[2]
    return np.pad(k, ((0, 0), (dx // 2, dx - dx // 2), (dy // 2, dy - dy // 2)))


def sum_kernels(kernels):
    """Sums ``(t, x, y)`` kernels of different sizes: aligned at time 0, centred in space."""
    kernels = [np.asarray(k, dtype=float) for k in kernels]
    t = max(k.shape[0] for k in kernels)
    x = max(k.shape[1] for k in kernels)
    y = max(k.shape[2] for k in kernels)
    total = np.zeros((t, x, y))
    for k in kernels:
        total += np.pad(_centre_pad(k, x, y), ((0, t - k.shape[0]), (0, 0), (0, 0)))
    return total
