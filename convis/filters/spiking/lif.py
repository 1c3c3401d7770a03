"""Leaky integrate-and-fire neurons, integrated exactly between steps (with and without refractory periods)."""
import torch

from ...variables import Parameter
from .base import SpikingLayer, positive_rate, value

__all__ = ['LeakyIntegrateAndFireNeuron', 'RefractoryLeakyIntegrateAndFireNeuron']


def _leak_constants(g, sigma, dt, dtype):
    """Decay ``a = exp(-g dt)``, input gain ``b = (1 - a)/g`` and noise current scale per step (float64 maths)."""
    g64, s64 = g.double(), sigma.double()
    em = torch.expm1(-g64 * dt)
    a, b = 1.0 + em, -em / g64
    noise = s64 * torch.sqrt(-torch.expm1(-2.0 * g64 * dt)) / b
    return a.to(dtype), b.to(dtype), noise.to(dtype)


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
        self.g_L = Parameter(50.0, doc='leak conductance: the inverse of the membrane time constant', unit='Hz',
                             retina_config_key='g-leak__Hz', bounds=(0.0, None), scale='log',
                             slider_range=(0.1, 1000.0), requires_grad=False)
        self.tau = Parameter(0.02, doc='input time constant: an input of 1 held for tau seconds raises V by 1 '
                             '(the drive is input/tau thresholds per second)', unit='s', bounds=(1e-9, None),
                             scale='log', slider_range=(1e-4, 1.0), requires_grad=False)
        self.noise_sigma = Parameter(0.1, doc='standard deviation of the noise of the membrane potential',
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
        u = torch.rand(shape, generator=gen, device=x.device, dtype=x.dtype)
        return value(self.random_init, x) * u

    @staticmethod
    def _result(x, spikes, potentials):
        """Stacks the per-step lists along time: spikes (as floats), then the potentials as channels."""
        out = torch.stack(spikes, dim=2).to(x.dtype)
        return out if potentials is None else torch.cat([out, torch.stack(potentials, dim=2)], dim=1)

    def forward(self, x):
        shape = self._state_shape(x)
        dt = self._dt()
        gen = self._generator(x.device)
        V = self._check_state('V', shape)
        if V is None:
            V = self._initial_V(shape, x, gen)
        g = positive_rate(self.g_L, x)
        a, b, noise = _leak_constants(g, value(self.noise_sigma, x), dt, x.dtype)
        drive = x / value(self.tau, x)
        noisy = bool((noise > 0).any())
        tiny = torch.finfo(x.dtype).tiny
        inv_g, neg_g = 1.0 / g, -g
        spikes, potentials = [], [] if not self.output_only_spikes else None
        for k in range(x.shape[2]):
            J = drive[:, :, k]
            if noisy:
                J = J + noise * torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype)
            V_free = torch.addcmul(b * J, a, V)
            spk = V_free > 1.0
            r = g / (J - g).clamp_min(tiny)                      # V < 1 and V_free > 1 imply J > g
            rise = torch.log1p(r) * inv_g                        # interval from a reset to the next spike
            after = (dt - torch.log1p((1.0 - V) * r) * inv_g).clamp_min(0.0)  # time since the first spike
            since = torch.remainder(after, rise)                 # time since the last spike
            V = torch.where(spk, torch.expm1(since * neg_g) * (J * -inv_g), V_free)
            if self.count_spikes:
                spikes.append(torch.where(spk, 1.0 + torch.div(after, rise, rounding_mode='floor'), 0.0))
            else:
                spikes.append(spk)
            if potentials is not None:
                potentials.append(V)
        self.V = V
        self._keep_generator(gen)
        return self._result(x, spikes, potentials)


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
        self.refr_mu = Parameter(0.003, doc='mean refractory period after a spike', unit='s',
                                 retina_config_key='refr-mean__sec', bounds=(0.0, None), scale='linear',
                                 slider_range=(0.0, 0.02), requires_grad=False)
        self.refr_sigma = Parameter(0.001, doc='standard deviation of the refractory period', unit='s',
                                    retina_config_key='refr-stdev__sec', bounds=(0.0, None), scale='linear',
                                    slider_range=(0.0, 0.01), requires_grad=False)
        self.register_state('refractory', None)
        super()._init_extra(**kwargs)

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
        g = positive_rate(self.g_L, x)
        noise = _leak_constants(g, value(self.noise_sigma, x), dt, x.dtype)[2]
        drive = x / value(self.tau, x)
        mu, sd = value(self.refr_mu, x), value(self.refr_sigma, x)
        noisy, refr_noisy = bool((noise > 0).any()), bool((sd > 0).any())
        tiny = torch.finfo(x.dtype).tiny
        spikes, potentials = [], [] if not self.output_only_spikes else None
        for k in range(x.shape[2]):
            J = drive[:, :, k]
            if noisy:
                J = J + noise * torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype)
            hold = R.clamp(max=dt)                                # still refractory for this part of the step
            free = dt - hold                                      # the rest of the step: V integrates
            em = torch.expm1(-g * free)
            V_free = (1.0 + em) * V - em / g * J
            spk = V_free > 1.0
            refr = mu + sd * torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype) if refr_noisy else mu
            refr = refr.clamp_min(0.0)
            over = (J - g).clamp_min(tiny)
            crossing = torch.log1p(g * (1.0 - V) / over) / g
            after = (free - crossing).clamp_min(0.0)              # time from the first spike to the end of the step
            period = torch.log1p(g / over) / g + mu               # later cycles: mean refractory period + rise
            extra = torch.floor((after - refr + mu).clamp_min(0.0) / period)
            many = extra > 0
            since = torch.where(many, after - refr + mu - extra * period, after)  # time since the last spike
            last_refr = torch.where(many, mu, refr)
            R = torch.where(spk, (last_refr - since).clamp_min(0.0), R - hold)
            V = torch.where(spk, -torch.expm1(-g * (since - last_refr).clamp_min(0.0)) / g * J, V_free)
            spikes.append(torch.where(spk, 1.0 + extra, 0.0) if self.count_spikes else spk)
            if potentials is not None:
                potentials.append(V)
        self.V, self.refractory = V, R
        self._keep_generator(gen)
        return self._result(x, spikes, potentials)
