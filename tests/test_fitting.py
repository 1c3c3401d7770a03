"""Fitting LN models and recursive filters to data: the loss falls, LBFGS recovers the generator's kernel."""
import itertools

import numpy as np
import pytest
import torch

import convis


@pytest.fixture(scope='module')
def sample_data():
    g = convis.samples.SampleGenerator('random', kernel_size=(10, 5, 5), dt=100, seed=42)
    x, y = g.generate('random', (1000, 16, 16))
    return g, x, y


def r_squared(model, x, y, dt=500):
    sse = np.sum(model.compute_loss(x, y, dt=dt))
    yn = y.numpy().astype(np.float64)
    return 1 - sse / ((yn - yn.mean()) ** 2).sum()


def aligned_correlation(fitted, true):
    """Largest correlation of the true kernel with an equally sized window of the fitted one, and the
    fraction of the fitted kernel's energy outside that window."""
    best = (-1.0, None)
    for off in itertools.product(*[range(a - b + 1) for a, b in zip(fitted.shape, true.shape)]):
        window = fitted[tuple(slice(o, o + n) for o, n in zip(off, true.shape))]
        c = np.corrcoef(window.ravel(), true.ravel())[0, 1]
        if c > best[0]:
            best = (c, window)
    outside = 1 - (best[1] ** 2).sum() / (fitted ** 2).sum()
    return best[0], outside


def test_lbfgs_recovers_the_generator_kernel(sample_data):
    g, x, y = sample_data
    m = convis.models.LN(kernel_dim=(12, 7, 7), population=True)
    before = np.sum(m.compute_loss(x, y, dt=500))
    m.set_optimizer.LBFGS()
    losses = m.optimize(x, y, dt=500)
    assert np.all(np.isfinite(losses))
    after = np.sum(m.compute_loss(x, y, dt=500))
    assert after < 1e-4 * before
    assert r_squared(m, x, y) > 0.99
    corr, outside = aligned_correlation(m.conv.weight.detach().numpy()[0, 0], g.conv.weight.detach().numpy()[0, 0])
    assert corr > 0.95 and outside < 0.01


def test_adam_improves_the_loss(sample_data):
    _, x, y = sample_data
    m = convis.models.LN(kernel_dim=(12, 7, 7))
    m.set_optimizer.Adam()
    first = np.sum(m.compute_loss(x, y, dt=500))
    for _ in range(3):
        m.optimize(x, y, dt=500)
    assert np.sum(m.compute_loss(x, y, dt=500)) < first


def test_fft_and_direct_paths_fit_alike(sample_data):
    _, x, y = sample_data
    grads, losses = [], []
    for fft in (False, True):
        m = convis.models.LN(kernel_dim=(12, 7, 7))
        m.conv.set_weight(0.1 * np.ones((12, 7, 7)))
        m.conv.fft = fft
        losses.append(m.compute_loss(x[:300], y[..., :300, :, :], dt=150))
        out = m(x[:300])
        ((out - y[..., :300, :, :]) ** 2).sum().backward()
        grads.append(m.conv.weight.grad.clone())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert float((grads[0] - grads[1]).abs().max() / grads[0].abs().max()) < 1e-5


def test_lbfgs_from_zero_does_not_diverge(sample_data):
    _, x, y = sample_data
    m = convis.models.LN(kernel_dim=(10, 5, 5))
    m.set_optimizer.LBFGS()
    start = np.sum(m.compute_loss(x[:400], y[..., :400, :, :], dt=200))
    for _ in range(2):
        losses = m.optimize(x[:400], y[..., :400, :, :], dt=200)
        assert np.all(np.isfinite(losses))
    assert np.sum(m.compute_loss(x[:400], y[..., :400, :, :], dt=200)) < 1e-3 * start


def test_fitting_a_time_constant():
    x = np.random.default_rng(0).standard_normal((600, 2, 2)).astype(np.float32)
    target = convis.filters.TemporalLowPassFilterRecursive(tau=0.02).run(x)[0]
    lp = convis.filters.TemporalLowPassFilterRecursive(tau=0.005)
    lp.set_optimizer.LBFGS()
    for _ in range(3):
        lp.optimize(x, target, dt=300)
    assert float(lp.tau) == pytest.approx(0.02, rel=1e-3)


def test_batch_of_stimuli_is_fitted_jointly(sample_data):
    g, _, _ = sample_data
    xs = np.stack([g.generate('random', (300, 10, 10))[0] for _ in range(2)])[:, None]
    ys = g.run(xs)[0]
    m = convis.models.LN(kernel_dim=(10, 5, 5))
    m.set_optimizer.LBFGS()
    m.optimize(xs, ys, dt=150)
    assert r_squared(m, xs, ys, dt=150) > 0.99
