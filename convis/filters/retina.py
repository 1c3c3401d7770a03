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

from .ganglion import GanglionInput, GanglionSpiking, smooth_rectifier  # noqa: F401 (the retina stages, here too)
from .retina_loops import cgc_loop, leaky_heat_loop, opl_loop
from .spatial import SeparableBlur
from .stage import SATURATION_HZ, _Stage, _check_state, _decay, _p, _param, _shift, compiled_loops_apply  # noqa: F401
from .temporal import exponential_recursion

__all__ = ['OPL', 'Bipolar', 'GanglionInput', 'GanglionSpiking', 'SATURATION_HZ']

def leaky_heat(u, e, blur, y_prev):
    """Runs VirtualRetina's discrete leaky heat equation ``y[s] = B(e y[s-1] + (1-e) u[s])`` over time.

    ``blur`` is a callable on the last two axes (or None for no blur: then a plain exponential low-pass,
    computed time-parallel), ``y_prev`` the value before the chunk ``[B, C, 1, H, W]``.
    """
    if blur is None:
        return exponential_recursion(u, e, y_prev)
    # the compiled loop only without autograd: also when just the blur's sigma needs a gradient
    blur_mats = tuple(m for m in (getattr(blur, 'a_rows', None), getattr(blur, 'a_cols', None)) if m is not None)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (u, e, y_prev) + blur_mats)) \
            and isinstance(blur, SeparableBlur) and float(e) > 1e-12:
        y = leaky_heat_loop(u, e, blur, y_prev)
        return y if y is not None else _leaky_heat_fused(u, e, blur, y_prev)
    v = blur((1 - e) * u)
    y = y_prev[:, :, 0]
    out = []
    for s in range(u.shape[2]):
        y = e * blur(y) + v[:, :, s]
        out.append(y)
    return torch.stack(out, dim=2)


def _leaky_heat_fused(u, e, blur, y_prev):
    """The loop of :func:`leaky_heat` in place, without autograd: ``y = (e A_rows)(y + u (1-e)/e) A_cols^T``."""
    b, c, n_t, h, w = u.shape
    eye = lambda n: torch.eye(n, dtype=u.dtype, device=u.device)  # noqa: E731
    rows = e * (blur.a_rows if blur.a_rows is not None else eye(h))
    cols_t = (blur.a_cols if blur.a_cols is not None else eye(w)).transpose(0, 1).contiguous()
    ut = u.movedim(2, 0).reshape(n_t, b * c, h, w).contiguous()
    out = torch.empty_like(ut)
    tmp, tmp2 = (torch.empty((b * c, h, w), dtype=u.dtype, device=u.device) for _ in range(2))
    y = y_prev[:, :, 0].reshape(b * c, h, w)
    ratio = float((1 - e) / e)
    for s in range(n_t):
        torch.add(y, ut[s], alpha=ratio, out=tmp)
        torch.matmul(rows, tmp, out=tmp2)
        torch.mm(tmp2.view(b * c * h, w), cols_t, out=out[s].view(b * c * h, w))
        y = out[s]
    return out.reshape(n_t, b, c, h, w).movedim(0, 2)


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

    def __init__(self, init_luminance=None):
        super().__init__()
        self.sigma_center = _param(0.05, 'standard deviation of the centre blur', 'deg', 'center-sigma__deg',
                                   (0, None), 'log', (0.005, 2.0), symbol='σ_C')
        self.tau_center = _param(0.01, 'time constant of the centre low-pass', 's', 'center-tau__sec',
                                 (1e-6, None), 'log', (0.001, 0.5), symbol='τ_C')
        self.n_center = _param(0.0, 'number of extra exponential low-passes (cascade) before the centre', '',
                               'center-n__uint', (0, 20), 'linear', (0, 10), grad=False, kind='int', symbol='n_C')
        self.undershoot_enabled = _param(1.0, '1: the centre has an undershoot (a transient high-pass, one '
                                         'step of extra lag); 0: none', '', 'undershoot.enabled', (0, 1),
                                         'linear', (0, 1), grad=False, kind='bool', symbol='undershoot')
        self.undershoot_relative_weight_center = _param(0.8, 'relative weight w_U of the centre undershoot',
                                                        '', 'undershoot.relative-weight', (0, None),
                                                        'linear', (0.0, 1.0), symbol='w_U')
        self.undershoot_tau_center = _param(0.1, 'time constant of the centre undershoot', 's',
                                            'undershoot.tau__sec', (1e-6, None), 'log', (0.005, 2.0), symbol='τ_U')
        self.sigma_surround = _param(0.15, 'standard deviation of the surround blur', 'deg',
                                     'surround-sigma__deg', (0, None), 'log', (0.01, 5.0), symbol='σ_S')
        self.tau_surround = _param(0.004, 'time constant of the surround low-pass', 's', 'surround-tau__sec',
                                   (1e-6, None), 'log', (0.001, 0.5), symbol='τ_S')
        self.relative_weight = _param(1.0, 'relative weight w_OPL of the surround', '', 'opl-relative-weight',
                                      (0, None), 'linear', (0.0, 2.0), symbol='w_OPL')
        self.lambda_opl = _param(10.0, 'OPL amplification (per input luminosity range: the input is '
                                 'multiplied by lambda_opl / input_luminosity_range)', '', 'opl-amplification',
                                 (0, None), 'log', (0.1, 100.0), symbol='λ_OPL')
        self.leaky_heat_equation = _param(1.0, '1: centre and surround are leaky heat equations (the only '
                                          'form implemented: 0, the linear version, is not offered)', '',
                                          'leaky-heat-equation', (0, 1), 'linear', (0, 1), grad=False, kind='bool',
                                          choices={'on': 1}, symbol='leaky heat equation')
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
        dt = self.resolution.dt
        e_c = _decay(self.tau_center, dt, x)
        blur_c = self._blur(self.sigma_center, x, scale=torch.sqrt(dt / _p(self.tau_center, x)))
        if n == 0 and not set(self.record) & {'center', 'receptor', 'horizontal'}:
            out = self._forward_compiled(x, lum, e_c, blur_c, rest_r - rest_s)
            if out is not None:
                return out
        u = self._lambda(x) * (x - lum)
        cascade = []
        for i in range(n):
            u = exponential_recursion(u, e_c, self.cascade[i])
            cascade.append(u[:, :, -1:])
        if n:
            self.cascade = torch.stack(cascade)
        center = leaky_heat(u, e_c, blur_c, self.center)
        c_prev = _shift(self.center, center)
        self.center = center[:, :, -1:].clone()
        if self._has_undershoot():
            e_u = _decay(self.undershoot_tau_center, dt, x)
            und = exponential_recursion(c_prev, e_u, self.undershoot)
            self.undershoot = und[:, :, -1:].clone()
            receptor = c_prev - _p(self.undershoot_relative_weight_center, x) * und
        else:
            receptor = center
        r_prev = _shift(self.receptor, receptor)
        self.receptor = receptor[:, :, -1:].clone()
        e_s, blur_s = self._surround_operator(x)
        surround = leaky_heat(_p(self.relative_weight, x) * r_prev, e_s, blur_s, self.surround)
        self.surround = surround[:, :, -1:].clone()
        out = receptor - surround + (rest_r - rest_s)
        if self.record:
            self._keep(center=center + rest_c, receptor=receptor + rest_r, horizontal=surround + rest_s)
        else:
            self.recorded = {}
        return out


    def _surround_operator(self, x):
        dt = self.resolution.dt
        return (_decay(self.tau_surround, dt, x),
                self._blur(self.sigma_surround, x, scale=torch.sqrt(dt / _p(self.tau_surround, x))))

    def _forward_compiled(self, x, lum, e_c, blur_c, offset):
        """The OPL as one compiled loop (CPU, no autograd, no cascade, no recorded inner map), or None where
        that loop does not apply."""
        if not compiled_loops_apply(self, x):
            return None
        e_s, blur_s = self._surround_operator(x)
        dt = self.resolution.dt
        result = opl_loop(x, (self.center, self.undershoot, self.receptor, self.surround),
                          (e_c, blur_c), (e_s, blur_s), self._lambda(x), -lum, self._has_undershoot(),
                          _decay(self.undershoot_tau_center, dt, x), _p(self.undershoot_relative_weight_center, x),
                          _p(self.relative_weight, x), offset)
        if result is None:
            return None
        out, (self.center, self.undershoot, self.receptor, self.surround) = result
        self.recorded = {}
        return out


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

    def __init__(self):
        super().__init__()
        self.lambda_amp = _param(0.0, 'feedback amplification lambda_A of the adaptation (0: no gain control)',
                                 'Hz', 'adaptation-feedback-amplification__Hz', (0, None), 'linear', (0, 500),
                                 symbol='λ_A')
        self.g_leak = _param(50.0, 'inert leak conductance g_0 of the bipolar potential', 'Hz',
                             'bipolar-inert-leaks__Hz', (1e-6, None), 'log', (0.5, 500.0), symbol='g_0')
        self.input_amp = _param(50.0, 'amplification lambda_in of the OPL current', 'Hz',
                                'opl-amplification__Hz', (0, None), 'log', (1.0, 1000.0), symbol='λ_in')
        self.tau = _param(0.005, 'time constant tau_A of the adaptation conductance', 's',
                          'adaptation-tau__sec', (1e-6, None), 'log', (0.001, 1.0), symbol='τ_A')
        self.adaptation_sigma = _param(0.2, 'standard deviation sigma_A of the adaptation blur', 'deg',
                                       'adaptation-sigma__deg', (0, None), 'log', (0.01, 5.0), symbol='σ_A')
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
        dt = self.resolution.dt
        g0 = _p(self.g_leak, x)
        lam = _p(self.lambda_amp, x)
        no_feedback = (float(self.lambda_amp) == 0 and not (self.lambda_amp.requires_grad and torch.is_grad_enabled())
                       and not bool(self.g_A.any()))
        out = self._forward_compiled(x, g0, lam, dt, feedback=not no_feedback)
        if out is not None:
            return out
        drive = _p(self.input_amp, x) * _shift(self.input_prev, x)
        self.input_prev = x[:, :, -1:].clone()
        if no_feedback:
            a = torch.exp(-dt * g0)
            v = exponential_recursion(drive / g0, a, self.V)
            g_a = torch.zeros_like(v) if 'cgc_adaptation' in self.record else None
            self.V = v[:, :, -1:].clone()
            self._keep(bipolar=v, cgc_adaptation=g_a if 'cgc_adaptation' in self.record else None,
                       cgc_attenuation=torch.zeros_like(v) + a if 'cgc_attenuation' in self.record else None)
            return v
        e_a = _decay(self.tau, dt, x)
        blur = self._blur(self.adaptation_sigma, x)
        v, g_a = self.V[:, :, 0], self.g_A[:, :, 0]
        vs, gs, atts = [], [], []
        want_att = 'cgc_attenuation' in self.record
        for s in range(x.shape[2]):
            g = g0 + g_a
            att = torch.exp(-dt * g)
            e_inf = drive[:, :, s] / g
            w = lam * v * v / SATURATION_HZ
            q = SATURATION_HZ * w / (1 + w)
            q = blur(q) if blur is not None else q
            v = e_inf + (v - e_inf) * att
            g_a = e_a * g_a + (1 - e_a) * q
            vs.append(v)
            gs.append(g_a)
            if want_att:
                atts.append(att)
        v_all, g_all = torch.stack(vs, 2), torch.stack(gs, 2)
        self.V, self.g_A = v_all[:, :, -1:].clone(), g_all[:, :, -1:].clone()
        self._keep(bipolar=v_all, cgc_adaptation=g_all,
                   cgc_attenuation=torch.stack(atts, 2) if want_att else None)
        return v_all


    def _forward_compiled(self, x, g0, lam, dt, feedback=True):
        """The gain-control loop compiled (CPU, no autograd, no recorded adaptation maps), or None where it
        does not apply."""
        if set(self.record) & {'cgc_adaptation', 'cgc_attenuation'} or not compiled_loops_apply(self, x):
            return None
        result = cgc_loop(x, (self.input_prev, self.V, self.g_A), _p(self.input_amp, x), g0, lam, dt,
                          _decay(self.tau, dt, x), SATURATION_HZ,
                          self._blur(self.adaptation_sigma, x) if feedback else None, feedback)
        if result is None:
            return None
        v_all, (self.input_prev, self.V, self.g_A) = result
        self._keep(bipolar=v_all)
        return v_all
