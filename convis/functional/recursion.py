"""The first-order exponential recursion over a chunk, time-parallel, in VirtualRetina's discretisation.

.. math::  y[s] = e\\,y[s-1] + g\\,x[s], \\qquad e = \\exp(-\\Delta t/\\tau),\\ g = 1 - e \\text{ by default}

:func:`exponential_recursion` cuts the chunk into blocks of ``block`` steps: each block is one matrix product
with a small lower-triangular Toeplitz matrix, and only the carry between blocks is sequential.  The result
equals the step-by-step recursion to float rounding, for any chunk length, and gradients flow to ``e``.
Without autograd on the CPU a compiled loop (:func:`convis.native.recursion_loop`) makes one pass instead.
Units: ``e`` and ``g`` are per step (the caller converts time constants with its step length).
"""
import torch

from ..native import recursion_loop

__all__ = ['exponential_recursion', 'one_step_late']


def one_step_late(prev, x):
    """The sequence one step late: ``[prev, x[0], ..., x[T-2]]`` along time (dim 2); ``prev`` is ``[B, C, 1, H, W]``."""
    return torch.cat([prev, x[:, :, :-1]], dim=2)


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
    # entries below the smallest normal number are flushed to 0: denormal arithmetic is very slow
    zero = torch.zeros((), dtype=dtype, device=device)
    tiny = torch.finfo(dtype).tiny
    m = torch.where(m.abs() < tiny, zero, m)
    carry = torch.where(carry.abs() < tiny, zero, carry)
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
    dim = dim % x.dim()
    n_t = x.shape[dim]
    if n_t == 0:
        return x.clone()
    shape = x.shape
    pre = 1
    for s_ in shape[:dim]:
        pre *= s_
    post = x.numel() // max(pre * n_t, 1) if x.numel() else 0
    # time in the middle of a [pre, time, post] view: blocks are left-multiplied, no transposes
    xv = x.reshape(pre, n_t, post)
    carry = torch.as_tensor(y_prev, dtype=x.dtype, device=x.device)
    carry = torch.broadcast_to(carry, x.narrow(dim, 0, 1).shape).reshape(pre, 1, post)
    if not (torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                            for t in (x, e, y_prev, gain))) \
            and x.device.type == 'cpu' and e.numel() == 1 and torch.as_tensor(gain).numel() == 1:
        # without autograd, one pass through the data (compiled) beats the block products
        y = recursion_loop(xv, e, carry, gain)
        if y is not None:
            return y.reshape(shape)
    b = min(block, n_t)
    m, powers = _toeplitz_powers(e, b, x.dtype, x.device)
    m = m * gain
    outs = []
    for start in range(0, n_t, b):
        xb = xv[:, start:start + b]
        n = xb.shape[1]
        yb = torch.matmul(m[:n, :n], xb) + carry * powers[:n, None]
        carry = yb[:, -1:]
        outs.append(yb)
    y = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
    return y.reshape(shape)
