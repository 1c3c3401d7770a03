"""The retina's loops through time as compiled C functions (CPU, without autograd).

* :func:`leaky_heat_loop`: VirtualRetina's discrete leaky heat equation with a blur,
  ``y[s] = B (e y[s-1] + (1-e) u[s])``, using only the band of each blur matrix that is not negligible in the
  working precision;
* :func:`opl_loop`: the whole outer plexiform layer (both leaky heat equations and the undershoot) in one
  loop over the steps, without intermediate maps;
* :func:`cgc_loop`: the contrast gain control (bipolar stage with its blurred feedback);
* :func:`ganglion_input_loop`: a ganglion layer's transient high-pass and smooth rectifier.

Blurs are separable (:class:`~convis.filters.spatial.SeparableBlur`: ``a_rows``, ``a_cols``, ``sigma_rows``,
``sigma_cols``) or have one matrix per line (:class:`~convis.filters.spatial.PerLineBlur`: ``mats``,
VirtualRetina's log-polar scheme).  Each function returns None where it does not apply (no C compiler,
``CONVIS_NO_COMPILE``, a GPU): the kernels of :mod:`convis.functional` then run their torch code, which
computes the same (see :mod:`convis.native`).  The C source is ``convis/csrc/heat.c`` (with ``heat_body.h``);
the declarations are in ``convis/csrc/convis_loops.h``.
"""
import threading
from collections import OrderedDict

import torch

from ..native import (BAND_TOLERANCE, _number, _ranges, _significant, compile_c_library, ffi, matrix_diagonals,
                      pointer)
from .deriche import deriche_coefficients

__all__ = ['leaky_heat_loop', 'opl_loop', 'cgc_loop', 'ganglion_input_loop', 'use_compiled']

_LANES, _ROWS = 16, 4
"""LANES and ROWS of heat.c: the column blocks and row groups of its products."""
_HEAT = []


def _row_groups(rows, tolerance):
    """``rows`` [H, H] by groups of ``_ROWS`` rows for the compiled loop: ``RG[g, k, r] = rows[ROWS g + r, k]``
    (entries below the tolerance of their row set to 0, rows past H zero) and the column range of each group."""
    h = rows.shape[0]
    keep = _significant(rows, tolerance)
    groups = -(-h // _ROWS)
    rg = torch.zeros((groups * _ROWS, h), dtype=rows.dtype)
    rg[:h] = torch.where(keep, rows.detach().cpu(), torch.zeros((), dtype=rows.dtype))
    kg = torch.zeros((groups * _ROWS, h), dtype=torch.bool)
    kg[:h] = keep
    glo, ghi = _ranges(kg.reshape(groups, _ROWS, h).any(dim=1))
    return rg.reshape(groups, _ROWS, h).transpose(1, 2).contiguous(), glo, ghi


def _heat_functions():
    if not _HEAT:
        names = ('heat', 'opl', 'cgc', 'ganglion')
        fns = compile_c_library('heat', ['convis_%s_%s' % (n, t) for n in names for t in ('f32', 'f64')],
                                contract=True)
        _HEAT.append(None if fns is None else {
            n: {torch.float64: fns['convis_%s_f64' % n], torch.float32: fns['convis_%s_f32' % n]} for n in names})
    return _HEAT[0]


_OPERANDS = OrderedDict()
_OPERANDS_LOCK = threading.Lock()


def _cached(key, owners, build):
    """``build()`` cached under ``key`` while the objects ``owners`` are alive and the same (kept with the entry,
    so that their ids stay theirs).  Safe to call from several threads (a Runner and a notebook)."""
    with _OPERANDS_LOCK:
        found = _OPERANDS.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], owners)):
            _OPERANDS.move_to_end(key)
            return found[1]
    value = build()
    with _OPERANDS_LOCK:
        _OPERANDS[key] = (owners, value)
        while len(_OPERANDS) > 32:
            _OPERANDS.popitem(last=False)
    return value


def _separable_operands(a_rows, a_cols, e, h, w, dtype):
    """Operands of a separable blur ``e A_rows . A_cols^T``: row groups, their column ranges, the diagonals of
    A_cols padded to whole blocks of columns, their reach K."""
    def build():
        eye = lambda n: torch.eye(n, dtype=dtype)  # noqa: E731
        rows = (e * (a_rows if a_rows is not None else eye(h))).detach().to(dtype).cpu().contiguous()
        tol = BAND_TOLERANCE[dtype]
        rg, glo, ghi = _row_groups(rows, tol)
        diag, k = matrix_diagonals(a_cols if a_cols is not None else eye(w), tol, _padded(w))
        return {'mode': 0, 'RG': rg, 'glo': glo, 'ghi': ghi, 'D': diag.to(dtype), 'K': k}
    return _cached(('separable', id(a_rows), id(a_cols), e, h, w, dtype), (a_rows, a_cols), build)


def _diagonal_ranges(e_mats):
    """Per line, the range of diagonals ``[lo, hi)`` holding a non-zero entry."""
    return _ranges(e_mats.abs().amax(dim=2) > 0)


def _per_line_operands(blur, e, h, w, dtype):
    """Operands of a per-line (log-polar) blur ``e B``: the x matrices by diagonals per row, the y matrices
    by diagonals per output row (see the C source)."""
    def build():
        a_cols, a_rows = (torch.as_tensor(m, dtype=torch.float64).cpu() for m in blur.mats)
        tol = BAND_TOLERANCE[dtype]
        wp = _padded(w)
        dx, kx = matrix_diagonals(a_cols, tol, wp)                         # [H, 2KX+1, WP]
        ey_cols, ky = matrix_diagonals(a_rows, tol)                        # [W, 2KY+1, H]: column j, output row i
        ey = torch.zeros((h, 2 * ky + 1, wp), dtype=torch.float64)
        ey[:, :, :w] = e * ey_cols.permute(2, 1, 0)
        xlo, xhi = _diagonal_ranges(dx)
        ylo, yhi = _diagonal_ranges(ey)
        return {'mode': 1, 'DX': dx.to(dtype).contiguous(), 'KX': kx, 'xlo': xlo, 'xhi': xhi,
                'EY': ey.to(dtype).contiguous(), 'KY': ky, 'ylo': ylo, 'yhi': yhi}
    return _cached(('per line', id(blur.mats[0]), id(blur.mats[1]), e, h, w, dtype), tuple(blur.mats), build)


def _padded(w):
    return -(-w // _LANES) * _LANES


RECURSION_COST = 120
"""A separable blur runs as the recursive filter (mode 2) when its matrix band (the mean width of the row
groups plus the number of diagonals) is wider than this: on 50x50 to 160x160 maps (float32, one and two
threads) both take the same time at a band of about 110-150; at a band of 200 the recursion is 1.4 times as fast,
at 28 the band 3 times (``benchmarks/bench_retina.py --blurs``)."""


LOG_POLAR_RECURSION_COST = 40
"""A log-polar blur runs as its recursion with per-pixel coefficients (mode 3) when its matrices' bands (the mean
number of diagonals along x plus along y) are wider than this; the recursion takes the same time in float32 and
float64 (it runs in double precision), the bands twice as long in float64 (``benchmarks/bench_threads.py
--log-polar``)."""


def _recursive_operands(blur, e):
    """Deriche coefficients (scaled by ``e`` on the first blurred axis) of a separable blur for mode 2."""
    def coefficients(sigma, scale):
        c0, c1, c2, c3, a = deriche_coefficients(sigma)
        c0, c1, c2, c3 = (scale * v for v in (c0, c1, c2, c3))
        denom = 1 - 2 * a + a * a
        return [c0, c1, c2, c3, 2 * a, -a * a, (c0 + c1) / denom, (c2 + c3) / denom]
    use_rows, use_cols = blur.a_rows is not None, blur.a_cols is not None
    return {'mode': 2, 'use_rows': int(use_rows), 'use_cols': int(use_cols),
            'cr': coefficients(blur.sigma_rows, e) if use_rows else [0.0] * 8,
            'cc': coefficients(blur.sigma_cols, 1.0 if use_rows else e) if use_cols else [0.0] * 8}


def _operator(blur, e, h, w, dtype):
    """The C operator of ``e`` times the blur (None: identity, a SeparableBlur, or a per-line blur with ``mats``)
    with fresh scratch; returns ``(struct, tensors to keep alive)``, or None for an unsupported blur."""
    if blur is None or hasattr(blur, 'a_rows'):
        ops = _separable_operands(None if blur is None else blur.a_rows, None if blur is None else blur.a_cols,
                                  e, h, w, dtype)
        wp, k = _padded(w), ops['K']
        band = float((ops['ghi'] - ops['glo']).double().mean()) + 2 * k + 1
        sigmas = (getattr(blur, 'sigma_rows', None), getattr(blur, 'sigma_cols', None))
        if band > RECURSION_COST and blur is not None and all(
                m is None or sig is not None for m, sig in zip((blur.a_rows, blur.a_cols), sigmas)):
            ops = _recursive_operands(blur, e)
            scratch = [torch.zeros(h * w, dtype=torch.float64) for _ in range(4)]
        else:
            scratch = [torch.zeros((h, wp), dtype=dtype),
                       torch.zeros((-(-h // _ROWS) * _ROWS, wp + 2 * k), dtype=dtype)]
    elif hasattr(blur, 'mats'):
        ops = _per_line_operands(blur, e, h, w, dtype)
        wp = _padded(w)
        band = float((ops['xhi'] - ops['xlo']).double().mean() + (ops['yhi'] - ops['ylo']).double().mean())
        if band > LOG_POLAR_RECURSION_COST and getattr(blur, 'coefficients', None) is not None:
            coeffs, keep = blur.coefficients
            ops = {'mode': 3, 'LC': coeffs.contiguous(), 'LK': keep.contiguous(), 'e': float(e)}
            scratch = [torch.zeros(h * w, dtype=torch.float64) for _ in range(3)]
        else:
            scratch = [torch.zeros((h, wp + 2 * ops['KX']), dtype=dtype),
                       torch.zeros((h + 2 * ops['KY'], wp), dtype=dtype)]
    else:
        return None
    struct = ffi().new('convis_blur *')
    struct.mode = ops['mode']
    for name, buf in zip(('t', 't2', 't3', 't4'), scratch):
        setattr(struct, name, pointer(buf))
    for name, value in ops.items():
        if name != 'mode':
            setattr(struct, name, value if isinstance(value, (int, float, list)) else pointer(value))
    return struct, (ops, scratch)


def _compiled(name, x):
    """The compiled loop ``name`` for the dtype of ``x``, or None (no compiler, not on the CPU, another dtype)."""
    fns = _heat_functions()
    if fns is None or x.dtype not in fns[name] or x.device.type != 'cpu':
        return None
    return fns[name][x.dtype]


def _contiguous(x):
    """``x`` ``[B, C, T, H, W]`` detached and contiguous (no copy when it already is): the layout of the loops."""
    return x.detach().contiguous()


def _state_copies(states, x):
    """Contiguous copies of the states ``[B, C, 1, H, W]`` (of the input ``x``) in its dtype, for a loop to update in
    place."""
    shape = x.shape[:2] + (1,) + x.shape[3:]
    return [s.detach().to(x.dtype).reshape(shape).clone(memory_format=torch.contiguous_format) for s in states]


def leaky_heat_loop(u, e, blur, y_prev):
    """VirtualRetina's leaky heat equation ``y[s] = B (e y[s-1] + (1-e) u[s])`` as a compiled loop.

    ``u`` is ``[B, C, T, H, W]`` (float32 or float64, CPU, no gradient), ``e`` the decay per step
    (``0 < e``), ``blur`` the blur B (None: identity, a :class:`~convis.filters.spatial.SeparableBlur` or a
    log-polar blur), ``y_prev`` ``[B, C, 1, H, W]`` the value before the chunk.  Returns ``y`` shaped like ``u``,
    or None when no compiled loop is available (the caller then runs the torch loop).  Only the band of each
    matrix above :data:`BAND_TOLERANCE` of its row's largest entry takes part.
    """
    fn = _compiled('heat', u)
    if fn is None:
        return None
    b, c, n_t, h, w = u.shape
    e = _number(e)
    op = _operator(blur, e, h, w, u.dtype)
    if op is None:
        return None
    ut = _contiguous(u)
    out = torch.empty_like(ut)
    y0 = y_prev.detach().reshape(b * c, h, w).to(u.dtype).contiguous()
    fn(n_t, b * c, h, w, pointer(ut), pointer(out), pointer(y0), (1 - e) / e, op[0])
    return out


def opl_loop(x, states, center, surround, lam, offset_in, undershoot, e_u, w_u, w_s, offset_out):
    """VirtualRetina's OPL (centre and surround leaky heat equations, undershoot) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the input; the centre's input is ``lam (x + offset_in)``.  ``states``: the
    tensors ``(C, U, R, S)`` of :func:`convis.functional.outer_plexiform.opl` (``[B, C, 1, H, W]``; copies are
    updated and returned).  ``center``/``surround``: ``(e, blur)`` of each leaky heat equation (blur: None, a
    :class:`~convis.filters.spatial.SeparableBlur` or a log-polar blur); ``undershoot`` (bool), ``e_u``, ``w_u``:
    the undershoot; ``w_s``: the surround's weight; ``offset_out`` added to the output.
    Returns ``(out, (C, U, R, S))`` or None when no compiled loop applies (no compiler, a GPU, ``e`` = 0).
    """
    fn = _compiled('opl', x)
    if fn is None:
        return None
    b, c, n_t, h, w = x.shape
    e_c, e_s = _number(center[0]), _number(surround[0])
    if e_c <= 1e-12 or e_s <= 1e-12:
        return None
    ops = [_operator(blur, e, h, w, x.dtype) for e, blur in ((e_c, center[1]), (e_s, surround[1]))]
    if None in ops:
        return None
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    cn, sn = torch.empty((h, w), dtype=x.dtype), torch.empty((h, w), dtype=x.dtype)
    fn(n_t, b * c, h, w, pointer(xt), pointer(out), *[pointer(s) for s in st],
       (1 - e_c) / e_c * _number(lam), _number(offset_in), (1 - e_s) / e_s * _number(w_s),
       int(bool(undershoot)), _number(e_u), _number(w_u), _number(offset_out),
       ops[0][0], ops[1][0], pointer(cn), pointer(sn))
    return out, tuple(st)


def cgc_loop(x, states, amp, g0, lam, dt, e_a, saturation, blur, feedback=True):
    """VirtualRetina's contrast gain control (the bipolar stage with feedback) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the OPL output; ``states``: ``(input_prev, V, g_A)`` of
    :func:`convis.functional.gain_control.contrast_gain_control` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``amp`` (Hz), ``g0`` (Hz), ``lam`` (Hz), ``dt`` (s), ``e_a`` the adaptation's decay per step,
    ``saturation`` (Hz), ``blur`` the adaptation blur (None: identity; separable or log-polar);
    ``feedback=False`` (only when ``lam`` = 0 and ``g_A`` = 0) leaves the adaptation out: a low-pass of the input.
    Returns ``(V [B, C, T, H, W], (input_prev, V, g_A))``, or None when no compiled loop applies.
    """
    fn = _compiled('cgc', x)
    if fn is None:
        return None
    b, c, n_t, h, w = x.shape
    op = _operator(blur if feedback else None, 1.0, h, w, x.dtype)
    if op is None:
        return None
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    maps = [torch.empty((h, w), dtype=x.dtype) for _ in range(4)]
    fn(n_t, b * c, h, w, pointer(xt), pointer(out), *[pointer(s) for s in st],
       *[_number(v) for v in (amp, g0, lam, dt, e_a, saturation)], int(bool(feedback)), op[0],
       *[pointer(m) for m in maps])
    return out, tuple(st)


def ganglion_input_loop(x, states, e, w, sign, v0, i0, lam, saturation):
    """The input current of a ganglion layer before pooling (transient high-pass, smooth rectifier) as one
    compiled loop.

    ``x`` ``[B, C, T, H, W]``: the bipolar signal; ``states``: ``(input_prev, F, T)`` of
    :func:`convis.functional.ganglion.ganglion_input` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``e`` the transient's decay per step, ``w`` its weight, ``sign`` +1/-1, ``v0``, ``i0`` (Hz, > 0),
    ``lam`` (Hz), ``saturation`` (Hz).  Returns ``(rates [B, C, T, H, W], (input_prev, F, T))`` or None.
    """
    fn = _compiled('ganglion', x)
    if fn is None:
        return None
    b, c, n_t, h, w_ = x.shape
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    fn(n_t, b * c, h * w_, pointer(xt), pointer(out), *[pointer(s) for s in st],
       *[_number(v) for v in (e, w, sign, v0, i0, lam, saturation)])
    return out, tuple(st)




def _operand_tensors(obj):
    """The tensors in ``obj``: a tensor, a sequence, a blur (its matrices) or None."""
    if obj is None:
        return ()
    if isinstance(obj, torch.Tensor):
        return (obj,)
    if isinstance(obj, (tuple, list)):
        return tuple(t for o in obj for t in _operand_tensors(o))
    mats = (getattr(obj, 'a_rows', None), getattr(obj, 'a_cols', None)) + tuple(getattr(obj, 'mats', None) or ())
    return tuple(m for m in mats if isinstance(m, torch.Tensor))


def use_compiled(x, operands, compiled=None):
    """Whether a kernel runs its compiled loop on ``x``: ``compiled`` is not False, ``x`` is on the CPU and no
    gradient is asked of ``x`` or of the ``operands`` (tensors, blurs, sequences of them).

    ``compiled=True`` requires the loop: a RuntimeError where it cannot run (the kernels raise it too when the
    loop is missing).
    """
    if compiled is False:
        return False
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in _operand_tensors((x,) + tuple(operands)))
    if x.device.type != 'cpu' or grad:
        if compiled:
            raise RuntimeError('the compiled loop runs on CPU tensors without autograd only')
        return False
    return True


def missing(compiled, what):
    """Raises where the compiled loop was required (``compiled=True``) but gave no result."""
    if compiled:
        raise RuntimeError('the compiled %s loop is not available here (no C compiler, CONVIS_NO_COMPILE, another '
                           'dtype, or a blur it does not take)' % what)
