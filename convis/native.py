"""Small compiled loops for the CPU: the parts of the retina that must step through time one step at a time.

Each loop is C source compiled once with the system compiler (``cc``, or ``$CC``) into a cache folder
(``$XDG_CACHE_HOME/convis`` or ``~/.cache/convis``) and loaded with :mod:`ctypes`.  Every compiled loop
has a torch twin that computes the same, used without a compiler, on GPUs, with autograd, or when the
environment variable ``CONVIS_NO_COMPILE=1`` is set.

Loops here: :func:`recursion_loop`, the first-order recursion ``y[s] = e y[s-1] + g x[s]`` (the exponential
low-pass), one pass over the data instead of the time-parallel block products autograd and GPUs use; the
retina's loops are in :mod:`convis.filters.retina_loops`.  The band helpers (:func:`matrix_band`,
:func:`matrix_diagonals`) find the part of a blur matrix that matters in the working precision.
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

__all__ = ['compile_c_library', 'recursion_loop', 'matrix_band', 'matrix_diagonals', 'BAND_TOLERANCE']

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
    """``|a[..., i, k]| > tolerance * max_k |a[..., i, k]|`` (float64, CPU)."""
    mag = a.detach().abs().to(torch.float64).cpu()
    return mag > tolerance * mag.amax(dim=-1, keepdim=True)


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


def matrix_diagonals(a, tolerance, width=None):
    """The significant entries of a square matrix ``a`` ``[N, N]`` (or of each of a stack ``[L, N, N]``) by diagonals:
    ``(D, K)`` with ``D[(l,) d + K, j] = a[(l,) j, j + d]`` for ``|d| <= K`` (0 where the entry is below ``tolerance``
    times the largest of its row, or outside the matrix), K the widest reach of a significant entry from the
    diagonal.  ``x @ a^T`` then is ``sum_d D[d + K, j] x[..., j + d]``.  D is float64 on the CPU, with ``width``
    columns (default N; columns past N are 0)."""
    mats = a.detach().to(torch.float64).cpu()
    single = mats.dim() == 2
    mats = mats[None] if single else mats
    keep = _significant(mats, tolerance)
    line, rows, cols = keep.nonzero(as_tuple=True)
    k = int((cols - rows).abs().max()) if len(rows) else 0
    diag = torch.zeros((mats.shape[0], 2 * k + 1, width or mats.shape[-1]), dtype=torch.float64)
    diag[line, cols - rows + k, rows] = mats[line, rows, cols]
    return (diag[0] if single else diag), k


_RECURSION_FUNCTION = r"""
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
_RECURSION_SOURCE = '#include <stdint.h>\n' + ''.join(_RECURSION_FUNCTION.replace('@NAME@', n).replace('@REAL@', r)
                                                    for n, r in (('f64', 'double'), ('f32', 'float')))
_RECURSION = []


def _recursion_functions():
    if not _RECURSION:
        i64, dbl, p = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
        sig = ([i64, i64, i64, p, p, p, dbl, dbl], None)
        fns = compile_c_library('recursion', _RECURSION_SOURCE,
                                {'convis_recursion_f64': sig, 'convis_recursion_f32': sig}, contract=True)
        _RECURSION.append(None if fns is None else {torch.float64: fns['convis_recursion_f64'],
                                                    torch.float32: fns['convis_recursion_f32']})
    return _RECURSION[0]


def recursion_loop(x, e, y_prev, gain):
    """``y[s] = e y[s-1] + gain x[s]`` along the middle axis of ``x`` ``[P, T, Q]`` as a compiled loop.

    ``y_prev`` is ``[P, 1, Q]`` (any strides), ``e`` and ``gain`` numbers.  CPU float32/float64 tensors
    without gradient; returns ``y`` ``[P, T, Q]`` or None when no compiled loop is available.
    """
    fns = _recursion_functions()
    if fns is None or x.dtype not in fns or x.device.type != 'cpu':
        return None
    x = x.detach().contiguous()
    y0 = y_prev.detach().to(x.dtype).contiguous()
    y = torch.empty_like(x)
    fns[x.dtype](x.shape[0], x.shape[1], x.shape[2], x.data_ptr(), y.data_ptr(), y0.data_ptr(),
                              _number(e), _number(gain))
    return y


def _number(v):
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
