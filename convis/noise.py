"""Counter-based Gaussian random numbers: each number a function of (seed, step, stream, index).

A spiking layer needs one normal number per cell and step (membrane noise) and sometimes two more
(refractory periods).  Here each number is computed from its coordinates rather than drawn in
sequence, so the numbers do not depend on how a simulation is cut into chunks, can be made on any
device without copies, and cost about a nanosecond each on a CPU:

.. math::

    r_{k,j} = \\text{mix}(b + (4k + j)\\,\\gamma_1), \\qquad h_{k,j,i} = \\text{mix}(r_{k,j} + (i + 1)\\,\\gamma_2)

(64-bit arithmetic modulo :math:`2^{64}`, ``mix`` the SplitMix64 finaliser, ``b = mix(seed)``, ``k``
the step, ``j`` the stream, ``i`` the index).  The normal number is Box-Muller's
:math:`z = \\pm\\sqrt{-2\\ln u_1}\\,\\cos(\\pi f/2)`: ``u1`` in (0, 1] from the upper bits of ``h``, ``f``
in [0, 1) from the next bits, the sign from the lowest bit; with 32-bit ``u1`` (float64) the numbers reach
6.7 standard deviations, with 24-bit ``u1`` (float32) 5.8.  The logarithm and the cosine are fixed
polynomials, computed in the precision of the result.  The compiled loop (CPU) and the torch version
(any device, or without a C compiler) perform the same operations and agree to the last bit in float32;
in float64 they can differ by one unit in the last place (in about 1% of the numbers on CPUs where
torch's square root is not correctly rounded).
"""
import ctypes
import math

import numpy as np
import torch

from .native import compile_c_library

__all__ = ['counter_normals', 'seed_key']

_G1, _G2 = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1
_SQRT_HALF = 0.7071067811865476
_LN2 = 0.6931471805599453
_HALF_PI = 1.5707963267948966
# atanh series for log (1/3, 1/5, ...) and cos series (-1/2!, 1/4!, ...): enough terms for each precision
_SERIES = {torch.float64: ([1.0 / (2 * n + 1) for n in range(1, 11)],
                           [(-1) ** n / math.factorial(2 * n) for n in range(1, 12)]),
           torch.float32: ([1.0 / (2 * n + 1) for n in range(1, 6)],
                           [(-1) ** n / math.factorial(2 * n) for n in range(1, 8)])}


def _mix(z):
    """SplitMix64's finaliser on a Python integer (modulo 2^64)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def seed_key(seed):
    """The 64-bit key ``b = mix(seed)`` of a seed (any integer)."""
    return _mix(int(seed))


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _c_float(v, single):
    """A C literal of ``v`` (rounded to single precision first for ``single``: the literal is then exact)."""
    if single:
        return repr(float(np.float32(v))) + 'f'
    return repr(float(v))


def _c_poly(coeffs, var, single):
    """Horner form of ``sum c_n var^n`` (n from 0) as C source."""
    expr = _c_float(coeffs[-1], single)
    for c in reversed(coeffs[:-1]):
        expr = '(%s * %s + %s)' % (expr, var, _c_float(c, single))
    return expr


_C_HEAD = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0x%(m1)xULL;
    z = (z ^ (z >> 27)) * 0x%(m2)xULL;
    return z ^ (z >> 31);
}
""" % {'m1': _M1, 'm2': _M2}

# out[s, i] = (REAL)(scale * z) for steps k0..k0+T-1 of stream j and indices 0..M-1
_C_NORMALS = r"""
void convis_normals_%(name)s(int64_t T, int64_t M, uint64_t base, int64_t k0, int64_t j, double scale_d,
                             %(real)s *out) {
    const %(real)s scale = (%(real)s)scale_d;
    for (int64_t s = 0; s < T; s++) {
        const uint64_t row = mix(base + (uint64_t)(4 * (k0 + s) + j) * 0x%(g1)xULL);
        %(real)s *o = out + s * M;
        for (int64_t i = 0; i < M; i++) {
            const uint64_t h = mix(row + (uint64_t)(i + 1) * 0x%(g2)xULL);
            const %(real)s u1 = (%(real)s)((h >> %(u1_shift)d) + 1) * %(u1_scale)s;
            const %(real)s f = (%(real)s)((h >> 1) & %(f_mask)s) * %(f_scale)s;
            const %(real)s sign = %(one)s - %(two)s * (%(real)s)(h & 1ULL);
            %(bits)s bits; memcpy(&bits, &u1, sizeof bits);
            %(real)s e = (%(real)s)((%(ebits)s)((bits >> %(e_shift)d) & %(e_mask)s) - %(e_bias)d), m;
            bits = (bits & %(keep)s) | %(half_exp)s; memcpy(&m, &bits, sizeof bits);
            const int small = m < %(sqrt_half)s;
            m = small ? m * %(two)s : m;
            e = small ? e - %(one)s : e;
            const %(real)s t = (m - %(one)s) / (m + %(one)s), t2 = t * t;
            const %(real)s lg = e * %(ln2)s + (%(two)s * t + %(two)s * t * t2 * %(log_poly)s);
            const %(real)s x = f * %(half_pi)s, x2 = x * x;
            const %(real)s c = x2 * %(cos_poly)s + %(one)s;
            o[i] = scale * (sign * (%(sqrt)s(-%(two)s * lg) * c));
        }
    }
}
"""
_C_TYPES = {
    torch.float64: {'name': 'f64', 'real': 'double', 'u1_shift': 32, 'u1_scale': '0x1p-32', 'f_mask': '0x7fffffffULL',
                    'f_scale': '0x1p-31', 'one': '1.0', 'two': '2.0', 'bits': 'uint64_t', 'ebits': 'int64_t',
                    'e_shift': 52, 'e_mask': '0x7ffULL', 'e_bias': 1022, 'keep': '0x800fffffffffffffULL',
                    'half_exp': '0x3fe0000000000000ULL', 'sqrt': 'sqrt'},
    torch.float32: {'name': 'f32', 'real': 'float', 'u1_shift': 40, 'u1_scale': '0x1p-24f', 'f_mask': '0xffffffULL',
                    'f_scale': '0x1p-24f', 'one': '1.0f', 'two': '2.0f', 'bits': 'uint32_t', 'ebits': 'int32_t',
                    'e_shift': 23, 'e_mask': '0xffu', 'e_bias': 126, 'keep': '0x807fffffu', 'half_exp': '0x3f000000u',
                    'sqrt': 'sqrtf'}}


def _source():
    parts = [_C_HEAD]
    for dtype, types in _C_TYPES.items():
        single = dtype == torch.float32
        log_series, cos_series = _SERIES[dtype]
        parts.append(_C_NORMALS % dict(types, g1=_G1, g2=_G2, sqrt_half=_c_float(_SQRT_HALF, single),
                                       ln2=_c_float(_LN2, single), half_pi=_c_float(_HALF_PI, single),
                                       log_poly=_c_poly(log_series, 't2', single),
                                       cos_poly=_c_poly(cos_series, 'x2', single)))
    return ''.join(parts)


_NATIVE = []


def _native():
    if not _NATIVE:
        i64, u64, dbl, p = ctypes.c_int64, ctypes.c_uint64, ctypes.c_double, ctypes.c_void_p
        sig = ([i64, i64, u64, i64, i64, dbl, p], None)
        fns = compile_c_library('normals', _source(), {'convis_normals_f64': sig, 'convis_normals_f32': sig})
        _NATIVE.append(None if fns is None else {torch.float64: fns['convis_normals_f64'],
                                                 torch.float32: fns['convis_normals_f32']})
    return _NATIVE[0]


def _shift_right(z, s):
    """Logical right shift of int64 tensors (as unsigned 64-bit numbers)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix_tensor(z):
    z = (z ^ _shift_right(z, 30)) * _signed(_M1)
    z = (z ^ _shift_right(z, 27)) * _signed(_M2)
    return z ^ _shift_right(z, 31)


def _horner(coeffs, var):
    p = torch.full_like(var, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = p * var + c
    return p


def _normals_torch(n_t, m, base, k0, j, scale, dtype, device):
    """The same numbers as the compiled loop, in torch operations (float32 or float64)."""
    steps = torch.arange(k0, k0 + n_t, dtype=torch.int64, device=device)
    rows = _mix_tensor((4 * steps + j) * _signed(_G1) + _signed(base))[:, None]
    idx = torch.arange(1, m + 1, dtype=torch.int64, device=device)[None, :]
    h = _mix_tensor(rows + idx * _signed(_G2))
    single = dtype == torch.float32
    log_series, cos_series = _SERIES[dtype]
    if single:
        u1 = (_shift_right(h, 40) + 1).to(dtype) * 2.0 ** -24
        f = (_shift_right(h, 1) & 0xFFFFFF).to(dtype) * 2.0 ** -24
        bits = u1.view(torch.int32)
        e = ((bits >> 23) & 0xFF).to(dtype) - 126.0
        m_ = ((bits & _signed32(0x807FFFFF)) | 0x3F000000).view(dtype)
    else:
        u1 = (_shift_right(h, 32) + 1).to(dtype) * 2.0 ** -32
        f = (_shift_right(h, 1) & 0x7FFFFFFF).to(dtype) * 2.0 ** -31
        bits = u1.view(torch.int64)
        e = ((bits >> 52) & 0x7FF).to(dtype) - 1022.0
        m_ = ((bits & _signed(0x800FFFFFFFFFFFFF)) | 0x3FE0000000000000).view(dtype)
    sign = 1.0 - 2.0 * (h & 1).to(dtype)
    small = m_ < _SQRT_HALF if not single else m_ < torch.tensor(_SQRT_HALF, dtype=dtype)
    m_ = torch.where(small, m_ * 2.0, m_)
    e = torch.where(small, e - 1.0, e)
    t = (m_ - 1.0) / (m_ + 1.0)
    t2 = t * t
    lg = e * _LN2 + (2.0 * t + 2.0 * t * t2 * _horner(log_series, t2))
    x = f * _HALF_PI
    x2 = x * x
    c = x2 * _horner(cos_series, x2) + 1.0
    v = -2.0 * lg
    # float32: the square root in double precision, rounded once (torch's float32 square root on some
    # CPUs is not the correctly rounded one the compiled loop uses)
    r = torch.sqrt(v.double()).to(dtype) if single else torch.sqrt(v)
    return torch.tensor(scale, dtype=dtype) * (sign * (r * c))


def _signed32(v):
    return v - (1 << 32) if v >= 1 << 31 else v


def counter_normals(key, k0, n_t, m, stream=0, scale=1.0, dtype=torch.float32, device='cpu', compiled=None):
    """Normal numbers ``scale * z`` for steps ``k0 .. k0+n_t-1`` and indices ``0 .. m-1`` of ``stream`` (0..3).

    ``key`` is :func:`seed_key` of the seed.  Returns a ``[n_t, m]`` tensor of ``dtype`` (float32 or
    float64) on ``device``: from the compiled loop on the CPU when there is one (``compiled=None``; True
    requires it, False never uses it), from torch operations otherwise.

    >>> z = counter_normals(seed_key(1), 0, 100, 1000)
    >>> abs(float(z.mean())) < 0.01, abs(float(z.std()) - 1) < 0.01
    (True, True)
    """
    if not 0 <= stream < 4:
        raise ValueError('stream must be 0, 1, 2 or 3, not %r' % (stream,))
    if dtype not in (torch.float32, torch.float64):
        raise ValueError('normals are float32 or float64, not %s' % (dtype,))
    device = torch.device(device)
    fns = _native() if compiled is not False and device.type == 'cpu' else None
    if fns is None:
        if compiled:
            raise RuntimeError('the compiled generator is not available (no C compiler, or CONVIS_NO_COMPILE)')
        return _normals_torch(n_t, m, key, int(k0), stream, float(scale), dtype, device)
    out = torch.empty((n_t, m), dtype=dtype)
    fns[dtype](n_t, m, key, int(k0), stream, float(scale), out.data_ptr())
    return out
