"""The coefficients of the order-0 Deriche filter: VirtualRetina's recursive Gaussian blur.

Sigmas are in pixels.  :mod:`convis.filters.spatial` builds the blur operators from them, and the compiled
loops (:mod:`convis.functional.retina_loops`) run the recursion itself.
"""
import numpy as np
import torch

__all__ = ['deriche_coefficients']

_ALPHA_CONSTANT = float(np.float32(1.695))


def _round_f32(sigma):
    """Rounds to single precision (a straight-through rounding for tensors, so gradients pass)."""
    if isinstance(sigma, torch.Tensor):
        s64 = sigma.to(torch.float64)
        return s64 + (s64.to(torch.float32).to(torch.float64) - s64).detach()
    return float(np.float32(sigma))


def deriche_coefficients(sigma_px, single_precision_sigma=True):
    """Coefficients ``(c0, c1, c2, c3, a)`` of the order-0 Deriche filter for ``sigma_px`` pixels.

    ``c0 = k``, ``c1 = k(alpha-1)a``, ``c2 = k(alpha+1)a``, ``c3 = -k a^2``; the feedback
    coefficients are ``2a`` and ``-a^2``.  Works on floats, numpy arrays and tensors (per-pixel sigmas).
    The uniform filter rounds sigma to single precision first (``single_precision_sigma``), the
    log-polar one does not (as VirtualRetina).

    >>> c0, c1, c2, c3, a = deriche_coefficients(2.0)
    >>> round((c0 + c1 + c2 + c3) / (1 - a) ** 2, 12)  # unit DC gain
    1.0
    """
    if isinstance(sigma_px, torch.Tensor):
        s = _round_f32(sigma_px) if single_precision_sigma else sigma_px.to(torch.float64)
        exp = torch.exp
    else:
        s = np.asarray(sigma_px, dtype=np.float64)
        s = np.float32(s).astype(np.float64) if single_precision_sigma else s
        s = float(s) if s.ndim == 0 else s
        exp = np.exp
    alpha = _ALPHA_CONSTANT / s
    a = exp(-alpha)
    k = (1 - a) ** 2 / (1 + 2 * alpha * a - a * a)
    return k, k * (alpha - 1) * a, k * (alpha + 1) * a, -k * a * a, a
