"""Small compiled loops for the CPU: the parts of the retina that must step through time one step at a time.

Each loop is C source compiled once with the system compiler (``cc``, or ``$CC``) into a cache folder
(``$XDG_CACHE_HOME/convis`` or ``~/.cache/convis``) and loaded with :mod:`ctypes`.  Every compiled loop
has a torch twin that computes the same, used without a compiler, on GPUs, with autograd, or when the
environment variable ``CONVIS_NO_COMPILE=1`` is set.

Loops here:

* :func:`leaky_heat_loop`: VirtualRetina's discrete leaky heat equation with a separable blur,
  ``y[s] = A_r (e y[s-1] + (1-e) u[s]) A_c^T``, using only the band of each blur matrix that is not
  negligible in the working precision.
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

import torch

__all__ = ['compile_c_library', 'leaky_heat_loop', 'recursion_loop', 'matrix_band', 'matrix_diagonals', 'BAND_TOLERANCE']

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


def _compile(cc, src, out, native_arch, contract):
    args = [cc, '-O3', '-fPIC', '-shared', '-fno-fast-math', '-ffp-contract=%s' % ('fast' if contract else 'off')]
    if native_arch:
        args.append('-march=native')
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
        tag = hashlib.sha1((source + '\0%s\0%s\0%s' % (cc, contract, _machine_tag())).encode()).hexdigest()[:12]
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
void convis_heat_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *u, @REAL@ *out,
                        const @REAL@ *y0, double ratio_d, const @REAL@ *RG, const int64_t *glo,
                        const int64_t *ghi, const @REAL@ *D, int64_t K, @REAL@ *t, @REAL@ *t2) {
    typedef @REAL@ vec __attribute__((vector_size(LANES * sizeof(@REAL@))));
    typedef @REAL@ uvec __attribute__((vector_size(LANES * sizeof(@REAL@)), aligned(sizeof(@REAL@))));
    const @REAL@ ratio = (@REAL@)ratio_d;
    const int64_t HW = H * W, WP = (W + LANES - 1) / LANES * LANES, W2 = WP + 2 * K;
    const int64_t HP = (H + ROWS - 1) / ROWS * ROWS;
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            const @REAL@ *y = s == 0 ? y0 + b * HW : out + ((s - 1) * BC + b) * HW;
            const @REAL@ *us = u + (s * BC + b) * HW;
            @REAL@ *o = out + (s * BC + b) * HW;
            for (int64_t i = 0; i < H; i++)
                for (int64_t j = 0; j < W; j++) t[i * WP + j] = y[i * W + j] + ratio * us[i * W + j];
            for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
                const int64_t g = i0 / ROWS;
                const @REAL@ *rg = RG + g * H * ROWS;
                @REAL@ *dst = t2 + i0 * W2 + K;
                for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
                    vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                    for (int64_t k = glo[g]; k < ghi[g]; k++) {
                        const vec x = *(const uvec *)(t + k * WP + j0);
                        const @REAL@ *c = rg + k * ROWS;
                        a0 += c[0] * x; a1 += c[1] * x; a2 += c[2] * x; a3 += c[3] * x;
                    }
                    *(uvec *)(dst + j0) = a0; *(uvec *)(dst + W2 + j0) = a1;
                    *(uvec *)(dst + 2 * W2 + j0) = a2; *(uvec *)(dst + 3 * W2 + j0) = a3;
                }
            }
            for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
                const @REAL@ *src = t2 + i0 * W2 + K;
                for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
                    vec a[ROWS] = {{0}};
                    vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                    for (int64_t dd = 0; dd <= 2 * K; dd++) {
                        const vec dv = *(const uvec *)(D + dd * WP + j0);
                        const @REAL@ *sv = src + j0 + dd - K;
                        a0 += dv * *(const uvec *)sv; a1 += dv * *(const uvec *)(sv + W2);
                        a2 += dv * *(const uvec *)(sv + 2 * W2); a3 += dv * *(const uvec *)(sv + 3 * W2);
                    }
                    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
                    const int64_t n = W - j0 < LANES ? W - j0 : LANES;
                    for (int64_t r = 0; r < ROWS && i0 + r < H; r++) {
                        if (n == LANES) *(uvec *)(o + (i0 + r) * W + j0) = a[r];
                        else for (int64_t jj = 0; jj < n; jj++) o[(i0 + r) * W + j0 + jj] = a[r][jj];
                    }
                }
            }
        }
    }
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
_HEAT_SOURCE += (_HEAT_FUNCTION.replace('@NAME@', 'f64').replace('@REAL@', 'double')
                 + _HEAT_FUNCTION.replace('@NAME@', 'f32').replace('@REAL@', 'float'))
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
        fns = compile_c_library('heat', _HEAT_SOURCE, {'convis_heat_f64': sig, 'convis_heat_f32': sig,
                                                       'convis_recursion_f64': rec, 'convis_recursion_f32': rec},
                                contract=True)
        _HEAT.append(None if fns is None else {
            'heat': {torch.float64: fns['convis_heat_f64'], torch.float32: fns['convis_heat_f32']},
            'recursion': {torch.float64: fns['convis_recursion_f64'], torch.float32: fns['convis_recursion_f32']}})
    return _HEAT[0]


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
    fns = fns['heat']
    b, c, n_t, h, w = u.shape
    e = _number(e)
    eye = lambda n: torch.eye(n, dtype=u.dtype)  # noqa: E731
    rows = (e * (a_rows if a_rows is not None else eye(h))).detach().to(u.dtype).contiguous()
    tol = BAND_TOLERANCE[u.dtype]
    rg, glo, ghi = _row_groups(rows, tol)
    diag, k = matrix_diagonals(a_cols if a_cols is not None else eye(w), tol)
    wp, hp = -(-w // _LANES) * _LANES, rg.shape[0] * _ROWS
    padded = torch.zeros((2 * k + 1, wp), dtype=u.dtype)
    padded[:, :w] = diag
    ut = u.detach().movedim(2, 0).reshape(n_t, b * c, h, w).contiguous()
    out = torch.empty_like(ut)
    y0 = y_prev.detach().reshape(b * c, h, w).to(u.dtype).contiguous()
    t, t2 = torch.zeros((h, wp), dtype=u.dtype), torch.zeros((hp, wp + 2 * k), dtype=u.dtype)
    fns[u.dtype](n_t, b * c, h, w, ut.data_ptr(), out.data_ptr(), y0.data_ptr(), (1 - e) / e,
                 rg.data_ptr(), glo.data_ptr(), ghi.data_ptr(), padded.data_ptr(), k, t.data_ptr(), t2.data_ptr())
    return out.reshape(n_t, b, c, h, w).movedim(0, 2)


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
