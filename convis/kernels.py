"""Kernels: the numerical filters and sample kernels in one place, and :class:`ExponentialKernel`, a
differentiable exponential kernel whose time constant can be fitted.

>>> k = ExponentialKernel(tau=0.01, n=2, length=100)
>>> k().shape
torch.Size([100])
"""
import math

import torch

from .layer import Layer
from .numerical_filters import (exponential_filter_1d, exponential_filter_5d, exponential_highpass_filter_1d,  # noqa: F401
                                exponential_highpass_filter_5d, gauss_filter_2d, gauss_filter_5d)
from .samples import gabor_kernel, text_kernel  # noqa: F401
from .variables import Parameter

__all__ = ['ExponentialKernel', 'exponential_filter_1d', 'exponential_filter_5d', 'exponential_highpass_filter_1d',
           'exponential_highpass_filter_5d', 'gauss_filter_2d', 'gauss_filter_5d', 'text_kernel', 'gabor_kernel']


class ExponentialKernel(Layer):
    """A fixed-length kernel of ``n + 1`` cascaded exponential low-passes, differentiable in ``tau``.

    .. math::  h[k] = A\\,(1-e)^{n+1} \\binom{k+n}{n} e^k, \\qquad e = \\exp(-\\Delta t/\\tau), \\quad k = 0 \\dots L-1

    These are the first ``length`` samples of :func:`~convis.numerical_filters.exponential_filter_1d`
    (not normalised; the full kernel sums to ``A``).  ``dt`` comes from the layer's resolution when
    the kernel is computed (calling the layer with no input).

    Parameters
    ----------
    tau : float
        time constant of each stage in seconds
    n : int
        number of additional stages (0: one exponential)
    amplification : float
        the gain ``A`` (dimensionless)
    length : int
        number of taps ``L``
    """

    def __init__(self, tau=0.01, n=0, amplification=1.0, length=100):
        super().__init__()
        self.tau = Parameter(tau, doc='time constant of each exponential stage', unit='s', bounds=(0, None),
                             scale='log', slider_range=(0.001, 1.0))
        self.amplification = Parameter(amplification, doc='gain of the kernel (its sum over all taps)', unit='',
                                       bounds=(None, None), scale='linear', slider_range=(0.0, 10.0))
        self.n = int(n)
        self.length = int(length)
        if self.n < 0 or self.length < 1:
            raise ValueError('n must be >= 0 and length >= 1')

    def forward(self):
        k = torch.arange(self.length, dtype=self.tau.dtype, device=self.tau.device)
        log_e = -self.resolution.dt / torch.clamp(self.tau, min=1e-12)
        log_one_minus_e = torch.log(-torch.expm1(log_e))
        log_binom = torch.lgamma(k + self.n + 1) - torch.lgamma(k + 1) - math.lgamma(self.n + 1)
        return self.amplification * torch.exp((self.n + 1) * log_one_minus_e + log_binom + k * log_e)

    def extra_repr(self):
        return 'n=%d, length=%d' % (self.n, self.length)
