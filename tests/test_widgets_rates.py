"""The explorer's firing rates: a causal exponential filter of spike counts, exact across chunks."""
import numpy as np
import pytest
from scipy.signal import lfilter

from convis_widgets.spikes import RateFilter


def test_rates_are_the_exponential_filter_of_the_counts_per_second():
    counts = np.random.RandomState(0).poisson(0.3, size=(2, 1, 300, 5, 4)).astype(np.float32)
    f = RateFilter(dt=0.001, tau=0.02)
    a = np.exp(-0.001 / 0.02)
    want = lfilter([1 - a], [1, -a], counts.astype(np.float64) / 0.001, axis=2)
    got = f(counts)
    assert got.dtype == np.float32 and got.shape == counts.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-3)


def test_rates_in_chunks_equal_rates_in_one_piece():
    counts = np.random.RandomState(1).poisson(0.5, size=(1, 2, 97, 3, 3))
    whole = RateFilter(dt=0.01)(counts)
    f = RateFilter(dt=0.01)
    pieces = np.concatenate([f(counts[:, :, s:s + 10]) for s in range(0, 97, 10)], axis=2)
    np.testing.assert_array_equal(pieces, whole)
    f.reset()
    np.testing.assert_array_equal(f(counts), whole)


def test_a_constant_count_rate_is_reached_unchanged():
    r = RateFilter(dt=0.01, tau=0.02)(np.ones((1, 1, 200, 2, 2)))
    np.testing.assert_allclose(r[:, :, -1], 100.0, rtol=1e-6)


@pytest.mark.parametrize('dt, tau', [(0, 0.02), (0.01, -1.0), (float('nan'), 0.02)])
def test_bad_time_constants_are_refused(dt, tau):
    with pytest.raises(ValueError, match='positive seconds'):
        RateFilter(dt=dt, tau=tau)


def test_counts_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r'\[b, c, t, x, y\]'):
        RateFilter(dt=0.01)(np.ones((10, 4, 4)))
