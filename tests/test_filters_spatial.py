"""Tests of convis.filters.spatial: the Deriche recursive Gaussian (uniform and log-polar)."""
import numpy as np
import pytest
import torch

import convis
from convis.filters import spatial
from convis.filters.spatial import (SpatialRecursiveFilter, blur_operator, deriche_coefficients,
                                    log_polar_gaussian_blur, log_polar_gaussian_matrices, log_polar_sigma_map,
                                    recursive_gaussian_blur, recursive_gaussian_matrix)
from helpers import assert_chunking_exact


def reference_deriche_1d(x, sigma):
    """The Deriche recursion written out sample by sample (edge samples, steady-state start)."""
    s = float(np.float32(sigma))
    alpha = float(np.float32(1.695)) / s
    a = np.exp(-alpha)
    k = (1 - a) ** 2 / (1 + 2 * alpha * a - a * a)
    c0, c1, c2, c3 = k, k * (alpha - 1) * a, k * (alpha + 1) * a, -k * a * a
    n = len(x)
    yp, ym = np.zeros(n), np.zeros(n)
    start = x[0] * (c0 + c1) / (1 - 2 * a + a * a)
    p1 = p2 = start
    prev_x = x[0]
    for i in range(n):
        yp[i] = c0 * x[i] + c1 * prev_x + 2 * a * p1 - a * a * p2
        p2, p1, prev_x = p1, yp[i], x[i]
    start = x[-1] * (c2 + c3) / (1 - 2 * a + a * a)
    q1 = q2 = start
    for i in range(n - 1, -1, -1):
        x1 = x[i + 1] if i + 1 < n else x[-1]
        x2 = x[i + 2] if i + 2 < n else x[-1]
        ym[i] = c2 * x1 + c3 * x2 + 2 * a * q1 - a * a * q2
        q2, q1 = q1, ym[i]
    return yp + ym


@pytest.mark.parametrize('sigma', [0.3, 1.0, 2.236, 7.5])
def test_blur_equals_the_recursion_along_both_axes(sigma):
    x = np.random.rand(2, 3, 17, 23)
    expected = np.apply_along_axis(reference_deriche_1d, -1, x, sigma)
    expected = np.apply_along_axis(reference_deriche_1d, -2, expected, sigma)
    got = recursive_gaussian_blur(torch.tensor(x), sigma).numpy()
    assert np.abs(got - expected).max() <= 1e-13 * np.abs(expected).max()


def test_constants_are_preserved_and_the_dc_gain_is_one():
    for sigma in (0.2, 1.5, 6.0):
        a = recursive_gaussian_matrix(sigma, 40)
        np.testing.assert_allclose(a.sum(1).numpy(), 1.0, rtol=1e-13)
        c0, c1, c2, c3, e = deriche_coefficients(sigma)
        assert abs((c0 + c1 + c2 + c3) / (1 - e) ** 2 - 1) < 1e-13


def test_the_blur_of_an_impulse_is_close_to_a_gaussian():
    n, sigma = 201, 5.0
    x = np.zeros(n)
    x[100] = 1.0
    y = (recursive_gaussian_matrix(sigma, n) @ torch.tensor(x)).numpy()
    g = np.exp(-(np.arange(n) - 100.0) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    assert abs(y.sum() - 1) < 1e-9
    assert np.abs(y - g).max() < 0.1 * g.max()  # the order-0 Deriche filter is an approximation
    assert np.argmax(y) == 100 and np.allclose(y, y[::-1], atol=1e-15)


def test_no_blur_below_a_tenth_of_a_pixel():
    assert recursive_gaussian_matrix(0.09, 10) is None
    x = torch.rand(1, 1, 3, 8, 8)
    assert torch.equal(recursive_gaussian_blur(x, 0.05), x)
    assert blur_operator(0.001, 10.0, (8, 8), torch.float32, 'cpu') is None


def test_negative_or_nan_sigma_raises():
    with pytest.raises(ValueError, match='sigma'):
        recursive_gaussian_matrix(-1.0, 5)
    with pytest.raises(ValueError, match='sigma'):
        recursive_gaussian_matrix(float('nan'), 5)


def test_matrices_are_cached_per_size_and_dtype():
    a = recursive_gaussian_matrix(1.25, 31, torch.float32)
    assert recursive_gaussian_matrix(1.25, 31, torch.float32) is a
    b = recursive_gaussian_matrix(1.25, 31, torch.float64)
    assert b.dtype == torch.float64 and torch.allclose(a.double(), b, atol=1e-7)


def test_gradient_with_respect_to_sigma_matches_finite_differences():
    x = torch.rand(1, 1, 2, 12, 14, dtype=torch.float64)
    w = torch.rand(1, 1, 2, 12, 14, dtype=torch.float64)
    sigma = torch.tensor([1.7], dtype=torch.float64, requires_grad=True)
    (recursive_gaussian_blur(x, sigma) * w).sum().backward()

    def f(s):
        return float((recursive_gaussian_blur(x, s) * w).sum())
    h = 1e-3  # sigma is rounded to single precision, so the step must be large against 1e-7
    numeric = (f(1.7 + h) - f(1.7 - h)) / (2 * h)
    assert abs(float(sigma.grad) - numeric) < 1e-4 * abs(numeric) + 1e-8


def test_gradient_reaches_the_input():
    x = torch.rand(1, 1, 3, 9, 9, requires_grad=True)
    recursive_gaussian_blur(x, 2.0).sum().backward()
    # the blur preserves sums away from the edges only approximately, but every pixel gets a gradient
    assert torch.all(x.grad > 0)


def test_layer_uses_degrees_and_the_resolution_of_the_next_call():
    f = SpatialRecursiveFilter(sigma=0.2)
    x = np.random.rand(5, 30, 30)
    f.set_resolution(convis.Resolution(pixel_per_degree=10.0))
    y10 = f(x)[0, 0].detach().double().numpy()
    expected = recursive_gaussian_blur(torch.tensor(x, dtype=torch.float64), 2.0 * 1.0).numpy()
    assert np.abs(y10 - expected).max() < 1e-5
    f.resolution.pixel_per_degree = 20.0
    y20 = f(x)[0, 0].detach().double().numpy()
    expected20 = recursive_gaussian_blur(torch.tensor(x, dtype=torch.float64), 4.0).numpy()
    assert np.abs(y20 - expected20).max() < 1e-5
    f.gaussian(0.0)
    assert np.allclose(f(x)[0, 0].detach().numpy(), x, atol=1e-6)


def test_layer_chunking_batches_and_channels():
    x = np.random.rand(2, 3, 20, 11, 13).astype(np.float32)
    assert_chunking_exact(lambda: SpatialRecursiveFilter(0.15), x, dts=(1, 3, 7))
    y = SpatialRecursiveFilter(0.15)(x)
    single = SpatialRecursiveFilter(0.15)(x[1:2, 2:3])
    assert torch.allclose(y[1:2, 2:3], single, atol=1e-6)


def test_layer_parameter_is_documented():
    p = SpatialRecursiveFilter().sigma
    assert p.unit == 'deg' and p.doc and p.bounds[0] == 0 and p.scale == 'log'
    with pytest.raises(ValueError):
        p.set(-0.1)


# ------------------------------------------------------------------------- log-polar scheme
def test_log_polar_sigma_grows_outside_the_fovea():
    s = log_polar_sigma_map((41, 41), 0.1, 10.0, 1.0, 2.0)
    assert s[20, 20] == pytest.approx(1.0)
    assert s[20, 25] == pytest.approx(1.0)            # r = 0.5 deg, inside
    assert s[20, 40] == pytest.approx(1.0 * (1 + 2.0 * (2.0 - 1.0)))  # r = 2 deg


def test_log_polar_blur_inside_the_fovea_is_the_recursion_with_its_own_boundaries():
    sig = np.full((16, 16), 2.0)                      # a fovea larger than the map: constant sigma
    mats = log_polar_gaussian_matrices(sig)
    c0, c1, c2, c3, a = deriche_coefficients(2.0, single_precision_sigma=False)
    x = np.random.rand(16)
    # causal pass from edge/2, anticausal pass of the current and the next sample, from edge/2
    yp, ym = np.zeros(16), np.zeros(16)
    p1 = p2 = x[0] / 2
    prev = x[0]
    for i in range(16):
        yp[i] = c0 * x[i] + c1 * prev + 2 * a * p1 - a * a * p2
        p2, p1, prev = p1, yp[i], x[i]
    q1 = q2 = x[-1] / 2
    for i in range(15, -1, -1):
        nxt = x[i + 1] if i < 15 else x[-1]
        ym[i] = c2 * x[i] + c3 * nxt + 2 * a * q1 - a * a * q2
        q2, q1 = q1, ym[i]
    np.testing.assert_allclose(mats[0][3] @ x, yp + ym, rtol=1e-12)
    img = torch.rand(2, 16, 16, dtype=torch.float64)
    out = log_polar_gaussian_blur(img, mats)
    expected = torch.einsum('jhk,bkj->bhj', torch.tensor(mats[1]), torch.einsum('iwv,biv->biw', torch.tensor(mats[0]), img))
    assert torch.allclose(out, expected, atol=1e-13)


def test_log_polar_operator_is_cached_and_skips_tiny_sigmas():
    op = blur_operator(0.1, 20.0, (24, 24), torch.float64, 'cpu', log_polar=(1.0, 1.0))
    y = op(torch.ones(1, 24, 24, dtype=torch.float64))
    assert y.shape == (1, 24, 24)
    assert len(spatial._LP_CACHE) >= 1
    assert blur_operator(0.0, 20.0, (24, 24), torch.float64, 'cpu', log_polar=(1.0, 1.0)) is None
