"""Static nonlinearities, sums and frame differences.

Every nonlinearity is a :class:`~convis.Layer` (so it shows up in the module tree and its
parameters can be fitted); a model's ``nonlinearity`` attribute can also be any callable.
Rectifications use ``clamp(min=0)``, whose gradient at exactly 0 is 1, so a model whose
kernel starts at zero can still be fitted.
"""
import torch

from ..layer import Layer
from ..output import Output
from ..variables import Parameter
from .temporal import _checked_state, _require_5d

__all__ = ['NLRectify', 'NLRectifyScale', 'NLSquare', 'NLRectifySquare', 'NLSigmoid', 'NL', 'Sum', 'sum', 'Diff']


def _scale_parameter(value):
    return Parameter(value, doc='gain applied to the input before the nonlinearity', unit='', bounds=(None, None),
                     scale='linear', slider_range=(-10.0, 10.0))


def _bias_parameter(value):
    return Parameter(value, doc='offset added to the scaled input before the nonlinearity', unit='',
                     bounds=(None, None), scale='linear', slider_range=(-10.0, 10.0))


class NLRectify(Layer):
    """Half-wave rectification.

    .. math::  y = \\max(x, 0)

    >>> NLRectify()(np.array([-1.0, 2.0])).flatten().tolist()
    [0.0, 2.0]
    """

    def forward(self, x):
        return torch.clamp(x, min=0)


class NLRectifyScale(Layer):
    """Rectification of a scaled and shifted input.

    .. math::  y = \\max(b + s\\,x, 0)

    Parameters
    ----------
    scale : float
        the gain ``s`` (dimensionless)
    bias : float
        the offset ``b`` (input units)

    >>> NLRectifyScale(scale=2.0, bias=-1.0)(np.array([0.0, 1.0])).flatten().tolist()
    [0.0, 1.0]
    """

    def __init__(self, scale=1.0, bias=0.0):
        super().__init__()
        self.scale = _scale_parameter(scale)
        self.bias = _bias_parameter(bias)

    def forward(self, x):
        return torch.clamp(self.bias + self.scale * x, min=0)


class NLSquare(Layer):
    """Square of a scaled and shifted input.

    .. math::  y = (b + s\\,x)^2

    Parameters
    ----------
    scale, bias : float
        gain ``s`` and offset ``b``

    >>> NLSquare()(np.array([-2.0])).item()
    4.0
    """

    def __init__(self, scale=1.0, bias=0.0):
        super().__init__()
        self.scale = _scale_parameter(scale)
        self.bias = _bias_parameter(bias)

    def forward(self, x):
        return (self.bias + self.scale * x) ** 2


class NLRectifySquare(Layer):
    """Square of the rectified, scaled and shifted input.

    .. math::  y = \\max(b + s\\,x, 0)^2

    Parameters
    ----------
    scale, bias : float
        gain ``s`` and offset ``b``

    >>> NLRectifySquare()(np.array([-2.0, 3.0])).flatten().tolist()
    [0.0, 9.0]
    """

    def __init__(self, scale=1.0, bias=0.0):
        super().__init__()
        self.scale = _scale_parameter(scale)
        self.bias = _bias_parameter(bias)

    def forward(self, x):
        return torch.clamp(self.bias + self.scale * x, min=0) ** 2


class NLSigmoid(Layer):
    """A logistic sigmoid of a scaled and shifted input, with an amplitude.

    .. math::  y = \\frac{A}{1 + \\exp(-(b + s\\,x))}

    Parameters
    ----------
    scale, bias : float
        gain ``s`` and offset ``b``
    amplitude : float
        the maximum ``A`` (output units)

    >>> NLSigmoid()(np.array([0.0])).item()
    0.5
    """

    def __init__(self, scale=1.0, bias=0.0, amplitude=1.0):
        super().__init__()
        self.scale = _scale_parameter(scale)
        self.bias = _bias_parameter(bias)
        self.amplitude = Parameter(amplitude, doc='maximum of the sigmoid', unit='', bounds=(None, None),
                                   scale='linear', slider_range=(0.0, 10.0))

    def forward(self, x):
        return self.amplitude * torch.sigmoid(self.bias + self.scale * x)


class NL(Layer):
    """Any elementwise function with fittable scalar parameters.

    .. math::  y = f(x; p_1, p_2, \\dots)

    Parameters
    ----------
    func : callable
        ``func(x, **parameters)`` on tensors
    **parameters : float
        initial values; each becomes a (dimensionless, unbounded) :class:`~convis.Parameter`

    >>> nl = NL(lambda x, a, b: a * torch.tanh(b * x), a=2.0, b=1.0)
    >>> round(nl(np.array([10.0])).item(), 4)
    2.0
    """

    def __init__(self, func, **parameters):
        super().__init__()
        if not callable(func):
            raise TypeError('NL needs a callable, not %r' % (func,))
        self.func = func
        self._parameter_names = list(parameters)
        for name, value in parameters.items():
            setattr(self, name, Parameter(value, doc='parameter %r of the nonlinearity' % name, unit='',
                                          bounds=(None, None), scale='linear'))

    def forward(self, x):
        return self.func(x, **{name: getattr(self, name) for name in self._parameter_names})

    def extra_repr(self):
        return getattr(self.func, '__name__', repr(self.func))


def sum(*tensors, dim=0):
    """Concatenates tensors along ``dim`` and sums over it (keeping the dimension).

    .. math::  y = \\sum_i x_i \\quad\\text{(along dim)}

    >>> sum(torch.ones(1, 1, 2, 1, 1), 2 * torch.ones(1, 1, 2, 1, 1)).flatten().tolist()
    [3.0, 3.0]
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple, Output)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ValueError('sum needs at least one tensor')
    return torch.cat(tensors, dim=dim).sum(dim=dim, keepdim=True)


class Sum(Layer):
    """A layer that adds its inputs (see :func:`sum`): ``Sum(dim)(a, b, ...)``.

    .. math::  y = \\sum_i x_i

    Parameters
    ----------
    dim : int
        the dimension the inputs are stacked and summed along (0, the batch, by default)

    >>> Sum()(np.ones((2, 1, 1)), np.ones((2, 1, 1))).flatten().tolist()
    [2.0, 2.0]
    """

    def __init__(self, dim=0):
        super().__init__()
        self.dim = int(dim)

    def forward(self, *tensors):
        return sum(*tensors, dim=self.dim)

    def extra_repr(self):
        return 'dim=%d' % self.dim


class Diff(Layer):
    """Frame-to-frame differences, with the last frame kept across chunks.

    .. math::  y[t] = x[t] - x[t-1], \\qquad x[-1] = x[0] \\ (\\text{so } y[0] = 0)

    >>> Diff()(np.array([1.0, 3.0, 2.0])).flatten().tolist()
    [0.0, 2.0, -1.0]
    """

    def __init__(self):
        super().__init__()
        self.register_state('last_frame', None)

    def forward(self, x):
        _require_5d(self, x)
        if x.shape[2] == 0:
            return x
        prev = _checked_state(self, 'last_frame', x, 1, x[:, :, :1].detach())
        y = x - torch.cat([prev, x[:, :, :-1]], dim=2)
        self.last_frame = x[:, :, -1:].clone()
        return y

