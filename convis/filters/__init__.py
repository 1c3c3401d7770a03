"""Building blocks of the models: convolutions with memory, recursive temporal and spatial filters,
nonlinearities, spiking neurons and the retina stages.

Submodules: :mod:`~convis.filters.conv` (Conv3d, Conv2d, Conv1d, RF), :mod:`~convis.filters.temporal`
(recursive low-/high-pass, cascades, delays), :mod:`~convis.filters.nonlinear` (NL*, Sum, Diff),
:mod:`~convis.filters.simple` (L, LN, SmoothConv), :mod:`~convis.filters.spatial` (recursive Gaussian),
:mod:`~convis.filters.spiking` (spiking neurons) and :mod:`~convis.filters.retina` (retina stages).

>>> import convis
>>> conv = convis.filters.Conv3d(1, (20, 1, 1)).exponential(0.005)
>>> conv.kernel_size
(35, 1, 1)
"""
from . import conv, nonlinear, simple, temporal
from .conv import Conv1d, Conv2d, Conv3d, RF
from .nonlinear import NL, Diff, NLRectify, NLRectifyScale, NLRectifySquare, NLSigmoid, NLSquare, Sum, sum
from .simple import LN, L, SmoothConv
from .temporal import (Delay, TemporalHighPassFilterRecursive, TemporalLowPassCascade, TemporalLowPassFilterRecursive,
                       TimePadding, VariableDelay)
from . import spatial, spiking, retina  # noqa: E402

__all__ = ['TimePadding', 'Delay', 'VariableDelay', 'Conv3d', 'Conv2d', 'Conv1d', 'RF', 'L', 'LN',
           'TemporalLowPassFilterRecursive', 'TemporalHighPassFilterRecursive', 'TemporalLowPassCascade',
           'SmoothConv', 'NLRectify', 'NLSquare', 'NLRectifyScale', 'NLRectifySquare', 'NLSigmoid', 'NL',
           'Sum', 'sum', 'Diff', 'conv', 'temporal', 'nonlinear', 'simple', 'spatial', 'spiking', 'retina']



def _reexport(modules):
    for module in modules:
        for name in getattr(module, '__all__', ()):
            if name not in globals() and hasattr(module, name):
                globals()[name] = getattr(module, name)
                __all__.append(name)


_reexport((spatial, spiking, retina))
