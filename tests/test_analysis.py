"""Tests of convis.analysis: spike-triggered average and covariance."""
import numpy as np
import pytest

import convis
from convis.analysis import spike_triggered_windows, sta, stc


def ln_kernel():
    lag = np.arange(8.0)
    temporal = lag * np.exp(-lag / 1.5) - 0.3 * lag * np.exp(-lag / 3.0)
    yy, xx = np.mgrid[-1:2, -1:2]
    spatial = np.exp(-(xx ** 2 + yy ** 2) / 0.8) - 0.25
    return temporal[:, None, None] * spatial[None]


def causal_filter(stim, kernel):
    """drive[t, x, y] = sum_k,i,j kernel[k, i, j] stim[t - k, x + i - 1, y + j - 1] (zero outside)."""
    L, w, h = kernel.shape
    T, X, Y = stim.shape
    padded = np.pad(stim, ((L - 1, 0), (w // 2, w // 2), (h // 2, h // 2)))
    drive = np.zeros(stim.shape)
    for k in range(L):
        for i in range(w):
            for j in range(h):
                drive += kernel[k, i, j] * padded[L - 1 - k:L - 1 - k + T, i:i + X, j:j + Y]
    return drive


def test_sta_of_a_linear_nonlinear_poisson_neuron_recovers_its_kernel():
    rng = np.random.RandomState(1)
    stim = rng.randn(20000, 6, 6)
    kernel = ln_kernel()
    rate = 400.0 * np.maximum(0.0, causal_filter(stim, kernel))
    spikes = convis.filters.spiking.Poisson(seed=3).run(rate.astype(np.float32), dt=5000)
    estimate = sta(stim, spikes, filter_shape=kernel.shape)
    assert estimate.shape == kernel.shape
    assert np.corrcoef(estimate.ravel(), kernel.ravel())[0, 1] > 0.9


def test_sta_looks_backward_from_the_spike():
    rng = np.random.RandomState(2)
    stim = rng.randn(5000, 2, 2)
    spikes = np.zeros_like(stim)
    spikes[3:] = stim[:-3] > 1.0                   # a spike three steps after a bright frame
    estimate = sta(stim, spikes, filter_shape=(6, 1, 1))[:, 0, 0]
    assert np.argmax(estimate) == 3 and estimate[3] > 1.3
    assert np.abs(np.delete(estimate, 3)).max() < 0.1


def test_sta_windows_are_centred_on_the_spiking_pixel():
    rng = np.random.RandomState(3)
    stim = rng.randn(3000, 7, 7)
    spikes = np.zeros_like(stim)
    spikes[:, 1:-1, 1:-1] = stim[:, 2:, :-2] > 1.0  # driven by the neighbour at (x + 1, y - 1), same step
    estimate = sta(stim, spikes, filter_shape=(2, 3, 3))
    assert np.unravel_index(np.argmax(estimate), estimate.shape) == (0, 2, 0)


def test_spikes_without_a_whole_window_are_neither_used_nor_counted():
    stim = np.arange(10.0)[:, None, None] * np.ones((1, 3, 3))
    spikes = np.zeros((10, 3, 3))
    spikes[1, 1, 1] = 1          # too early for 3 lags
    spikes[6, 1, 1] = 1          # used: frames 6, 5, 4
    spikes[8, 0, 1] = 1          # at the border: a 3 x 3 window leaves the image
    estimate = sta(stim, spikes, filter_shape=(3, 3, 3))
    np.testing.assert_allclose(estimate[:, 1, 1], [6.0, 5.0, 4.0])
    np.testing.assert_allclose(sta(stim, spikes, filter_shape=(3, 1, 1))[:, 0, 0], [7.0, 6.0, 5.0])  # (6 + 8) / 2


def test_binary_and_threshold_select_the_spikes():
    stim = np.arange(6.0)
    spikes = np.array([0, 0.3, 0.7, 2.0, 0, 0])
    assert sta(stim, spikes, filter_shape=(1, 1, 1))[0, 0, 0] == pytest.approx(2.0)     # frames 1, 2, 3
    assert sta(stim, spikes, (1, 1, 1), binary=False, threshold=0.5)[0, 0, 0] == pytest.approx(2.5)


def test_stc_is_the_covariance_of_the_spike_triggered_windows():
    rng = np.random.RandomState(4)
    stim = rng.randn(4000, 4, 4)
    spikes = (rng.rand(4000, 4, 4) < 0.05) * (stim ** 2 > 0.5)
    windows = spike_triggered_windows(stim, spikes, filter_shape=(3, 2, 1)).reshape(-1, 6)
    C = stc(stim, spikes, filter_shape=(3, 2, 1))
    np.testing.assert_allclose(C, np.cov(windows.T), rtol=1e-9, atol=1e-12)
    raw = stc(stim, spikes, filter_shape=(3, 2, 1), centered=False)
    np.testing.assert_allclose(raw, windows.T @ windows / len(windows), rtol=1e-9)
    assert C[1, 1] > 1.5 and abs(C[0, 0] - 1.0) < 0.15   # the spike pixel (index [0, 1, 0]) at lag 0 is wider


def test_batches_pair_stimuli_with_spikes_and_broadcast_one_stimulus():
    rng = np.random.RandomState(5)
    stim = rng.randn(2, 1, 500, 3, 3)
    spikes = np.zeros((2, 1, 500, 3, 3))
    spikes[0, 0, 10, 1, 1] = 1
    spikes[1, 0, 20, 1, 1] = 1
    est = sta(stim, spikes, filter_shape=(1, 1, 1))
    assert est[0, 0, 0] == pytest.approx((stim[0, 0, 10, 1, 1] + stim[1, 0, 20, 1, 1]) / 2)
    est = sta(stim[:1], spikes, filter_shape=(1, 1, 1))
    assert est[0, 0, 0] == pytest.approx((stim[0, 0, 10, 1, 1] + stim[0, 0, 20, 1, 1]) / 2)


def test_bad_input_gets_a_clear_error():
    stim = np.zeros((50, 3, 3))
    with pytest.raises(ValueError, match='no spike'):
        sta(stim, np.zeros((50, 3, 3)))
    with pytest.raises(ValueError, match='same frames'):
        sta(stim, np.ones((40, 3, 3)))
    with pytest.raises(ValueError, match='filter_shape'):
        sta(stim, np.ones((50, 3, 3)), filter_shape=(3, 3))
    with pytest.raises(ValueError, match='at least 2'):
        one = np.zeros((50, 3, 3))
        one[20, 1, 1] = 1
        stc(stim, one)
