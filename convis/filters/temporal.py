"""Recursive temporal filters computed time-parallel over a chunk.

The basic operation is the first-order exponential low-pass, in the exact
discretisation VirtualRetina uses (unit DC gain, reads the current input):

.. math::  y[s] = e\\,y[s-1] + (1-e)\\,x[s], \\qquad e = \\exp(-\\Delta t/\\tau)

:func:`exponential_recursion` evaluates it over a whole chunk at once: the
chunk is cut into blocks of ``block`` steps, each block is one matrix product
with a small lower-triangular Toeplitz matrix, and only the carry between
blocks is sequential.  The result equals the step-by-step recursion to float
rounding, for any chunk length, and gradients flow to ``e``.
"""
import torch

__all__ = ['exponential_recursion']


def _toeplitz_powers(e, n, dtype, device):
    """Matrix ``M[t, k] = e**(t-k)`` for ``k <= t`` (0 above the diagonal), and the powers ``e**(t+1)``."""
    idx = torch.arange(n, device=device, dtype=dtype)
    diff = idx[:, None] - idx[None, :]
    e = torch.as_tensor(e, dtype=dtype, device=device)
    lower = diff >= 0
    # e**diff with e in (0, 1]: computed through exp(log(e)*diff) to keep gradients finite at e == 1
    loge = torch.log(torch.clamp(e, min=torch.finfo(dtype).tiny))
    m = torch.where(lower, torch.exp(loge * torch.clamp(diff, min=0)), torch.zeros((), dtype=dtype, device=device))
    carry = torch.exp(loge * (idx + 1))
    return m, carry


def exponential_recursion(x, e, y_prev, gain=None, dim=2, block=64):
    """Runs ``y[s] = e*y[s-1] + gain*x[s]`` along ``dim`` of ``x``, starting from ``y_prev``.

    Parameters
    ----------
    x : tensor
        input, time along ``dim`` (default 2, the time axis of ``[batch, channel, time, x, y]``)
    e : float or 0-d tensor
        decay per step, ``exp(-dt/tau)``, in (0, 1]
    y_prev : tensor
        the output before the first step, broadcastable to one time slice of ``x`` (time axis of length 1)
    gain : float or 0-d tensor, optional
        input weight; ``1 - e`` (unit DC gain) when not given
    block : int
        block length of the parallel evaluation (the result does not depend on it beyond rounding)

    Returns the output, the same shape as ``x``; its last slice is the state for the next chunk.

    >>> y = exponential_recursion(torch.ones(1, 1, 100, 1, 1), 0.9, torch.zeros(1, 1, 1, 1, 1))
    >>> float(y[0, 0, -1])  # approaches the DC gain 1
    0.99997...
    """
    e = torch.as_tensor(e, dtype=x.dtype, device=x.device)
    if gain is None:
        gain = 1 - e
    n_t = x.shape[dim]
    xt = x.movedim(dim, -1)
    carry = torch.as_tensor(y_prev, dtype=x.dtype, device=x.device)
    carry = torch.broadcast_to(carry, x.narrow(dim, 0, 1).shape).movedim(dim, -1)
    if n_t == 0:
        return x.clone()
    b = min(block, n_t)
    m, powers = _toeplitz_powers(e, b, x.dtype, x.device)
    outs = []
    for start in range(0, n_t, b):
        xb = xt[..., start:start + b]
        n = xb.shape[-1]
        yb = torch.matmul(xb, m[:n, :n].transpose(0, 1)) * gain + carry * powers[:n]
        carry = yb[..., -1:]
        outs.append(yb)
    y = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
    return y.movedim(-1, dim)
