"""Izhikevich's simple model of spiking neurons, its 20 named presets, and refractory and adaptive variants.

The equations (and :data:`izhikevich_presets`) are in :mod:`convis.functional.izhikevich`; these layers declare
the parameters, keep the states and the noise generator, and call the kernels.
"""
import torch

from ...functional.izhikevich import (AdaptiveIzhikevichParameters, AdaptiveIzhikevichState,
                                     IzhikevichParameters, IzhikevichState, RefractoryIzhikevichParameters,
                                     RefractoryIzhikevichState, integrate_adaptive_izhikevich,
                                     integrate_izhikevich, integrate_refractory_izhikevich, izhikevich_presets)
from ...variables import Parameter
from .base import SpikingLayer, value

__all__ = ['IzhikevichNeuron', 'Izhikevich', 'RefractoryIzhikevichNeuron', 'AdaptiveIzhikevichNeuron',
           'izhikevich_presets']

_DEFAULTS, _REFRACTORY, _ADAPTIVE = (IzhikevichParameters(), RefractoryIzhikevichParameters(),
                                     AdaptiveIzhikevichParameters())  # the defaults of the kernels' parameters


def _preset(name):
    if name in izhikevich_presets:
        return izhikevich_presets[name]
    folded = {k.lower(): v for k, v in izhikevich_presets.items()}
    if isinstance(name, str) and name.lower() in folded:
        return folded[name.lower()]
    raise KeyError('no Izhikevich preset %r; the presets are: %s' % (name, ', '.join(izhikevich_presets)))


class IzhikevichNeuron(SpikingLayer):
    """Izhikevich's simple spiking neuron at every pixel (time in ms, potentials in mV).

    .. math::

        \\dot v = 0.04 v^2 + 5 v + 140 - u + I, \\qquad \\dot u = a (b v - u), \\qquad
        v \\geq v_{peak} \\Rightarrow \\text{spike}, v \\leftarrow c, u \\leftarrow u + d

    The dots are derivatives per millisecond (Izhikevich's units); each step of the input is split into
    Euler sub-steps of at most ``max_substep`` seconds (0.5 ms, as Izhikevich integrated ``v``), so the
    dynamics follow time in seconds at any step size.  The input ``I`` is held constant over a step.
    ``v`` starts at ``c`` and ``u`` at ``b c``.  :meth:`load_parameters_by_name` sets one of the 20
    behaviours of :data:`izhikevich_presets` ('Tonic spiking', 'Phasic bursting', ...).

    Parameters (``.p``)
    -------------------
    a : 1/ms
        rate of the recovery variable ``u``
    b : dimensionless
        sensitivity of ``u`` to ``v``
    c : mV
        reset potential after a spike
    d : mV/ms
        increment of ``u`` after a spike
    threshold : mV
        spike peak ``v_peak`` at which ``v`` is reset (30 mV)
    noise_sigma : mV/sqrt(ms)
        white noise on ``v`` (each sub-step of ``h`` ms adds ``noise_sigma sqrt(h)`` times a normal draw)

    Arguments: ``output_only_spikes=False`` returns the channels ``[spikes, v, u]`` (values at the end
    of each step); ``count_spikes=True`` counts the spikes in a step instead of 0/1; ``preset`` loads
    a named behaviour; ``seed`` seeds the noise.

    Examples
    --------
    >>> n = convis.filters.spiking.IzhikevichNeuron(preset='Tonic spiking')
    >>> o = n.run(n.recommended_input * np.ones((1000, 1, 1)), dt=500)
    """
    output_names = ('v', 'u')
    _kernel, _state_type, _parameter_type = integrate_izhikevich, IzhikevichState, IzhikevichParameters

    def __init__(self, output_only_spikes=True, preset=None, count_spikes=False, max_substep=0.0005, seed=None):
        super().__init__(seed=seed)
        self.output_only_spikes = bool(output_only_spikes)
        self.count_spikes = bool(count_spikes)
        if not max_substep > 0:
            raise ValueError('max_substep must be a positive time in seconds, not %r' % (max_substep,))
        self.max_substep = float(max_substep)
        self.a = Parameter(_DEFAULTS.a, doc='rate of the recovery variable u', unit='1/ms', bounds=(None, None),
                           scale='linear', slider_range=(-0.05, 1.0), requires_grad=False)
        self.b = Parameter(_DEFAULTS.b, doc='sensitivity of the recovery variable u to v', unit='', bounds=(None, None),
                           scale='linear', slider_range=(-1.0, 1.5), requires_grad=False)
        self.c = Parameter(_DEFAULTS.c, doc='reset potential of v after a spike', unit='mV', bounds=(None, None),
                           scale='linear', slider_range=(-80.0, -40.0), requires_grad=False)
        self.d = Parameter(_DEFAULTS.d, doc='increment of the recovery variable u after a spike', unit='mV/ms',
                           bounds=(None, None), scale='linear', slider_range=(-25.0, 10.0), requires_grad=False)
        self.threshold = Parameter(_DEFAULTS.threshold,
                                   doc='spike peak: v is reset when it reaches this value', unit='mV',
                                   bounds=(None, None), scale='linear', slider_range=(0.0, 40.0),
                                   requires_grad=False)
        self.noise_sigma = Parameter(_DEFAULTS.noise_sigma,
                                     doc='white noise on v (standard deviation after 1 ms)', unit='mV/sqrt(ms)',
                                     bounds=(0.0, None), scale='linear', slider_range=(0.0, 5.0),
                                     requires_grad=False)
        self.recommended_input = None
        self.register_state('v', None)
        self.register_state('u', None)
        self._init_extra()
        if preset is not None:
            self.load_parameters_by_name(preset)

    def _init_extra(self):
        pass

    def load_parameters_by_name(self, name=None):
        """Sets ``a, b, c, d`` to a named behaviour and returns its recommended input.

        Without a name, returns the list of names (see :data:`izhikevich_presets`).  Unknown names
        raise a ``KeyError`` that lists the names.  The recommended input is also kept as
        ``self.recommended_input``.
        """
        if name is None:
            return list(izhikevich_presets)
        a, b, c, d, current = _preset(name)
        self.a.set(a)
        self.b.set(b)
        self.c.set(c)
        self.d.set(d)
        self.recommended_input = current
        return current

    def _init_states(self, shape, x):
        v = self._check_state('v', shape)
        u = self._check_state('u', shape)
        if v is None:
            v = value(self.c, x).expand(shape).clone()
        if u is None:
            u = (value(self.b, x) * v).expand(shape).clone()
        extra = []
        for name in self._state_type._fields[2:]:
            s = self._check_state(name, shape)
            extra.append(torch.zeros(shape, device=x.device, dtype=x.dtype) if s is None else s)
        return self._state_type(v, u, *extra)

    def kernel_parameters(self, x):
        """The parameter tuple of this neuron's kernel in :mod:`convis.functional.izhikevich` for input like ``x``."""
        fields = self._parameter_type._fields
        return self._parameter_type(*(value(getattr(self, f), x) for f in fields[:-1]), float(self.max_substep))

    def forward(self, x):
        shape = self._state_shape(x)
        dt = self._dt()
        gen = self._generator(x.device)
        state = self._init_states(shape, x)
        record = None if self.output_only_spikes else {}
        spikes, state = type(self)._kernel(x, state, self.kernel_parameters(x), dt, gen, self.count_spikes, record)
        for name, s in zip(state._fields, state):
            setattr(self, name, s)
        self._keep_generator(gen)
        return spikes if record is None else torch.cat([spikes] + [record[n] for n in self.output_names], dim=1)


Izhikevich = IzhikevichNeuron


class RefractoryIzhikevichNeuron(IzhikevichNeuron):
    """An Izhikevich neuron whose ``v`` is held at ``c`` for a random refractory period after each spike.

    .. math::

        v \\geq v_{peak} \\Rightarrow \\text{spike}, u \\leftarrow u + d, v \\leftarrow c
        \\text{ for } t_{refr} \\sim \\max(0, \\mathcal{N}(\\mu_{refr}, \\sigma_{refr}))

    Between spikes as :class:`IzhikevichNeuron` (``u`` keeps evolving while ``v`` is held).  The
    refractory period is counted in seconds, at the resolution of the sub-steps.

    Parameters (``.p``): those of :class:`IzhikevichNeuron`, and ``refr_mu`` (s, mean refractory
    period) and ``refr_sigma`` (s, its standard deviation).

    Examples
    --------
    >>> n = convis.filters.spiking.RefractoryIzhikevichNeuron(preset='Tonic spiking')
    >>> n.p.refr_mu = 0.02
    >>> o = n.run(30.0 * np.ones((1000, 1, 1)), dt=500)
    """

    def _init_extra(self):
        self.refr_mu = Parameter(_REFRACTORY.refr_mu,
                                 doc='mean refractory period after a spike', unit='s', bounds=(0.0, None),
                                 scale='linear', slider_range=(0.0, 0.05), requires_grad=False)
        self.refr_sigma = Parameter(_REFRACTORY.refr_sigma, doc='standard deviation of the refractory period', unit='s',
                                    bounds=(0.0, None), scale='linear', slider_range=(0.0, 0.01),
                                    requires_grad=False)
        self.register_state('refractory', None)

    _kernel = integrate_refractory_izhikevich
    _state_type, _parameter_type = RefractoryIzhikevichState, RefractoryIzhikevichParameters


class AdaptiveIzhikevichNeuron(IzhikevichNeuron):
    """An Izhikevich neuron with a spike-triggered adaptation current ``w`` that slows its firing.

    .. math::

        \\dot v = 0.04 v^2 + 5 v + 140 - u + I - w, \\qquad
        \\tau_w \\dot w = -w, \\qquad \\text{spike} \\Rightarrow w \\leftarrow w + \\Delta w

    Otherwise as :class:`IzhikevichNeuron`; ``w`` starts at 0, and ``output_only_spikes=False``
    returns the channels ``[spikes, v, u, w]``.

    Parameters (``.p``): those of :class:`IzhikevichNeuron`, and ``tau_adaptation`` (s, decay time
    of ``w``) and ``adaptation_increment`` (input units, the jump of ``w`` at each spike).

    Examples
    --------
    >>> n = convis.filters.spiking.AdaptiveIzhikevichNeuron(preset='Tonic spiking')
    >>> o = n.run(14.0 * np.ones((2000, 1, 1)), dt=500)   # the intervals grow, then settle
    """
    output_names = ('v', 'u', 'w')

    def _init_extra(self):
        self.tau_adaptation = Parameter(_ADAPTIVE.tau_adaptation,
                                        doc='decay time of the adaptation current w', unit='s',
                                        bounds=(1e-6, None), scale='log', slider_range=(0.005, 2.0),
                                        requires_grad=False)
        self.adaptation_increment = Parameter(_ADAPTIVE.adaptation_increment,
                                              doc='increment of the adaptation current w at each spike',
                                              unit='input', bounds=(None, None), scale='linear',
                                              slider_range=(0.0, 10.0), requires_grad=False)
        self.register_state('w', None)

    _kernel = integrate_adaptive_izhikevich
    _state_type, _parameter_type = AdaptiveIzhikevichState, AdaptiveIzhikevichParameters
