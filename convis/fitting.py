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

:func:`check_gradients` compares the gradients with central finite differences.

>>> retina.fit_parameters(['opl.sigma_center', 'bipolar.g_leak'])
>>> records = convis.fitting.fit(retina, stimulus, target, convis.losses.mse('bipolar'), epochs=20)
>>> records[-1]['parameters']
"""
import math
import time

import numpy as np
import torch

from .chunking import _check_frames
from .optimizing import _default_loss, _named, fit_parameters  # noqa: F401 (fit_parameters is public here)

__all__ = ['fit_parameters', 'fitted_parameters', 'iter_fit', 'fit', 'check_gradients', 'explained_variance',
           'compare_predictions', 'plot_comparison']


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


def explained_variance(prediction, target):
    """The fraction of the target's variance that the prediction explains (the coefficient of determination).

    .. math:: EV = 1 - \\frac{\\langle (y - \\hat y)^2 \\rangle}{\\mathrm{var}(y)}

    1 for a perfect prediction, 0 for the target's mean, below 0 for worse; an offset or a wrong gain counts
    as an error (the correlation is blind to both).  Both in the same unit (e.g. Hz), flattened.
    """
    p, t = np.asarray(prediction, dtype=np.float64).ravel(), np.asarray(target, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError('explained_variance: the prediction has %d values, the target %d' % (p.size, t.size))
    return float(1 - np.mean((t - p) ** 2) / np.var(t))


def _psth(counts, dt, bin_steps):
    """Trial-averaged rate (Hz) of counts ``[trials, steps]`` in bins of ``bin_steps`` steps of ``dt`` seconds."""
    c = np.asarray(counts, dtype=np.float64)
    c = c.reshape((-1, c.shape[-1]))
    n = c.shape[1] // bin_steps * bin_steps
    return c[:, :n].reshape(c.shape[0], -1, bin_steps).sum(2).mean(0) / (bin_steps * dt)


def _bin_rate(rate, bin_steps):
    """The mean of a rate (Hz, one value per step) over bins of ``bin_steps`` steps (Hz)."""
    r = np.asarray(rate, dtype=np.float64).ravel()
    n = r.size // bin_steps * bin_steps
    return r[:n].reshape(-1, bin_steps).mean(1)


def _correlation(a, b):
    """Pearson's r of two series; NaN when either is constant (no warning)."""
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b) / norm) if norm > 0 else float('nan')


def compare_predictions(predictions, counts, dt, bin_steps=2):
    """How well each model's rate predicts recorded spike trains.

    ``predictions`` maps a model's name to its rate (Hz, one value per step), ``counts`` holds the spike
    counts ``[trials, steps]``, ``dt`` the step (s).  The PSTH and the rates are binned in bins of
    ``bin_steps`` steps.  Returns ``{name: {'explained_variance', 'psth_correlation', 'log_likelihood',
    'rate'}}`` (the log-likelihood, in nats, of all trials under the unbinned rate; the correlation is NaN for
    a constant rate) and ``'psth'`` (Hz).  Explained variance and correlation compare the binned rates with
    the PSTH (:func:`explained_variance`).
    """
    from .losses import poisson_log_likelihood
    psth = _psth(counts, dt, bin_steps)
    c = np.asarray(counts, dtype=np.float64).reshape((-1, np.shape(counts)[-1]))
    result = {'psth': psth}
    for name, rate in predictions.items():
        r = np.asarray(rate, dtype=np.float64).ravel()
        binned = _bin_rate(r, bin_steps)
        ll = float(poisson_log_likelihood(torch.as_tensor(np.maximum(r, 1e-6))[None], torch.as_tensor(c), dt))
        result[name] = {'explained_variance': explained_variance(binned, psth),
                        'psth_correlation': _correlation(binned, psth),
                        'log_likelihood': ll, 'rate': r}
    return result


def plot_comparison(comparison, dt, bin_steps=2, ax=None):
    """Plots the PSTH and each model's binned rate from :func:`compare_predictions`, with their scores."""
    import matplotlib.pyplot as plt
    ax = ax if ax is not None else plt.figure(figsize=(8, 3)).gca()
    psth = comparison['psth']
    t = (np.arange(len(psth)) + 0.5) * bin_steps * dt
    ax.bar(t, psth, width=bin_steps * dt, color='0.8', label='recorded PSTH')
    for name, c in comparison.items():
        if name == 'psth':
            continue
        ax.plot(t, _bin_rate(c['rate'], bin_steps), label='%s (EV %.2f, r %.2f)'
                % (name, c['explained_variance'], c['psth_correlation']))
    ax.set_xlabel('time (s)')
    ax.set_ylabel('rate (Hz)')
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    return ax
