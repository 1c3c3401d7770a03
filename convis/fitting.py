"""Fitting chosen parameters of any convis model (a :class:`~convis.retina.Retina` too) to recordings.

:func:`fit_parameters` chooses what is fitted (by dotted name or Parameter); :func:`iter_fit` runs the
fit epoch by epoch and yields one record per epoch, ``{'epoch', 'loss', 'held_out_loss', 'parameters',
'seconds', 'evaluations'}`` (the hook for progress displays such as a fit monitor); :func:`fit` collects
them.  The losses are in :mod:`convis.losses`.

* **Units.** Parameters stay in their physical units (seconds, degrees, Hz).  The optimizer works on
  normalised copies: the logarithm of each parameter that is bounded below by 0 (so it stays positive),
  the value over its starting magnitude for the others.  Values are clipped into each parameter's hard
  ``bounds`` before every evaluation.
* **Truncated back-propagation through time.** One epoch runs the whole recording chunk by chunk
  (``dt`` frames, the *window*): the state carries from chunk to chunk, the gradient of each chunk's
  loss is taken back to the start of that chunk only (the graph is cut at chunk boundaries), and the
  gradients of all chunks are summed.  Without ``dt`` the whole recording is one window (the exact
  gradient).  A window longer than the slowest time constant (in frames) loses little.
* **One optimizer step per epoch** (LBFGS by default: up to ``max_iter`` evaluations of the whole
  recording per step), so the loss of an epoch is a loss of the whole recording, comparable across epochs.

:func:`fit_least_squares` fits by trust-region Gauss-Newton instead (scipy's ``least_squares`` in
log-parameters, the Jacobian by central differences of gradient-free runs): the method that recovers the
retina's parameters where they act through curved valleys of the loss (sigma^2 / tau).  One record per run
of the model goes to its callback; it returns one result dict.

:func:`check_gradients` compares the gradients with central finite differences.  The comparisons of
predicted rates with recorded spike trains (:func:`explained_variance`, :func:`compare_predictions`,
:func:`plot_comparison`) live in :mod:`convis.fit_compare` and are re-exported here.

>>> retina.fit_parameters(['opl.sigma_center', 'bipolar.g_leak'])
>>> records = convis.fitting.fit(retina, stimulus, target, convis.losses.mse('bipolar'), epochs=20)
>>> records[-1]['parameters']
"""
import difflib
import math
import time

import numpy as np
import torch

from .chunking import _check_frames
from .fit_compare import compare_predictions, explained_variance, plot_comparison  # noqa: F401 (public here)
from .optimizing import _default_loss, _named, fit_parameters  # noqa: F401 (fit_parameters is public here)
from .tensors import make_tensor_5d

__all__ = ['fit_parameters', 'fitted_parameters', 'iter_fit', 'fit', 'fit_least_squares', 'check_gradients',
           'explained_variance', 'compare_predictions', 'plot_comparison']


def fitted_parameters(model):
    """``{dotted name: value}`` of every parameter that requires a gradient (floats, or lists for arrays)."""
    out = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            v = p.detach().cpu().double().numpy()
            out[n] = float(v) if v.size == 1 else v.tolist()
    return out


class _Normalised(object):
    """The optimizer's view of the fitted parameters: ``p = exp(z)`` (bounded below by 0) or ``p = s z``."""

    def __init__(self, params):
        self.params = params
        self.log = []
        self.scale = []
        self.z = []
        for p in params:
            lo = (getattr(p, 'bounds', None) or (None, None))[0]
            v = p.detach()
            log = lo is not None and lo >= 0 and bool((v > 0).all())
            s = None if log else torch.where(v.abs() > 0, v.abs(), torch.ones_like(v))
            self.log.append(log)
            self.scale.append(s)
            self.z.append((torch.log(v) if log else v / s).clone().requires_grad_(True))

    def push(self):
        """Writes the optimizer's values into the model's parameters (clipped into their bounds)."""
        with torch.no_grad():
            for p, z, log, s in zip(self.params, self.z, self.log, self.scale):
                v = torch.exp(z) if log else z * s
                lo, hi = getattr(p, 'bounds', None) or (None, None)
                p.copy_(v if lo is None and hi is None else v.clamp(min=lo, max=hi))

    def pull_grad(self):
        """Chain rule: the gradients of the parameters become those of the optimizer's values."""
        for p, z, log, s in zip(self.params, self.z, self.log, self.scale):
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            z.grad = (g * p.detach() if log else g * s).detach().clone()


def _whole_loss(model, x, y, loss_fn, chunks, t_skip, backward, check=None):
    """Runs the recording from the cleared state chunk by chunk; with ``backward`` each chunk's loss is
    back-propagated and the graph cut at the chunk's end (truncated BPTT).  ``check()`` is called before each
    chunk (it may raise to stop).  Returns the summed loss."""
    model.clear_state()
    total = 0.0
    for s, e in chunks:
        if check is not None:
            check()
        xc, yc = x[:, :, s:e], y[:, :, s:e]
        if e <= t_skip or not backward:
            with torch.no_grad():
                out = model(xc)
            if e > t_skip:
                total += float(loss_fn(yc, out))
            continue
        loss = loss_fn(yc, model(xc))
        loss.backward()
        total += float(loss.detach())
        model.detach_state()
    return total


def _prepared(model, inp, target, dt, t_skip):
    dt = _check_frames('dt', dt, allow_none=True, positive=True)
    x, y, chunks = model._fit_chunks(inp, target, dt, 0)
    return x, y, chunks, _check_frames('t_skip', t_skip)


def iter_fit(model, inp, target, loss_fn=None, epochs=10, dt=None, t_skip=0, held_out=None, optimizer='LBFGS',
             lr=1.0, max_iter=20, tolerance=0.0, check=None, **optimizer_kwargs):
    """Fits the parameters of ``model`` that require a gradient; yields one record per epoch.

    Parameters
    ----------
    model : Layer
        choose the parameters first (:func:`fit_parameters`, or ``requires_grad_``)
    inp, target : arrays or tensors
        the stimulus and the recording (same number of frames; NaN in the target: not recorded)
    loss_fn : callable
        ``loss_fn(target, output)`` (see :mod:`convis.losses`; default: the sum of squared errors)
    epochs : int
        the number of optimizer steps, each over the whole recording
    dt : int or None
        the truncation window of back-propagation through time, in frames (see the module doc)
    t_skip : int
        frames at the start that only warm up the state (not in the loss)
    held_out : (inp, target) or None
        a recording not fitted on: its loss is reported as ``held_out_loss`` (None without one)
    optimizer : str or torch.optim.Optimizer class
        built over the normalised parameters (see the module doc); ``'LBFGS'`` uses a strong-Wolfe search
    lr, max_iter, tolerance
        the learning rate, LBFGS's evaluations per step, and a stop when an epoch changes the loss by
        less than ``tolerance`` times the loss
    check : callable or None
        called before every chunk the fit runs; an exception it raises stops the fit at once (the
        parameters are then those of the interrupted step: restore a record's to continue)

    The model's lock is held during each epoch (with the model's state pushed before and popped after)
    and released between epochs, so other users of the model (a widget's preview) run between epochs.
    """
    loss_fn = loss_fn or _default_loss
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError('no parameter of the %s requires a gradient: choose them with fit_parameters([...])'
                         % type(model).__name__)
    names = {id(p): n for n, p in model.named_parameters()}
    x, y, chunks, t_skip = _prepared(model, inp, target, dt, t_skip)
    held = _prepared(model, held_out[0], held_out[1], dt, 0) if held_out is not None else None
    norm = _Normalised(params)
    cls = getattr(torch.optim, optimizer) if isinstance(optimizer, str) else optimizer
    kwargs = dict(optimizer_kwargs)
    if cls is torch.optim.LBFGS:
        kwargs = dict(dict(line_search_fn='strong_wolfe', max_iter=max_iter, history_size=max(20, len(params) * 2),
                           tolerance_grad=1e-12, tolerance_change=1e-16), **kwargs)
    opt = cls(norm.z, lr=lr, **kwargs)
    counter = [0]

    def closure():
        counter[0] += 1
        opt.zero_grad()
        norm.push()
        for p in params:
            p.grad = None
        loss = _whole_loss(model, x, y, loss_fn, chunks, t_skip, backward=True, check=check)
        norm.pull_grad()
        return torch.tensor(loss, dtype=torch.float64)

    previous = None
    for epoch in range(int(epochs)):
        with model.fresh_state():
            try:
                t0 = time.perf_counter()
                counter[0] = 0
                opt.step(closure)
                norm.push()
                loss = _whole_loss(model, x, y, loss_fn, chunks, t_skip, backward=False, check=check)
                held_loss = (_whole_loss(model, held[0], held[1], loss_fn, held[2], 0, backward=False, check=check)
                             if held is not None else None)
            finally:
                for p in params:
                    p.grad = None
            if not math.isfinite(loss):
                raise RuntimeError('the loss became %s at epoch %d (try a smaller lr)' % (loss, epoch))
            record = {'epoch': epoch, 'loss': loss, 'held_out_loss': held_loss,
                      'parameters': {names[id(p)]: (float(p) if p.numel() == 1 else p.detach().cpu().tolist())
                                     for p in params},
                      'seconds': time.perf_counter() - t0, 'evaluations': counter[0]}
        yield record
        if previous is not None and abs(previous - loss) <= tolerance * abs(loss):
            break
        previous = loss


def fit(model, inp, target, loss_fn=None, epochs=10, callback=None, **kwargs):
    """Runs :func:`iter_fit` to the end and returns its records; ``callback(record)`` is called after each
    epoch (e.g. to plot the loss); the fitted values stay in the model."""
    records = []
    for record in iter_fit(model, inp, target, loss_fn, epochs=epochs, **kwargs):
        records.append(record)
        if callback is not None:
            callback(record)
    return records


def check_gradients(model, inp, target, loss_fn, names=None, rel_step=1e-5):
    """Autograd against central finite differences for chosen scalar parameters (use float64 models).

    Returns ``{name: (autograd, finite_difference)}``; the loss is taken over the whole input from the
    cleared state (no truncation), with the state restored afterwards.  ``names`` default to the
    parameters that require a gradient.  Each difference uses steps of ``rel_step`` times the value.
    """
    named = _named(model)
    names = list(names) if names is not None else [n for n, p in named.items() if p.requires_grad]
    x, y, chunks, _ = _prepared(model, inp, target, None, 0)
    saved = {n: named[n].requires_grad for n in named}
    out = {}
    with model.fresh_state():
        try:
            fit_parameters(model, names)
            for p in named.values():
                p.grad = None
            _whole_loss(model, x, y, loss_fn, chunks, 0, backward=True)
            grads = {n: float(named[n].grad) if named[n].grad is not None else 0.0 for n in names}
            for n in names:
                p = named[n]
                v = float(p)
                h = rel_step * max(abs(v), 1e-3)
                values = []
                for sign in (1, -1):
                    with torch.no_grad():
                        p.fill_(v + sign * h)
                    values.append(_whole_loss(model, x, y, loss_fn, chunks, 0, backward=False))
                with torch.no_grad():
                    p.fill_(v)
                out[n] = (grads[n], (values[0] - values[1]) / (2 * h))
        finally:
            for n, p in named.items():
                p.grad = None
                if p.is_floating_point():
                    p.requires_grad_(saved[n])
    return out


# ---------------------------------------------------------------- trust-region Gauss-Newton
def _chosen(model, names):
    """``[(dotted name, Parameter)]`` of the parameters to fit: ``names`` (dotted names or Parameters) or, by
    default, every floating point parameter that requires a gradient."""
    named = _named(model)
    if names is None:
        chosen = [(n, p) for n, p in named.items()
                  if p.requires_grad and p.is_floating_point() and getattr(p, 'kind', 'float') == 'float']
        if not chosen:
            raise ValueError('no parameter of the %s requires a gradient: name the parameters to fit '
                             '(names=[...]) or choose them with fit_parameters([...])' % type(model).__name__)
        return chosen
    if isinstance(names, (str, torch.Tensor)):
        names = [names]
    by_id = {id(p): n for n, p in named.items()}
    chosen = []
    for n in names:
        if isinstance(n, torch.Tensor):
            if id(n) not in by_id:
                raise ValueError('the Parameter %r is not a parameter of this %s' % (n, type(model).__name__))
            n = by_id[id(n)]
        if n not in named:
            close = difflib.get_close_matches(str(n), list(named), n=3, cutoff=0.5)
            raise ValueError('%s has no parameter %r; %s' % (type(model).__name__, n, 'did you mean %s?'
                             % ', '.join(close) if close else 'its parameters are %s' % ', '.join(named)))
        if not named[n].is_floating_point() or getattr(named[n], 'kind', 'float') != 'float':
            raise ValueError('parameter %s is not a continuous value (kind %r) and cannot be fitted'
                             % (n, getattr(named[n], 'kind', str(named[n].dtype))))
        if n in (c[0] for c in chosen):
            raise ValueError('parameter %s is named twice' % n)
        chosen.append((n, named[n]))
    if not chosen:
        raise ValueError('names is empty: name at least one parameter to fit')
    return chosen


class _Coordinates(object):
    """The vector scipy fits, ``x``: ``1 + log(p / p0)`` for a parameter fitted in log space, ``1 + (p - p0) / s``
    for the others (``s = |p0|``, or 1 where ``p0 = 0``); ``x = 1`` is the start.  Holds the bounds of ``x``.

    Why 1, not 0: scipy's trust region starts with the radius ``|D x0|`` (``D`` the Jacobian's column norms,
    ``x_scale='jac'``), about one unit of every coordinate from ``x0 = 1``, so the first step may be the full
    Gauss-Newton step.  From ``x0 = 0`` (a radius of 1 in the scaled units) it creeps in small steps: the
    11-parameter linear_cgc recovery of benchmarks/bench_fit_retina.py then ends in a local minimum at a loss of
    0.38 instead of 7e-16.
    """

    def __init__(self, chosen, log_parameters, bounds):
        names = [n for n, _ in chosen]
        if isinstance(log_parameters, (bool, np.bool_)):
            log_names = set(names) if log_parameters else set()
        else:
            log_names = {log_parameters} if isinstance(log_parameters, str) else set(log_parameters)
        if log_names - set(names):
            raise ValueError('log_parameters names %s, which are not fitted'
                             % ', '.join(sorted(map(str, log_names - set(names)))))
        factor, limits = None, {}
        if isinstance(bounds, dict):
            limits = dict(bounds)
            if set(limits) - set(names):
                raise ValueError('bounds names %s, which are not fitted' % ', '.join(sorted(set(limits) - set(names))))
        elif bounds is not None:
            factor = float(bounds)
            if not factor > 1 or not math.isfinite(factor):
                raise ValueError('bounds must be a factor above 1 (or a dict {name: (min, max)}), not %r' % (bounds,))
        self.params, self.log, self.start, self.scale, self.labels = [], [], [], [], []
        lower, upper = [], []
        for n, p in chosen:
            v0 = p.detach().cpu().double().numpy().ravel().copy()  # not a view of the parameter
            log = n in log_names
            if log and not (v0 > 0).all():
                raise ValueError('%s is %g <= 0: it cannot be fitted in log space (log_parameters=False, or a list '
                                 'of the names to fit in log space)' % (n, v0[~(v0 > 0)][0]))
            lo, hi = getattr(p, 'bounds', None) or (None, None)
            lo = np.full_like(v0, -np.inf if lo is None else lo)
            hi = np.full_like(v0, np.inf if hi is None else hi)
            if n in limits:
                user_lo, user_hi = limits[n]
                lo = np.maximum(lo, -np.inf if user_lo is None else float(user_lo))
                hi = np.minimum(hi, np.inf if user_hi is None else float(user_hi))
            if factor is not None:
                lo = np.maximum(lo, np.where(v0 > 0, v0 / factor, v0 * factor))
                hi = np.minimum(hi, np.where(v0 > 0, v0 * factor, v0 / factor))
            if (lo > v0).any() or (hi < v0).any() or (lo >= hi).any():
                raise ValueError('%s: the start %s is outside the bounds (%s, %s), or they leave no room'
                                 % (n, v0.tolist(), lo.tolist(), hi.tolist()))
            s = np.where(v0 != 0, np.abs(v0), 1.0)
            with np.errstate(divide='ignore'):
                lower.append(np.log(np.maximum(lo, 0) / v0) if log else (lo - v0) / s)
                upper.append(np.log(hi / v0) if log else (hi - v0) / s)
            self.params.append((n, p, lo, hi))
            self.log.append(log)
            self.start.append(v0)
            self.scale.append(s)
            self.labels += [n] if v0.size == 1 else ['%s[%d]' % (n, i) for i in range(v0.size)]
        self.bounds = (1 + np.concatenate(lower), 1 + np.concatenate(upper))

    def values(self, x):
        """``[(name, Parameter, values as a flat float64 array)]`` for the vector ``x`` (clipped into the bounds)."""
        out, k = [], 0
        for (n, p, lo, hi), log, v0, s in zip(self.params, self.log, self.start, self.scale):
            z = x[k:k + v0.size] - 1
            k += v0.size
            out.append((n, p, np.clip(v0 * np.exp(z) if log else v0 + z * s, lo, hi)))
        return out

    def push(self, x, hooks=False):
        """Writes the values of ``x`` into the model's parameters (``hooks``: by ``Parameter.set``, which tells
        the widgets that follow the parameters)."""
        for _, p, v in self.values(x):
            t = torch.as_tensor(v, dtype=p.dtype).reshape(p.shape)
            if hooks and hasattr(p, 'set'):
                p.set(t)
            else:
                with torch.no_grad():
                    p.copy_(t)

    def parameters(self, x):
        """``{name: value}`` for ``x``: floats, or nested lists of the parameter's shape."""
        return {n: float(v[0]) if p.numel() == 1 else v.reshape(tuple(p.shape)).tolist() for n, p, v in self.values(x)}


def _picker(output):
    """``pick(Output) -> tensor``: what :func:`fit_least_squares` compares."""
    if output is None:
        return lambda o: o[0]
    if callable(output):
        return output
    if isinstance(output, (str, int, np.integer)):
        return lambda o: o[output]
    raise TypeError('output must be a key of the Output (such as \'opl\'), an index or a callable '
                    'output -> tensor, not %r' % (output,))


def _recorded(shape, target, output, t_skip, scale):
    """Matches the target to the compared output's ``shape``; returns ``(index, target, scale)``: the indices of
    the recorded entries (not NaN, not before ``t_skip``) in the flattened output, the target (float64) and the
    residuals' divisor there."""
    y = torch.as_tensor(np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor) else target,
                                   dtype=np.float64))
    if tuple(y.shape) != shape and tuple(make_tensor_5d(y).shape) == shape:
        y = make_tensor_5d(y)
    if tuple(y.shape) != shape:
        raise ValueError('the compared output (%s) has shape %s but the target has shape %s: give a target of the '
                         'output\'s shape (NaN where not recorded)' % (output if output is not None else 'the first',
                                                                       shape, tuple(y.shape)))
    if torch.isinf(y).any():
        raise ValueError('the target holds infinite values (use NaN for entries that were not recorded)')
    y = y.clone()
    if t_skip:
        if y.dim() != 5:
            raise ValueError('t_skip needs a 5-d output [batch, channel, time, x, y], not shape %s' % (shape,))
        y[:, :, :t_skip] = float('nan')
    mask = ~torch.isnan(y)
    if not bool(mask.any()):
        raise ValueError('the target has no recorded (non-NaN) value%s' % (' at or after t_skip=%d' % t_skip
                                                                           if t_skip else ''))
    if scale is None:
        scale = float(y[mask].std(unbiased=False))
        scale = scale if scale > 0 else 1.0
    scale = torch.as_tensor(np.asarray(scale, dtype=np.float64)).expand_as(y)
    if not (torch.isfinite(scale) & (scale > 0)).all():
        raise ValueError('scale must be positive and finite')
    index = torch.nonzero(mask.reshape(-1)).squeeze(1)
    return index, y.reshape(-1)[index], scale.reshape(-1)[index]


def fit_least_squares(model, inp, target, names=None, output=None, t_skip=0, scale=None, log_parameters=True,
                      bounds=None, max_evaluations=100, diff_step=1e-3, tolerance=1e-10, dt=None, callback=None,
                      **least_squares_kwargs):
    """Fits parameters of ``model`` by trust-region Gauss-Newton (:func:`scipy.optimize.least_squares`) with
    the Jacobian by central differences of gradient-free runs; returns a result dict.

    It minimises the mean of the squared residuals over the recorded entries of the target,

    .. math:: L = \\frac{1}{m} \\sum_i \\left(\\frac{\\hat y_i(\\theta) - y_i}{s_i}\\right)^2

    Where the parameters act through a curved valley of the loss (the retina's centre and surround act
    mostly through sigma^2 / tau: Gauss-Newton condition numbers of 1e4 to 1e8), this recovers them where
    the gradient methods of :func:`fit` stall.  Each evaluation runs the whole input (``2 n`` runs per
    Jacobian of ``n`` fitted values), without autograd, so the compiled loops are used.

    Parameters
    ----------
    model : Layer
        any convis model (a Retina, one of its stages, an LN model); its parameters change in place
    inp : array or tensor
        the stimulus (1 to 5 dimensions, see ``make_tensor_5d``)
    target : array or tensor
        the recording, of the compared output's shape (a shorter one is broadcast as the input is);
        NaN marks an entry that was not recorded (left out of the residuals); infinities are refused
    names : list of str or Parameter, optional
        the parameters to fit, dotted as in ``model.named_parameters()`` (``'opl.sigma_center'``);
        default: those that require a gradient (see :func:`fit_parameters`).  Every element of an array
        parameter is fitted.  ``requires_grad`` is left as it is.
    output : str, int or callable, optional
        what is compared: a key of the model's :class:`~convis.Output` (``'opl'``), an index, or
        ``output(Output) -> tensor``; default the first output
    t_skip : int
        frames at the start that only warm the state up (left out of the residuals; 5-d outputs)
    scale : float or array, optional
        the residuals are divided by it (in the output's unit; an array broadcasts against the target, e.g.
        one spread per channel); default the standard deviation of the recorded target, so the loss is a
        fraction of the target's variance
    log_parameters : bool or list of str
        fit ``log(p)`` (all parameters, none, or those named): keeps them positive and makes the steps
        relative; a parameter fitted in log space must be > 0
    bounds : float or dict, optional
        a factor ``f > 1``: every value stays within ``[p0 / f, p0 f]`` of its start ``p0``; or
        ``{name: (min, max)}`` in the parameter's unit (None: open).  The parameters' own hard ``bounds``
        always hold.
    max_evaluations : int
        scipy's ``max_nfev``: the most trial steps (the ``2 n`` runs of each Jacobian come on top)
    diff_step : float
        the step ``h`` of the central differences: ``p exp(±h)`` in log space, ``p ± h |p0|`` otherwise
        (``h`` grows with the coordinate once a value has grown from its start: scipy's relative step of
        ``x = 1 + log(p / p0)`` or ``1 + (p - p0) / |p0|``)
    tolerance : float
        scipy's ``ftol``, ``xtol`` and ``gtol`` (relative changes of the cost and of ``x``, and the gradient's
        norm)
    dt : int, optional
        run in chunks of ``dt`` frames (memory only: the result is the same)
    callback : callable, optional
        ``callback(record)`` after each run of the model, with ``record = {'evaluations' (runs so far),
        'loss', 'parameters' ({name: value}), 'seconds' (since the start)}``; an exception it raises stops
        the fit (the model keeps the parameters of the lowest loss seen)
    **least_squares_kwargs
        passed to :func:`scipy.optimize.least_squares` (defaults ``method='trf'``, ``x_scale='jac'``)

    Each run starts from the cleared state (``model.fresh_state()``: the state before the fit is restored)
    and holds the model's lock, which is free between runs, so a widget's preview runs in between.  The fitted
    values stay in the model (set by ``Parameter.set`` at the end: the last run was often a difference step).

    Returns
    -------
    dict
        ``'parameters'`` ({name: fitted value}), ``'loss'`` and ``'initial_loss'`` (L above, dimensionless
        with the default scale), ``'evaluations'`` (runs of the model), ``'steps'`` and ``'jacobians'``
        (scipy's ``nfev`` and ``njev``), ``'seconds'``, ``'message'``, ``'status'``, ``'success'``,
        ``'coordinates'`` (the fitted values' names, in order) and ``'gauss_newton_hessian'`` (``J^T J`` of
        the scaled residuals at the fit, with respect to ``log p`` or ``p / |p0|``: its condition number and
        inverse tell how well the data determine the parameters).

    >>> result = convis.fitting.fit_least_squares(retina, stimulus, opl_maps, ['opl.sigma_surround',
    ...                                           'opl.tau_surround'], output='opl', bounds=2.0)
    >>> result['parameters'], result['loss']
    """
    from scipy.optimize import least_squares
    chosen = _chosen(model, names)
    t_skip = _check_frames('t_skip', t_skip)
    dt = _check_frames('dt', dt, allow_none=True, positive=True)
    max_evaluations = _check_frames('max_evaluations', max_evaluations, positive=True)
    if not (diff_step > 0 and tolerance > 0):
        raise ValueError('diff_step and tolerance must be positive')
    x = model._as_model_tensor(inp).detach()
    coords = _Coordinates(chosen, log_parameters, bounds)
    pick = _picker(output)
    t0 = time.perf_counter()
    x0 = np.ones(len(coords.labels))
    seen = {'evaluations': 0, 'x': None, 'r': None, 'best': (math.inf, x0)}

    def run(z):
        with model.fresh_state(), torch.no_grad():
            coords.push(z)
            return torch.as_tensor(pick(model.run(x, dt=dt))).detach()

    def residuals(z, out=None):
        if seen['x'] is not None and np.array_equal(z, seen['x']):
            return seen['r']
        out = run(z) if out is None else out
        index, y, s = seen['recorded']
        r = ((out.reshape(-1).index_select(0, index.to(out.device)).to('cpu', torch.float64) - y) / s).numpy()
        loss = float(np.mean(r * r))
        seen.update(evaluations=seen['evaluations'] + 1, x=np.array(z), r=r)
        if loss < seen['best'][0]:
            seen['best'] = (loss, np.array(z))
        if callback is not None:
            callback({'evaluations': seen['evaluations'], 'loss': loss, 'parameters': coords.parameters(z),
                      'seconds': time.perf_counter() - t0})
        return r

    try:
        out = run(x0)
        seen['recorded'] = _recorded(tuple(out.shape), target, output, t_skip, scale)
        initial = residuals(x0, out)
        if not np.isfinite(initial).all():
            raise ValueError('the model\'s output is not finite at the start values %s' % coords.parameters(x0))
        options = dict(method='trf', x_scale='jac', jac='3-point', diff_step=diff_step, ftol=tolerance,
                       xtol=tolerance, gtol=tolerance, max_nfev=max_evaluations)
        options.update(least_squares_kwargs)
        fitted = least_squares(residuals, x0, bounds=coords.bounds, **options)
    except BaseException:
        coords.push(seen['best'][1], hooks=True)
        raise
    coords.push(fitted.x, hooks=True)
    jac = np.asarray(fitted.jac.toarray() if hasattr(fitted.jac, 'toarray') else fitted.jac)
    return {'parameters': coords.parameters(fitted.x), 'loss': float(np.mean(fitted.fun ** 2)),
            'initial_loss': float(np.mean(initial ** 2)), 'evaluations': seen['evaluations'],
            'steps': int(fitted.nfev), 'jacobians': int(fitted.njev or 0), 'seconds': time.perf_counter() - t0,
            'message': fitted.message, 'status': int(fitted.status), 'success': bool(fitted.success),
            'coordinates': list(coords.labels), 'gauss_newton_hessian': jac.T @ jac}
