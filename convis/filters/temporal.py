"""Temporal filters with memory: recursive exponential low-/high-pass filters, cascades, delays.

The basic operation is the first-order exponential low-pass, in the exact
discretisation VirtualRetina uses (unit DC gain, reads the current input):

.. math::  y[s] = e\\,y[s-1] + (1-e)\\,x[s], \\qquad e = \\exp(-\\Delta t/\\tau)

:func:`exponential_recursion` evaluates it over a whole chunk at once: the
chunk is cut into blocks of ``block`` steps, each block is one matrix product
with a small lower-triangular Toeplitz matrix, and only the carry between
blocks is sequential.  The result equals the step-by-step recursion to float
rounding, for any chunk length, and gradients flow to ``e``.  Without autograd on the CPU
a compiled loop (:func:`convis.native.recursion_loop`) makes one pass through the data instead.
The recursion itself lives in :mod:`convis.functional.recursion`.
"""
import torch

from ..functional.recursion import exponential_recursion
from ..layer import Layer
from ..variables import Parameter

__all__ = ['exponential_recursion', 'TimePadding', 'Delay', 'VariableDelay', 'TemporalLowPassFilterRecursive',
           'TemporalHighPassFilterRecursive', 'TemporalLowPassCascade']


def _checked_state(layer, name, x, frames, fill=None):
    """The state ``name`` of ``layer`` for input ``x``: created (zeros, or ``fill``) when missing.

    Raises a ``ValueError`` when the batch, channel or spatial size of ``x`` differs from the state's.
    """
    s = getattr(layer, name)
    b, c, _, nx, ny = x.shape
    if s is None:
        if fill is None:
            return x.new_zeros((b, c, frames, nx, ny))
        return fill.expand(b, c, frames, nx, ny).clone()
    if tuple(s.shape[:2]) != (b, c) or tuple(s.shape[3:]) != (nx, ny):
        raise ValueError('%s: the input is [batch %d, channel %d, x %d, y %d] but the state %r was built for '
                         '[batch %d, channel %d, x %d, y %d]; call clear_state() before changing the input size'
                         % (type(layer).__name__, b, c, nx, ny, name, s.shape[0], s.shape[1], s.shape[3], s.shape[4]))
    return s.to(device=x.device, dtype=x.dtype)


def _require_5d(layer, x):
    if x.dim() != 5:
        raise ValueError('%s expects a 5-d input [batch, channel, time, x, y], got shape %s'
                         % (type(layer).__name__, tuple(x.shape)))


class TimePadding(Layer):
    """Prepends the last ``length`` frames of the input seen so far to each chunk (the memory of a filter).

    .. math::  \\mathrm{out} = [x_{-L}, \\dots, x_{-1}, x_0, \\dots, x_{T-1}]

    The output has ``T + length`` frames.  Before the first chunk the history is filled according to
    ``mode``, which depends on the first frame only, so that consecutive chunks see exactly the
    frames one whole input would:

    * ``'zeros'`` (default): the system starts at rest (a causal filter's impulse response is its kernel);
    * ``'first_frame'`` (alias ``'replicate'``): copies of the first frame, as if it had always been shown.

    Parameters
    ----------
    length : int
        number of frames of history (frames)
    mode : str
        ``'zeros'`` or ``'first_frame'``

    >>> tp = TimePadding(2)
    >>> tp(np.ones((3, 1, 1))).shape
    torch.Size([1, 1, 5, 1, 1])
    """
    _modes = {'zeros': 'zeros', 'zero': 'zeros', 'first_frame': 'first_frame', 'replicate': 'first_frame'}

    def __init__(self, length=0, mode='zeros'):
        super().__init__()
        if mode not in self._modes:
            raise ValueError('TimePadding mode %r is not supported: use %s (a mode that looks at later frames, such as '
                             "'mirror', cannot give the same result in chunks)" % (mode, sorted(set(self._modes))))
        self.mode = self._modes[mode]
        self.length = int(length)
        if self.length < 0:
            raise ValueError('length must be >= 0, not %d' % self.length)
        self.register_state('saved_inputs', None)

    def _history_length(self):
        return self.length

    def _fill(self, x):
        return None if self.mode == 'zeros' else x[:, :, :1].detach()

    def _pad(self, x):
        """``cat(history, x)`` along time, and the history updated to the last frames."""
        _require_5d(self, x)
        n = self._history_length()
        if n == 0:
            return x
        h = _checked_state(self, 'saved_inputs', x, n, self._fill(x))
        if h.shape[2] < n:
            first = h[:, :, :1] if self.mode == 'first_frame' else torch.zeros_like(h[:, :, :1])
            h = torch.cat([first.expand(-1, -1, n - h.shape[2], -1, -1), h], dim=2)
        elif h.shape[2] > n:
            h = h[:, :, -n:]
        xp = torch.cat([h, x], dim=2)
        self.saved_inputs = xp[:, :, -n:].clone()
        return xp

    def forward(self, x):
        return self._pad(x)

    def extra_repr(self):
        return 'length=%d, mode=%r' % (self.length, self.mode)


class Delay(TimePadding):
    """Delays the input by a whole number of frames, across chunks (zeros before the start).

    .. math::  y[t] = x[t - d], \\qquad x[t < 0] = 0

    Parameters
    ----------
    delay : int
        the delay ``d`` in frames (a Parameter without gradient)

    >>> Delay(2)(np.arange(1.0, 5.0)).flatten().tolist()
    [0.0, 0.0, 1.0, 2.0]
    """

    def __init__(self, delay=0):
        super().__init__(0, mode='zeros')
        self.delay = Parameter(delay, doc='delay of the output behind the input', unit='frames', bounds=(0, None),
                               scale='linear', slider_range=(0, 100), requires_grad=False)

    def _history_length(self):
        return int(round(float(self.delay)))

    def forward(self, x):
        return self._pad(x)[:, :, :x.shape[2]]

    def extra_repr(self):
        return 'delay=%d frames' % self._history_length()


class VariableDelay(TimePadding):
    """Delays every pixel by its own whole number of frames, across chunks (zeros before the start).

    .. math::  y[t, i, j] = x[t - d_{ij}, i, j]

    Parameters
    ----------
    delays : array (x, y) or number, optional
        the delay map ``d`` in frames (a Parameter without gradient; a single number delays all pixels;
        default 0).  A map must have the input's spatial size.

    >>> vd = VariableDelay(np.array([[0, 2]]))
    >>> vd(np.ones((3, 1, 2)))[0, 0, :, 0, 1].tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self, delays=None):
        super().__init__(0, mode='zeros')
        self.delays = Parameter(0.0 if delays is None else delays, doc='delay of each pixel', unit='frames',
                                bounds=(0, None), scale='linear', slider_range=(0, 100), requires_grad=False)

    def _delay_map(self):
        return torch.round(self.delays.detach()).long()

    def _history_length(self):
        return int(self._delay_map().max())

    def forward(self, x):
        _require_5d(self, x)
        d = self._delay_map().to(x.device)
        if d.numel() > 1 and tuple(d.shape) != tuple(x.shape[3:]):
            raise ValueError('VariableDelay: the delay map is %s but the input frames are %s'
                             % (tuple(d.shape), tuple(x.shape[3:])))
        n = self._history_length()
        xp = self._pad(x)
        t = torch.arange(x.shape[2], device=x.device)[:, None, None]
        idx = (n + t - d.reshape((1, 1) if d.numel() == 1 else d.shape)).expand(x.shape[2:])
        return torch.gather(xp, 2, idx.expand(x.shape))


def _decay_factor(layer, tau):
    """``e = exp(-dt/tau)`` as a 0-d tensor (differentiable in ``tau``), with ``dt`` from the layer's resolution."""
    if tau.numel() != 1:
        raise ValueError('%s: tau must be a single time constant, got shape %s' % (type(layer).__name__, tuple(tau.shape)))
    dt = layer.resolution.dt
    return torch.exp(-dt / torch.clamp(tau, min=1e-12)).reshape(())


class TemporalLowPassFilterRecursive(Layer):
    """First-order exponential low-pass with unit DC gain, computed time-parallel and exact across chunks.

    .. math::  y[s] = e\\,y[s-1] + (1-e)\\,x[s], \\qquad e = \\exp(-\\Delta t/\\tau), \\quad y[-1] = 0

    ``dt`` comes from the layer's resolution at every call; ``tau`` is differentiable.

    Parameters
    ----------
    tau : float
        time constant in seconds

    >>> lp = TemporalLowPassFilterRecursive(tau=0.01)
    >>> float(lp.run(np.ones(1000))[0][0, 0, -1])   # DC gain 1
    1.0
    """

    def __init__(self, tau=0.01, requires_grad=True):
        super().__init__()
        self.tau = Parameter(tau, doc='time constant of the exponential low-pass', unit='s', bounds=(0, None),
                             scale='log', slider_range=(0.001, 1.0), requires_grad=requires_grad)
        self.register_state('last_y', None)

    def forward(self, x):
        _require_5d(self, x)
        y = exponential_recursion(x, _decay_factor(self, self.tau), _checked_state(self, 'last_y', x, 1))
        self.last_y = y[:, :, -1:]
        return y


class TemporalHighPassFilterRecursive(Layer):
    """The input minus a weighted exponential low-pass of it (VirtualRetina's undershoot), exact across chunks.

    .. math::  y[s] = x[s] - k\\,l[s], \\qquad l[s] = e\\,l[s-1] + (1-e)\\,x[s], \\quad e = \\exp(-\\Delta t/\\tau)

    The DC gain is ``1 - k``.  ``tau`` and ``k`` are differentiable.

    Parameters
    ----------
    tau : float
        time constant of the subtracted low-pass in seconds
    k : float
        relative weight of the subtracted low-pass (dimensionless)

    >>> hp = TemporalHighPassFilterRecursive(tau=0.01, k=0.5)
    >>> round(float(hp.run(np.ones(1000))[0][0, 0, -1]), 6)
    0.5
    """

    def __init__(self, tau=0.01, k=0.5, requires_grad=True):
        super().__init__()
        self.tau = Parameter(tau, doc='time constant of the subtracted low-pass', unit='s', bounds=(0, None),
                             scale='log', slider_range=(0.001, 1.0), requires_grad=requires_grad)
        self.k = Parameter(k, doc='relative weight of the subtracted low-pass (DC gain is 1 - k)', unit='',
                           bounds=(None, None), scale='linear', slider_range=(0.0, 1.0), requires_grad=requires_grad)
        self.register_state('last_y', None)

    def forward(self, x):
        _require_5d(self, x)
        low = exponential_recursion(x, _decay_factor(self, self.tau), _checked_state(self, 'last_y', x, 1))
        self.last_y = low[:, :, -1:]
        return x - self.k * low


class TemporalLowPassCascade(Layer):
    """``n + 1`` identical first-order low-passes in series (VirtualRetina's ``E_{n,tau}``), exact across chunks.

    .. math::  h_n[k] = (1-e)^{n+1} \\binom{k+n}{n} e^k, \\qquad e = \\exp(-\\Delta t/\\tau)

    ``n = 0`` is a single exponential; the DC gain is 1; the kernel peaks near ``n * tau``.

    Parameters
    ----------
    tau : float
        time constant of each stage in seconds
    n : int
        number of additional stages (a Parameter without gradient; VirtualRetina's ``center-n__uint``)

    >>> c = TemporalLowPassCascade(tau=0.005, n=2)
    >>> int(np.argmax(c.impulse_response((100, 1, 1))[0].flatten()))   # mode of the kernel, about n * tau
    9
    """

    def __init__(self, tau=0.01, n=0, requires_grad=True):
        super().__init__()
        self.tau = Parameter(tau, doc='time constant of each low-pass stage', unit='s', bounds=(0, None),
                             scale='log', slider_range=(0.001, 1.0), requires_grad=requires_grad)
        self.n = Parameter(n, doc='number of stages after the first', unit='', bounds=(0, 50), scale='linear',
                           slider_range=(0, 10), requires_grad=False)
        self.register_state('stages', None)

    def forward(self, x):
        _require_5d(self, x)
        n = int(round(float(self.n)))
        s = _checked_state(self, 'stages', x, n + 1)
        if s.shape[2] < n + 1:
            s = torch.cat([s, s.new_zeros(s.shape[:2] + (n + 1 - s.shape[2],) + s.shape[3:])], dim=2)
        e = _decay_factor(self, self.tau)
        y, last = x, []
        for i in range(n + 1):
            y = exponential_recursion(y, e, s[:, :, i:i + 1])
            last.append(y[:, :, -1:])
        self.stages = torch.cat(last, dim=2)
        return y
