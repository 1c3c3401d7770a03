"""Small filters built from the basic ones: a linear and a linear-rectified convolution, and :class:`SmoothConv`.

The full models (with replaceable nonlinearities, receptive fields and cascades) are in
:mod:`convis.models`.
"""
import torch

from .conv import Conv3d
from .temporal import TemporalLowPassFilterRecursive
from ..layer import Layer

__all__ = ['L', 'LN', 'SmoothConv']


class L(Conv3d):
    """A linear spatio-temporal filter: a :class:`~convis.filters.Conv3d` with memory, padded in space.

    .. math::  y = w * x

    Parameters
    ----------
    kernel_dim : (t, x, y)
        kernel size in frames and pixels (the kernel starts at zero)
    bias : bool
        whether to add a bias

    >>> L((5, 3, 3)).set_weight(np.ones((5, 3, 3))).kernel_size
    (5, 3, 3)
    """

    def __init__(self, kernel_dim=(1, 1, 1), bias=False):
        super().__init__(1, 1, kernel_dim, bias=bias, time_pad=True, autopad=True)


class LN(L):
    """A linear filter followed by a rectification.

    .. math::  y = \\max(w * x, 0)

    Parameters as :class:`L`.

    >>> LN((5, 3, 3)).set_weight(-np.ones((5, 3, 3)))(np.ones((10, 4, 4))).max().item()
    0.0
    """

    def forward(self, x):
        return torch.clamp(super().forward(x), min=0)


class SmoothConv(Layer):
    """A long temporal receptive field made cheaply: a cascade of low-passes, each stage read out by a spatial filter.

    .. math::  y = \\sum_{i=1}^{n} g_i * E_\\tau^{(i)} x, \\qquad E_\\tau^{(i)} = i \\text{ low-passes in series}

    The time constant is fixed (not fitted); the spatial filters ``g[i]`` start with small random
    weights and are fitted.

    Parameters
    ----------
    n : int
        number of low-pass stages (and spatial filters)
    tau : float
        time constant of each stage in seconds
    spatial_filter : (x, y)
        size of each spatial kernel in pixels

    >>> SmoothConv(n=2, tau=0.01, spatial_filter=(3, 3)).run(np.ones((50, 5, 5)), dt=10)[0].shape
    torch.Size([1, 1, 50, 5, 5])
    """

    def __init__(self, n=3, tau=0.1, spatial_filter=(10, 10)):
        super().__init__()
        self.e = torch.nn.ModuleList([TemporalLowPassFilterRecursive(tau, requires_grad=False) for _ in range(int(n))])
        self.g = torch.nn.ModuleList()
        for _ in range(int(n)):
            conv = Conv3d(1, 1, (1,) + tuple(spatial_filter), bias=False)
            conv.set_weight(0.01 * torch.randn(tuple(spatial_filter)))
            self.g.append(conv)

    def get_all_components(self, x):
        """Every component ``g_i * E^(i) x``, stacked along the channel axis."""
        components = []
        for e, g in zip(self.e, self.g):
            x = e(x)
            components.append(g(x))
        return torch.cat(components, dim=1)

    def forward(self, x):
        return self.get_all_components(x).sum(dim=1, keepdim=True)
