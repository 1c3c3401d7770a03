"""Spiking neurons: every pixel of the input drives one neuron (per batch entry and channel).

All neurons take 5-d input ``[batch, channel, time, x, y]`` and return spikes as a float tensor of
the same shape (0 or 1 per step; the event sensor counts events).  Time constants are in seconds and
are converted with the layer's resolution at every chunk, so rates do not depend on the step size.
Noise comes from a seedable generator per layer that is part of the state, so chunked runs equal
whole runs exactly (see :mod:`convis.filters.spiking.base`).

========================================== ===================================================
:class:`LeakyIntegrateAndFireNeuron`         LIF, solved exactly between steps
:class:`RefractoryLeakyIntegrateAndFireNeuron` LIF with refractory periods (VirtualRetina keys)
:class:`Poisson`                             Bernoulli spikes at a rate in Hz
:class:`IzhikevichNeuron` (``Izhikevich``)   Izhikevich's simple model, 20 named presets
:class:`RefractoryIzhikevichNeuron`          ... with refractory periods
:class:`AdaptiveIzhikevichNeuron`            ... with a spike-triggered adaptation current
:class:`FitzHughNagumo`                      FitzHugh-Nagumo oscillator
:class:`HodgkinHuxley` (``HogkinHuxley``)    the squid-axon model
:class:`IntegrativeMotionSensor`             ON/OFF events of a level-crossing (DVS-like) sensor
========================================== ===================================================

>>> spk = convis.filters.spiking.LeakyIntegrateAndFireNeuron()
>>> spk.p.g_L = 1.0
>>> o = spk.run(20.0 * convis.samples.moving_grating(), dt=100)
"""
from .base import SpikingLayer
from .lif import LeakyIntegrateAndFireNeuron, RefractoryLeakyIntegrateAndFireNeuron
from .events import Poisson, IntegrativeMotionSensor
from .izhikevich import (IzhikevichNeuron, Izhikevich, RefractoryIzhikevichNeuron, AdaptiveIzhikevichNeuron,
                         izhikevich_presets)
from .biophysical import FitzHughNagumo, HodgkinHuxley, HogkinHuxley

_izhikevich_parameters = izhikevich_presets

__all__ = ['SpikingLayer', 'LeakyIntegrateAndFireNeuron', 'RefractoryLeakyIntegrateAndFireNeuron', 'Poisson',
           'IntegrativeMotionSensor', 'IzhikevichNeuron', 'Izhikevich', 'RefractoryIzhikevichNeuron',
           'AdaptiveIzhikevichNeuron', 'izhikevich_presets', 'FitzHughNagumo', 'HodgkinHuxley', 'HogkinHuxley']
