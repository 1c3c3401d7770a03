"""Comparing models' predictions with recorded spike trains: explained variance, PSTH correlation and
Poisson log-likelihood of each model's rate, and a plot of the binned rates over the PSTH.

:mod:`convis.fitting` re-exports these (``convis.fitting.compare_predictions``).
"""
import math

import numpy as np
import torch

__all__ = ['explained_variance', 'compare_predictions', 'plot_comparison']


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
