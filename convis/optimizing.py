"""Fitting a layer with a torch optimizer: ``set_optimizer``, ``optimize``, ``compute_loss``, ``fit_parameters``.

:class:`Optimizing` holds these methods of :class:`convis.Layer` (the layer inherits them); the epoch-wise fitting
API built on them is :mod:`convis.fitting`.  The default loss is the sum of squared errors, which refuses
outputs and targets of different shapes with a message that says what to change.
"""
import difflib
import inspect

import torch

from .chunking import _check_frames, _chunk_bounds, _progress
from .locking import locked
from .output import _as_tensor, _check_finite, _first_output, _model_5d
from .tensors import _short_repr

__all__ = ['Optimizing', 'fit_parameters']


def _default_loss(target, output):
    """Sum of squared errors (the argument order, target first, follows the original toolbox).

    Output and target must have the same shape ``[batch, channel, time, x, y]``: a mismatch raises a
    ``ValueError`` that names both shapes and the likely fix (broadcasting would fit something else).
    """
    output = _first_output(output)
    target = _first_output(target)
    if tuple(output.shape) != tuple(target.shape):
        raise ValueError(_shape_mismatch_message(tuple(output.shape), tuple(target.shape)))
    return ((output - target) ** 2).sum()


def _shape_mismatch_message(out, target):
    """Why the model's output (shape ``out``) cannot be compared with the target, and what to change."""
    msg = ('the model output has shape %s but the target has shape %s; the default loss compares them '
           'element by element, so they must be equal' % (out, target))
    if len(out) == len(target) == 5:
        out_space, target_space = out[3] * out[4], target[3] * target[4]
        if out_space == 1 and target_space > 1:
            return msg + ('. The model gives one time series per channel (e.g. population=False): build it with '
                          'population=True for one response per pixel, or average the target over x and y')
        if out_space > 1 and target_space == 1:
            return msg + ('. The target is one time series: build the model with population=False (one receptive '
                          'field over the whole image), or give a target per pixel')
        if out[3:] != target[3:]:
            return msg + ('. The spatial sizes differ: give the target the input\'s size, or pad/crop it '
                          '(convis.utils.extend_to_match), or use a model that keeps the size (autopad)')
        if out[1] != target[1]:
            return msg + '. The numbers of channels differ: match the model\'s output channels to the target\'s'
    return msg + '. Make them match, or pass a loss_fn(target, output) that compares them'


class _OptimizerSelector(object):
    """``model.set_optimizer.<Name>(**kw)`` builds ``torch.optim.<Name>`` over the model's parameters.

    Tab-complete after ``set_optimizer.`` to see every optimizer.  The first argument may be a list of
    parameters; by default every parameter that requires a gradient is used.  ``LBFGS`` defaults to a
    strong-Wolfe line search, which keeps it stable on convex problems.  ``set_optimizer(instance)``
    selects an existing optimizer.
    """

    def __init__(self, layer):
        object.__setattr__(self, '_layer', layer)

    @staticmethod
    def _classes():
        return {name: c for name, c in vars(torch.optim).items()
                if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}

    def __dir__(self):
        return sorted(self._classes())

    def _build(self, cls, *args, **kwargs):
        layer = self._layer
        if args and not isinstance(args[0], (int, float)) and not isinstance(args[0], dict):
            params, args = list(args[0]), args[1:]
        else:
            params = [p for p in layer.parameters() if p.requires_grad]
        if not params:
            raise ValueError('the model has no parameters that require a gradient to optimize')
        if cls is torch.optim.LBFGS:
            kwargs.setdefault('line_search_fn', 'strong_wolfe')
        opt = cls(params, *args, **kwargs)
        layer._optimizer = opt
        return opt

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        classes = self._classes()
        if name not in classes:
            raise AttributeError('torch.optim has no optimizer %s; choices: %s'
                                 % (_short_repr(name), ', '.join(sorted(classes))))
        cls = classes[name]

        def make(*args, **kwargs):
            return self._build(cls, *args, **kwargs)
        make.__doc__ = cls.__doc__
        make.__name__ = name
        return make

    def __call__(self, opt, *args, **kwargs):
        if isinstance(opt, torch.optim.Optimizer):
            self._layer._optimizer = opt
            return opt
        if isinstance(opt, str):
            return getattr(self, opt)(*args, **kwargs)
        if inspect.isclass(opt) and issubclass(opt, torch.optim.Optimizer):
            return self._build(opt, *args, **kwargs)
        raise TypeError('set_optimizer takes an optimizer, an optimizer class or its name, not %s' % _short_repr(opt))

    def _reload(self):
        return self


def _pop(stack, what):
    if not stack:
        raise IndexError('%s: nothing was pushed' % what)
    return stack.pop()


def _clone_nested(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: _clone_nested(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_clone_nested(v) for v in x)
    return x


def _named(model):
    return dict(model.named_parameters())


def fit_parameters(model, names):
    """Makes exactly the parameters ``names`` (dotted names or Parameter objects) require a gradient.

    Every other parameter of ``model`` is frozen.  Returns the chosen Parameters in the given order.
    """
    if isinstance(names, (str, torch.Tensor)):
        names = [names]
    params = _named(model)
    by_id = {id(p): n for n, p in params.items()}
    chosen = []
    for n in names:
        if isinstance(n, torch.Tensor):
            if id(n) not in by_id:
                raise KeyError('the Parameter %s is not a parameter of this %s' % (_short_repr(n), type(model).__name__))
            chosen.append(n)
            continue
        if n not in params:
            close = difflib.get_close_matches(str(n), list(params), n=3, cutoff=0.5)
            raise KeyError('%s has no parameter %s%s' % (type(model).__name__, _short_repr(n),
                                                         '; did you mean %s?' % ', '.join(close) if close else
                                                         '; it has %s' % _short_repr(list(params))))
        if not params[n].is_floating_point():
            raise ValueError('parameter %s is not a floating point tensor and cannot be fitted' % n)
        chosen.append(params[n])
    if not chosen:
        raise ValueError('choose at least one parameter to fit')
    ids = {id(p) for p in chosen}
    for p in model.parameters():
        if p.is_floating_point():
            p.requires_grad_(id(p) in ids)
    return chosen


class Optimizing(object):
    """The fitting methods of :class:`convis.Layer`: a mixin, it relies on the layer's calls and states."""

    def push_optimizer(self):
        self._optimizer_stack.append(self._optimizer)

    def pop_optimizer(self):
        self._optimizer = _pop(self._optimizer_stack, 'pop_optimizer')

    def fit_parameters(self, names):
        """Chooses the parameters to fit: those named (dotted names like ``'opl.sigma_center'``, or the
        Parameters themselves, e.g. from ``.p``) require a gradient, every other one does not.

        Returns the list of chosen Parameters (give it to ``set_optimizer.<Name>(...)``, or let the optimizer
        take every parameter that requires a gradient).  An unknown name raises a ``KeyError`` naming the
        closest ones.  See :mod:`convis.fitting`.
        """
        return fit_parameters(self, names)

    def requires_grad_(self, requires_grad=True):
        """Sets whether every (floating point) parameter is fitted; returns the layer."""
        for p in self.parameters():
            if p.is_floating_point():
                p.requires_grad_(requires_grad)
        return self

    def _as_model_tensor(self, x, missing=False):
        """``x`` as a tensor of the model's dtype and device; with ``missing``, NaN marks an entry that was not
        recorded (targets: the losses of :mod:`convis.losses` leave it out) and only infinities are refused."""
        device, dtype = self._device_dtype()
        t = _as_tensor(x, dtype=dtype, device=device)
        if self.dims == 5:
            t = _model_5d(t)
        _check_finite(torch.where(torch.isnan(t), torch.zeros_like(t), t) if missing else t,
                      'the target' if missing else 'input')
        return t

    def _fit_chunks(self, inp, outp, dt, t):
        x = self._as_model_tensor(inp).detach()  # data: a graph that made them (e.g. y = goal_model(x)) is not fitted
        y = self._as_model_tensor(outp, missing=True).detach()
        if x.shape[2] != y.shape[2]:
            raise ValueError('input has %d frames but the target has %d' % (x.shape[2], y.shape[2]))
        return x, y, _chunk_bounds(t, x.shape[2], dt)

    @locked
    def optimize(self, inp, outp, optimizer=None, loss_fn=None, dt=None, t=0, t_skip=0, progress=None):
        """Fits the parameters so that the output for ``inp`` approaches ``outp``; returns the loss per chunk.

        Uses the optimizer chosen with ``set_optimizer`` (or ``optimizer``).  Each call starts from the
        cleared state, runs ``[t, t_skip)`` without fitting (warm-up), then makes one optimizer step per
        chunk of ``dt`` frames (truncated back-propagation: the state is carried, the graph is cut at chunk
        boundaries).  ``loss_fn(target, output)`` defaults to the sum of squared errors.  After each step the
        parameters are clipped into their hard ``bounds`` (a NaN parameter raises).  The model's state
        is restored afterwards.  Without ``dt`` the whole input is one chunk and one loss is returned.
        """
        optimizer = optimizer if optimizer is not None else self._optimizer
        if optimizer is None:
            raise RuntimeError('no optimizer selected: call e.g. model.set_optimizer.Adam() first, '
                               'or pass optimizer=...')
        loss_fn = loss_fn or _default_loss
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        x, y, chunks = self._fit_chunks(inp, outp, dt, _check_frames('t', t))
        t_skip = _check_frames('t_skip', t_skip)
        losses = []
        with self.fresh_state():
            for s, e in _progress(chunks, progress, 'optimize'):
                xc, yc = x[:, :, s:e], y[:, :, s:e]
                if e <= t_skip:
                    with torch.no_grad():
                        self(xc)
                    continue
                start_state = self.get_state()

                def closure():
                    self._enforce_bounds()  # a line search may try values out of bounds: the loss sees them clipped
                    self.set_state(start_state)
                    optimizer.zero_grad()
                    loss = loss_fn(yc, self(xc))
                    loss.backward()
                    return loss
                loss = optimizer.step(closure)
                self._enforce_bounds()
                self.detach_state()
                losses.append(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))
        return losses if dt is not None else (losses[0] if losses else None)

    def _enforce_bounds(self):
        """After an optimizer step: clips every parameter into its hard bounds; a NaN parameter is an error."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if not p.is_floating_point():
                    continue
                if bool(torch.isnan(p).any()):
                    raise RuntimeError('parameter %s became NaN during fitting (try a smaller learning rate)' % name)
                lo, hi = getattr(p, 'bounds', (None, None))
                if lo is not None or hi is not None:
                    p.clamp_(min=lo, max=hi)

    @locked
    def compute_loss(self, inp, outp, loss_fn=None, dt=None, t=0):
        """The loss per chunk of ``dt`` frames (like :meth:`optimize`, without changing anything).

        Starts from the cleared state, restores the model's state afterwards and computes no gradients.
        """
        loss_fn = loss_fn or _default_loss
        dt = _check_frames('dt', dt, allow_none=True, positive=True)
        x, y, chunks = self._fit_chunks(inp, outp, dt, _check_frames('t', t))
        losses = []
        with self.fresh_state(), torch.no_grad():
            for s, e in chunks:
                losses.append(float(loss_fn(y[:, :, s:e], self(x[:, :, s:e]))))
        return losses if dt is not None else losses[0]
