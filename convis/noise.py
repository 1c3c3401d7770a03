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
torch's square root is not correctly rounded).  The compiled loop is ``convis/csrc/normals.c``; its
polynomial coefficients are those of :data:`_SERIES`, written out (rounded to float for float32).
"""
import math
import numbers

import torch

from .native import compile_c_library, pointer

__all__ = ['counter_normals', 'seed_key', 'check_seed', 'Seeded']

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


def check_seed(seed):
    """A layer's seed: an integer in [0, 2**63), or None for one drawn from torch's global generator (so that
    ``torch.manual_seed`` makes it reproducible too).  Anything else raises a ValueError."""
    if seed is None:
        return int(torch.randint(0, 2 ** 62, (1,)))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2 ** 63:
        raise ValueError('seed must be a non-negative integer below 2**63 (or None), not %r' % (seed,))
    return int(seed)


class Seeded(object):
    """The seed API that every noisy layer shares (a mixin; the layer defines :meth:`_restart_noise`).

    * ``Layer(seed=n)``: ``n`` an integer in [0, 2**63); ``None`` (the default) draws one from torch's global
      generator (:func:`check_seed`); anything else is a ValueError.
    * ``layer.seed(n)`` (also ``layer.set_seed(n)``): sets the seed and restarts the layer's noise from it,
      keeping its other states (potentials, refractory periods); returns the layer.  ``seed()`` draws a new one.
    * ``layer.seed_value``: the seed in use.
    * Two layers with the same seed and parameters give the same spikes for the same input, for any chunking;
      ``clear_state()`` keeps the seed, so a cleared layer repeats its first run; ``get_state``/``set_state`` and
      ``push_state``/``pop_state`` carry the noise's position with the other states.
    """

    def seed(self, seed=None):
        """Sets the seed (None: a new one from torch's global generator), restarts the noise from it and returns
        the layer (see :class:`Seeded`)."""
        self._seed = check_seed(seed)
        self._restart_noise()
        return self

    set_seed = seed

    @property
    def seed_value(self):
        """The seed in use (an int)."""
        return self._seed

    def _restart_noise(self):
        raise NotImplementedError


def seed_key(seed):
    """The 64-bit key ``b = mix(seed)`` of a seed (any integer)."""
    return _mix(int(seed))


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


_NATIVE = []


def _native():
    if not _NATIVE:
        fns = compile_c_library('normals', ['convis_normals_f64', 'convis_normals_f32'])
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
    fns[dtype](n_t, m, key, int(k0), stream, float(scale), pointer(out))
    return out
