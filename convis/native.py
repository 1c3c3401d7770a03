"""Small compiled loops for the CPU: the parts of the retina that must step through time one step at a time.

Each loop is C source compiled once with the system compiler (``cc``, or ``$CC``) into a cache folder
(``$XDG_CACHE_HOME/convis`` or ``~/.cache/convis``) and loaded with :mod:`ctypes`.  Every compiled loop
has a torch twin that computes the same, used without a compiler, on GPUs, with autograd, or when the
environment variable ``CONVIS_NO_COMPILE=1`` is set.

Loops here:

* :func:`leaky_heat_loop`: VirtualRetina's discrete leaky heat equation with a separable blur,
  ``y[s] = A_r (e y[s-1] + (1-e) u[s]) A_c^T``, using only the band of each blur matrix that is not
  negligible in the working precision.
* :func:`opl_loop`: the whole outer plexiform layer (both leaky heat equations and the undershoot) in
  one loop over the steps, without intermediate maps.
* :func:`cgc_loop`: the contrast gain control (bipolar stage with its blurred feedback).
* :func:`ganglion_input_loop`: a ganglion layer's transient high-pass and smooth rectifier.
* :func:`recursion_loop`: the first-order recursion ``y[s] = e y[s-1] + g x[s]`` (the exponential
  low-pass), one pass over the data instead of the time-parallel block products autograd and GPUs use.
"""
import ctypes
import hashlib
import logging
import os
import platform
import subprocess
import sysconfig
import tempfile
from collections import OrderedDict

import torch

__all__ = ['compile_c_library', 'leaky_heat_loop', 'opl_loop', 'cgc_loop', 'ganglion_input_loop', 'recursion_loop', 'matrix_band', 'matrix_diagonals', 'BAND_TOLERANCE']

_LOG = logging.getLogger('convis')


def _machine_tag():
    """What the compiled code depends on besides its source: the processor's instruction sets."""
    flags = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('flags', 'Features')):
                    flags = line
                    break
    except OSError:
        pass
    return platform.machine() + flags


def _flags(contract):
    """Compiler flags: optimised, strict IEEE arithmetic (no reassociation; fused multiply-adds only with
    ``contract``); math functions need not set errno (results are unchanged, loops can vectorise)."""
    return ['-O3', '-fPIC', '-shared', '-fno-fast-math', '-fno-math-errno',
            '-ffp-contract=%s' % ('fast' if contract else 'off')]


def _compile(cc, src, out, native_arch, contract):
    args = [cc] + _flags(contract) + (['-march=native'] if native_arch else [])
    subprocess.run(args + [src, '-o', out, '-lm'], check=True, capture_output=True, timeout=120)


def compile_c_library(name, source, functions, contract=False):
    """Builds C ``source`` once with the system compiler (cached in ``~/.cache/convis``) and loads it.

    ``functions`` maps each function name to its ctypes ``(argtypes, restype)``.  The code is built for
    this processor (``-march=native``, falling back to the generic target) with strict IEEE arithmetic;
    ``contract=True`` allows fused multiply-adds (for loops that need not match a torch twin bit for bit).
    Returns a dict ``name -> ctypes function``, or None when compiling is impossible or ``CONVIS_NO_COMPILE``
    is set: every compiled loop of convis has a torch twin that computes the same.
    """
    if os.environ.get('CONVIS_NO_COMPILE'):
        return None
    try:
        cache = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'convis')
        os.makedirs(cache, exist_ok=True)
        cc = os.environ.get('CC', 'cc')
        tag = hashlib.sha1((source + '\0%s\0%s\0%s' % (cc, ' '.join(_flags(contract)), _machine_tag())).encode())
        tag = tag.hexdigest()[:12]
        path = os.path.join(cache, '%s_%s%s' % (name, tag, sysconfig.get_config_var('SHLIB_SUFFIX') or '.so'))
        if not os.path.exists(path):
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                src, out = os.path.join(tmp, name + '.c'), os.path.join(tmp, name + '.so')
                with open(src, 'w') as f:
                    f.write(source)
                try:
                    _compile(cc, src, out, True, contract)
                except subprocess.CalledProcessError:      # a compiler without -march=native
                    _compile(cc, src, out, False, contract)
                os.replace(out, path)
        lib = ctypes.CDLL(path)
        fns = {}
        for fname, (argtypes, restype) in functions.items():
            fn = getattr(lib, fname)
            fn.argtypes, fn.restype = argtypes, restype
            fns[fname] = fn
        return fns
    except Exception as e:  # no compiler, no write access...: the torch version does the same
        _LOG.info('compiled %s unavailable (%s); using torch operations', name, e)
        return None


BAND_TOLERANCE = {torch.float32: 1e-12, torch.float64: 1e-24}
"""Matrix entries smaller than this times the largest entry of their row are left out of the banded
products (their contribution is far below the rounding of the working precision)."""


def _significant(a, tolerance):
    """``|a[i, k]| > tolerance * max_k |a[i, k]|`` (float64, CPU)."""
    mag = a.detach().abs().to(torch.float64).cpu()
    return mag > tolerance * mag.amax(dim=1, keepdim=True)


def _ranges(keep):
    """Per row of the boolean matrix ``keep``, the smallest half-open column range ``[lo, hi)`` holding its
    True entries (``[0, 0)`` for a row without any)."""
    n = keep.shape[1]
    cols = torch.arange(n)
    lo = torch.where(keep, cols, torch.full_like(cols, n)).amin(dim=1)
    hi = torch.where(keep, cols, torch.full_like(cols, -1)).amax(dim=1) + 1
    empty = hi <= lo
    lo[empty], hi[empty] = 0, 0
    return lo.contiguous(), hi.contiguous()


def matrix_band(a, tolerance):
    """Per row ``i`` of the square matrix ``a``, the half-open column range ``[lo, hi)`` outside of which every
    entry is below ``tolerance`` times the row's largest magnitude.  Returns two int64 tensors (CPU)."""
    return _ranges(_significant(a, tolerance))


def matrix_diagonals(a, tolerance):
    """The significant entries of the square matrix ``a`` by diagonals: ``(D, K)`` with ``D[d + K, j] = a[j, j + d]``
    for ``|d| <= K`` (0 where the entry is below ``tolerance`` times the largest of its row or outside the
    matrix), K the widest reach of a significant entry from the diagonal.  ``x @ a^T`` then is
    ``sum_d D[d + K, j] x[..., j + d]``.  D is float64 on the CPU."""
    keep = _significant(a, tolerance)
    n = a.shape[0]
    rows, cols = keep.nonzero(as_tuple=True)
    k = int((cols - rows).abs().max()) if len(rows) else 0
    diag = torch.zeros((2 * k + 1, n), dtype=torch.float64)
    diag[cols - rows + k, rows] = a.detach().to(torch.float64).cpu()[rows, cols]
    return diag.contiguous(), k


_HEAT_SOURCE = r"""
#include <math.h>
#include <stdint.h>
/* Leaky heat loop: for every step s and image b,
     t  = y[s-1] + ratio * u[s]                                  (ratio = (1-e)/e)
     t2 = R t         (R = e A_rows, by groups of ROWS rows: RG[g, k, r] = R[ROWS g + r, k], zero outside the
                       band; group g only uses columns k in [glo[g], ghi[g]))
     y[s][i, j] = sum_{|d| <= K} D[d + K, j] t2[i, j + d]        (= t2 A_cols^T by diagonals)
   u, out: [T, BC, H, W]; y0: [BC, H, W]; RG: [HP / ROWS, H, ROWS]; D: [2K+1, WP] (zero for j >= W).
   Scratch, zero-filled by the caller: t [H, WP] and t2 [HP, WP + 2K] (row data at column K), with WP = W
   rounded up to LANES and HP = H rounded up to ROWS.  Products run on blocks of LANES columns of ROWS rows,
   accumulated in registers (ROWS independent chains). */
#define LANES 16
#define ROWS 4
"""
_HEAT_FUNCTION = r"""
/* One step for one image: o = R (y + a (x + c)) A_cols^T (see above); t, t2 scratch. */
static void heat_step_@NAME@(int64_t H, int64_t W, const @REAL@ *y, const @REAL@ *x, @REAL@ a, @REAL@ c,
                             @REAL@ *o, const @REAL@ *RG, const int64_t *glo, const int64_t *ghi,
                             const @REAL@ *D, int64_t K, @REAL@ *t, @REAL@ *t2) {
    typedef @REAL@ vec __attribute__((vector_size(LANES * sizeof(@REAL@))));
    typedef @REAL@ uvec __attribute__((vector_size(LANES * sizeof(@REAL@)), aligned(sizeof(@REAL@))));
    const int64_t WP = (W + LANES - 1) / LANES * LANES, W2 = WP + 2 * K;
    const int64_t HP = (H + ROWS - 1) / ROWS * ROWS;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) t[i * WP + j] = y[i * W + j] + a * (x[i * W + j] + c);
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const int64_t g = i0 / ROWS;
        const @REAL@ *rg = RG + g * H * ROWS;
        @REAL@ *dst = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t k = glo[g]; k < ghi[g]; k++) {
                const vec v = *(const uvec *)(t + k * WP + j0);
                const @REAL@ *r = rg + k * ROWS;
                a0 += r[0] * v; a1 += r[1] * v; a2 += r[2] * v; a3 += r[3] * v;
            }
            *(uvec *)(dst + j0) = a0; *(uvec *)(dst + W2 + j0) = a1;
            *(uvec *)(dst + 2 * W2 + j0) = a2; *(uvec *)(dst + 3 * W2 + j0) = a3;
        }
    }
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const @REAL@ *src = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec acc[ROWS];
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t dd = 0; dd <= 2 * K; dd++) {
                const vec dv = *(const uvec *)(D + dd * WP + j0);
                const @REAL@ *sv = src + j0 + dd - K;
                a0 += dv * *(const uvec *)sv; a1 += dv * *(const uvec *)(sv + W2);
                a2 += dv * *(const uvec *)(sv + 2 * W2); a3 += dv * *(const uvec *)(sv + 3 * W2);
            }
            acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
            const int64_t n = W - j0 < LANES ? W - j0 : LANES;
            for (int64_t r = 0; r < ROWS && i0 + r < H; r++) {
                if (n == LANES) *(uvec *)(o + (i0 + r) * W + j0) = acc[r];
                else for (int64_t jj = 0; jj < n; jj++) o[(i0 + r) * W + j0 + jj] = acc[r][jj];
            }
        }
    }
}

void convis_heat_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *u, @REAL@ *out,
                        const @REAL@ *y0, double ratio, const @REAL@ *RG, const int64_t *glo,
                        const int64_t *ghi, const @REAL@ *D, int64_t K, @REAL@ *t, @REAL@ *t2) {
    const int64_t HW = H * W;
    for (int64_t s = 0; s < T; s++)
        for (int64_t b = 0; b < BC; b++)
            heat_step_@NAME@(H, W, s == 0 ? y0 + b * HW : out + ((s - 1) * BC + b) * HW, u + (s * BC + b) * HW,
                             (@REAL@)ratio, 0, out + (s * BC + b) * HW, RG, glo, ghi, D, K, t, t2);
}

/* VirtualRetina's OPL for T steps of BC images x [T, BC, H, W] (see convis.filters.retina.OPL):
     C[s] = heat_C(C[s-1], a_c (x[s] + c_c))
     with undershoot:  U[s] = e_u U[s-1] + (1 - e_u) C[s-1],  R[s] = C[s-1] - w_u U[s];  without: R[s] = C[s]
     S[s] = heat_S(S[s-1], a_s R[s-1]),  out[s] = R[s] - S[s] + offset
   The states C, U, R, S [BC, H, W] are read and updated in place; cn, sn [H, W] scratch. */
void convis_opl_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *x, @REAL@ *out,
                       @REAL@ *C, @REAL@ *U, @REAL@ *R, @REAL@ *S, double a_c, double c_c, double a_s,
                       int64_t undershoot, double e_u, double w_u, double offset,
                       const @REAL@ *RGc, const int64_t *gloc, const int64_t *ghic, const @REAL@ *Dc, int64_t Kc,
                       const @REAL@ *RGs, const int64_t *glos, const int64_t *ghis, const @REAL@ *Ds, int64_t Ks,
                       @REAL@ *t, @REAL@ *t2, @REAL@ *cn, @REAL@ *sn) {
    const int64_t HW = H * W;
    const @REAL@ eu = (@REAL@)e_u, gu = (@REAL@)(1 - e_u), wu = (@REAL@)w_u, off = (@REAL@)offset;
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            @REAL@ *c = C + b * HW, *u = U + b * HW, *r = R + b * HW, *sr = S + b * HW;
            @REAL@ *o = out + (s * BC + b) * HW;
            heat_step_@NAME@(H, W, c, x + (s * BC + b) * HW, (@REAL@)a_c, (@REAL@)c_c, cn, RGc, gloc, ghic, Dc, Kc,
                             t, t2);
            heat_step_@NAME@(H, W, sr, r, (@REAL@)a_s, 0, sn, RGs, glos, ghis, Ds, Ks, t, t2);
            if (undershoot) {
                for (int64_t p = 0; p < HW; p++) {
                    const @REAL@ un = eu * u[p] + gu * c[p], rec = c[p] - wu * un;
                    u[p] = un; r[p] = rec; o[p] = rec - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
                }
            } else {
                for (int64_t p = 0; p < HW; p++) {
                    r[p] = cn[p]; o[p] = cn[p] - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
                }
            }
        }
    }
}
"""
_HEAT_FUNCTION += r"""
/* VirtualRetina's contrast gain control (convis.filters.retina.Bipolar with feedback) for T steps of BC
   images; x [T, BC, H, W] is the OPL output, read one step late (xp [BC, H, W] before the chunk):
     g = g0 + gA,  Einf = amp x[s-1] / g,  q = G w / (1 + w) with w = lam V^2 / G,
     V <- Einf + (V - Einf) exp(-dt g),  gA <- eA gA + (1 - eA) blur(q)
   States xp, V, gA [BC, H, W] updated in place; out [T, BC, H, W] gets V; ei, at, q, qb [H, W] scratch. */
void convis_cgc_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *x, @REAL@ *out,
                       @REAL@ *XP, @REAL@ *V, @REAL@ *GA, double amp_d, double g0_d, double lam_d, double dt_d,
                       double ea_d, double sat_d, const @REAL@ *RG, const int64_t *glo, const int64_t *ghi,
                       const @REAL@ *D, int64_t K, @REAL@ *t, @REAL@ *t2, @REAL@ *ei, @REAL@ *at, @REAL@ *q,
                       @REAL@ *qb) {
    const int64_t HW = H * W;
    const @REAL@ amp = (@REAL@)amp_d, g0 = (@REAL@)g0_d, lam = (@REAL@)lam_d, ea = (@REAL@)ea_d, sat = (@REAL@)sat_d;
    const @REAL@ dt = (@REAL@)dt_d;
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            const @REAL@ *xin = s == 0 ? XP + b * HW : x + ((s - 1) * BC + b) * HW;
            @REAL@ *v = V + b * HW, *ga = GA + b * HW, *o = out + (s * BC + b) * HW;
            for (int64_t p = 0; p < HW; p++) {
                const @REAL@ g = g0 + ga[p], w = lam * v[p] * v[p] / sat;
                at[p] = @EXP@(-dt * g);
                ei[p] = amp * xin[p] / g;
                q[p] = sat * w / (1 + w);
            }
            heat_step_@NAME@(H, W, q, q, 0, 0, qb, RG, glo, ghi, D, K, t, t2);
            for (int64_t p = 0; p < HW; p++) {
                v[p] = ei[p] + (v[p] - ei[p]) * at[p];
                ga[p] = ea * ga[p] + (1 - ea) * qb[p];
                o[p] = v[p];
            }
        }
    }
    for (int64_t b = 0; b < BC && T > 0; b++)
        for (int64_t p = 0; p < HW; p++) XP[b * HW + p] = x[((T - 1) * BC + b) * HW + p];
}

/* Input current of a ganglion layer (convis.filters.ganglion.GanglionInput, before pooling) for T steps of
   P values per step, x [T, P] (the bipolar signal, read one step late: xp [P] before the chunk):
     F <- e F + (1 - e) x[s-1],  Tn = x[s-1] - w F,  out[s] = N(sign T_old),  T_old <- Tn
   with VirtualRetina's smooth rectifier N (i0, v0, lam, saturation G).  States xp, F, Tr [P] in place. */
void convis_ganglion_@NAME@(int64_t T, int64_t P, const @REAL@ *x, @REAL@ *out, @REAL@ *XP, @REAL@ *F,
                            @REAL@ *TR, double e_d, double w_d, double sign_d, double v0_d, double i0_d,
                            double lam_d, double sat_d) {
    const @REAL@ e = (@REAL@)e_d, ge = (@REAL@)(1 - e_d), w = (@REAL@)w_d, sign = (@REAL@)sign_d;
    const @REAL@ v0 = (@REAL@)v0_d, i0 = (@REAL@)i0_d, lam = (@REAL@)lam_d, g = (@REAL@)(sat_d - i0_d);
    const @REAL@ i02 = i0 * i0;
    for (int64_t s = 0; s < T; s++) {
        const @REAL@ *xin = s == 0 ? XP : x + (s - 1) * P;
        @REAL@ *o = out + s * P;
        for (int64_t p = 0; p < P; p++) {
            const @REAL@ f = e * F[p] + ge * xin[p], tn = xin[p] - w * f;
            const @REAL@ d = (sign * TR[p] - v0) * lam;
            const @REAL@ neg = d < 0 ? -d : 0, pos = d > 0 ? d : 0;
            o[p] = i02 / (i0 + neg) + pos * g / (pos + g);
            F[p] = f;
            TR[p] = tn;
        }
    }
    if (T > 0)
        for (int64_t p = 0; p < P; p++) XP[p] = x[(T - 1) * P + p];
}
"""
_HEAT_FUNCTION += r"""
/* y[p, s, q] = e y[p, s-1, q] + g x[p, s, q] with y[p, -1, q] = y0[p, q]; x, y: [P, T, Q], y0: [P, Q]. */
void convis_recursion_@NAME@(int64_t P, int64_t T, int64_t Q, const @REAL@ *x, @REAL@ *y, const @REAL@ *y0,
                             double e_d, double g_d) {
    const @REAL@ e = (@REAL@)e_d, g = (@REAL@)g_d;
    for (int64_t p = 0; p < P; p++) {
        const @REAL@ *prev = y0 + p * Q;
        for (int64_t s = 0; s < T; s++) {
            const @REAL@ *xs = x + (p * T + s) * Q;
            @REAL@ *ys = y + (p * T + s) * Q;
            for (int64_t q = 0; q < Q; q++) ys[q] = e * prev[q] + g * xs[q];
            prev = ys;
        }
    }
}
"""
_HEAT_SOURCE += (_HEAT_FUNCTION.replace('@NAME@', 'f64').replace('@REAL@', 'double').replace('@EXP@', 'exp')
                 + _HEAT_FUNCTION.replace('@NAME@', 'f32').replace('@REAL@', 'float').replace('@EXP@', 'expf'))
_LANES, _ROWS = 16, 4
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
        i64, dbl, p = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
        sig = ([i64, i64, i64, i64, p, p, p, dbl, p, p, p, p, i64, p, p], None)
        rec = ([i64, i64, i64, p, p, p, dbl, dbl], None)
        opl = ([i64, i64, i64, i64, p, p, p, p, p, p, dbl, dbl, dbl, i64, dbl, dbl, dbl]
               + [p, p, p, p, i64] * 2 + [p, p, p, p], None)
        cgc = ([i64, i64, i64, i64, p, p, p, p, p, dbl, dbl, dbl, dbl, dbl, dbl, p, p, p, p, i64]
               + [p] * 6, None)
        gang = ([i64, i64, p, p, p, p, p] + [dbl] * 7, None)
        names = {'heat': sig, 'recursion': rec, 'opl': opl, 'cgc': cgc, 'ganglion': gang}
        fns = compile_c_library('heat', _HEAT_SOURCE, {'convis_%s_%s' % (n, t): a for n, a in names.items()
                                                       for t in ('f32', 'f64')}, contract=True)
        _HEAT.append(None if fns is None else {
            n: {torch.float64: fns['convis_%s_f64' % n], torch.float32: fns['convis_%s_f32' % n]} for n in names})
    return _HEAT[0]


_OPERANDS = OrderedDict()


def _blur_operands(a_rows, a_cols, e, h, w, dtype):
    """The arguments the compiled loops take for one blur ``e A_rows . A_cols^T`` (cached): row groups, their
    column ranges, the diagonals of A_cols padded to whole blocks of columns, their reach K."""
    key = (id(a_rows), id(a_cols), e, h, w, dtype)
    found = _OPERANDS.get(key)
    if found is not None and found[0] is a_rows and found[1] is a_cols:
        _OPERANDS.move_to_end(key)
        return found[2]
    eye = lambda n: torch.eye(n, dtype=dtype)  # noqa: E731
    rows = (e * (a_rows if a_rows is not None else eye(h))).detach().to(dtype).cpu().contiguous()
    tol = BAND_TOLERANCE[dtype]
    rg, glo, ghi = _row_groups(rows, tol)
    diag, k = matrix_diagonals(a_cols if a_cols is not None else eye(w), tol)
    padded = torch.zeros((2 * k + 1, -(-w // _LANES) * _LANES), dtype=dtype)
    padded[:, :w] = diag
    operands = (rg, glo, ghi, padded, k)
    _OPERANDS[key] = (a_rows, a_cols, operands)     # the matrices are kept so that their ids stay theirs
    while len(_OPERANDS) > 32:
        _OPERANDS.popitem(last=False)
    return operands


def _pointers(operands):
    rg, glo, ghi, padded, k = operands
    return [rg.data_ptr(), glo.data_ptr(), ghi.data_ptr(), padded.data_ptr(), k]


def _scratch(h, w, k, dtype):
    """The two scratch maps of the compiled blur for a reach of up to ``k`` columns (zero-filled)."""
    wp = -(-w // _LANES) * _LANES
    return torch.zeros((h, wp), dtype=dtype), torch.zeros((-(-h // _ROWS) * _ROWS, wp + 2 * k), dtype=dtype)


def _time_major(x):
    """``[B, C, T, H, W]`` as a contiguous ``[T, B*C, H, W]`` (no copy when B*C == 1)."""
    b, c, n_t, h, w = x.shape
    return x.detach().movedim(2, 0).reshape(n_t, b * c, h, w).contiguous()


def leaky_heat_loop(u, e, a_rows, a_cols, y_prev):
    """VirtualRetina's leaky heat equation ``y[s] = A_r (e y[s-1] + (1-e) u[s]) A_c^T`` as a compiled loop.

    ``u`` is ``[B, C, T, H, W]`` (float32 or float64, CPU, no gradient), ``e`` the decay per step
    (``0 < e``), ``a_rows`` ``[H, H]`` and ``a_cols`` ``[W, W]`` the blur matrices (None: identity),
    ``y_prev`` ``[B, C, 1, H, W]`` the value before the chunk.  Returns ``y`` shaped like ``u``, or None when
    no compiled loop is available (the caller then runs the torch loop).  Only the band of each matrix
    above :data:`BAND_TOLERANCE` of its row's largest entry takes part.
    """
    fns = _heat_functions()
    if fns is None or u.dtype not in fns['heat'] or u.device.type != 'cpu':
        return None
    b, c, n_t, h, w = u.shape
    e = _number(e)
    operands = _blur_operands(a_rows, a_cols, e, h, w, u.dtype)
    ut = _time_major(u)
    out = torch.empty_like(ut)
    y0 = y_prev.detach().reshape(b * c, h, w).to(u.dtype).contiguous()
    t, t2 = _scratch(h, w, operands[4], u.dtype)
    fns['heat'][u.dtype](n_t, b * c, h, w, ut.data_ptr(), out.data_ptr(), y0.data_ptr(), (1 - e) / e,
                         *_pointers(operands), t.data_ptr(), t2.data_ptr())
    return out.reshape(n_t, b, c, h, w).movedim(0, 2)


def opl_loop(x, states, center, surround, lam, offset_in, undershoot, e_u, w_u, w_s, offset_out):
    """VirtualRetina's OPL (centre and surround leaky heat equations, undershoot) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the input; the centre's input is ``lam (x + offset_in)``.  ``states``: the
    tensors ``(C, U, R, S)`` of :class:`convis.filters.retina.OPL` (``[B, C, 1, H, W]``; copies are updated and
    returned).  ``center``/``surround``: ``(e, A_rows, A_cols)`` of each leaky heat equation; ``undershoot``
    (bool), ``e_u``, ``w_u``: the undershoot; ``w_s``: the surround's weight; ``offset_out`` added to the output.
    Returns ``(out, (C, U, R, S))`` or None when no compiled loop is available or ``e`` is 0.
    """
    fns = _heat_functions()
    if fns is None or x.dtype not in fns['opl'] or x.device.type != 'cpu':
        return None
    b, c, n_t, h, w = x.shape
    e_c, e_s = _number(center[0]), _number(surround[0])
    if e_c <= 1e-12 or e_s <= 1e-12:
        return None
    op_c = _blur_operands(center[1], center[2], e_c, h, w, x.dtype)
    op_s = _blur_operands(surround[1], surround[2], e_s, h, w, x.dtype)
    xt = _time_major(x)
    out = torch.empty_like(xt)
    st = [s.detach().to(x.dtype).reshape(b * c, h, w).clone() for s in states]
    t, t2 = _scratch(h, w, max(op_c[4], op_s[4]), x.dtype)
    cn, sn = torch.empty((h, w), dtype=x.dtype), torch.empty((h, w), dtype=x.dtype)
    fns['opl'][x.dtype](n_t, b * c, h, w, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
                        (1 - e_c) / e_c * _number(lam), _number(offset_in), (1 - e_s) / e_s * _number(w_s),
                        int(bool(undershoot)), _number(e_u), _number(w_u), _number(offset_out),
                        *_pointers(op_c), *_pointers(op_s), t.data_ptr(), t2.data_ptr(), cn.data_ptr(), sn.data_ptr())
    return (out.reshape(n_t, b, c, h, w).movedim(0, 2),
            tuple(s.reshape(b, c, 1, h, w) for s in st))


def cgc_loop(x, states, amp, g0, lam, dt, e_a, saturation, a_rows, a_cols):
    """VirtualRetina's contrast gain control (the bipolar stage with feedback) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the OPL output; ``states``: ``(input_prev, V, g_A)`` of
    :class:`convis.filters.retina.Bipolar` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``amp`` (Hz), ``g0`` (Hz), ``lam`` (Hz), ``dt`` (s), ``e_a`` the adaptation's decay per step,
    ``saturation`` (Hz), ``a_rows``/``a_cols`` the adaptation blur (None: identity).
    Returns ``(V [B, C, T, H, W], (input_prev, V, g_A))``, or None when no compiled loop is available.
    """
    fns = _heat_functions()
    if fns is None or x.dtype not in fns['cgc'] or x.device.type != 'cpu':
        return None
    b, c, n_t, h, w = x.shape
    ops = _blur_operands(a_rows, a_cols, 1.0, h, w, x.dtype)
    xt = _time_major(x)
    out = torch.empty_like(xt)
    st = [s.detach().to(x.dtype).reshape(b * c, h, w).clone() for s in states]
    t, t2 = _scratch(h, w, ops[4], x.dtype)
    maps = [torch.empty((h, w), dtype=x.dtype) for _ in range(4)]
    fns['cgc'][x.dtype](n_t, b * c, h, w, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
                        *[_number(v) for v in (amp, g0, lam, dt, e_a, saturation)], *_pointers(ops),
                        t.data_ptr(), t2.data_ptr(), *[m.data_ptr() for m in maps])
    return out.reshape(n_t, b, c, h, w).movedim(0, 2), tuple(s.reshape(b, c, 1, h, w) for s in st)


def ganglion_input_loop(x, states, e, w, sign, v0, i0, lam, saturation):
    """The input current of a ganglion layer before pooling (transient high-pass, smooth rectifier) as one
    compiled loop.

    ``x`` ``[B, C, T, H, W]``: the bipolar signal; ``states``: ``(input_prev, F, T)`` of
    :class:`convis.filters.ganglion.GanglionInput` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``e`` the transient's decay per step, ``w`` its weight, ``sign`` +1/-1, ``v0``, ``i0`` (Hz, > 0),
    ``lam`` (Hz), ``saturation`` (Hz).  Returns ``(rates [B, C, T, H, W], (input_prev, F, T))`` or None.
    """
    fns = _heat_functions()
    if fns is None or x.dtype not in fns['ganglion'] or x.device.type != 'cpu':
        return None
    b, c, n_t, h, w_ = x.shape
    xt = _time_major(x)
    out = torch.empty_like(xt)
    st = [s.detach().to(x.dtype).reshape(b * c * h * w_).clone() for s in states]
    fns['ganglion'][x.dtype](n_t, b * c * h * w_, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
                             *[_number(v) for v in (e, w, sign, v0, i0, lam, saturation)])
    return out.reshape(n_t, b, c, h, w_).movedim(0, 2), tuple(s.reshape(b, c, 1, h, w_) for s in st)


def recursion_loop(x, e, y_prev, gain):
    """``y[s] = e y[s-1] + gain x[s]`` along the middle axis of ``x`` ``[P, T, Q]`` as a compiled loop.

    ``y_prev`` is ``[P, 1, Q]`` (any strides), ``e`` and ``gain`` numbers.  CPU float32/float64 tensors
    without gradient; returns ``y`` ``[P, T, Q]`` or None when no compiled loop is available.
    """
    fns = _heat_functions()
    if fns is None or x.dtype not in fns['recursion'] or x.device.type != 'cpu':
        return None
    x = x.detach().contiguous()
    y0 = y_prev.detach().to(x.dtype).contiguous()
    y = torch.empty_like(x)
    fns['recursion'][x.dtype](x.shape[0], x.shape[1], x.shape[2], x.data_ptr(), y.data_ptr(), y0.data_ptr(),
                              _number(e), _number(gain))
    return y


def _number(v):
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
