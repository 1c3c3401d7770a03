"""Each equation of the retina once: pure functions of tensors and a state tuple (norse style).

A kernel takes the input chunk, the state before it (a NamedTuple of tensors) and the parameters (a
NamedTuple of tensors or floats, in the units its docstring names: decays per step, blurs on pixels, rates in
Hz, ``dt`` in seconds), and returns the output and the state after it, so running two halves with the state
passed along equals one call on the whole chunk.  Nothing here knows a Layer, a Parameter or a Resolution:
the layers of :mod:`convis.filters` declare the parameters, convert units and call these kernels.

Each kernel runs a compiled C loop (:mod:`convis.native`) where it applies (CPU, no autograd; ``compiled=None``)
and its torch code otherwise; the torch code is the reference (autograd, any device), and ``compiled=False``
selects it, ``compiled=True`` requires the loop.

* :func:`exponential_recursion` (:mod:`.recursion`): ``y[s] = e y[s-1] + g x[s]``, time-parallel
* :func:`opl`, :func:`leaky_heat` (:mod:`.outer_plexiform`): the outer plexiform layer
* :func:`contrast_gain_control` (:mod:`.gain_control`): the bipolar stage
* :func:`ganglion_input`, :func:`smooth_rectifier` (:mod:`.ganglion`): transient, rectifier, pooling
* :func:`ganglion_lif` (:mod:`.lif`): noisy leaky integrate-and-fire cells, exact and event driven
* :func:`deriche_coefficients` (:mod:`.deriche`): the recursive Gaussian's coefficients

The counter-based noise the LIF draws is :func:`convis.noise.counter_normals`.
"""
from .deriche import deriche_coefficients
from .gain_control import SATURATION_HZ, GainControlParameters, GainControlState, contrast_gain_control
from .ganglion import GanglionInputParameters, GanglionInputState, ganglion_input, smooth_rectifier
from .lif import LIFParameters, LIFState, ganglion_lif
from .outer_plexiform import OPLParameters, OPLState, leaky_heat, opl
from .recursion import exponential_recursion

__all__ = ['deriche_coefficients', 'SATURATION_HZ', 'GainControlParameters', 'GainControlState',
           'contrast_gain_control', 'GanglionInputParameters', 'GanglionInputState', 'ganglion_input',
           'smooth_rectifier', 'LIFParameters', 'LIFState', 'ganglion_lif', 'OPLParameters', 'OPLState', 'leaky_heat',
           'opl', 'exponential_recursion']
