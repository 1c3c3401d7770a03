"""Leaky integrate-and-fire neurons, integrated exactly between steps (with and without refractory periods).

The equations are :func:`convis.functional.lif_neuron.integrate_lif` and
:func:`~convis.functional.lif_neuron.integrate_refractory_lif`; these layers declare the parameters, keep the
states and the noise generator, and call them.
"""
import torch

from ...functional.lif_neuron import (LIFNeuronParameters, LIFNeuronState, RefractoryLIFNeuronParameters,
                                     RefractoryLIFNeuronState, integrate_lif, integrate_refractory_lif,
                                     lif_initial_potential)
from ...variables import Parameter
from .base import SpikingLayer, value

__all__ = ['LeakyIntegrateAndFireNeuron', 'RefractoryLeakyIntegrateAndFireNeuron']

_DEFAULTS = RefractoryLIFNeuronParameters()  # the default of every parameter of the kernels


class LeakyIntegrateAndFireNeuron(SpikingLayer):
    """A leaky integrate-and-fire neuron at every pixel, solved exactly between steps.

    .. math::

        \\frac{dV}{dt} = \\frac{I(t)}{\\tau} - g_L V + \\sigma_V \\sqrt{2 g_L}\\, \\eta(t),
        \\qquad V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0

    **Input convention.** The input ``I`` is dimensionless, in units of the threshold per ``tau``
    seconds: held for ``tau`` seconds, an input of 1 raises ``V`` by 1 (before the leak), so the drive
    is ``I/tau`` thresholds per second.  With the defaults (``tau`` = 20 ms, ``g_L`` = 50 Hz, so
    ``g_L tau = 1``) this is the textbook ``tau dV/dt = I - V``: the input is the potential that ``V``
    settles at, and inputs above 1 fire.  ``tau`` is a time in seconds, not a step, so the same stimulus
    (in seconds) gives the same spikes at any step size.  ``tau`` = 1 s reads the input as a current
    in thresholds per second (VirtualRetina's ganglion current in Hz); ``tau`` = 1 ms at 1000 steps/s
    gives the per-step increments of earlier convis versions.

    **Integration.** Over each step the input (and the noise current) is held constant and the equation
    is solved exactly, including the moment within the step where ``V`` reaches 1 and the restart from 0
    after it.  A constant input ``I > g_L tau`` therefore fires at the rate

    .. math:: r = g_L / \\ln\\left(\\frac{I}{I - g_L \\tau}\\right)

    at every step size.  A neuron that fires faster than the steps fires several times within a step;
    the output then says 1 (or, with ``count_spikes=True``, the number of spikes), and the membrane
    potential stays exact.  The noise is a current, constant within a
    step and drawn anew each step, scaled so that the free membrane potential fluctuates with standard
    deviation ``noise_sigma`` at every step size.

    Parameters (``.p``)
    -------------------
    g_L : Hz
        leak conductance (the inverse membrane time constant); VirtualRetina ``g-leak__Hz``
    tau : s
        input time constant (see the input convention above)
    noise_sigma : threshold units
        standard deviation of the membrane noise; VirtualRetina ``sigma-V``
    random_init : dimensionless, 0 to 1
        ``V`` starts uniformly distributed in ``[0, random_init)``; VirtualRetina ``random-init``

    Arguments: ``output_only_spikes=True`` returns the spikes (a float tensor of 0/1 per step) with
    the input's shape; ``False`` appends the membrane potential at the end of each step as channels
    (``[spikes, V]`` along the channel axis).  ``count_spikes=True`` returns the number of spikes in
    each step instead of 0/1.  ``seed`` seeds the noise (see :mod:`.base`).

    Examples
    --------
    >>> spk = convis.filters.spiking.LeakyIntegrateAndFireNeuron()
    >>> spk.p.g_L = 1.0
    >>> o = spk.run(20.0 * convis.samples.moving_grating(), dt=100)
    >>> float(o[0].mean())  # spikes per pixel and step: about 0.18 (180 spikes/s)
    """

    def __init__(self, output_only_spikes=True, count_spikes=False, seed=None, **kwargs):
        super().__init__(seed=seed)
        self.output_only_spikes = bool(output_only_spikes)
        self.count_spikes = bool(count_spikes)
        self.g_L = Parameter(_DEFAULTS.g_L,
                             doc='leak conductance: the inverse of the membrane time constant', unit='Hz',
                             retina_config_key='g-leak__Hz', bounds=(0.0, None), scale='log',
                             slider_range=(0.1, 1000.0), requires_grad=False)
        self.tau = Parameter(_DEFAULTS.tau, doc='input time constant: an input of 1 held for tau seconds raises V by 1 '
                             '(the drive is input/tau thresholds per second)', unit='s', bounds=(1e-9, None),
                             scale='log', slider_range=(1e-4, 1.0), requires_grad=False)
        self.noise_sigma = Parameter(_DEFAULTS.noise_sigma,
                                     doc='standard deviation of the noise of the membrane potential',
                                     unit='threshold', retina_config_key='sigma-V', bounds=(0.0, None),
                                     scale='linear', slider_range=(0.0, 1.0), requires_grad=False)
        self.random_init = Parameter(1.0, doc='the membrane potential starts uniformly distributed in '
                                     '[0, random_init) (0: all start at rest)', unit='', bounds=(0.0, 1.0),
                                     retina_config_key='random-init', scale='linear', slider_range=(0.0, 1.0),
                                     requires_grad=False)
        self.register_state('V', None)
        self._init_extra(**kwargs)

    def _init_extra(self, **kwargs):
        if kwargs:
            raise TypeError('%s got unexpected arguments %s' % (type(self).__name__, sorted(kwargs)))

    def _initial_V(self, shape, x, gen):
        return lif_initial_potential(shape, value(self.random_init, x), gen, x)

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.lif_neuron.LIFNeuronParameters` of
        :func:`convis.functional.lif_neuron.integrate_lif` for input like ``x``."""
        return LIFNeuronParameters(value(self.g_L, x), value(self.tau, x), value(self.noise_sigma, x))

    def _output(self, spikes, record):
        return spikes if self.output_only_spikes else torch.cat([spikes, record['V']], dim=1)

    def forward(self, x):
        shape = self._state_shape(x)
        dt = self._dt()
        gen = self._generator(x.device)
        V = self._check_state('V', shape)
        if V is None:
            V = self._initial_V(shape, x, gen)
        record = None if self.output_only_spikes else {}
        spikes, (self.V,) = integrate_lif(x, LIFNeuronState(V), self.kernel_parameters(x), dt, gen,
                                          self.count_spikes, record)
        self._keep_generator(gen)
        return self._output(spikes, record)


class RefractoryLeakyIntegrateAndFireNeuron(LeakyIntegrateAndFireNeuron):
    """A leaky integrate-and-fire neuron that is held at 0 for a random refractory period after each spike.

    .. math::

        \\frac{dV}{dt} = \\frac{I(t)}{\\tau} - g_L V + \\sigma_V \\sqrt{2 g_L}\\, \\eta(t)
        \\quad\\text{(while not refractory)}, \\qquad
        V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0 \\text{ for } t_{refr} \\sim
        \\max(0, \\mathcal{N}(\\mu_{refr}, \\sigma_{refr}))

    The generic twin of VirtualRetina's ganglion cells (its configuration keys map onto the parameters),
    with the input convention of :class:`LeakyIntegrateAndFireNeuron` (``tau = 1`` s reads the input as
    VirtualRetina's current in Hz).  Spike times within a step and refractory periods are continuous:
    the refractory period is in seconds, not in steps, and may end in the middle of a step.  A constant
    input then fires at the rate

    .. math:: r = 1 / \\left(\\mu_{refr} + \\ln\\left(\\frac{I}{I - g_L \\tau}\\right) / g_L\\right)

    (without noise and ``refr_sigma`` = 0), at every step size.  When a refractory period is shorter
    than a step the neuron can fire again within the step; those further spikes use the mean
    refractory period ``refr_mu``.

    Parameters (``.p``)
    -------------------
    g_L, tau, noise_sigma, random_init
        as in :class:`LeakyIntegrateAndFireNeuron`
    refr_mu : s
        mean refractory period; VirtualRetina ``refr-mean__sec``
    refr_sigma : s
        standard deviation of the refractory period (drawn anew after every spike, negative draws
        count as 0); VirtualRetina ``refr-stdev__sec``

    Examples
    --------
    >>> n = convis.filters.spiking.RefractoryLeakyIntegrateAndFireNeuron(seed=0)
    >>> n.p.refr_mu = 0.005
    >>> o = n.run(2.0 * np.ones((1000, 10, 10)), dt=200)   # 1/(5 ms + 20 ms ln 2) = 53 spikes/s
    """

    def _init_extra(self, **kwargs):
        self.refr_mu = Parameter(_DEFAULTS.refr_mu, doc='mean refractory period after a spike', unit='s',
                                 retina_config_key='refr-mean__sec', bounds=(0.0, None), scale='linear',
                                 slider_range=(0.0, 0.02), requires_grad=False)
        self.refr_sigma = Parameter(_DEFAULTS.refr_sigma, doc='standard deviation of the refractory period', unit='s',
                                    retina_config_key='refr-stdev__sec', bounds=(0.0, None), scale='linear',
                                    slider_range=(0.0, 0.01), requires_grad=False)
        self.register_state('refractory', None)
        super()._init_extra(**kwargs)

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.lif_neuron.RefractoryLIFNeuronParameters` of
        :func:`convis.functional.lif_neuron.integrate_refractory_lif` for input like ``x``."""
        return RefractoryLIFNeuronParameters(value(self.g_L, x), value(self.tau, x), value(self.noise_sigma, x),
                                             value(self.refr_mu, x), value(self.refr_sigma, x))

    def forward(self, x):
        shape = self._state_shape(x)
        dt = self._dt()
        gen = self._generator(x.device)
        V = self._check_state('V', shape)
        R = self._check_state('refractory', shape)
        if V is None:
            V = self._initial_V(shape, x, gen)
        if R is None:
            R = torch.zeros(shape, device=x.device, dtype=x.dtype)
        record = None if self.output_only_spikes else {}
        spikes, (self.V, self.refractory) = integrate_refractory_lif(
            x, RefractoryLIFNeuronState(V, R), self.kernel_parameters(x), dt, gen, self.count_spikes, record)
        self._keep_generator(gen)
        return self._output(spikes, record)
