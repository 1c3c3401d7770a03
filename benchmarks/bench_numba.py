"""numba against the compiled C loops (``convis/csrc``), stage by stage, in float32 and float64, in one run.

Usage: ``PYTHONPATH=<where numba is> python benchmarks/bench_numba.py [--frames 500] [--sizes 100x100 50x50]
[--threads 1 2] [--repeat 5]``

numba is not a dependency of convis: without it the script says how to get it (``pip install numba``) and
exits.  The stages are written here in numba (``@njit(cache=True, fastmath=False)``, threads by
``numba.prange`` over rows or cells) from the equations of the C loops, with the same operands and the same
work split:

* ``opl``: the outer plexiform layer (``convis_opl``, mode 0: both separable band blurs, the rows matrix by
  groups of 4 rows and the columns matrix by diagonals, then the undershoot), operands from
  ``retina_loops._separable_operands`` of the default ``convis.retina.Retina()``'s blurs;
* ``cgc``: the contrast gain control with its blurred feedback (``convis_cgc``; the default retina with
  ``bipolar.lambda_amp = 100`` Hz, whose adaptation blur is a band in mode 0);
* ``cgc_lowpass``: the gain control without feedback (the default retina's ``lambda_amp = 0``): a low-pass;
* ``ganglion``: a ganglion layer's input current (``convis_ganglion``);
* ``normals``: the counter-based normal numbers (``convis_normals``, torch twin ``convis.noise._normals_torch``),
  one per value and frame.

The arguments are those the default retina passes to the Python wrappers of the C loops
(``convis.functional.retina_loops``), captured by wrapping the functions the kernels call; each stage's input is
the C output of the stage before (random luminance for the OPL).  Both loops write into output buffers made
before the runs (the wrappers' fresh 40 MB buffers would add page faults to the timing); the C functions are
called as the wrappers call them, the blurs of the OPL and the gain control as bands (mode 0; in float64 the
wrappers would run the widest blurs as the recursive filter, mode 2: the report says where).  Before timing,
every numba result (output and states) is checked against the C result: float64 to 1e-12, float32 to 1e-5 of
the largest value, the normal numbers to one unit in the last place (float32 to the bit).

``torch.set_num_threads(n)`` sets the C loops' OpenMP threads, ``numba.set_num_threads(n)`` numba's; for each
size and precision the runs take turns (thread counts, C and numba) ``--repeat`` times and the fastest is kept.
numba's compile time (its first call, on one frame) is reported apart; with ``cache=True`` a second run of the
script loads the kernels from numba's cache instead.  Times are microseconds per frame; the ratio numba / C
compares the two at the same thread count in the same run (above 1: numba is slower).  The column ``nb serial``
is the same numba code compiled without ``parallel`` (one thread and no parallel launches, against C on the
first thread count).

Three things keep numba's loops vectorised, each worth a factor 2-5 here: ``error_model='numpy'`` (IEEE
division, as in C; numba's default checks every divisor for zero), arrays re-typed C-contiguous inside prange
bodies (numba issue 2680) and loops from index 0 over 1-d slices (see ``_c``).  The C loops of the blurs are
built with fused multiply-adds (``-ffp-contract=fast``); numba with ``fastmath=False`` multiplies and adds.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

try:
    import numba
except ImportError:                        # pragma: no cover - depends on the environment
    numba = None

if numba is not None:
    njit = numba.njit
    prange = numba.prange
else:                                      # the decorators are only applied when numba is there
    def njit(*args, **kwargs):
        return lambda f: f
    prange = range

ROWS = 4
"""Rows per group of the rows matrix (ROWS of convis/csrc/heat.c)."""
STAGES = ('opl', 'cgc', 'cgc_lowpass', 'ganglion', 'normals')
JIT = dict(cache=True, fastmath=False, error_model="numpy")


# ---------------------------------------------------------------------------------------------------------------
# Inside a prange body numba types every array as of any layout, and loops over such arrays do not use SIMD
# (numba issue 2680); ``_c`` re-types an array as C-contiguous (``np.ascontiguousarray``: a run-time check, no copy
# for the contiguous arrays every kernel here is given).  The loops run along rows (1-d slices), as the C loops
# run along their pointers, and from index 0 (a loop over [p0, p1) keeps numba's check for negative indices,
# which stops the vectoriser).
# ---------------------------------------------------------------------------------------------------------------

@njit(inline='always', **JIT)
def _c(a):
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------------------------------------------
# The blur operator of mode 0: o = B t, B = (e A_rows) . A_cols^T by the rows matrix's band and the columns
# matrix's diagonals (convis/csrc/heat_body.h, NAME(part)).
# ---------------------------------------------------------------------------------------------------------------

@njit(**JIT)
def _band_part(g, W, RG, glo, ghi, D, K, t, t2, o):
    """Rows ROWS g .. ROWS g + ROWS - 1 of o [HP, W] (rows past H are scratch) from the prepared map t [H, WP]:
    t2[i, K + j] = sum_{k in [glo[g], ghi[g])} RG[g, k, i - ROWS g] t[k, j] (the rows matrix),
    o[i, j] = sum_{dd = 0 .. 2K} D[dd, j] t2[i, j + dd] (the columns matrix by diagonals), k and dd ascending."""
    i0 = g * ROWS
    WP = t.shape[1]
    a0, a1, a2, a3 = t2[i0, K:K + WP], t2[i0 + 1, K:K + WP], t2[i0 + 2, K:K + WP], t2[i0 + 3, K:K + WP]
    for j in range(WP):
        a0[j] = 0
        a1[j] = 0
        a2[j] = 0
        a3[j] = 0
    for k in range(glo[g], ghi[g]):
        r0, r1, r2, r3 = RG[g, k, 0], RG[g, k, 1], RG[g, k, 2], RG[g, k, 3]
        tk = t[k]
        for j in range(WP):
            v = tk[j]
            a0[j] += r0 * v
            a1[j] += r1 * v
            a2[j] += r2 * v
            a3[j] += r3 * v
    s0, s1, s2, s3 = t2[i0], t2[i0 + 1], t2[i0 + 2], t2[i0 + 3]
    o0, o1, o2, o3 = o[i0], o[i0 + 1], o[i0 + 2], o[i0 + 3]
    for j in range(W):
        o0[j] = 0
        o1[j] = 0
        o2[j] = 0
        o3[j] = 0
    for dd in range(2 * K + 1):
        dr = D[dd]
        for j in range(W):
            d = dr[j]
            o0[j] += d * s0[j + dd]
            o1[j] += d * s1[j + dd]
            o2[j] += d * s2[j + dd]
            o3[j] += d * s3[j + dd]


@njit(**JIT)
def _prepare_row(y, x, a, c, t):
    """One row of the operator's input: t = y + a (x + c)."""
    for j in range(y.shape[0]):
        t[j] = y[j] + a * (x[j] + c)


# ---------------------------------------------------------------------------------------------------------------
# The OPL (convis_opl):
#   C[s] = B_c (C[s-1] + a_c (x[s] + c_c)),  S[s] = B_s (S[s-1] + a_s R[s-1])
#   with undershoot: U[s] = e_u U[s-1] + (1 - e_u) C[s-1], R[s] = C[s-1] - w_u U[s]; without: R[s] = C[s]
#   out[s] = R[s] - S[s] + offset
# ---------------------------------------------------------------------------------------------------------------

@njit(**JIT)
def _opl_update_row(undershoot, eu, gu, wu, off, c, u, r, sr, o, cn, sn):
    """One row of the OPL's states and output once both blurs of the step are done."""
    if undershoot:
        for j in range(c.shape[0]):
            un = eu * u[j] + gu * c[j]
            rec = c[j] - wu * un
            u[j] = un
            r[j] = rec
            o[j] = rec - sn[j] + off
            c[j] = cn[j]
            sr[j] = sn[j]
    else:
        for j in range(c.shape[0]):
            r[j] = cn[j]
            o[j] = cn[j] - sn[j] + off
            c[j] = cn[j]
            sr[j] = sn[j]


@njit(parallel=True, **JIT)
def opl_numba(x, out, C, U, R, S, a_c, c_c, a_s, undershoot, eu, gu, wu, off,
              RGc, gloc, ghic, Dc, Kc, tc, t2c, cn, RGs, glos, ghis, Ds, Ks, ts, t2s, sn):
    """x, out [BC, T, H, W]; states C, U, R, S [BC, H, W] in place; scalars in the maps' precision; per blur
    its operands (RG, glo, ghi, D, K) and scratch t [H, WP], t2 [HP, WP + 2K], result map [HP, W].  Threads
    share each step by rows (preparing both blurs' inputs), then by groups of ROWS rows (both blurs, the update)."""
    BC, T, H, W = x.shape
    G = RGc.shape[0]
    zero = a_c - a_c
    for s in range(T):
        for b in range(BC):
            for i in prange(H):
                _prepare_row(_c(C)[b, i], _c(x)[b, s, i], a_c, c_c, _c(tc)[i])
                _prepare_row(_c(S)[b, i], _c(R)[b, i], a_s, zero, _c(ts)[i])
            for g in prange(G):
                cn_, sn_ = _c(cn), _c(sn)
                _band_part(g, W, RGc, gloc, ghic, Dc, Kc, _c(tc), _c(t2c), cn_)
                _band_part(g, W, RGs, glos, ghis, Ds, Ks, _c(ts), _c(t2s), sn_)
                for i in range(g * ROWS, min(g * ROWS + ROWS, H)):
                    _opl_update_row(undershoot, eu, gu, wu, off, _c(C)[b, i], _c(U)[b, i], _c(R)[b, i],
                                    _c(S)[b, i], _c(out)[b, s, i], cn_[i], sn_[i])


# ---------------------------------------------------------------------------------------------------------------
# The contrast gain control (convis_cgc), x read one step late (XP before the chunk):
#   g = g0 + gA,  Einf = amp x[s-1] / g,  q = sat w / (1 + w) with w = lam V^2 / sat,
#   V <- Einf + (V - Einf) exp(-dt g),  gA <- eA gA + (1 - eA) B q
# ---------------------------------------------------------------------------------------------------------------

@njit(**JIT)
def _cgc_prepare_row(amp, g0, lam, dt, sat, one, ga, v, xin, at, ei, q):
    """One row before the blur: the attenuation at, the target ei and the blur's input q."""
    for j in range(v.shape[0]):
        g = g0 + ga[j]
        w = lam * v[j] * v[j] / sat
        at[j] = math.exp(-dt * g)
        ei[j] = amp * xin[j] / g
        q[j] = sat * w / (one + w)


@njit(**JIT)
def _cgc_update_row(ea, one, ei, at, qb, v, ga, o):
    """One row once the blur is done: V, gA and the output."""
    for j in range(v.shape[0]):
        v[j] = ei[j] + (v[j] - ei[j]) * at[j]
        ga[j] = ea * ga[j] + (one - ea) * qb[j]
        o[j] = v[j]


@njit(parallel=True, **JIT)
def cgc_numba(x, out, XP, V, GA, amp, g0, lam, dt, ea, sat, RG, glo, ghi, D, K, t, t2, qb, ei, at):
    """x, out [BC, T, H, W]; states XP, V, GA [BC, H, W] in place; scalars in the maps' precision; the
    adaptation blur's operands and scratch as in :func:`opl_numba`; ei, at [H, W] scratch."""
    BC, T, H, W = x.shape
    G = RG.shape[0]
    one = amp / amp
    for s in range(T):
        for b in range(BC):
            for i in prange(H):
                xin = _c(XP)[b, i] if s == 0 else _c(x)[b, s - 1, i]
                _cgc_prepare_row(amp, g0, lam, dt, sat, one, _c(GA)[b, i], _c(V)[b, i], xin, _c(at)[i],
                                 _c(ei)[i], _c(t)[i])
            for gr in prange(G):
                qb_ = _c(qb)
                _band_part(gr, W, RG, glo, ghi, D, K, _c(t), _c(t2), qb_)
                for i in range(gr * ROWS, min(gr * ROWS + ROWS, H)):
                    _cgc_update_row(ea, one, _c(ei)[i], _c(at)[i], qb_[i], _c(V)[b, i], _c(GA)[b, i],
                                    _c(out)[b, s, i])
    if T > 0:
        XP[:] = x[:, T - 1]


@njit(**JIT)
def _lowpass_part(amp, g0, at0, xin, v, o):
    for p in range(v.shape[0]):
        e_inf = amp * xin[p] / g0
        v[p] = e_inf + (v[p] - e_inf) * at0
        o[p] = v[p]


@njit(parallel=True, **JIT)
def cgc_lowpass_numba(x, out, XP, V, amp, g0, dt, nt):
    """The gain control without feedback (lam = 0, gA = 0): V <- Einf + (V - Einf) exp(-dt g0) with
    Einf = amp x[s-1] / g0, every value on its own; x, out [BC, T, P]; XP, V [BC, P] in place; nt threads
    share the values for the whole chunk."""
    BC, T, P = x.shape
    at0 = math.exp(-dt * g0)
    for part in prange(nt):
        p0, p1 = P * part // nt, P * (part + 1) // nt
        xc, xp, v, o = _c(x), _c(XP), _c(V), _c(out)
        for s in range(T):
            for b in range(BC):
                xin = xp[b, p0:p1] if s == 0 else xc[b, s - 1, p0:p1]
                _lowpass_part(amp, g0, at0, xin, v[b, p0:p1], o[b, s, p0:p1])
        if T > 0:
            for b in range(BC):
                xp[b, p0:p1] = xc[b, T - 1, p0:p1]


# ---------------------------------------------------------------------------------------------------------------
# A ganglion layer's input current (convis_ganglion), x read one step late:
#   F <- e F + (1 - e) x[s-1],  Tn = x[s-1] - w F,  out[s] = N(sign T_old),  T_old <- Tn
#   N(v) = i0^2 / (i0 + lam (v0 - v)) below v0, i0 + g lam (v - v0) / (g + lam (v - v0)) above (g = sat - i0)
#   written as in the C loop: i0^2 / (i0 + neg) + pos g / (pos + g)
# ---------------------------------------------------------------------------------------------------------------

@njit(**JIT)
def _ganglion_part(xin, o, fs, tr, e, ge, w, sign, v0, i0, lam, g):
    zero = e - e
    i02 = i0 * i0
    for p in range(o.shape[0]):
        f = e * fs[p] + ge * xin[p]
        tn = xin[p] - w * f
        d = (sign * tr[p] - v0) * lam
        neg = -d if d < zero else zero
        pos = d if d > zero else zero
        o[p] = i02 / (i0 + neg) + pos * g / (pos + g)
        fs[p] = f
        tr[p] = tn


@njit(parallel=True, **JIT)
def ganglion_numba(x, out, XP, F, TR, e, ge, w, sign, v0, i0, lam, g, nt):
    """x, out [BC, T, P]; states XP, F, TR [BC, P] in place; scalars in the maps' precision (ge = 1 - e and
    g = sat - i0 rounded once from double, as in the C loop); nt threads share the values for the whole chunk."""
    BC, T, P = x.shape
    for part in prange(nt):
        p0, p1 = P * part // nt, P * (part + 1) // nt
        xc, xp, fs, tr, o = _c(x), _c(XP), _c(F), _c(TR), _c(out)
        for b in range(BC):
            for s in range(T):
                xin = xp[b, p0:p1] if s == 0 else xc[b, s - 1, p0:p1]
                _ganglion_part(xin, o[b, s, p0:p1], fs[b, p0:p1], tr[b, p0:p1], e, ge, w, sign, v0, i0, lam, g)
            if T > 0:
                xp[b, p0:p1] = xc[b, T - 1, p0:p1]


# ---------------------------------------------------------------------------------------------------------------
# Counter-based normal numbers (convis_normals; convis.noise):
#   row = mix(base + (4 k + j) G1),  h = mix(row + (i + 1) G2)   (modulo 2^64, mix: SplitMix64's finaliser)
#   z = sign sqrt(-2 log u1) cos(pi f / 2),  log u1 = e ln 2 + 2 atanh((m - 1) / (m + 1)) with u1 = m 2^e,
#   the atanh and cos series as fixed polynomials (convis.noise._SERIES) in the result's precision
# ---------------------------------------------------------------------------------------------------------------

_G1, _G2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S1, _S27, _S30, _S31, _S32, _S40, _S52 = (np.uint64(v) for v in (1, 27, 30, 31, 32, 40, 52))


@njit(inline='always', **JIT)
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline='always', **JIT)
def _horner(coeffs, v):
    """coeffs[0] + coeffs[1] v + ... by Horner's rule from the highest term (coeffs a tuple of one precision)."""
    p = coeffs[len(coeffs) - 1]
    for k in range(len(coeffs) - 2, -1, -1):
        p = p * v + coeffs[k]
    return p


@njit(inline='always', **JIT)
def _normal_f64(h, log_series, cos_series):
    """The float64 normal number of h: u1 from its 32 upper bits, f from the 31 above the lowest, the sign from
    the lowest."""
    u1 = np.float64((h >> _S32) + _S1) * 2.0 ** -32
    f = np.float64((h >> _S1) & np.uint64(0x7FFFFFFF)) * 2.0 ** -31
    sign = 1.0 - 2.0 * np.float64(h & _S1)
    bits = np.float64(u1).view(np.uint64)
    e = np.float64(np.int64((bits >> _S52) & np.uint64(0x7FF)) - 1022)
    m = np.uint64((bits & np.uint64(0x800FFFFFFFFFFFFF)) | np.uint64(0x3FE0000000000000)).view(np.float64)
    small = m < 0.7071067811865476
    m = m * 2.0 if small else m
    e = e - 1.0 if small else e
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    lg = e * 0.6931471805599453 + (2.0 * t + 2.0 * t * t2 * _horner(log_series, t2))
    x = f * 1.5707963267948966
    x2 = x * x
    c = x2 * _horner(cos_series, x2) + 1.0
    return sign * (math.sqrt(-2.0 * lg) * c)


_F32 = {name: np.float32(v) for name, v in (('one', 1.0), ('two', 2.0), ('scale', 2.0 ** -24),
                                            ('sqrt_half', 0.7071067811865476), ('ln2', 0.6931471805599453),
                                            ('half_pi', 1.5707963267948966))}
_ONE32, _TWO32, _SCALE32 = _F32['one'], _F32['two'], _F32['scale']
_SQRT_HALF32, _LN2_32, _HALF_PI32 = _F32['sqrt_half'], _F32['ln2'], _F32['half_pi']


@njit(inline='always', **JIT)
def _normal_f32(h, log_series, cos_series):
    """The float32 normal number of h: u1 from its 24 upper bits, f from the 24 above the lowest, the sign from
    the lowest; every constant rounded to float."""
    u1 = np.float32((h >> _S40) + _S1) * _SCALE32
    f = np.float32((h >> _S1) & np.uint64(0xFFFFFF)) * _SCALE32
    sign = _ONE32 - _TWO32 * np.float32(h & _S1)
    bits = np.float32(u1).view(np.uint32)
    e = np.float32(np.int32((bits >> np.uint32(23)) & np.uint32(0xFF)) - np.int32(126))
    m = np.uint32((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    small = m < _SQRT_HALF32
    m = m * _TWO32 if small else m
    e = e - _ONE32 if small else e
    t = (m - _ONE32) / (m + _ONE32)
    t2 = t * t
    lg = e * _LN2_32 + (_TWO32 * t + _TWO32 * t * t2 * _horner(log_series, t2))
    x = f * _HALF_PI32
    x2 = x * x
    c = x2 * _horner(cos_series, x2) + _ONE32
    return sign * (math.sqrt(-_TWO32 * lg) * c)


@njit(parallel=True, **JIT)
def normals_f64_numba(base, k0, j, scale, log_series, cos_series, out, nt):
    """out [T, M] (float64): scale z for steps k0 .. k0+T-1 of stream j; nt threads share the indices."""
    T, M = out.shape
    for part in prange(nt):
        i0, i1 = M * part // nt, M * (part + 1) // nt
        for s in range(T):
            row = _mix(base + np.uint64(4 * (k0 + s) + j) * _G1)
            o = _c(out)[s, i0:i1]
            for q in range(i1 - i0):
                o[q] = scale * _normal_f64(_mix(row + np.uint64(i0 + q + 1) * _G2), log_series, cos_series)


@njit(parallel=True, **JIT)
def normals_f32_numba(base, k0, j, scale, log_series, cos_series, out, nt):
    """out [T, M] (float32): as :func:`normals_f64_numba`, in float32."""
    T, M = out.shape
    for part in prange(nt):
        i0, i1 = M * part // nt, M * (part + 1) // nt
        for s in range(T):
            row = _mix(base + np.uint64(4 * (k0 + s) + j) * _G1)
            o = _c(out)[s, i0:i1]
            for q in range(i1 - i0):
                o[q] = scale * _normal_f32(_mix(row + np.uint64(i0 + q + 1) * _G2), log_series, cos_series)


KERNELS = {'opl': opl_numba, 'cgc': cgc_numba, 'cgc_lowpass': cgc_lowpass_numba, 'ganglion': ganglion_numba,
           'normals_f32': normals_f32_numba, 'normals_f64': normals_f64_numba}
_SERIAL = {}


def kernel(name, serial=False):
    """The numba kernel ``name``: the parallel one (prange), or with ``serial`` the same function compiled without
    ``parallel`` (prange as range; not cached)."""
    if not serial:
        return KERNELS[name]
    if name not in _SERIAL:
        _SERIAL[name] = numba.njit(**dict(JIT, cache=False))(KERNELS[name].py_func)
    return _SERIAL[name]


# ---------------------------------------------------------------------------------------------------------------
# The stages: arguments captured from the default retina, the C call and the numba call of each.
# ---------------------------------------------------------------------------------------------------------------

def _shape(text):
    rows, _, cols = text.lower().partition('x')
    return int(rows), int(cols or rows)


def capture(shape, dtype):
    """The arguments the default retina (``bipolar.lambda_amp`` 0 and 100 Hz) passes to ``opl_loop``,
    ``cgc_loop`` (with and without feedback) and ``ganglion_input_loop`` at ``shape``, in ``dtype``."""
    import convis
    from convis.functional import gain_control, ganglion, outer_plexiform
    found, lam_now = {}, [None]
    patched = [(outer_plexiform, 'opl_loop'), (gain_control, 'cgc_loop'), (ganglion, 'ganglion_input_loop')]
    originals = [getattr(m, n) for m, n in patched]

    def recorder(name, fn):
        def call(*args):
            found.setdefault((name, lam_now[0]), args)
            return fn(*args)
        return call
    try:
        for (module, name), fn in zip(patched, originals):
            setattr(module, name, recorder(name, fn))
        for lam in (0.0, 100.0):
            retina = convis.retina.Retina(seed=0).to(dtype)
            retina.bipolar.lambda_amp = lam
            lam_now[0] = lam
            with torch.no_grad():
                retina(torch.full((1, 1, 2) + shape, 100.0, dtype=dtype))
    finally:
        for (module, name), fn in zip(patched, originals):
            setattr(module, name, fn)
    return {'opl': found[('opl_loop', 100.0)], 'cgc': found[('cgc_loop', 100.0)],
            'cgc_lowpass': found[('cgc_loop', 0.0)], 'ganglion': found[('ganglion_input_loop', 100.0)]}


def _band_operands(blur, e, h, w, dtype):
    """``e`` times the blur as a band (mode 0) for both loops: ``(numba operands, C operator, C mode)``.  The numba
    operands are numpy arrays with fresh scratch, ``(RG, glo, ghi, D, K, t, t2, result map)``; the C operator is
    ``(convis_blur struct, tensors to keep alive)`` built in mode 0 from the same tensors; the C mode is the one
    ``retina_loops._operator`` picks (2: the recursive filter, for a wide band)."""
    from convis.functional import retina_loops
    from convis.native import ffi, pointer
    picked = retina_loops._operator(blur, e, h, w, dtype)[0].mode
    ops = retina_loops._separable_operands(None if blur is None else blur.a_rows,
                                           None if blur is None else blur.a_cols, e, h, w, dtype)
    k = int(ops['K'])
    hp, wp = ops['RG'].shape[0] * ROWS, ops['D'].shape[1]
    scratch = [torch.zeros((h, wp), dtype=dtype), torch.zeros((hp, wp + 2 * k), dtype=dtype)]
    struct = ffi().new('convis_blur *')
    struct.mode, struct.K = 0, k
    for name in ('RG', 'glo', 'ghi', 'D'):
        setattr(struct, name, pointer(ops[name]))
    struct.t, struct.t2 = pointer(scratch[0]), pointer(scratch[1])
    nd = np.float32 if dtype == torch.float32 else np.float64
    numba_ops = (ops['RG'].numpy(), ops['glo'].numpy().astype(np.int64), ops['ghi'].numpy().astype(np.int64),
                 ops['D'].numpy(), k, np.zeros((h, wp), nd), np.zeros((hp, wp + 2 * k), nd), np.zeros((hp, w), nd))
    return numba_ops, (struct, (ops, scratch)), picked


def _f(v):
    """A number or one-element tensor as a Python float (double precision, as the C wrappers pass it)."""
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def _states(states):
    """Fresh contiguous numpy copies of the states [B, C, 1, H, W] as [BC, H, W]."""
    return [np.ascontiguousarray(s.detach().numpy().reshape((-1,) + tuple(s.shape[3:]))).copy() for s in states]


class Stage(object):
    """One stage at one size and precision: ``c()`` and ``nb(frames)`` run it from its initial state and return
    (output, states) as numpy arrays; ``nb`` on the first frames only compiles."""

    def __init__(self, name, args, x, dtype):
        self.name, self.args, self.x, self.dtype = name, args, x, dtype
        self.np_dtype = np.float32 if dtype == torch.float32 else np.float64
        h, w = x.shape[-2:]
        r = self.np_dtype
        self.modes = ()
        if name == 'opl':
            (_, _, center, surround, lam, offset_in, undershoot, e_u, w_u, w_s, offset_out) = args
            e_c, e_s = _f(center[0]), _f(surround[0])
            blurs = [_band_operands(blur, e, h, w, dtype) for e, blur in ((e_c, center[1]), (e_s, surround[1]))]
            self.ops = tuple(b[0] for b in blurs)
            self.c_ops = tuple(b[1] for b in blurs)
            self.modes = tuple(b[2] for b in blurs)
            self.c_scalars = ((1 - e_c) / e_c * _f(lam), _f(offset_in), (1 - e_s) / e_s * _f(w_s),
                              int(bool(undershoot)), _f(e_u), _f(w_u), _f(offset_out))
            self.scalars = (r((1 - e_c) / e_c * _f(lam)), r(_f(offset_in)), r((1 - e_s) / e_s * _f(w_s)),
                            bool(undershoot), r(_f(e_u)), r(1 - _f(e_u)), r(_f(w_u)), r(_f(offset_out)))
        elif name == 'cgc':
            (_, _, amp, g0, lam, dt, e_a, sat, blur, feedback) = args
            if not feedback or blur is None:
                raise RuntimeError('the gain control was expected to run with its blurred feedback')
            self.ops, self.c_ops, mode = _band_operands(blur, 1.0, h, w, dtype)
            self.modes = (mode,)
            self.c_scalars = tuple(_f(v) for v in (amp, g0, lam, dt, e_a, sat))
            self.scalars = tuple(r(_f(v)) for v in (amp, g0, lam, dt, e_a, sat))
        elif name == 'cgc_lowpass':
            (_, _, amp, g0, lam, dt, e_a, sat, blur, feedback) = args
            if feedback or blur is not None:
                raise RuntimeError('the default retina was expected to run its gain control without feedback')
            from convis.functional import retina_loops
            self.c_ops = retina_loops._operator(None, 1.0, h, w, dtype)
            self.c_scalars = tuple(_f(v) for v in (amp, g0, lam, dt, e_a, sat))
            self.scalars = tuple(r(_f(v)) for v in (amp, g0, dt))
        elif name == 'ganglion':
            (_, _, e, w_, sign, v0, i0, lam, sat) = args
            e, i0, sat = _f(e), _f(i0), _f(sat)
            self.c_scalars = (e, _f(w_), _f(sign), _f(v0), i0, _f(lam), sat)
            self.scalars = (r(e), r(1 - e), r(_f(w_)), r(_f(sign)), r(_f(v0)), r(i0), r(_f(lam)), r(sat - i0))

    def _buffers(self):
        """Output buffers of both loops, written once before the runs (no timing pays for fresh pages)."""
        if not hasattr(self, 'c_out'):
            self.c_out = torch.zeros_like(self.x.contiguous())
            self.nb_out = np.zeros(self.x.shape, self.np_dtype)
            h, w = self.x.shape[-2:]
            self.c_maps = [torch.zeros((h, w), dtype=self.dtype) for _ in range(4)]
            self.nb_maps = [np.zeros((h, w), self.np_dtype) for _ in range(2)]

    def c(self):
        """The C loop, called as its wrapper in ``convis.functional.retina_loops`` calls it, into a buffer that
        already exists; the blurs of the OPL and the gain control as bands (mode 0)."""
        from convis.functional import retina_loops
        from convis.native import pointer
        self._buffers()
        name = 'cgc' if self.name == 'cgc_lowpass' else self.name
        fn = retina_loops._heat_functions()[name][self.dtype]
        b, c, n_t, h, w = self.x.shape
        xt, out = self.x.contiguous(), self.c_out
        states = retina_loops._state_copies(self.args[1], xt)
        ptrs = [pointer(xt), pointer(out)] + [pointer(s) for s in states]
        if self.name == 'opl':
            fn(n_t, b * c, h, w, *ptrs, *self.c_scalars, self.c_ops[0][0], self.c_ops[1][0],
               *[pointer(m) for m in self.c_maps[:2]])
        elif self.name == 'cgc':
            fn(n_t, b * c, h, w, *ptrs, *self.c_scalars, 1, self.c_ops[0], *[pointer(m) for m in self.c_maps])
        elif self.name == 'cgc_lowpass':
            fn(n_t, b * c, h, w, *ptrs, *self.c_scalars, 0, self.c_ops[0], *[pointer(m) for m in self.c_maps])
        else:
            fn(n_t, b * c, h * w, *ptrs, *self.c_scalars)
        return out.numpy(), [s.numpy().reshape(-1) for s in states]

    def nb(self, frames=None, serial=False):
        """The numba loop into a buffer that already exists (``frames``: on the first frames, into a new one;
        ``serial``: the kernel compiled without threads)."""
        self._buffers()
        fn = kernel(self.name, serial)
        nt = 1 if serial else numba.get_num_threads()
        x = self.x if frames is None else self.x[:, :, :frames]
        b, c, n_t, h, w = x.shape
        xn = np.ascontiguousarray(x.numpy()).reshape(b * c, n_t, h, w)
        out = self.nb_out.reshape(xn.shape) if frames is None else np.zeros_like(xn)
        st = _states(self.args[1])
        if self.name == 'opl':
            (rgc, gloc, ghic, dc, kc, tc, t2c, cn), (rgs, glos, ghis, ds, ks, ts, t2s, sn) = self.ops
            fn(xn, out, *st, *self.scalars, rgc, gloc, ghic, dc, kc, tc, t2c, cn, rgs, glos, ghis, ds, ks, ts, t2s, sn)
        elif self.name == 'cgc':
            rg, glo, ghi, d, k, t, t2, qb = self.ops
            fn(xn, out, *st, *self.scalars, rg, glo, ghi, d, k, t, t2, qb, *self.nb_maps)
        else:
            xn, out = xn.reshape(b * c, n_t, h * w), out.reshape(b * c, n_t, h * w)
            st = [s.reshape(b * c, h * w) for s in st]
            if self.name == 'cgc_lowpass':
                fn(xn, out, st[0], st[1], *self.scalars, nt)
            else:
                fn(xn, out, *st, *self.scalars, nt)
        return out.reshape(x.shape), [s.reshape(-1) for s in st]


class Normals(object):
    """The normal numbers of one value per cell and frame (stream 0 of seed 0, from step 3), as the LIF layer
    draws them with ``convis.noise.counter_normals``."""
    name = 'normals'

    def __init__(self, frames, m, dtype):
        from convis import noise
        self.frames, self.m, self.dtype = frames, m, dtype
        self.key = noise.seed_key(0)
        r = np.float32 if dtype == torch.float32 else np.float64
        log_series, cos_series = noise._SERIES[dtype]
        self.series = (tuple(r(v) for v in log_series), tuple(r(v) for v in cos_series))
        self.scale = r(1.0)
        self.kernel = 'normals_f32' if dtype == torch.float32 else 'normals_f64'
        self.c_out = torch.zeros((frames, m), dtype=dtype)
        self.nb_out = np.zeros((frames, m), r)

    def c(self):
        from convis import noise
        from convis.native import pointer
        noise._native()[self.dtype](self.frames, self.m, self.key, 3, 0, 1.0, pointer(self.c_out))
        return self.c_out.numpy(), []

    def nb(self, frames=None, serial=False):
        out = self.nb_out if frames is None else np.zeros((frames, self.m), self.nb_out.dtype)
        kernel(self.kernel, serial)(np.uint64(self.key), 3, 0, self.scale, *self.series, out,
                                    1 if serial else numba.get_num_threads())
        return out, []


def check(stage, serial=False):
    """Raises where numba's result (output and states) differs from the C loop's beyond the tolerance; returns
    the largest difference (relative to the largest value; units in the last place for the normals)."""
    (oc, sc), (on, sn) = stage.c(), stage.nb(serial=serial)
    worst = 0.0
    for a, b in zip([oc] + sc, [on] + sn):
        a, b = np.asarray(a), np.asarray(b)
        if stage.name == 'normals':
            ints = np.int32 if a.dtype == np.float32 else np.int64
            err = float(np.abs(a.view(ints).astype(np.int64) - b.view(ints).astype(np.int64)).max())
            limit = 0 if a.dtype == np.float32 else 1
        else:
            err = float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(a).max()), 1e-300)
            limit = 1e-5 if a.dtype == np.float32 else 1e-12
        if not np.isfinite(a).all() or not err <= limit:
            raise AssertionError('%s %s: numba differs from C by %.3g (allowed %g)' % (stage.name, a.dtype, err, limit))
        worst = max(worst, err)
    return worst


def _set_threads(n):
    torch.set_num_threads(n)
    numba.set_num_threads(n)


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(shape, frames, threads, repeat):
    """For each precision, per stage: the fastest seconds of C and numba per thread count, numba's first call
    (seconds, and whether from numba's cache) and the largest difference of the results."""
    results = {}
    lum = 255 * np.random.RandomState(0).rand(1, 1, frames, *shape)
    for dtype in (torch.float32, torch.float64):
        args = capture(shape, dtype)
        x = torch.tensor(lum, dtype=dtype)
        stages = []
        for name in ('opl', 'cgc', 'cgc_lowpass', 'ganglion'):
            stage = Stage(name, args[name], x, dtype)
            stages.append(stage)
            if name in ('opl', 'cgc'):        # the input of the gain control, of the ganglion layer
                x = torch.from_numpy(stage.c()[0].copy())
        stages.append(Normals(frames, shape[0] * shape[1], dtype))
        res = {}
        _set_threads(max(threads))
        for stage in stages:
            fn = kernel(getattr(stage, 'kernel', stage.name))
            known, hits = len(fn.signatures), sum(fn.stats.cache_hits.values())
            first = _seconds(lambda: stage.nb(1))
            how = ('in memory' if len(fn.signatures) == known else
                   'cache' if sum(fn.stats.cache_hits.values()) > hits else 'compiled')
            res[stage.name] = {'compile': first, 'how': how,
                               'error': max(check(stage), check(stage, serial=True)), 'c': {}, 'numba': {},
                               'serial': {}, 'modes': getattr(stage, 'modes', ())}
        for _ in range(repeat):
            for n in threads:
                _set_threads(n)
                for stage in stages:
                    runs = [('c', stage.c), ('numba', stage.nb)]
                    if n == threads[0]:
                        runs.append(('serial', lambda: stage.nb(serial=True)))
                    for kind, run in runs:
                        t = _seconds(run)
                        best = res[stage.name][kind]
                        key = 1 if kind == 'serial' else n
                        best[key] = min(best.get(key, float('inf')), t)
        results[dtype] = res
    return results


def report(shape, frames, threads, results):
    us = 1e6 / frames
    for dtype, res in results.items():
        print('\n%dx%d, %s, %d frames (us per frame; fastest of the runs; ratio = numba / C):'
              % (shape + (str(dtype)[6:], frames)))
        head = ''.join('  C %d th  nb %d th  ratio' % (n, n) for n in threads)
        print('  %-12s%s  nb serial  ratio  first call (compile)   max diff' % ('stage', head))
        for name, r in res.items():
            cells = ''.join('%8.1f %8.1f %6.2fx' % (us * r['c'][n], us * r['numba'][n], r['numba'][n] / r['c'][n])
                            for n in threads)
            cells += '%10.1f %6.2fx' % (us * r['serial'][1], r['serial'][1] / r['c'][threads[0]])
            first = '%7.2f s (%s)' % (r['compile'], r['how']) if r['how'] != 'in memory' else '%-20s' % '-'
            print('  %-12s%s  %-22s %.2g%s' % (name, cells, first, r['error'], ' ulp' if name == 'normals' else ''))
        cells = ''
        for n in threads:
            c = sum(r['c'][n] for r in res.values())
            nb = sum(r['numba'][n] for r in res.values())
            cells += '%8.1f %8.1f %6.2fx' % (us * c, us * nb, nb / c)
        c = sum(r['c'][threads[0]] for r in res.values())
        nb = sum(r['serial'][1] for r in res.values())
        cells += '%10.1f %6.2fx' % (us * nb, nb / c)
        print('  %-12s%s' % ('all stages', cells))
        for name, r in res.items():
            if any(r['modes']):
                print('  (%s: retina_loops picks the modes %s for these blurs, 2 being the recursive filter; both '
                      'loops run them as bands here)' % (name, r['modes']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=500)
    parser.add_argument('--sizes', nargs='+', default=['100x100', '50x50'])
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args(argv)
    if numba is None:
        print('numba is not installed: this comparison needs it (pip install numba, or PYTHONPATH to a folder '
              'that holds it); convis itself does not use numba.')
        return None
    from benchmarks.bench_threads import openmp_built
    threads = [n for n in args.threads if n <= numba.config.NUMBA_NUM_THREADS]
    print('numba %s, torch %s, %d cores; C loops built with OpenMP: %s'
          % (numba.__version__, torch.__version__, os.cpu_count(), openmp_built()))
    saved = torch.get_num_threads()
    results = {}
    try:
        for text in args.sizes:
            shape = _shape(text)
            results[text] = measure(shape, args.frames, threads, args.repeat)
            report(shape, args.frames, threads, results[text])
    finally:
        torch.set_num_threads(saved)
    print('\nnumba threading layer: %s' % numba.threading_layer())
    return results


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
