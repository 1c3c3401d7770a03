"""Convolutions with memory: :class:`Conv3d` (space-time), :class:`Conv2d` (space), :class:`Conv1d` (time), :class:`RF`.

A convolution layer keeps the last ``kt - 1`` input frames of the previous chunk (a
:class:`~convis.filters.temporal.TimePadding` named ``time_pad``), so that its output has as many frames
as its input and running an input in chunks gives exactly the result of one whole call.  Before the
first frame the history is zeros (the filter starts at rest; ``time_pad_mode='first_frame'`` instead
repeats the first frame).  With ``autopad`` the frames are padded in x and y (``'replicate'``,
``'reflect'``/``'mirror'``, ``'constant'`` or ``'circular'``) so that the output keeps the input's size.

The weight is stored as a PyTorch cross-correlation kernel ``[out, in, t, x, y]``; :meth:`Conv3d.set_weight`
flips the kernel you give it (by default), so that **the impulse response equals that kernel**:

.. math::  y[t, i, j] = \\sum_{k, a, b} w[k, a, b]\\; x[t - k,\\ i - a + \\lfloor k_x/2 \\rfloor,\\ j - b + \\lfloor k_y/2 \\rfloor]

Large kernels are computed with FFTs (:func:`fft_correlate`), chosen automatically by a cost estimate
(``layer.fft = 'auto'``), or forced with ``layer.fft = True`` / ``False``; both paths give the same
result (to float rounding) and both are differentiable.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import numerical_filters
from ..layer import Layer
from ..variables import Parameter
from .temporal import TimePadding, _require_5d

__all__ = ['Conv3d', 'Conv2d', 'Conv1d', 'RF', 'correlate', 'fft_correlate', 'next_fast_len', 'cost_ratio',
           'FFT_COST_RATIO']

FFT_COST_RATIO = 1.0
"""``fft='auto'`` uses the FFT when :func:`cost_ratio` (direct work over FFT work) exceeds this.  Chosen from
``python -m benchmarks ln_fit`` on a 2-core CPU: above 1 the FFT was faster in nearly every case measured
(up to 37x); below it the direct convolution usually was, or the difference was small."""

_PAD_MODES = {'replicate': 'replicate', 'reflect': 'reflect', 'mirror': 'reflect', 'constant': 'constant',
              'zeros': 'constant', 'circular': 'circular'}


def next_fast_len(n):
    """The smallest length ``>= n`` whose only prime factors are 2, 3, 5 and 7 (a fast FFT size)."""
    m = max(1, int(n))
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fft_correlate(x, w):
    """Valid cross-correlation of ``x [B, Ci, T, X, Y]`` with ``w [Co, Ci, kt, kx, ky]``, computed with FFTs.

    .. math::  y[b, o, t, i, j] = \\sum_{c, k, a, b'} w[o, c, k, a, b']\\, x[b, c, t + k, i + a, j + b']

    Only the axes where the kernel is longer than 1 are transformed (zero-padded to a fast length of
    at least the input's, so no circular wrap-around reaches the valid part).  Same result as
    ``torch.nn.functional.conv3d(x, w)``.
    """
    dims = [d for d in (2, 3, 4) if w.shape[d] > 1]
    if not dims:
        return F.conv3d(x, w)
    out = [x.shape[d] - w.shape[d] + 1 for d in (2, 3, 4)]
    sizes = [next_fast_len(x.shape[d]) for d in dims]
    xf = torch.fft.rfftn(x, s=sizes, dim=dims)
    wf = torch.fft.rfftn(w, s=sizes, dim=dims).conj()
    if x.shape[1] == 1 and w.shape[0] == 1:
        yf = xf * wf
    else:
        yf = torch.einsum('bi...,oi...->bo...', xf, wf)
    y = torch.fft.irfftn(yf, s=sizes, dim=dims)
    return y[:, :, :out[0], :out[1], :out[2]]


def cost_ratio(x_shape, w_shape):
    """Estimated work of the direct convolution over that of the FFT path (``fft='auto'`` compares it with
    ``FFT_COST_RATIO``): multiply-adds of the direct sum over ``N log2 N`` per transformed signal plus the
    spectral products."""
    b, ci, t, nx, ny = x_shape
    co, _, kt, kx, ky = w_shape
    dims = [d for d in range(3) if w_shape[2 + d] > 1]
    if not dims:
        return 0.0
    direct = b * co * ci * (t - kt + 1) * (nx - kx + 1) * (ny - ky + 1) * kt * kx * ky
    n_fft = 1
    n_total = 1
    for d in range(3):
        n = next_fast_len(x_shape[2 + d]) if d in dims else x_shape[2 + d]
        n_total *= n
        if d in dims:
            n_fft *= n
    fft = n_total * math.log2(max(n_fft, 2)) * (b * ci + b * co + ci * co) + n_total * b * ci * co
    return direct / fft


def _shifted_sum(x, w):
    """Valid correlation with a kernel that is 1 x 1 in space: ``y[t] = sum_k w[k] x[t + k]`` (channels mixed)."""
    n = x.shape[2] - w.shape[2] + 1
    single = x.shape[1] == 1 and w.shape[0] == 1
    y = None
    for k in range(w.shape[2]):
        xs = x[:, :, k:k + n]
        term = xs * w[0, 0, k, 0, 0] if single else torch.einsum('bi...,oi->bo...', xs, w[:, :, k, 0, 0])
        y = term if y is None else y + term
    return y


def correlate(x, w, bias=None, fft='auto'):
    """Valid cross-correlation of a padded 5-d input with a 5-d kernel, direct or by FFT (``fft``: True/False/'auto').

    Kernels that are 1 frame long are computed as 2-d convolutions with time folded into the batch,
    kernels that are 1 x 1 in space as a sum of time-shifted copies of the input (faster than a convolution).
    """
    if fft not in (True, False, 'auto'):
        raise ValueError("fft must be True, False or 'auto', not %r" % (fft,))
    use_fft = cost_ratio(tuple(x.shape), tuple(w.shape)) > FFT_COST_RATIO if fft == 'auto' else fft
    b, ci, t, nx, ny = x.shape
    co, _, kt, kx, ky = w.shape
    if use_fft:
        y = fft_correlate(x, w)
    elif kt == 1 and (kx > 1 or ky > 1):
        x2 = x.transpose(1, 2).reshape(b * t, ci, nx, ny)
        y2 = F.conv2d(x2, w[:, :, 0])
        y = y2.reshape(b, t, co, y2.shape[2], y2.shape[3]).transpose(1, 2)
    elif kx == 1 and ky == 1 and kt > 1:
        y = _shifted_sum(x, w)
    else:
        y = F.conv3d(x, w)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1, 1)
    return y


def _triple(k):
    if isinstance(k, (int, np.integer)):
        return (int(k),) * 3
    k = tuple(int(v) for v in k)
    if len(k) != 3:
        raise ValueError('kernel_size must be an int or (t, x, y), not %r' % (k,))
    return k


def _as_array(w):
    if isinstance(w, torch.Tensor):
        return w.detach().cpu().numpy().astype(np.float64)
    return np.asarray(w, dtype=np.float64)


class Conv3d(Layer):
    """A spatio-temporal convolution with memory across chunks, padding in space and an FFT path for large kernels.

    .. math::  y[b, o, t] = \\mathrm{bias}[o] + \\sum_{c} (w_{o,c} * x_{b,c})[t] \\quad\\text{(causal in time, centred in space)}

    Parameters
    ----------
    in_channels, out_channels : int
        channels of the input and output (``Conv3d(1, (20, 1, 1))`` is read as ``kernel_size=(20, 1, 1)``)
    kernel_size : int or (t, x, y)
        kernel size in frames and pixels; the weight starts at zero
    bias : bool
        whether to add a bias per output channel
    time_pad : bool
        keep ``kt - 1`` frames of history so that the output has as many frames as the input (otherwise
        the output is ``kt - 1`` frames shorter and nothing is remembered)
    autopad, autopad_mode, autopad_value :
        pad x and y (``'replicate'``, ``'reflect'``/``'mirror'``, ``'constant'`` with ``autopad_value``, or
        ``'circular'``) so that the output has the input's size
    time_pad_mode : str
        history before the first frame: ``'zeros'`` (default) or ``'first_frame'``
    flip : bool
        default of :meth:`set_weight`'s ``flip`` (True: the impulse response equals the kernel given)
    fft : True, False or 'auto'
        how to compute the convolution (also settable later as ``layer.fft``)

    Examples
    --------
    >>> conv = Conv3d(1, 1, (10, 5, 5)).exponential(0.005)
    >>> conv.run(convis.samples.moving_grating(2000), dt=500)[0].shape
    torch.Size([1, 1, 2000, 20, 20])
    """

    def __init__(self, in_channels=1, out_channels=1, kernel_size=(1, 1, 1), bias=True, *, time_pad=True,
                 autopad=True, autopad_mode='replicate', autopad_value=0.0, time_pad_mode='zeros', flip=True,
                 fft='auto'):
        super().__init__()
        if isinstance(out_channels, (tuple, list)):
            if tuple(_triple(kernel_size)) != (1, 1, 1):
                raise TypeError('Conv3d got a kernel size twice: %r and %r' % (out_channels, kernel_size))
            kernel_size, out_channels = out_channels, 1
        ks = _triple(kernel_size)
        if min(ks) < 1 or int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError('channels and kernel sizes must be >= 1 (got %s, %s, %s)' % (in_channels, out_channels, ks))
        if autopad_mode not in _PAD_MODES:
            raise ValueError('autopad_mode must be one of %s, not %r' % (sorted(_PAD_MODES), autopad_mode))
        self.weight = Parameter(torch.zeros((int(out_channels), int(in_channels)) + ks),
                                doc='convolution kernel [out, in, t, x, y], stored as a cross-correlation kernel '
                                    '(set_weight flips what it is given)', unit='')
        if bias:
            self.bias = Parameter(torch.zeros(int(out_channels)), doc='added to each output channel', unit='')
        else:
            self.register_parameter('bias', None)
        self.time_pad = TimePadding(ks[0] - 1, mode=time_pad_mode) if time_pad else None
        self.autopad = bool(autopad)
        self.autopad_mode = autopad_mode
        self.autopad_value = float(autopad_value)
        self.flip = bool(flip)
        self.fft = fft

    # ------------------------------------------------------------------ shape
    @property
    def in_channels(self):
        return int(self.weight.shape[1])

    @property
    def out_channels(self):
        return int(self.weight.shape[0])

    @property
    def kernel_size(self):
        """``(t, x, y)`` size of the kernel."""
        return tuple(int(v) for v in self.weight.shape[2:])

    @property
    def filter_length(self):
        """Number of past frames the filter reaches back (``kt - 1``)."""
        return self.kernel_size[0] - 1

    @property
    def kernel_padding(self):
        """Spatial padding for :func:`torch.nn.functional.pad`: ``(y_before, y_after, x_before, x_after, 0, 0)``.

        Kernel element ``k // 2`` lies on the output pixel (the centre for odd kernels).
        """
        _, kx, ky = self.kernel_size
        return ((ky - 1) // 2, ky // 2, (kx - 1) // 2, kx // 2, 0, 0)

    # ------------------------------------------------------------------ weights
    def _replace_weight(self, w):
        """Sets the weight to the tensor ``w`` (any shape), keeping the Parameter object."""
        w = torch.as_tensor(w, dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            if tuple(w.shape) == tuple(self.weight.shape):
                self.weight.copy_(w)
            else:
                self.weight.data = w.clone()
                self.weight.grad = None
                if self.bias is not None and self.bias.shape[0] != w.shape[0]:
                    self.bias.data = torch.zeros(w.shape[0], dtype=self.bias.dtype, device=self.bias.device)
                    self.bias.grad = None

    def set_weight(self, w, normalize=False, flip=None, preserve_channels=False):
        """Sets the kernel from a number or an array; returns the layer.

        ``w`` may be a number (fills the current kernel), or an array of 1 (t), 2 (x, y), 3 (t, x, y) or
        5 (out, in, t, x, y) dimensions.  Arrays of fewer than 5 dimensions make a 1-to-1 channel kernel,
        or, with ``preserve_channels``, the same kernel for every (out, in) pair.  ``normalize`` divides
        each output channel's kernel by its sum.  ``flip`` (default: the layer's ``flip``, True) reverses
        t, x and y, so that the impulse response equals ``w``.

        >>> Conv3d().set_weight(np.ones((5, 3, 3)), normalize=True).kernel_size
        (5, 3, 3)
        """
        flip = self.flip if flip is None else flip
        if np.ndim(w) == 0:
            self._replace_weight(torch.full_like(self.weight, float(w)))
            return self
        w = _as_array(w)
        if w.ndim == 1:
            w = w[None, None, :, None, None]
        elif w.ndim == 2:
            w = w[None, None, None]
        elif w.ndim == 3:
            w = w[None, None]
        elif w.ndim != 5:
            raise ValueError('%s.set_weight takes a number or an array of 1 (t), 2 (x, y), 3 (t, x, y) or 5 '
                             '(out, in, t, x, y) dimensions, not shape %s' % (type(self).__name__, w.shape))
        if preserve_channels and w.shape[:2] == (1, 1):
            w = np.broadcast_to(w, (self.out_channels, self.in_channels) + w.shape[2:])
        if flip:
            w = w[:, :, ::-1, ::-1, ::-1]
        if normalize:
            s = w.sum(axis=(1, 2, 3, 4), keepdims=True)
            if np.any(s == 0):
                raise ValueError('cannot normalize a kernel that sums to 0')
            w = w / s
        self._replace_weight(torch.from_numpy(w.copy(order="C")))
        return self

    def gaussian(self, sig, resolution=None):
        """Sets a normalised spatial Gaussian of ``sig`` degrees (1 frame long); returns the layer.

        .. math::  w[i, j] \\propto \\exp(-(i^2 + j^2) / 2\\sigma_{px}^2), \\quad \\sigma_{px} = \\sigma \\cdot \\mathrm{ppd}

        The pixels per degree are those of ``resolution`` or of the layer's resolution now (see
        :func:`convis.numerical_filters.gauss_filter_2d`).
        """
        res = resolution if resolution is not None else self.resolution
        return self.set_weight(numerical_filters.gauss_filter_2d(sig, sig, normalize=True, resolution=res))

    def exponential(self, tau, n=0, amplification=1.0, resolution=None):
        """Sets a normalised exponential low-pass (cascade of ``n + 1`` stages) of ``tau`` seconds; returns the layer.

        .. math::  w[k] = A (1-e)^{n+1} \\binom{k+n}{n} e^k, \\quad e = \\exp(-\\Delta t/\\tau)

        Cut at a relative tolerance and normalised to the DC gain ``amplification`` (see
        :func:`convis.numerical_filters.exponential_filter_1d`); 1 x 1 in space.
        """
        res = resolution if resolution is not None else self.resolution
        return self.set_weight(numerical_filters.exponential_filter_1d(
            tau, n=n, normalize=True, resolution=res, amplification=amplification))

    def highpass_exponential(self, tau, w=0.5, n=0, resolution=None):
        """Sets the high-pass ``delta - w * E_{n,tau}`` (DC gain ``1 - w``); returns the layer.

        .. math::  k[s] = \\delta[s] - w\\,(1-e)^{n+1} \\binom{s+n}{n} e^s
        """
        res = resolution if resolution is not None else self.resolution
        return self.set_weight(numerical_filters.exponential_highpass_filter_1d(
            tau, relative_weight=w, n=n, normalize=True, resolution=res))

    # ------------------------------------------------------------------ computing
    def _pad_space(self, x):
        pads = self.kernel_padding
        if not any(pads):
            return x
        mode = _PAD_MODES[self.autopad_mode]
        if mode == 'reflect' and (pads[2] >= x.shape[3] or pads[3] >= x.shape[3]
                                  or pads[0] >= x.shape[4] or pads[1] >= x.shape[4]):
            raise ValueError('reflect padding of %s needs frames larger than the kernel; the input is %dx%d'
                             % (self.kernel_size[1:], x.shape[3], x.shape[4]))
        if mode == 'constant':
            return F.pad(x, pads, mode='constant', value=self.autopad_value)
        return F.pad(x, pads, mode=mode)

    def _check_input(self, x):
        _require_5d(self, x)
        if x.shape[1] != self.in_channels:
            raise ValueError('%s expects %d input channel(s), got an input with %d [batch, channel, time, x, y] = %s'
                             % (type(self).__name__, self.in_channels, x.shape[1], tuple(x.shape)))

    def _pad_time(self, x):
        kt = self.kernel_size[0]
        if self.time_pad is not None:
            self.time_pad.length = kt - 1
            return self.time_pad(x)
        if x.shape[2] < kt:
            raise ValueError('without time_pad the input needs at least %d frames, got %d' % (kt, x.shape[2]))
        return x

    def forward(self, x):
        self._check_input(x)
        x = self._pad_time(x)
        if self.autopad:
            x = self._pad_space(x)
        return correlate(x, self.weight, self.bias, self.fft)

    def extra_repr(self):
        return 'in=%d, out=%d, kernel_size=%s, bias=%s, time_pad=%s, autopad=%s, fft=%r' % (
            self.in_channels, self.out_channels, self.kernel_size, self.bias is not None,
            self.time_pad is not None, self.autopad_mode if self.autopad else False, self.fft)


class Conv2d(Conv3d):
    """A spatial convolution applied to every frame (no memory needed), padded to keep the frame size.

    .. math::  y[b, o, t] = \\mathrm{bias}[o] + \\sum_c (w_{o,c} * x_{b,c,t})

    Parameters as :class:`Conv3d`; ``kernel_size`` is ``(x, y)``.  The weight is ``[out, in, 1, x, y]``.

    >>> Conv2d().gaussian(0.1).kernel_size
    (1, 9, 9)
    """

    def __init__(self, in_channels=1, out_channels=1, kernel_size=(1, 1), bias=True, *, autopad=True,
                 autopad_mode='replicate', autopad_value=0.0, flip=True, fft='auto'):
        if isinstance(out_channels, (tuple, list)):
            kernel_size, out_channels = out_channels, 1
        k = (int(kernel_size),) * 2 if isinstance(kernel_size, (int, np.integer)) else tuple(kernel_size)
        if len(k) != 2:
            raise ValueError('Conv2d kernel_size must be an int or (x, y), not %r' % (kernel_size,))
        super().__init__(in_channels, out_channels, (1,) + k, bias, time_pad=False, autopad=autopad,
                         autopad_mode=autopad_mode, autopad_value=autopad_value, flip=flip, fft=fft)

    def set_weight(self, w, normalize=False, flip=None, preserve_channels=False):
        """Sets the kernel: a number, ``(x, y)``, ``(1, x, y)``, ``(out, in, x, y)`` or ``(out, in, 1, x, y)``."""
        if np.ndim(w) > 0:
            w = _as_array(w)
            if w.ndim == 4:
                w = w[:, :, None]
            if w.ndim == 1 or (w.ndim in (3, 5) and w.shape[-3] != 1):
                raise ValueError('Conv2d is spatial only: its kernel must be 1 frame long, got shape %s' % (w.shape,))
        return super().set_weight(w, normalize=normalize, flip=flip, preserve_channels=preserve_channels)

    def exponential(self, *args, **kwargs):
        raise TypeError('Conv2d is spatial only; use Conv1d or Conv3d for temporal kernels')

    highpass_exponential = exponential


class Conv1d(Conv3d):
    """A temporal convolution of every pixel, with memory across chunks.

    .. math::  y[b, o, t, i, j] = \\mathrm{bias}[o] + \\sum_{c, k} w[o, c, k]\\, x[b, c, t - k, i, j]

    Parameters as :class:`Conv3d`; ``kernel_size`` is the number of frames.  The weight is ``[out, in, t, 1, 1]``.

    >>> Conv1d().exponential(0.01).filter_length
    69
    """

    def __init__(self, in_channels=1, out_channels=1, kernel_size=1, bias=True, *, time_pad=True,
                 time_pad_mode='zeros', flip=True, fft='auto'):
        k = kernel_size[0] if isinstance(kernel_size, (tuple, list)) else kernel_size
        super().__init__(in_channels, out_channels, (int(k), 1, 1), bias, time_pad=time_pad, autopad=False,
                         time_pad_mode=time_pad_mode, flip=flip, fft=fft)

    def set_weight(self, w, normalize=False, flip=None, preserve_channels=False):
        """Sets the kernel: a number, ``(t,)``, ``(out, in, t)`` or ``(out, in, t, 1, 1)``."""
        if np.ndim(w) > 0:
            w = _as_array(w)
            if w.ndim == 3:
                w = w[:, :, :, None, None]
            if w.ndim not in (1, 5) or (w.ndim == 5 and w.shape[3:] != (1, 1)):
                raise ValueError('Conv1d is temporal only: give (t,), (out, in, t) or (out, in, t, 1, 1), not shape %s'
                                 % (w.shape,))
        return super().set_weight(w, normalize=normalize, flip=flip, preserve_channels=preserve_channels)

    def gaussian(self, *args, **kwargs):
        raise TypeError('Conv1d is temporal only; use Conv2d or Conv3d for spatial kernels')


class RF(Conv3d):
    """A receptive field over the whole frame: one time series per output channel.

    .. math::  y[b, o, t] = \\mathrm{bias}[o] + \\sum_{c, k, i, j} w[o, c, k, i, j]\\, x[b, c, t - k, i, j]

    The output is ``[batch, out, time, 1, 1]``.  A weight that is 1 x 1 in space (the default) is spread
    evenly over the frame on first use (divided by the number of pixels, so a weight of 1 averages).
    Frames larger than the weight are cropped, smaller ones zero-padded, at the bottom/right
    (``rf_mode='corner'``) or around the centre (``'center'``).

    Parameters as :class:`Conv3d` (without spatial padding).

    >>> rf = RF(1, 3, (5, 1, 1))
    >>> rf.run(convis.samples.random_checker_stimulus(100, 10, 10), dt=50)[0].shape
    torch.Size([1, 3, 100, 1, 1])
    """

    def __init__(self, in_channels=1, out_channels=1, kernel_size=(1, 1, 1), bias=True, rf_mode='corner', *,
                 time_pad=True, time_pad_mode='zeros', flip=True, fft='auto'):
        super().__init__(in_channels, out_channels, kernel_size, bias, time_pad=time_pad, autopad=False,
                         time_pad_mode=time_pad_mode, flip=flip, fft=fft)
        if rf_mode not in ('corner', 'center'):
            raise ValueError("rf_mode must be 'corner' or 'center', not %r" % (rf_mode,))
        self.rf_mode = rf_mode

    def reset_weight(self):
        """Sums the kernel over space back to 1 x 1 (it is spread over the next input's frame again)."""
        self._replace_weight(self.weight.detach().sum(dim=(3, 4), keepdim=True))
        return self

    def _fit_frame(self, x):
        kx, ky = self.kernel_size[1:]
        out = x
        for dim, k in ((3, kx), (4, ky)):
            n = out.shape[dim]
            start = (n - k) // 2 if self.rf_mode == 'center' else 0
            if n > k:
                out = out.narrow(dim, start, k)
            elif n < k:
                before = (k - n) // 2 if self.rf_mode == 'center' else 0
                pad = [0, 0, 0, 0, 0, 0]
                pad[2 * (4 - dim)] = before
                pad[2 * (4 - dim) + 1] = k - n - before
                out = F.pad(out, pad)
        return out

    def forward(self, x):
        self._check_input(x)
        if self.kernel_size[1:] == (1, 1) and tuple(x.shape[3:]) != (1, 1):
            n = x.shape[3] * x.shape[4]
            self._replace_weight((self.weight.detach() / n).expand(-1, -1, -1, x.shape[3], x.shape[4]))
        x = self._pad_time(self._fit_frame(x))
        return correlate(x, self.weight, self.bias, self.fft)
