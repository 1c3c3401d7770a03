"""Recursive Gaussian blur: the order-0 Deriche filter VirtualRetina uses.

Along one axis, with ``sigma`` in pixels (rounded to single precision as
VirtualRetina does), ``alpha = 1.695/sigma``, ``a = exp(-alpha)`` and
``k = (1-a)^2 / (1 + 2 alpha a - a^2)``:

.. math::

    y^+[n] &= k\\,x[n] + k(\\alpha-1)a\\,x[n-1] + 2a\\,y^+[n-1] - a^2\\,y^+[n-2] \\\\
    y^-[n] &= k(\\alpha+1)a\\,x[n+1] - k a^2\\,x[n+2] + 2a\\,y^-[n+1] - a^2\\,y^-[n+2] \\\\
    y[n] &= y^+[n] + y^-[n]

Samples beyond an end equal the edge sample and each recursion starts in its
steady state for that constant, so a uniform image stays uniform.  The 2-d blur
runs this along both image axes.  Below ``sigma = 0.1`` px there is no blur.

With these edge rules the filter along an axis of ``n`` samples is a fixed
linear map: :func:`recursive_gaussian_matrix` builds its ``n x n`` matrix once
(by running the recursion in float64 on the identity) and caches it, and the
2-d blur of any number of frames is two matrix products ``A_y X A_x^T``, exact
to rounding.  When ``sigma`` needs a gradient the matrix is built with autograd
instead (not cached).

Axis convention: the last axis of a ``[batch, channel, time, x, y]`` tensor is
VirtualRetina's X (image columns), the one before it VirtualRetina's Y (rows),
so an image array ``(rows, columns)`` is used as it is.
"""
from collections import OrderedDict

import numpy as np
import torch

from ..functional.deriche import _round_f32, deriche_coefficients
from ..layer import Layer
from ..native import compile_c_library  # noqa: F401 (re-exported)
from ..variables import Parameter

__all__ = ['deriche_coefficients', 'recursive_gaussian_matrix', 'recursive_gaussian_blur', 'blur_operator',
           'log_polar_sigma_map', 'log_polar_gaussian_matrices', 'log_polar_gaussian_blur',
           'SpatialRecursiveFilter', 'SeparableBlur', 'PerLineBlur', 'log_polar_coefficients', 'compile_c_library',
           'MIN_SIGMA_PX']

MIN_SIGMA_PX = 0.1
"""Below this sigma (in pixels) the blur is the identity, as in VirtualRetina."""

_CACHE = OrderedDict()
_CACHE_SIZE = 128


def _run_recursion(x, c0, c1, c2, c3, a):
    """Runs both passes of the Deriche filter along axis 0 of ``x`` (float64 tensor), edge boundaries."""
    n = x.shape[0]
    b1, b2 = 2 * a, -a * a
    denom = 1 - 2 * a + a * a
    ss = x[0] * ((c0 + c1) / denom)
    y1, y2, xm1 = ss, ss, x[0]
    causal = []
    for i in range(n):
        v = c0 * x[i] + c1 * xm1 + b1 * y1 + b2 * y2
        causal.append(v)
        y2, y1, xm1 = y1, v, x[i]
    ss = x[n - 1] * ((c2 + c3) / denom)
    y1, y2, x1, x2 = ss, ss, x[n - 1], x[n - 1]
    anti = [None] * n
    for i in range(n - 1, -1, -1):
        v = c2 * x1 + c3 * x2 + b1 * y1 + b2 * y2
        anti[i] = v
        y2, y1, x2, x1 = y1, v, x1, x[i]
    return torch.stack(causal) + torch.stack(anti)


def _build_matrix(sigma_px, n, device=None):
    eye = torch.eye(n, dtype=torch.float64, device=device)
    return _run_recursion(eye, *deriche_coefficients(sigma_px))


def recursive_gaussian_matrix(sigma_px, n, dtype=torch.float64, device='cpu'):
    """The ``n x n`` matrix ``A`` of the edge-bounded Deriche blur along an axis: ``blur(v) = A @ v``.

    ``sigma_px`` in pixels (float or tensor); ``None`` is returned for no blur (sigma < 0.1 px).
    A float (or a tensor that needs no gradient) uses a cache; a tensor that requires a gradient
    gives a differentiable matrix.

    >>> A = recursive_gaussian_matrix(1.5, 20)
    >>> torch.allclose(A.sum(1), torch.ones(20, dtype=torch.float64))  # constants are preserved
    True
    """
    needs_grad = isinstance(sigma_px, torch.Tensor) and sigma_px.requires_grad and torch.is_grad_enabled()
    value = float(sigma_px.detach().reshape(-1)[0]) if isinstance(sigma_px, torch.Tensor) else float(sigma_px)
    if not np.isfinite(value) or value < 0:
        raise ValueError('sigma must be a finite number >= 0 pixels, not %r' % value)
    if _round_f32(value) < MIN_SIGMA_PX:
        return None
    if needs_grad:
        return _build_matrix(sigma_px.reshape(-1)[0], n, device=sigma_px.device).to(dtype=dtype, device=device)
    key = (_round_f32(value), int(n), dtype, str(device))
    m = _CACHE.get(key)
    if m is None:
        base_key = (key[0], key[1], torch.float64, 'cpu')
        base = _CACHE.get(base_key)
        if base is None:
            base = _build_matrix(value, n)
            _CACHE[base_key] = base
        m = base.to(dtype=dtype, device=device)
        _CACHE[key] = m
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return m


def _apply_axis_matrices(x, a_rows, a_cols):
    """``A_rows @ x @ A_cols^T`` over the last two axes (either matrix may be None: identity)."""
    if a_cols is not None:
        x = torch.matmul(x, a_cols.transpose(0, 1))
    if a_rows is not None:
        x = torch.matmul(a_rows, x)
    return x


class SeparableBlur(object):
    """A blur ``A_rows @ x @ A_cols^T`` of the last two axes (a matrix may be None: identity).

    ``sigma_rows``/``sigma_cols`` are the sigmas (px) of the recursions the matrices stand for.
    """

    def __init__(self, a_rows, a_cols, sigma_rows=None, sigma_cols=None):
        self.a_rows, self.a_cols = a_rows, a_cols
        self.sigma_rows = sigma_rows if a_rows is not None else None
        self.sigma_cols = sigma_cols if a_cols is not None else None

    def __call__(self, x):
        return _apply_axis_matrices(x, self.a_rows, self.a_cols)


def recursive_gaussian_blur(x, sigma_px, sigma_px_rows=None):
    """Blurs the last two axes of ``x`` with the Deriche recursive Gaussian of ``sigma_px`` pixels.

    ``sigma_px_rows`` (default: the same) is the sigma along the second-to-last axis.
    Works on any leading shape (e.g. ``[batch, channel, time, x, y]``, all frames at once).

    >>> y = recursive_gaussian_blur(torch.rand(1, 1, 10, 32, 32, dtype=torch.float64), 2.0)
    """
    if sigma_px_rows is None:
        sigma_px_rows = sigma_px
    a_cols = recursive_gaussian_matrix(sigma_px, x.shape[-1], x.dtype, x.device)
    a_rows = recursive_gaussian_matrix(sigma_px_rows, x.shape[-2], x.dtype, x.device)
    return _apply_axis_matrices(x, a_rows, a_cols)


class SpatialRecursiveFilter(Layer):
    """A 2-d recursive Gaussian blur (VirtualRetina's Deriche filter) of every frame.

    .. math::  y = A_\\sigma^{(rows)}\\, x\\, A_\\sigma^{(cols)\\,T}

    with the edge-bounded Deriche matrices of :func:`recursive_gaussian_matrix`,
    ``sigma`` in pixels = ``sigma`` (degrees) x pixels per degree of the layer's resolution,
    read at every call.

    Parameters
    ----------
    sigma : float
        standard deviation in degrees of visual angle (no blur below 0.1 px)

    >>> f = SpatialRecursiveFilter(sigma=0.2)
    >>> y = f.run(np.random.rand(100, 40, 40), dt=50)
    """

    def __init__(self, sigma=0.1):
        super().__init__()
        self.sigma = Parameter(sigma, doc='standard deviation of the recursive Gaussian blur', unit='deg',
                               bounds=(0, None), scale='log', slider_range=(0.01, 5.0))

    def gaussian(self, sigma):
        """Sets the standard deviation (degrees); returns the layer."""
        self.sigma.set(sigma)
        return self

    def forward(self, x):
        sigma_px = self.sigma * self.resolution.pixel_per_degree
        return recursive_gaussian_blur(x, sigma_px)


# ----------------------------------------------------------------------------------- log-polar scheme
def log_polar_sigma_map(shape, sigma_deg, pixel_per_degree, fovea_radius_deg, scaling_factor):
    """Per-pixel sigma (px) of VirtualRetina's log-polar scheme, for a map of ``shape`` (rows, columns).

    ``sigma(r) = sigma_deg * ppd * (1 + K (r - R0))`` for ``r > R0`` (degrees, measured from the
    centre ``((W-1)/2, (H-1)/2)``), ``sigma_deg * ppd`` inside the fovea.
    """
    h, w = shape
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing='ij')
    r = np.hypot(xx - (w - 1) / 2.0, yy - (h - 1) / 2.0) / pixel_per_degree
    scale = np.where(r > fovea_radius_deg, 1 + scaling_factor * (r - fovea_radius_deg), 1.0)
    return sigma_deg * pixel_per_degree * scale


def _run_log_polar(x, coeffs):
    """Both passes with per-sample coefficients (log-polar rule) along axis 0 of ``x`` [n, m]."""
    c0, c1, c2, c3, a = coeffs
    b1, b2 = 2 * a, -a * a
    n = x.shape[0]
    causal = []
    y1 = y2 = x[0] / 2
    xm1 = x[0]
    for i in range(n):
        v = c0[i] * x[i] + c1[i] * xm1 + b1[i] * y1 + b2[i] * y2
        causal.append(v)
        y2, y1, xm1 = y1, v, x[i]
    anti = [None] * n
    y1 = y2 = x[n - 1] / 2
    for i in range(n - 1, -1, -1):
        x_next = x[i + 1] if i + 1 < n else x[n - 1]
        v = c2[i] * x[i] + c3[i] * x_next + b1[i] * y1 + b2[i] * y2
        anti[i] = v
        y2, y1 = y1, v
    return np.stack(causal) + np.stack(anti)


def _log_polar_deriche(sigma_map):
    """Each pixel's Deriche coefficients ``(c0, c1, c2, c3, a)`` of the log-polar blur (sigma not rounded to single
    precision, as VirtualRetina), and ``keep``: the pixels passed through unchanged (sigma below
    :data:`MIN_SIGMA_PX`)."""
    keep = sigma_map < MIN_SIGMA_PX
    return deriche_coefficients(np.where(keep, 1.0, sigma_map), single_precision_sigma=False), keep


def log_polar_gaussian_matrices(sigma_map):
    """Per-line matrices of the log-polar blur: ``(A_cols [H, W, W], A_rows [W, H, H])`` (float64 numpy).

    Row ``i`` of the image is blurred along x by ``A_cols[i]``, then column ``j`` along y by ``A_rows[j]``.
    Pixels with sigma < 0.1 px are passed through unchanged.
    """
    sigma_map = np.asarray(sigma_map, dtype=np.float64)
    h, w = sigma_map.shape
    coeffs, keep = _log_polar_deriche(sigma_map)

    def along(axis_len, other_len, take):
        mats = np.empty((other_len, axis_len, axis_len))
        eye = np.eye(axis_len)
        for j in range(other_len):
            c = tuple(take(np.asarray(ci), j) for ci in coeffs)
            m = _run_log_polar(eye, c)
            k = take(keep, j)
            m[k] = eye[k]
            mats[j] = m
        return mats
    a_cols = along(w, h, lambda arr, i: arr[i, :])
    a_rows = along(h, w, lambda arr, j: arr[:, j])
    return a_cols, a_rows


def log_polar_gaussian_blur(x, mats):
    """Applies the per-line matrices of :func:`log_polar_gaussian_matrices` to the last two axes of ``x``."""
    a_cols, a_rows = mats
    a_cols = torch.as_tensor(a_cols, dtype=x.dtype, device=x.device)
    a_rows = torch.as_tensor(a_rows, dtype=x.dtype, device=x.device)
    shape = x.shape
    h, w = shape[-2:]
    rows = x.reshape(-1, h, w).transpose(0, 1)                      # [H, N, W]
    y = torch.bmm(rows, a_cols.transpose(1, 2))                      # row i: y = x A_cols[i]^T
    cols = y.permute(2, 1, 0)                                        # [W, N, H]
    z = torch.bmm(cols, a_rows.transpose(1, 2))                      # column j: z = y A_rows[j]^T
    return z.permute(1, 2, 0).reshape(shape)


_LP_CACHE = OrderedDict()


def blur_operator(sigma_deg, pixel_per_degree, shape, dtype, device, log_polar=None, scale=1.0):
    """A callable that blurs the last two axes with sigma ``sigma_deg * scale`` degrees, or None (no blur).

    ``shape`` is (rows, columns).  ``log_polar=(fovea_radius_deg, scaling_factor_inv_deg)`` uses
    VirtualRetina's log-polar scheme (per-pixel sigmas, no gradient with respect to sigma).
    """
    sigma_px = sigma_deg * scale * pixel_per_degree
    if isinstance(sigma_px, torch.Tensor):
        sigma_px = sigma_px.reshape(-1)[0]
    h, w = shape
    if log_polar is None:
        a_cols = recursive_gaussian_matrix(sigma_px, w, dtype, device)
        a_rows = recursive_gaussian_matrix(sigma_px, h, dtype, device)
        if a_cols is None and a_rows is None:
            return None
        s = float(sigma_px.detach()) if isinstance(sigma_px, torch.Tensor) else float(sigma_px)
        return SeparableBlur(a_rows, a_cols, s, s)
    s = float(sigma_px.detach()) if isinstance(sigma_px, torch.Tensor) else float(sigma_px)
    if s < MIN_SIGMA_PX:
        return None
    key = (s, h, w, float(pixel_per_degree), tuple(float(v) for v in log_polar), dtype, str(device))
    cached = _LP_CACHE.get(key)
    if cached is None:
        sig = log_polar_sigma_map((h, w), s / pixel_per_degree, pixel_per_degree, *log_polar)
        a_cols, a_rows = log_polar_gaussian_matrices(sig)
        mats = tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in (a_cols, a_rows))
        cached = _LP_CACHE[key] = (mats, log_polar_coefficients(sig))
        while len(_LP_CACHE) > 32:
            _LP_CACHE.popitem(last=False)
    return PerLineBlur(*cached)


def log_polar_coefficients(sigma_map):
    """Each pixel's coefficients of the log-polar recursion (the filter of :func:`log_polar_gaussian_matrices`):
    ``(C [6, H, W], keep [H, W])`` float64 CPU tensors, ``C`` holding ``c0, c1, c2, c3`` and the feedback
    coefficients ``b1 = 2a``, ``b2 = -a^2``, ``keep`` 1 at the pixels passed through unchanged (sigma below
    :data:`MIN_SIGMA_PX` pixels).  The compiled loops run the recursion with them where that takes fewer
    operations than the matrices' bands."""
    sigma_map = np.asarray(sigma_map, dtype=np.float64)
    (c0, c1, c2, c3, a), keep = _log_polar_deriche(sigma_map)
    coeffs = np.stack([np.broadcast_to(v, sigma_map.shape) for v in (c0, c1, c2, c3, 2 * a, -a * a)])
    return torch.from_numpy(np.ascontiguousarray(coeffs)), torch.from_numpy(keep.astype(np.float64))


class PerLineBlur(object):
    """A blur with one matrix per line (VirtualRetina's log-polar scheme): ``mats = (A_cols [H, W, W],
    A_rows [W, H, H])`` of :func:`log_polar_gaussian_matrices`, applied along x then along y;
    ``coefficients``, where known, the recursion's own (:func:`log_polar_coefficients`)."""

    def __init__(self, mats, coefficients=None):
        self.mats = mats
        self.coefficients = coefficients

    def __call__(self, x):
        return log_polar_gaussian_blur(x, self.mats)
