"""Tests of convis.filters.temporal and the exponential kernels of convis.numerical_filters / convis.kernels."""
import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

import convis
from convis import numerical_filters as nf
from convis.filters.temporal import (Delay, TemporalHighPassFilterRecursive, TemporalLowPassCascade,
                                     TemporalLowPassFilterRecursive, TimePadding, VariableDelay,
                                     exponential_recursion)
from helpers import assert_chunking_exact


def unit_impulse(t):
    a = np.zeros(t)
    a[0] = 1.0
    return a


def test_exponential_recursion_equals_the_loop():
    x = torch.randn(2, 3, 150, 2, 2, dtype=torch.float64)
    y0 = torch.randn(2, 3, 1, 2, 2, dtype=torch.float64)
    e = 0.93
    y = exponential_recursion(x, e, y0)
    prev, ref = y0[:, :, 0], []
    for s in range(x.shape[2]):
        prev = e * prev + (1 - e) * x[:, :, s]
        ref.append(prev)
    np.testing.assert_allclose(y.numpy(), torch.stack(ref, dim=2).numpy(), rtol=1e-12)


def test_lowpass_impulse_response_is_the_exponential():
    h = TemporalLowPassFilterRecursive(tau=0.01).run(unit_impulse(100))[0].flatten().numpy()
    e = math.exp(-0.001 / 0.01)
    np.testing.assert_allclose(h, (1 - e) * e ** np.arange(100), rtol=1e-5)
    dc = TemporalLowPassFilterRecursive(tau=0.01).run(np.ones(2000))[0].flatten().numpy()
    assert dc[-1] == pytest.approx(1.0, rel=1e-6)


def test_lowpass_reads_the_resolution_at_forward_time():
    lp = TemporalLowPassFilterRecursive(tau=0.01)
    convis.set_steps_per_second(100)
    h = lp.run(unit_impulse(5))[0].flatten().numpy()
    e = math.exp(-0.01 / 0.01)
    np.testing.assert_allclose(h, (1 - e) * e ** np.arange(5), rtol=1e-5)
    lp.clear_state()
    lp.set_resolution(convis.variables.Resolution(steps_per_second=2000))
    h = lp.run(unit_impulse(5))[0].flatten().numpy()
    assert h[0] == pytest.approx(1 - math.exp(-0.05), rel=1e-5)


def test_recursive_filters_chunk_exactly():
    x = np.random.default_rng(0).standard_normal((2, 2, 30, 3, 2)).astype(np.float32)
    assert_chunking_exact(lambda: TemporalLowPassFilterRecursive(0.005), x, dts=(1, 7))
    assert_chunking_exact(lambda: TemporalHighPassFilterRecursive(0.004, 0.8), x, dts=(1, 7))
    assert_chunking_exact(lambda: TemporalLowPassCascade(0.003, 2), x, dts=(1, 7))


def test_highpass_dc_gain_and_impulse_response():
    hp = TemporalHighPassFilterRecursive(tau=0.02, k=0.7)
    o = hp.run(np.ones(3000), dt=700)[0].flatten().numpy()
    assert o[-1] == pytest.approx(0.3, rel=1e-5)
    h = TemporalHighPassFilterRecursive(tau=0.02, k=0.7).run(unit_impulse(50))[0].flatten().numpy()
    e = math.exp(-0.001 / 0.02)
    ref = -0.7 * (1 - e) * e ** np.arange(50)
    ref[0] += 1
    np.testing.assert_allclose(h, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('n', [0, 1, 3])
def test_cascade_equals_the_gamma_kernel_and_iir_cascade(n):
    h = TemporalLowPassCascade(tau=0.004, n=n).run(unit_impulse(200))[0].flatten().numpy()
    k = nf.exponential_filter_1d(0.004, n=n, normalize=False)
    m = min(len(k), 200)
    np.testing.assert_allclose(h[:m], k[:m], rtol=1e-4, atol=1e-7)
    a, b = nf.ab_filter_exp_cascade(0.004, n)
    np.testing.assert_allclose(h, lfilter(b, a, unit_impulse(200)), rtol=1e-4, atol=1e-7)
    assert int(np.argmax(h)) == int(math.floor(n * math.exp(-0.25) / (1 - math.exp(-0.25)))) or n == 0


def test_time_constants_get_gradients():
    x = torch.rand(1, 1, 80, 2, 2)
    for layer in (TemporalLowPassFilterRecursive(0.01), TemporalHighPassFilterRecursive(0.01, 0.5),
                  TemporalLowPassCascade(0.01, 2)):
        (layer(x) ** 2).sum().backward()
        g = float(layer.tau.grad)
        with torch.no_grad():
            eps = 1e-4
            layer.clear_state()
            layer.tau.add_(eps)
            up = float((layer(x) ** 2).sum())
            layer.clear_state()
            layer.tau.sub_(2 * eps)
            down = float((layer(x) ** 2).sum())
        assert g != 0 and g == pytest.approx((up - down) / (2 * eps), rel=2e-2)


def test_tau_is_a_documented_parameter():
    lp = TemporalLowPassFilterRecursive(0.02)
    assert lp.tau.unit == 's' and lp.tau.doc and lp.tau.bounds == (0, None)
    lp.tau = 0.05
    assert float(lp.tau) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        lp.tau = -1.0


def test_time_padding_modes():
    x = np.arange(1.0, 4.0)
    assert TimePadding(2)(x).flatten().tolist() == [0, 0, 1, 2, 3]
    assert TimePadding(2, mode='first_frame')(x).flatten().tolist() == [1, 1, 1, 2, 3]
    tp = TimePadding(3)
    tp(np.array([1.0]))
    assert tp(np.array([2.0])).flatten().tolist() == [0, 0, 1, 2]
    with pytest.raises(ValueError, match='chunks'):
        TimePadding(2, mode='mirror')


def test_delay():
    x = np.random.default_rng(1).standard_normal((25, 2, 3))
    o = Delay(4).run(x, dt=3)[0][0, 0].numpy()
    np.testing.assert_allclose(o[4:], x[:-4], rtol=1e-6)
    assert np.all(o[:4] == 0)
    assert_chunking_exact(lambda: Delay(6), x, dts=(1, 4))
    np.testing.assert_allclose(Delay(0).run(x)[0][0, 0].numpy(), x, rtol=1e-6)
    d = Delay(2)
    d.p.delay = 3
    assert d.run(np.ones(5))[0].flatten().tolist() == [0, 0, 0, 1, 1]


def test_variable_delay():
    x = np.random.default_rng(2).standard_normal((20, 2, 2))
    delays = np.array([[0, 1], [3, 5]])
    o = VariableDelay(delays).run(x, dt=4)[0][0, 0].numpy()
    for i in range(2):
        for j in range(2):
            d = delays[i, j]
            np.testing.assert_allclose(o[d:, i, j], x[:20 - d, i, j], rtol=1e-6)
            assert np.all(o[:d, i, j] == 0)
    assert_chunking_exact(lambda: VariableDelay(delays), x, dts=(1, 3))
    with pytest.raises(ValueError):
        VariableDelay(delays)(np.ones((3, 3, 3)))
    np.testing.assert_allclose(VariableDelay()(x).detach().numpy()[0, 0], x, rtol=1e-6)


def test_exponential_kernel_is_the_sampled_exponential_with_exact_dc_gain():
    k = nf.exponential_filter_1d(0.01)
    e = math.exp(-0.1)
    np.testing.assert_allclose(k / k[0], np.exp(-np.arange(len(k)) * 0.001 / 0.01), rtol=1e-10)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    raw = nf.exponential_filter_1d(0.01, normalize=False)
    assert 1 - raw.sum() <= 1e-3 and raw[0] == pytest.approx(1 - e)
    long = nf.exponential_filter_1d(0.1, epsilon=1e-4)
    assert 1 - nf.exponential_filter_1d(0.1, epsilon=1e-4, normalize=False).sum() <= 1e-4
    assert len(long) == pytest.approx(100 * math.log(1e4), abs=2)
    assert nf.exponential_filter_1d(0.0).tolist() == [1.0]
    assert len(nf.exponential_filter_1d(0.01, even=True)) % 2 == 0
    assert nf.exponential_filter_5d(0.01).shape == (1, 1, 70, 1, 1)
    with pytest.warns(UserWarning):
        nf.exponential_filter_1d(1.0, max_length=100)


def test_cascade_kernel_order_and_mean():
    for n in (0, 1, 2, 5):
        k = nf.exponential_filter_1d(0.005, n=n, epsilon=1e-6)
        e = math.exp(-0.2)
        assert k.sum() == pytest.approx(1.0)
        mean = (np.arange(len(k)) * k).sum()
        assert mean == pytest.approx((n + 1) * e / (1 - e), rel=1e-3)


def test_highpass_kernel_dc_gain():
    for w in (0.2, 0.7, 1.0):
        k = nf.exponential_highpass_filter_1d(0.1, relative_weight=w)
        assert k.sum() == pytest.approx(1 - w, abs=1e-12)
    assert nf.exponential_highpass_filter_1d(0.02, 0.7, resolution=convis.variables.Resolution(steps_per_second=100)).shape[0] > 1
    assert nf.exponential_highpass_filter_5d(0.02, 0.5).shape[:2] == (1, 1)


def test_ab_filter_exp():
    a, b = nf.ab_filter_exp(0.01, step=0.001)
    e = math.exp(-0.1)
    np.testing.assert_allclose(a, [1, -e])
    np.testing.assert_allclose(b, [1 - e])
    np.testing.assert_allclose(lfilter(b, a, unit_impulse(30)), nf.exponential_filter_1d(0.01, normalize=False)[:30])
    a2, b2 = nf.ab_filter_exp_cascade(0.01, 2, step=0.001)
    np.testing.assert_allclose(a2, np.convolve(np.convolve(a, a), a))
    np.testing.assert_allclose(b2, b ** 3)


def test_exponential_kernel_module():
    k = convis.kernels.ExponentialKernel(tau=0.01, n=2, amplification=2.0, length=150)
    out = k()
    ref = 2 * nf.exponential_filter_1d(0.01, n=2, normalize=False, min_steps=150)[:150]
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-7)
    out.sum().backward()
    assert k.tau.grad is not None and float(k.tau.grad) != 0
    h = convis.kernels.ExponentialKernel(0.01, n=0, length=20)().detach().numpy()
    np.testing.assert_allclose(h[1:] / h[:-1], math.exp(-0.1), rtol=1e-5)
