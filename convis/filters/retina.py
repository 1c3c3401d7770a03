"""The stages of the VirtualRetina model: OPL, contrast gain control, ganglion input and spiking.

Each stage reproduces VirtualRetina 2.2.3 step for step (Wohrer & Kornprobst
2009).  Every stage reads the *previous* step's output of the stage before it
(VirtualRetina feeds all stages first, then advances them), so each adds a lag
of one step.  Units are physical (seconds, degrees, Hz) and converted with the
layer's :class:`~convis.variables.Resolution` at every call.

Linear parts run time-parallel over a chunk; the leaky heat equation (a blur
at every step), the gain-control loop and the spiking neurons step frame by
frame.  All stages work on ``[batch, channel, time, rows, columns]`` tensors
(batch and channel are independent simulations) and carry their state exactly
from chunk to chunk.

Intermediate maps of the last call are kept in ``layer.recorded`` for the names listed in
``layer.record`` (see each class); :class:`convis.retina.Retina` collects them.
"""
import numpy as np
import torch

from ..functional.gain_control import GainControlParameters, GainControlState, contrast_gain_control
from ..functional.outer_plexiform import OPLParameters, OPLState, leaky_heat, opl  # noqa: F401 (leaky_heat: here too)
from .ganglion import GanglionInput, GanglionSpiking, smooth_rectifier  # noqa: F401 (the retina stages, here too)
from .stage import SATURATION_HZ, _Stage, _check_state, _decay, _p, _param, compiled_loops_apply  # noqa: F401

__all__ = ['OPL', 'Bipolar', 'GanglionInput', 'GanglionSpiking', 'SATURATION_HZ']


class OPL(_Stage):
    """Outer plexiform layer: centre minus surround, VirtualRetina's linear OPL with leaky heat equations.

    .. math::

        C[s] &= B_{\\sigma_C\\sqrt{dt/\\tau_C}}\\big(e_C C[s-1] + (1-e_C)\\,\\lambda L[s]\\big),
              \\quad \\lambda = \\lambda_{OPL} / \\text{luminosity range} \\\\
        U[s] &= e_U U[s-1] + (1-e_U) C[s-1], \\quad R[s] = C[s-1] - w_U U[s]
              \\quad (R = C \\text{ without undershoot}) \\\\
        S[s] &= B_{\\sigma_S\\sqrt{dt/\\tau_S}}\\big(e_S S[s-1] + (1-e_S)\\,w_{OPL} R[s-1]\\big) \\\\
        I_{OPL}[s] &= R[s] - S[s]

    with ``e = exp(-dt/tau)`` and B the recursive Gaussian.  With ``n_center > 0`` the input first
    passes ``n`` exponential low-passes of ``tau_center``.  The filters start in the steady state of a
    uniform screen of luminance ``init_luminance`` (default: half the input luminosity range); the
    states hold the deviations from that resting state (absolute values with a log-polar scheme).

    Parameters (see each Parameter's doc): ``sigma_center``, ``tau_center``, ``n_center``,
    ``undershoot_enabled``, ``undershoot_relative_weight_center``, ``undershoot_tau_center``,
    ``sigma_surround``, ``tau_surround``, ``relative_weight``, ``lambda_opl``, ``leaky_heat_equation``.
    Recordable maps (``record``): ``'center'``, ``'receptor'``, ``'horizontal'``.

    >>> opl = OPL()
    >>> y = opl.run(255 * np.random.rand(200, 30, 30), dt=50)
    """

    DEFAULTS = {'center-sigma__deg': 0.05, 'surround-sigma__deg': 0.15, 'center-tau__sec': 0.01,
                'center-n__uint': 0.0, 'surround-tau__sec': 0.004, 'opl-amplification': 10.0,
                'opl-relative-weight': 1.0, 'leaky-heat-equation': 1.0, 'undershoot.enabled': 1.0,
                'undershoot.relative-weight': 0.8, 'undershoot.tau__sec': 0.1}
    """The default of every parameter by its configuration key (in ``outer-plexiform-layers.0.linear-version``):
    the one declaration of these values, which the default configuration is built from."""
    OPTIONAL = {'center-n__uint': DEFAULTS['center-n__uint'], 'leaky-heat-equation': DEFAULTS['leaky-heat-equation']}
    """Keys a VirtualRetina file may leave out, and the value they then take."""

    def __init__(self, init_luminance=None):
        super().__init__()
        d = self.DEFAULTS
        self.sigma_center = _param(d['center-sigma__deg'], 'standard deviation of the centre blur', 'deg',
                                   'center-sigma__deg', (0, None), 'log', (0.005, 2.0), symbol='σ_C')
        self.tau_center = _param(d['center-tau__sec'], 'time constant of the centre low-pass', 's',
                                 'center-tau__sec', (1e-6, None), 'log', (0.001, 0.5), symbol='τ_C')
        self.n_center = _param(d['center-n__uint'], 'number of extra exponential low-passes (cascade) before the '
                               'centre', '', 'center-n__uint', (0, 20), 'linear', (0, 10), grad=False, kind='int',
                               symbol='n_C')
        self.undershoot_enabled = _param(d['undershoot.enabled'], '1: the centre has an undershoot (a transient '
                                         'high-pass, one step of extra lag); 0: none', '', 'undershoot.enabled',
                                         (0, 1), 'linear', (0, 1), grad=False, kind='bool', symbol='undershoot')
        self.undershoot_relative_weight_center = _param(d['undershoot.relative-weight'], 'relative weight w_U of '
                                                        'the centre undershoot', '', 'undershoot.relative-weight',
                                                        (0, None), 'linear', (0.0, 1.0), symbol='w_U')
        self.undershoot_tau_center = _param(d['undershoot.tau__sec'], 'time constant of the centre undershoot', 's',
                                            'undershoot.tau__sec', (1e-6, None), 'log', (0.005, 2.0), symbol='τ_U')
        self.sigma_surround = _param(d['surround-sigma__deg'], 'standard deviation of the surround blur', 'deg',
                                     'surround-sigma__deg', (0, None), 'log', (0.01, 5.0), symbol='σ_S')
        self.tau_surround = _param(d['surround-tau__sec'], 'time constant of the surround low-pass', 's',
                                   'surround-tau__sec', (1e-6, None), 'log', (0.001, 0.5), symbol='τ_S')
        self.relative_weight = _param(d['opl-relative-weight'], 'relative weight w_OPL of the surround', '',
                                      'opl-relative-weight', (0, None), 'linear', (0.0, 2.0), symbol='w_OPL')
        self.lambda_opl = _param(d['opl-amplification'], 'OPL amplification (per input luminosity range: the input '
                                 'is multiplied by lambda_opl / input_luminosity_range)', '', 'opl-amplification',
                                 (0, None), 'log', (0.1, 100.0), symbol='λ_OPL')
        self.leaky_heat_equation = _param(d['leaky-heat-equation'], '1: centre and surround are leaky heat '
                                          'equations (the only form implemented: 0, the linear version, is not '
                                          'offered)', '', 'leaky-heat-equation', (0, 1), 'linear', (0, 1),
                                          grad=False, kind='bool', choices={'on': 1}, symbol='leaky heat equation')
        self.init_luminance = init_luminance
        for name in ('cascade', 'center', 'undershoot', 'receptor', 'surround'):
            self.register_state(name, None)

    def _lambda(self, like):
        return _p(self.lambda_opl, like) / self.resolution.input_luminosity_range

    def _rest(self, like):
        """Resting values (uniform screen of ``init_luminance``): luminance, centre, receptor, surround."""
        lum = self.init_luminance if self.init_luminance is not None else self.resolution.input_luminosity_range / 2
        c = self._lambda(like) * lum
        r = c * (1 - _p(self.undershoot_relative_weight_center, like)) if self._has_undershoot() else c
        return lum, c, r, r * _p(self.relative_weight, like)

    def _has_undershoot(self):
        return float(self.undershoot_enabled) >= 0.5

    def initial_output(self, x):
        """The OPL output before the first step (its steady state), shaped like one frame of ``x``."""
        _, _, r, s = self._rest(x)
        return torch.zeros_like(x[:, :, :1]) + (r - s)

    def forward(self, x):
        # The states hold deviations from the resting values, which keeps float32 precise: the
        # equations are linear and the blurs preserve constants, so this changes nothing else.
        _check_state('OPL', self.center, x)
        n = int(round(float(self.n_center)))
        zero = torch.zeros_like(x[:, :, :1])
        lum, rest_c, rest_r, rest_s = self._rest(x)
        # the log-polar blur does not preserve constants: there the states are absolute values
        start = (zero + rest_c, zero + rest_r, zero + rest_s) if self.log_polar is not None else (zero,) * 3
        if self.log_polar is not None:
            lum, rest_c, rest_r, rest_s = 0.0, 0.0, 0.0, 0.0
        if self.center is None:
            self.center, self.undershoot, self.receptor, self.surround = start[0], start[0], start[1], start[2]
        if self.cascade is None or self.cascade.shape[0] != n:
            self.cascade = start[0].unsqueeze(0).repeat(n, 1, 1, 1, 1, 1)
        record = {} if set(self.record) & {'center', 'receptor', 'horizontal'} else None
        out, state = opl(x, OPLState(self.center, self.undershoot, self.receptor, self.surround, self.cascade),
                         self.kernel_parameters(x, lum, rest_r - rest_s), record=record)
        self.center, self.undershoot, self.receptor, self.surround, self.cascade = state
        if record is not None:
            self._keep(center=record['center'] + rest_c, receptor=record['receptor'] + rest_r,
                       horizontal=record['horizontal'] + rest_s)
        else:
            self.recorded = {}
        return out

    def kernel_parameters(self, x, luminance_offset=0.0, output_offset=0.0):
        """The :class:`~convis.functional.outer_plexiform.OPLParameters` of
        :func:`convis.functional.outer_plexiform.opl` for input like ``x``: decays per step and blurs in pixels
        from the parameters and the resolution."""
        dt = self.resolution.dt
        e_c, e_s = _decay(self.tau_center, dt, x), _decay(self.tau_surround, dt, x)
        return OPLParameters(
            lambda_opl=self._lambda(x), luminance_offset=luminance_offset, e_center=e_c,
            blur_center=self._blur(self.sigma_center, x, scale=torch.sqrt(dt / _p(self.tau_center, x))),
            e_surround=e_s,
            blur_surround=self._blur(self.sigma_surround, x, scale=torch.sqrt(dt / _p(self.tau_surround, x))),
            w_surround=_p(self.relative_weight, x), undershoot=self._has_undershoot(),
            e_undershoot=_decay(self.undershoot_tau_center, dt, x),
            w_undershoot=_p(self.undershoot_relative_weight_center, x), output_offset=output_offset,
            n_center=int(round(float(self.n_center))))


class Bipolar(_Stage):
    """Contrast gain control: a bipolar potential with a shunting conductance fed back from its own square.

    .. math::

        V[s] &= E + (V[s-1] - E)\\,e^{-dt\\,g}, \\quad g = g_0 + g_A[s-1],
               \\quad E = \\lambda_{in} I_{OPL}[s-1] / g \\\\
        g_A[s] &= e_A g_A[s-1] + (1-e_A)\\,B_{\\sigma_A}\\big(Q(V[s-1])\\big),
               \\quad Q(v) = \\frac{G w}{1+w},\\ w = \\lambda_A v^2 / G,\\ G = 5\\cdot10^5\\,Hz

    The update of V is exact for an input held constant over the step.  V and g_A start at 0.

    Parameters: ``lambda_amp`` (lambda_A, Hz), ``g_leak`` (g_0, Hz), ``input_amp`` (lambda_in, Hz),
    ``tau`` (tau_A, s), ``adaptation_sigma`` (sigma_A, deg).  Recordable maps: ``'bipolar'``,
    ``'cgc_adaptation'`` (g_A), ``'cgc_attenuation'`` (``exp(-dt (g_0 + g_A[s-1]))``).

    >>> b = Bipolar()
    >>> v = b.run(np.random.randn(100, 20, 20), dt=50)
    """

    DEFAULTS = {'opl-amplification__Hz': 50.0, 'bipolar-inert-leaks__Hz': 50.0, 'adaptation-sigma__deg': 0.2,
                'adaptation-tau__sec': 0.005, 'adaptation-feedback-amplification__Hz': 0.0}
    """The default of every parameter by its configuration key (in ``contrast-gain-control``): the one
    declaration of these values, which the default configuration is built from."""
    OPTIONAL = {}
    """Keys a VirtualRetina file may leave out, and the value they then take (none here)."""

    def __init__(self):
        super().__init__()
        d = self.DEFAULTS
        self.lambda_amp = _param(d['adaptation-feedback-amplification__Hz'], 'feedback amplification lambda_A of '
                                 'the adaptation (0: no gain control)', 'Hz', 'adaptation-feedback-amplification__Hz',
                                 (0, None), 'linear', (0, 500), symbol='λ_A')
        self.g_leak = _param(d['bipolar-inert-leaks__Hz'], 'inert leak conductance g_0 of the bipolar potential',
                             'Hz', 'bipolar-inert-leaks__Hz', (1e-6, None), 'log', (0.5, 500.0), symbol='g_0')
        self.input_amp = _param(d['opl-amplification__Hz'], 'amplification lambda_in of the OPL current', 'Hz',
                                'opl-amplification__Hz', (0, None), 'log', (1.0, 1000.0), symbol='λ_in')
        self.tau = _param(d['adaptation-tau__sec'], 'time constant tau_A of the adaptation conductance', 's',
                          'adaptation-tau__sec', (1e-6, None), 'log', (0.001, 1.0), symbol='τ_A')
        self.adaptation_sigma = _param(d['adaptation-sigma__deg'], 'standard deviation sigma_A of the adaptation '
                                       'blur', 'deg', 'adaptation-sigma__deg', (0, None), 'log', (0.01, 5.0),
                                       symbol='σ_A')
        for name in ('input_prev', 'V', 'g_A'):
            self.register_state(name, None)

    def initial_output(self, x):
        """The bipolar output before the first step (0)."""
        return torch.zeros_like(x[:, :, :1])

    def forward(self, x):
        _check_state('Bipolar', self.V, x)
        if self.input_prev is None:
            self.input_prev = torch.zeros_like(x[:, :, :1])
        if self.V is None:
            self.V = torch.zeros_like(x[:, :, :1])
            self.g_A = torch.zeros_like(x[:, :, :1])
        record = {} if set(self.record) & {'cgc_adaptation', 'cgc_attenuation'} else None
        v, state = contrast_gain_control(x, GainControlState(self.input_prev, self.V, self.g_A),
                                         self.kernel_parameters(x), self.resolution.dt, record=record)
        self.input_prev, self.V, self.g_A = state
        self._keep(bipolar=v, **(record or {}))
        return v

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.gain_control.GainControlParameters` of
        :func:`convis.functional.gain_control.contrast_gain_control` for input like ``x`` (Hz, decay per step,
        blur in pixels)."""
        return GainControlParameters(input_amp=_p(self.input_amp, x), g_leak=_p(self.g_leak, x),
                                     lambda_amp=_p(self.lambda_amp, x),
                                     e_adaptation=_decay(self.tau, self.resolution.dt, x),
                                     blur=self._blur(self.adaptation_sigma, x))
