"""Each equation of the retina and of the generic spiking neurons once: pure functions of tensors and a state tuple.

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

The generic neurons of :mod:`convis.filters.spiking` (torch code only; their noise comes from a
:class:`torch.Generator` handed to the kernel, drawn in a fixed order; checks shared in :mod:`.neuron_base`):

* :func:`integrate_lif`, :func:`integrate_refractory_lif` (:mod:`.lif_neuron`): exact leaky integrate-and-fire
* :func:`integrate_izhikevich`, :func:`integrate_refractory_izhikevich`, :func:`integrate_adaptive_izhikevich`
  (:mod:`.izhikevich`, with :data:`izhikevich_presets`)
* :func:`integrate_fitzhugh_nagumo` (:mod:`.fitzhugh_nagumo`), :func:`integrate_hodgkin_huxley`
  (:mod:`.hodgkin_huxley`)
* :func:`poisson_spikes`, :func:`sensor_events` (:mod:`.events`): Poisson spikes, a level-crossing sensor

The counter-based noise the LIF draws is :func:`convis.noise.counter_normals`.
"""
from .deriche import deriche_coefficients
from .events import MotionSensorParameters, MotionSensorState, poisson_spikes, sensor_events
from .fitzhugh_nagumo import (FitzHughNagumoParameters, FitzHughNagumoState, fitzhugh_nagumo_resting_point,
                              integrate_fitzhugh_nagumo)
from .gain_control import SATURATION_HZ, GainControlParameters, GainControlState, contrast_gain_control
from .ganglion import GanglionInputParameters, GanglionInputState, ganglion_input, smooth_rectifier
from .hodgkin_huxley import HodgkinHuxleyParameters, HodgkinHuxleyState, integrate_hodgkin_huxley
from .izhikevich import (AdaptiveIzhikevichParameters, AdaptiveIzhikevichState, IzhikevichParameters,
                         IzhikevichState, RefractoryIzhikevichParameters, RefractoryIzhikevichState,
                         integrate_adaptive_izhikevich, integrate_izhikevich, integrate_refractory_izhikevich,
                         izhikevich_presets)
from .lif import LIFParameters, LIFState, ganglion_lif
from .lif_neuron import (LIFNeuronParameters, LIFNeuronState, RefractoryLIFNeuronParameters,
                         RefractoryLIFNeuronState, integrate_lif, integrate_refractory_lif, lif_initial_potential)
from .outer_plexiform import OPLParameters, OPLState, leaky_heat, opl
from .recursion import exponential_recursion

__all__ = ['deriche_coefficients', 'SATURATION_HZ', 'GainControlParameters', 'GainControlState',
           'contrast_gain_control', 'GanglionInputParameters', 'GanglionInputState', 'ganglion_input',
           'smooth_rectifier', 'LIFParameters', 'LIFState', 'ganglion_lif', 'OPLParameters', 'OPLState', 'leaky_heat',
           'opl', 'exponential_recursion',
           'LIFNeuronParameters', 'LIFNeuronState', 'RefractoryLIFNeuronParameters', 'RefractoryLIFNeuronState',
           'integrate_lif', 'integrate_refractory_lif', 'lif_initial_potential', 'izhikevich_presets',
           'IzhikevichParameters', 'IzhikevichState', 'RefractoryIzhikevichParameters', 'RefractoryIzhikevichState',
           'AdaptiveIzhikevichParameters', 'AdaptiveIzhikevichState', 'integrate_izhikevich',
           'integrate_refractory_izhikevich', 'integrate_adaptive_izhikevich', 'FitzHughNagumoParameters',
           'FitzHughNagumoState', 'fitzhugh_nagumo_resting_point', 'integrate_fitzhugh_nagumo',
           'HodgkinHuxleyParameters', 'HodgkinHuxleyState', 'integrate_hodgkin_huxley', 'poisson_spikes',
           'MotionSensorParameters', 'MotionSensorState', 'sensor_events']
