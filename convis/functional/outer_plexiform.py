"""The outer plexiform layer (OPL) of VirtualRetina as a pure function: centre, undershoot, surround.

.. math::

    C[s] &= B_C\\big(e_C C[s-1] + (1-e_C)\\,\\lambda (L[s] - L_0)\\big) \\\\
    U[s] &= e_U U[s-1] + (1-e_U) C[s-1], \\quad R[s] = C[s-1] - w_U U[s]
          \\quad (R = C \\text{ without undershoot}) \\\\
    S[s] &= B_S\\big(e_S S[s-1] + (1-e_S)\\,w_S R[s-1]\\big) \\\\
    I_{OPL}[s] &= R[s] - S[s] + o

Units: every parameter is per step or per pixel, as the loop needs it: ``e = exp(-dt/tau)`` per step, blurs
``B`` are operators on the last two axes (pixels) with sigma ``sigma_deg sqrt(dt/tau) ppd``.  The layer
(:class:`convis.filters.retina.OPL`) converts its physical parameters into these with its resolution.
"""
from typing import Any, NamedTuple

import torch

from .recursion import exponential_recursion, one_step_late
from .retina_loops import leaky_heat_loop, missing, opl_loop, use_compiled

__all__ = ['OPLParameters', 'OPLState', 'opl', 'leaky_heat']


class OPLParameters(NamedTuple):
    """The OPL's parameters in step units (tensors or floats; 0-d tensors keep their gradients).

    lambda_opl : the input gain lambda (per luminance unit: ``lambda_OPL / luminosity range``)
    luminance_offset : ``L_0``, subtracted from the input (luminance units)
    e_center : ``exp(-dt/tau_C)``, the centre's decay per step (in (0, 1])
    blur_center : the centre blur ``B_C`` (a callable on ``[..., H, W]``, or None)
    e_surround, blur_surround : the same for the surround
    w_surround : ``w_S``, the surround's weight
    undershoot : whether the centre has an undershoot (bool)
    e_undershoot, w_undershoot : ``exp(-dt/tau_U)`` and ``w_U``
    output_offset : ``o``, added to the output
    n_center : the number of exponential low-passes (of ``e_center``) before the centre (int)
    """
    lambda_opl: Any
    luminance_offset: Any
    e_center: Any
    blur_center: Any
    e_surround: Any
    blur_surround: Any
    w_surround: Any
    undershoot: bool = True
    e_undershoot: Any = 0.0
    w_undershoot: Any = 0.0
    output_offset: Any = 0.0
    n_center: int = 0


class OPLState(NamedTuple):
    """The OPL's state before a chunk, each ``[B, C, 1, H, W]``: centre ``C``, undershoot ``U``, receptor ``R``,
    surround ``S``; ``cascade`` ``[n_center, B, C, 1, H, W]`` the low-passes before the centre."""
    center: torch.Tensor
    undershoot: torch.Tensor
    receptor: torch.Tensor
    surround: torch.Tensor
    cascade: torch.Tensor


def leaky_heat(u, e, blur, y_prev, compiled=None):
    """VirtualRetina's discrete leaky heat equation ``y[s] = B(e y[s-1] + (1-e) u[s])`` over a chunk.

    ``u`` ``[B, C, T, H, W]``, ``e`` the decay per step, ``blur`` a callable on the last two axes (None: no
    blur, a plain exponential low-pass computed time-parallel), ``y_prev`` the value before the chunk
    ``[B, C, 1, H, W]``.  Returns ``y`` shaped like ``u``.  A separable blur runs as a compiled loop on the CPU
    without autograd (``compiled=None``; False: the torch loop, the reference).
    """
    if blur is None:
        return exponential_recursion(u, e, y_prev)
    separable = hasattr(blur, 'a_rows') and float(torch.as_tensor(e).detach()) > 1e-12
    if separable and use_compiled(u, (e, y_prev, blur), compiled):
        y = leaky_heat_loop(u, e, blur, y_prev)
        if y is not None:
            return y
        missing(compiled, 'leaky heat')
        return _leaky_heat_fused(u, e, blur, y_prev)
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


def opl(x, state, params, record=None, compiled=None):
    """Runs the OPL over a chunk ``x`` ``[B, C, T, H, W]`` (luminance) from ``state``: returns ``(I_OPL, state)``.

    ``state`` is an :class:`OPLState`, ``params`` an :class:`OPLParameters` (step units, see the module).  The
    output has the shape of ``x``; the state returned is the one after the chunk, so two calls on two halves
    of a chunk equal one call on the whole.  ``record``: a dict that receives the inner maps ``'center'``,
    ``'receptor'`` and ``'horizontal'`` (surround) of every step.  ``compiled``: None runs one compiled loop
    where it applies (CPU, no autograd, no cascade, no record), False the torch code (the reference), True
    requires the compiled loop.

    >>> p = OPLParameters(1.0, 0.0, 0.9, None, 0.5, None, 1.0, undershoot=False)
    >>> z = torch.zeros(1, 1, 1, 4, 4)
    >>> y, s = opl(torch.ones(1, 1, 10, 4, 4), OPLState(z, z, z, z, z[None][:0]), p)
    """
    p = params
    n = int(p.n_center)
    if n == 0 and record is None and use_compiled(
            x, (p.lambda_opl, p.e_center, p.blur_center, p.e_surround, p.blur_surround, p.w_surround,
                p.e_undershoot, p.w_undershoot) + tuple(state[:4]), compiled):
        result = opl_loop(x, tuple(state[:4]), (p.e_center, p.blur_center), (p.e_surround, p.blur_surround),
                          p.lambda_opl, -p.luminance_offset, bool(p.undershoot), p.e_undershoot, p.w_undershoot,
                          p.w_surround, p.output_offset)
        if result is not None:
            out, (c, u, r, s) = result
            return out, OPLState(c, u, r, s, state.cascade)
        missing(compiled, 'OPL')
    elif compiled and (n or record is not None):
        raise RuntimeError('the compiled OPL loop has no cascade (n_center > 0) and records no inner maps')
    inner = False if compiled is False else None
    u = p.lambda_opl * (x - p.luminance_offset)
    cascade = []
    for i in range(n):
        u = exponential_recursion(u, p.e_center, state.cascade[i])
        cascade.append(u[:, :, -1:])
    cascade = torch.stack(cascade) if n else state.cascade
    center = leaky_heat(u, p.e_center, p.blur_center, state.center, inner)
    c_prev = one_step_late(state.center, center)
    new_center = center[:, :, -1:].clone()
    undershoot = state.undershoot
    if p.undershoot:
        und = exponential_recursion(c_prev, p.e_undershoot, state.undershoot)
        undershoot = und[:, :, -1:].clone()
        receptor = c_prev - p.w_undershoot * und
    else:
        receptor = center
    r_prev = one_step_late(state.receptor, receptor)
    surround = leaky_heat(p.w_surround * r_prev, p.e_surround, p.blur_surround, state.surround, inner)
    out = receptor - surround + p.output_offset
    if record is not None:
        record.update(center=center, receptor=receptor, horizontal=surround)
    return out, OPLState(new_center, undershoot, receptor[:, :, -1:].clone(), surround[:, :, -1:].clone(), cascade)
