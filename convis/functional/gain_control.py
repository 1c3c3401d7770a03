"""VirtualRetina's contrast gain control (the bipolar stage) as a pure function.

.. math::

    V[s] &= E + (V[s-1] - E)\\,e^{-dt\\,g}, \\quad g = g_0 + g_A[s-1],
           \\quad E = \\lambda_{in} I[s-1] / g \\\\
    g_A[s] &= e_A g_A[s-1] + (1-e_A)\\,B_A\\big(Q(V[s-1])\\big),
           \\quad Q(v) = \\frac{G w}{1+w},\\ w = \\lambda_A v^2 / G,\\ G = 5\\cdot10^5\\,Hz

The update of V is exact for an input held constant over the step.  Units: conductances and gains in Hz,
``dt`` in seconds, ``e_A = exp(-dt/tau_A)`` per step, the blur ``B_A`` an operator on pixels.  The layer
(:class:`convis.filters.retina.Bipolar`) converts its physical parameters into these.
"""
from typing import Any, NamedTuple

import torch

from .recursion import exponential_recursion, one_step_late
from .retina_loops import cgc_loop, missing, use_compiled

__all__ = ['SATURATION_HZ', 'GainControlParameters', 'GainControlState', 'contrast_gain_control']

SATURATION_HZ = 5e5
"""The constant G (Hz) of VirtualRetina's soft saturations (gain-control Q and ganglion rectifier N)."""


class GainControlParameters(NamedTuple):
    """Parameters of the gain control (tensors or floats; 0-d tensors keep their gradients).

    input_amp : lambda_in (Hz), the gain on the input current
    g_leak : g_0 (Hz), the inert leak conductance
    lambda_amp : lambda_A (Hz), the feedback amplification (0: no gain control)
    e_adaptation : ``exp(-dt/tau_A)``, the adaptation's decay per step
    blur : the adaptation blur ``B_A`` (a callable on ``[..., H, W]``, or None)
    """
    input_amp: Any
    g_leak: Any
    lambda_amp: Any
    e_adaptation: Any
    blur: Any = None


class GainControlState(NamedTuple):
    """The state before a chunk, each ``[B, C, 1, H, W]``: the last input ``I``, ``V`` and ``g_A``."""
    input_prev: torch.Tensor
    V: torch.Tensor
    g_A: torch.Tensor


def contrast_gain_control(x, state, params, dt, record=None, compiled=None):
    """Runs the gain control over a chunk ``x`` ``[B, C, T, H, W]`` (the OPL current): returns ``(V, state)``.

    ``state`` a :class:`GainControlState`, ``params`` :class:`GainControlParameters`, ``dt`` the step (s).
    ``record``: a dict that receives ``'cgc_adaptation'`` (g_A) and ``'cgc_attenuation'``
    (``exp(-dt (g_0 + g_A[s-1]))``) of every step.  ``compiled``: None runs the compiled loop where it applies
    (CPU, no autograd, no record), False the torch loop (the reference), True requires the compiled loop.
    Where ``lambda_A`` is 0 (without a gradient) and ``g_A`` is 0, V is a plain low-pass of the input.
    """
    p = params
    lam = p.lambda_amp
    lam_grad = isinstance(lam, torch.Tensor) and lam.requires_grad and torch.is_grad_enabled()
    no_feedback = float(torch.as_tensor(lam).detach()) == 0 and not lam_grad and not bool(state.g_A.any())
    if record is None and use_compiled(x, (p.input_amp, p.g_leak, lam, p.e_adaptation,
                                           p.blur if not no_feedback else None) + tuple(state), compiled):
        result = cgc_loop(x, tuple(state), p.input_amp, p.g_leak, lam, dt, p.e_adaptation, SATURATION_HZ,
                          p.blur if not no_feedback else None, not no_feedback)
        if result is not None:
            v_all, st = result
            return v_all, GainControlState(*st)
        missing(compiled, 'gain control')
    elif compiled and record is not None:
        raise RuntimeError('the compiled gain-control loop records no adaptation maps')
    g0 = p.g_leak
    drive = p.input_amp * one_step_late(state.input_prev, x)
    input_prev = x[:, :, -1:].clone()
    if no_feedback:
        a = torch.exp(-dt * g0)
        v = exponential_recursion(drive / g0, a, state.V)
        if record is not None:
            record.update(cgc_adaptation=torch.zeros_like(v), cgc_attenuation=torch.zeros_like(v) + a)
        return v, GainControlState(input_prev, v[:, :, -1:].clone(), state.g_A)
    v, g_a = state.V[:, :, 0], state.g_A[:, :, 0]
    vs, gs, atts = [], [], []
    for s in range(x.shape[2]):
        g = g0 + g_a
        att = torch.exp(-dt * g)
        e_inf = drive[:, :, s] / g
        w = lam * v * v / SATURATION_HZ
        q = SATURATION_HZ * w / (1 + w)
        q = p.blur(q) if p.blur is not None else q
        v = e_inf + (v - e_inf) * att
        g_a = p.e_adaptation * g_a + (1 - p.e_adaptation) * q
        vs.append(v)
        gs.append(g_a)
        if record is not None:
            atts.append(att)
    v_all, g_all = torch.stack(vs, 2), torch.stack(gs, 2)
    if record is not None:
        record.update(cgc_adaptation=g_all, cgc_attenuation=torch.stack(atts, 2))
    return v_all, GainControlState(input_prev, v_all[:, :, -1:].clone(), g_all[:, :, -1:].clone())
