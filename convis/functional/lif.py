"""VirtualRetina's noisy leaky integrate-and-fire ganglion cells, exact and event driven, as a pure function.

.. math::

    \\frac{dV}{dt} = I + \\sigma_V\\sqrt{2 g_L/dt}\\,\\xi - g_L V, \\qquad
    V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0 \\text{ for } \\max(0, \\mathcal{N}(\\mu_r, \\sigma_r))

:func:`ganglion_lif` prepares ``Vinf = I/g_L`` (plus the counter-based noise of :mod:`convis.noise`) for every
step and cell and runs one of three equivalent loops: a small C function (``convis/csrc/lif.c``, compiled
once), the same in torch operations on the cells that fire (:func:`lif_exact`), or on all cells with a fixed
number of spikes per step and no host synchronisation (:func:`lif_masked`, used on GPUs).  Units: ``I`` and
``g_L`` in Hz, ``dt``, ``refr_mu`` and ``refr_sigma`` in seconds, ``sigma_V`` in units of the threshold.
"""
import math
from typing import NamedTuple

import torch

from ..native import compile_c_library, pointer
from ..noise import counter_normals

__all__ = ['MAX_REPEATS', 'LIFParameters', 'LIFState', 'ganglion_lif', 'compiled_lif', 'lif_torch', 'lif_native',
           'spike_times']


# ------------------------------------------------------------------------------------------ the LIF step
# One step of a cell, with the remaining refractory time t_r kept as R = exp(g_L t_r) (1: free) and
# Vinf = I/g_L held over the step.  With w = R exp(-g_L dt): w >= 1 means refractory over the whole step
# (R <- w), otherwise the cell is free for the last -log(w)/g_L of the step (R <- 1) and
# V <- Vinf + (V - Vinf) min(w, 1).  A free evolution from V_a with P = exp(-g_L (dt - t_a)) reaches 1 at
# exp(-g_L (dt - t_s)) = P Q, Q = (Vinf - V_a)/(Vinf - 1); after the refractory period r (E = exp(g_L r))
# P <- P Q E.  P >= 1: refractory past the step end (V = 0, R = P); otherwise V = Vinf (1 - P), and if that
# reaches 1 the cell fires again with Q = Vinf/(Vinf - 1).  Only + - * / and comparisons: the compiled
# loop and both torch loops give bit-identical counts and states.  Spike logs hold (step, cell, P Q),
# the time being (start + step) dt + dt + log(P Q)/g_L (:func:`spike_times`).
MAX_REPEATS = 16
"""At most this many spikes per cell and step in the synchronisation-free torch loop (more: exact loop)."""


def lerp_as_compiled(vi, v, w, small):
    """``vi + (v - vi) w`` as the compiled loop computes it (``small``: whether any ``w < 0.5``)."""
    far = v - (v - vi) * (1.0 - w)
    return torch.where(w < 0.5, vi + w * (v - vi), far) if small else far


def free_step(vi, v, rf, decay):
    """The refractory part and the free evolution of one step: (V at the end, new R, w)."""
    w = rf * decay
    rf = w.clamp(min=1.0)
    w = w.clamp(max=1.0)
    return lerp_as_compiled(vi, v, w, decay < 0.5), rf, w


def lif_exact(vinf, e_refr, v, rf, decay, e_mu, log):
    """The loop in torch operations on the cells that fire (host synchronisations every step)."""
    counts = torch.zeros_like(vinf)
    for s in range(vinf.shape[0]):
        vi_s = vinf[s]
        ve, rf, w = free_step(vi_s, v, rf, decay)
        cells = (ve >= 1).nonzero().squeeze(1)
        if len(cells):
            vi = vi_s[cells]
            p, q = w[cells], (vi - v[cells]) / (vi - 1.0)
            n, v_f, rf_f = torch.zeros_like(vi), ve[cells], rf[cells]
            act = torch.arange(len(cells), device=vi.device)
            spikes = []
            while len(act):
                pq = p * q
                spikes.append((act, pq))
                p = pq * (e_mu if e_refr is None else e_refr[s, min(len(spikes) - 1, 1)][cells[act]])
                n[act] += 1.0
                past = p >= 1.0
                vf = vi[act] * (1.0 - p)
                v_f[act] = torch.where(past, 0.0, vf)
                rf_f[act] = torch.where(past, p, 1.0)
                more = (~past & (vf >= 1.0)).nonzero().squeeze(1)
                act, p = act[more], p[more]
                q = vi[act] / (vi[act] - 1.0)
            ve[cells], rf[cells], counts[s, cells] = v_f, rf_f, n
            if log is not None:     # in (step, cell, spike) order, as the compiled loop logs
                sub, pqs = (torch.cat(c) for c in zip(*spikes))
                order = torch.argsort(sub, stable=True)
                log.append((torch.full_like(order, s), cells[sub[order]], pqs[order]))
        v = ve
    return counts, v, rf


def repeat_bound(vinf, e_refr, decay, e_mu):
    """How many spikes a cell can fire in one step of the chunk (one host synchronisation).

    After the first spike P >= exp(-g_L dt) E_0, and each further spike multiplies it by at least
    Q E_1 with Q = Vinf/(Vinf - 1) >= Vmax/(Vmax - 1).
    """
    vmax = float(vinf.max()) if vinf.numel() else 0.0
    if not vmax > 1.0:
        return 1
    e0 = e_mu if e_refr is None else float(e_refr[:, 0].min())
    e1 = e_mu if e_refr is None else float(e_refr[:, 1].min())
    first = decay * e0
    growth = vmax / (vmax - 1.0) * e1 if math.isfinite(vmax) else e1
    if first >= 1.0:
        return 1
    if not growth > 1.0:
        return MAX_REPEATS
    return min(MAX_REPEATS, 3 + int(math.log(1.0 / first) / math.log(growth)))


def lif_masked(vinf, e_refr, v, rf, decay, e_mu, log):
    """The loop on all cells at once with a fixed number of spikes per step (no host synchronisation).

    Returns None when a cell needed more spikes in a step than the bound (see :func:`repeat_bound`).
    """
    n_rep = repeat_bound(vinf, e_refr, decay, e_mu)
    counts = torch.zeros_like(vinf)
    overflow = torch.zeros((), dtype=torch.bool, device=vinf.device)
    pqs, flush = [], []
    for s in range(vinf.shape[0]):
        vi = vinf[s]
        ve, rf, p = free_step(vi, v, rf, decay)
        act = ve >= 1
        q = (vi - v) / (vi - 1.0)
        q_again = vi / (vi - 1.0)
        n = counts[s]
        for k in range(n_rep):
            if k:
                act = act & ~past & (vf >= 1.0)
                q = q_again
            pq = p * q
            if log is not None:
                pqs.append(torch.where(act, pq, math.nan))
            p = pq * (e_mu if e_refr is None else e_refr[s, min(k, 1)])
            n += act.to(n.dtype)
            past = p >= 1.0
            vf = vi * (1.0 - p)
            ve = torch.where(act, torch.where(past, 0.0, vf), ve)
            rf = torch.where(act, torch.where(past, p, 1.0), rf)
        overflow |= (act & ~past & (vf >= 1.0)).any()
        if log is not None and (len(pqs) * vi.numel() > (1 << 22) or s == vinf.shape[0] - 1):
            flush.append(compact_log(pqs, n_rep, s + 1 - len(pqs) // n_rep))
            pqs = []
        v = ve
    if bool(overflow):
        return None
    if log is not None:
        log.extend(flush)
    return counts, v, rf


def compact_log(pqs, n_rep, first_step):
    """(step, cell, P Q) of the spikes in ``pqs`` (per step ``n_rep`` tensors, NaN where none)."""
    x = torch.stack(pqs).reshape(-1, n_rep, pqs[0].numel()).transpose(1, 2)
    step, cell, _ = (~torch.isnan(x)).nonzero(as_tuple=True)
    return step + first_step, cell, x[~torch.isnan(x)]


def lif_torch(vinf, e_refr, v, rf, decay, e_mu, record, sync_free=None):
    """The LIF loop in torch operations: counts [T, M], V [M], R [M] (float64), and the spike log.

    ``sync_free`` (default: on GPUs) runs :func:`lif_masked`, falling back to :func:`lif_exact` for
    a chunk where a cell needed more spikes per step than the bound; both give the same results.
    """
    vinf, v, rf = (t.to(torch.float64) for t in (vinf, v, rf))
    log = [] if record else None
    if sync_free if sync_free is not None else vinf.device.type != 'cpu':
        out = lif_masked(vinf, e_refr, v, rf, decay, e_mu, log)
        if out is not None:
            return out + (join_log(log, vinf.device),)
        log = [] if record else None
    out = lif_exact(vinf, e_refr, v, rf, decay, e_mu, log)
    return out + (join_log(log, vinf.device),)


def join_log(log, device):
    if log is None:
        return None
    if not log:
        return (torch.zeros(0, dtype=torch.int64, device=device),) * 2 + (torch.zeros(0, dtype=torch.float64,
                                                                                      device=device),)
    return tuple(torch.cat(c) for c in zip(*log))


def compiled_lif():
    """The compiled loop (``convis/csrc/lif.c``, built once into the cache of :mod:`convis.native`):
    ``{torch.float64: function, torch.float32: function}``, or None without a compiler or with
    ``CONVIS_NO_COMPILE`` set."""
    fns = compile_c_library('lif', ['convis_lif2_f64', 'convis_lif2_f32'])
    if fns is None:
        return None
    return {torch.float64: fns['convis_lif2_f64'], torch.float32: fns['convis_lif2_f32']}


def lif_native(fns, vinf, e_refr, v, rf, decay, e_mu, record):
    """Runs the compiled loop on [T, M] inputs; returns the same as :func:`lif_torch`."""
    n_t, m = vinf.shape
    dtype = torch.float32 if vinf.dtype == torch.float32 else torch.float64
    vinf = vinf.detach().to(dtype).contiguous()
    er = None if e_refr is None else e_refr.detach().to(torch.float64).contiguous()
    counts = (torch.zeros if record else torch.empty)((n_t, m), dtype=dtype)   # without a log: all written
    v64 = v.detach().to(torch.float64).clone()
    r64 = rf.detach().to(torch.float64).clone()

    def call(vv, rr, cap):
        buf = [torch.zeros(max(cap, 1), dtype=t) for t in (torch.int64, torch.int64, torch.float64)]
        n = fns[dtype](n_t, m, pointer(vinf), pointer(er), pointer(vv), pointer(rr), pointer(counts), decay, e_mu,
                       *(pointer(b) for b in buf), cap)
        return n, buf
    if not record:
        call(v64, r64, 0)
        return counts, v64, r64, None
    cap = min(n_t * m, 1 << 18)
    v_in, r_in = v64.clone(), r64.clone()
    n, buf = call(v64, r64, cap)
    if n > cap:               # the log was too short: again from the start with room for all
        counts.zero_()
        v64.copy_(v_in)
        r64.copy_(r_in)
        n, buf = call(v64, r64, n)
    return counts, v64, r64, tuple(b[:n] for b in buf)


def spike_times(log, start, dt, g_l):
    """Times (s) of the logged spikes: ``(start + step) dt + dt + log(P Q)/g_L``."""
    step, _, pq = log
    return (step + start).to(torch.float64) * dt + (torch.log(pq) / g_l + dt)


_NATIVE = []


def _native_lif():
    """The compiled LIF loop (built once with the system C compiler into a cache folder), or None.

    Set the environment variable ``CONVIS_NO_COMPILE=1`` to always use the torch loop.
    """
    if not _NATIVE:
        _NATIVE.append(compiled_lif())
    return _NATIVE[0]


class LIFParameters(NamedTuple):
    """Parameters of the ganglion cells (floats): ``g_L`` (Hz), ``noise_sigma`` (sigma_V, the stationary
    standard deviation of V in units of the threshold), ``refr_mu`` and ``refr_sigma`` (s) of the refractory
    period ``max(0, N(refr_mu, refr_sigma))``."""
    g_L: float
    noise_sigma: float = 0.0
    refr_mu: float = 0.0
    refr_sigma: float = 0.0


class LIFState(NamedTuple):
    """The cells' state before a chunk, each ``[B, C, N]``: ``V`` the potential, ``refr_factor`` ``exp(g_L t_r)``
    of the remaining refractory time ``t_r`` (1 for a free cell, float64), ``current`` the input (Hz) of the last
    step before the chunk (the current of a step is the input of the step before); ``step`` the number of steps
    run before (int: it places the chunk in the noise)."""
    V: torch.Tensor
    refr_factor: torch.Tensor
    current: torch.Tensor
    step: int


def _noise_segments(keys, n):
    segments = [(keys, n)] if isinstance(keys, int) else [(int(k), int(w)) for k, w in keys]
    if sum(w for _, w in segments) != n:
        raise ValueError('the noise segments %s do not cover the %d cells' % ([w for _, w in segments], n))
    return segments


def _drive(current, state, params, dt, segments):
    """``Vinf = I/g_L`` plus the membrane noise [T, B, C, N] and the refractory normals [T, 2, B, C, N] (or None).

    Stream 0 of each segment's key is the membrane noise, streams 1 and 2 the two refractory draws, indexed by
    the step and the cell ``(b, c, n)`` of the segment: they do not depend on how the input is cut into chunks.
    """
    b, c, n_t, n = current.shape
    g_l, sd = float(params.g_L), float(params.refr_sigma)
    noise = float(params.noise_sigma) * math.sqrt(2 * g_l / dt) / g_l
    vinf = torch.empty((n_t, b, c, n), dtype=current.dtype, device=current.device)
    vinf[0] = state.current
    vinf[1:] = current[:, :, :-1].movedim(2, 0)
    vinf.div_(g_l)
    rand_refr = torch.empty((n_t, 2, b, c, n), dtype=current.dtype, device=current.device) if sd > 0 else None
    start = 0
    for key, width in segments:
        sl = slice(start, start + width)
        start += width
        if noise > 0:
            z = counter_normals(key, state.step, n_t, b * c * width, 0, noise, current.dtype, current.device)
            vinf[..., sl] += z.reshape(n_t, b, c, width)
        if sd > 0:
            for draw in (0, 1):
                z = counter_normals(key, state.step, n_t, b * c * width, 1 + draw, 1.0, current.dtype,
                                    current.device)
                rand_refr[:, draw, ..., sl] = z.reshape(n_t, b, c, width)
    return vinf, rand_refr


def ganglion_lif(current, state, params, dt, keys, record=False, compiled=None):
    """Integrates the cells over a chunk: returns ``(counts, state, spikes)``.

    current : ``[B, C, T, N]`` (Hz) the input of every step and cell (step s integrates the input of step s-1)
    state : :class:`LIFState` before the chunk;  params : :class:`LIFParameters`;  dt : the step (s)
    keys : the noise key (:func:`convis.noise.seed_key` of a seed), or ``[(key, n), ...]``: consecutive groups
        of ``n`` cells along N with their own keys (several layers in one loop)
    record : whether to return the spikes as ``(batch, channel, cell, time_s)`` tensors (in the order of the
        loop: by step, cell and spike), else None
    compiled : None runs the compiled loop on the CPU when there is one, False the torch loops (the
        reference), True requires the compiled loop

    ``counts`` ``[B, C, T, N]`` (dtype of ``current``) are the spikes per step; the state returned is the one
    after the chunk (V and refr_factor in float64), so two calls equal one call on the whole chunk.
    """
    b, c, n_t, n = current.shape
    g_l, mu, sd = float(params.g_L), float(params.refr_mu), float(params.refr_sigma)
    if not g_l > 0:
        raise ValueError('g_L must be positive, not %g' % g_l)
    vinf, z = _drive(current, state, params, dt, _noise_segments(keys, n))
    vinf = vinf.reshape(n_t, -1)
    # exp(g_L r) of the refractory periods r = max(0, mu + sd z) (the compiled loop reads them too)
    e_refr = None if z is None else z.reshape(n_t, 2, -1).double().mul(sd).add(mu).clamp(min=0).mul(g_l).exp()
    args = (vinf, e_refr, state.V.reshape(-1), state.refr_factor.reshape(-1), math.exp(-dt * g_l),
            math.exp(g_l * mu), record)
    native = _native_lif() if compiled is not False and state.V.device.type == 'cpu' else None
    if compiled and native is None:
        raise RuntimeError('the compiled LIF loop is not available here (no C compiler, CONVIS_NO_COMPILE or a GPU)')
    counts, v, rf, log = lif_native(native, *args) if native is not None else lif_torch(*args)
    shape = (b, c, n)
    counts = counts.to(vinf.dtype).reshape((n_t,) + shape).movedim(0, 2)
    spikes = None
    if record:
        cells = log[1]
        spikes = (cells // (c * n), cells // n % c, cells % n, spike_times(log, state.step, dt, g_l))
    return counts, LIFState(v.reshape(shape), rf.reshape(shape), current[:, :, -1].clone(), state.step + n_t), spikes
