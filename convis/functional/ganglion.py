"""The input current of a VirtualRetina ganglion layer as a pure function: transient, rectifier, pooling.

.. math::

    F[s] &= e_G F[s-1] + (1-e_G) V[s-1], \\quad T[s] = V[s-1] - w_G F[s] \\\\
    I_G[s] &= B_{pool}\\big(N(\\text{sign}\\cdot T[s-1])\\big)

with ``N`` the smooth rectifier (:func:`smooth_rectifier`).  Units: ``e_G = exp(-dt/tau_G)`` per step,
``i_0`` and ``lambda_G`` in Hz, the pooling blur an operator on pixels; the layer
(:class:`convis.filters.ganglion.GanglionInput`) converts its physical parameters into these.
"""
from typing import Any, NamedTuple

import torch

from .gain_control import SATURATION_HZ
from .recursion import exponential_recursion, one_step_late
from .retina_loops import ganglion_input_loop, missing, use_compiled

__all__ = ['GanglionInputParameters', 'GanglionInputState', 'ganglion_input', 'smooth_rectifier']


def smooth_rectifier(v, v0, i0, lam):
    """VirtualRetina's smooth rectifier N (Hz), exact form with the saturation G = 5e5 Hz.

    .. math::

        N(v) = G\\left(\\eta + (1-\\eta)\\frac{w}{1-\\eta+w}\\right) \\text{ for } w > 0, \\qquad
        N(v) = \\frac{i_0}{1 - \\lambda (v - v_0)/i_0} \\text{ otherwise},

    with ``eta = i0/G`` and ``w = lam (v - v0)/G``.  Continuous with slope ``lam`` at ``v0``, tends to 0
    as v goes to minus infinity and to G as v goes to infinity.  ``v0``, ``i0`` (Hz) and ``lam`` (Hz) are
    0-d tensors.
    """
    i0 = torch.clamp(i0, min=1e-12)
    g = SATURATION_HZ - i0
    if torch.is_grad_enabled() and any(t.requires_grad for t in (v, v0, i0, lam)):
        d = (v - v0) * lam
        # the two branches as one expression: each term vanishes (or is i0) on the other side of threshold
        # at threshold (d = 0: every run's first step with v_0 = 0) only the positive branch carries the
        # gradient (two clamps would both pass it, doubling it)
        neg, pos = -torch.where(d < 0, d, torch.zeros_like(d)), torch.clamp(d, min=0)
        return (i0 * i0) / (neg + i0) + pos * g / (pos + g)
    # the same in place, slab by slab along time (the slabs stay in the processor's cache)
    out = torch.empty_like(v)
    flat_v, flat_out = v.reshape(-1), out.reshape(-1)
    step = 1 << 16
    for start in range(0, flat_v.numel(), step):
        d = (flat_v[start:start + step] - v0).mul_(lam)
        pos = torch.clamp(d, min=0)
        o = flat_out[start:start + step]
        torch.div(i0 * i0, d.clamp_(max=0).neg_().add_(i0), out=o)
        o.add_(pos.mul(g).div_(pos.add_(g)))
    return out


class GanglionInputParameters(NamedTuple):
    """Parameters of the ganglion input (0-d tensors keep their gradients).

    e_transient : ``exp(-dt/tau_G)``, the transient's decay per step
    w_transient : ``w_G``, the transient's relative weight
    sign : +1 (ON) or -1 (OFF)
    v_0, i_0, lambda_G : the rectifier's threshold, its value there (Hz) and its slope (Hz)
    pool : the pooling blur (a callable on ``[..., H, W]``, or None)
    """
    e_transient: Any
    w_transient: Any
    sign: Any
    v_0: Any
    i_0: Any
    lambda_G: Any
    pool: Any = None


class GanglionInputState(NamedTuple):
    """The state before a chunk, each ``[B, C, 1, H, W]``: the last input ``V``, ``F`` and ``T``."""
    input_prev: torch.Tensor
    F: torch.Tensor
    T: torch.Tensor


def ganglion_input(x, state, params, compiled=None):
    """Runs the ganglion input over a chunk ``x`` ``[B, C, T, H, W]`` (bipolar signal): returns ``(I_G, state)``.

    ``I_G`` (Hz) has the shape of ``x``.  ``compiled``: None runs the compiled loop (before the pooling) where
    it applies (CPU, no autograd), False the torch code (the reference), True requires the compiled loop.
    """
    p = params
    result = None
    if use_compiled(x, (p.e_transient, p.w_transient, p.sign, p.v_0, p.i_0, p.lambda_G, p.pool) + tuple(state),
                    compiled):
        result = ganglion_input_loop(x, tuple(state), p.e_transient, p.w_transient, p.sign, p.v_0,
                                     max(float(p.i_0), 1e-12), p.lambda_G, SATURATION_HZ)
        if result is None:
            missing(compiled, 'ganglion input')
    if result is not None:
        rate, st = result
        state = GanglionInputState(*st)
    else:
        v_prev = one_step_late(state.input_prev, x)
        f = exponential_recursion(v_prev, p.e_transient, state.F)
        f_last = f[:, :, -1:].clone()
        w, sign = p.w_transient, p.sign
        if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (f, w, sign)):
            t = v_prev - w * f
            t_prev = sign * one_step_late(state.T, t)
        else:                     # the same without temporary copies
            t = f.mul_(-w).add_(v_prev)
            t_prev = one_step_late(state.T, t).mul_(sign)
        state = GanglionInputState(x[:, :, -1:].clone(), f_last, t[:, :, -1:].clone())
        rate = smooth_rectifier(t_prev, p.v_0, p.i_0, p.lambda_G)
    return (p.pool(rate) if p.pool is not None else rate), state
