"""The losses of convis.losses: NaN entries left out, output selection, Poisson likelihood, LIF rate."""
import math

import numpy as np
import pytest
import torch

import convis
import convis.losses as losses


def t5(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(1, 1, -1, 1, 1)


def test_mse_leaves_out_unrecorded_entries():
    target = t5([1.0, np.nan, 3.0, np.nan])
    out = t5([2.0, 100.0, 3.0, -50.0])
    assert float(losses.mse()(target, out)) == pytest.approx(0.5)
    assert float(losses.mse(scale=[2.0])(target, out)) == pytest.approx(0.125)


def test_mse_picks_outputs_by_key_and_region_and_stacks_them():
    a = torch.arange(2 * 4 * 4, dtype=torch.float64).reshape(1, 1, 2, 4, 4)
    o = convis.Output([a, 2 * a], keys=['first', 'second'])
    target = torch.cat([a, 2 * a], dim=1)[..., 1:3, 0:2]
    assert float(losses.mse(output=['first', 'second'], region=(1, 3, 0, 2))(target, o)) == 0.0
    with pytest.raises(ValueError, match='target'):
        losses.mse(output='first')(target, o)
    with pytest.raises(KeyError):
        losses.mse(output='third')(target, o)


def test_correlation_is_blind_to_gain_and_offset():
    target = t5([0.0, 1.0, 3.0, 2.0])
    assert float(losses.correlation()(target, 5 * target + 7)) == pytest.approx(0.0, abs=1e-12)
    assert float(losses.correlation()(target, -target)) == pytest.approx(2.0)


def test_poisson_log_likelihood_is_the_sum_over_bins():
    rate, counts, dt = np.array([10.0, 20.0, 0.5]), np.array([0.0, 2.0, 1.0]), 0.1
    expected = sum(k * math.log(r * dt) - r * dt - math.lgamma(k + 1) for r, k in zip(rate, counts))
    got = float(losses.poisson_log_likelihood(torch.tensor(rate), torch.tensor(counts), dt))
    assert got == pytest.approx(expected, rel=1e-12)
    # the loss: the output's batch of 1 is broadcast against trials in the target
    trials = t5(counts).repeat(3, 1, 1, 1, 1)
    loss = losses.poisson(dt=dt)(trials, t5(rate))
    assert float(loss) == pytest.approx(-3 * expected, rel=1e-12)


def test_poisson_refuses_a_bin_width_that_is_not_a_time():
    with pytest.raises(ValueError, match='bin width'):
        losses.poisson(dt=0)
    with pytest.raises(ValueError, match='bin width'):
        losses.poisson(dt='5ms')


def test_lif_rate_is_the_integrate_and_fire_rate_far_above_threshold():
    current = torch.tensor([100.0, 200.0, 1000.0], dtype=torch.float64)
    exact = 1 / (0.003 + np.log(current.numpy() / (current.numpy() - 50)) / 50)
    np.testing.assert_allclose(losses.lif_rate(current).numpy(), exact, rtol=1e-6)
    low = losses.lif_rate(torch.tensor([0.0, 40.0], dtype=torch.float64))
    # below threshold: silent but for the softplus's smooth tail (a few Hz), and still increasing
    assert 0 < float(low[0]) < float(low[1]) < 10 < float(losses.lif_rate(torch.tensor(60.0)))


def test_a_target_may_hold_nan_in_optimize_and_compute_loss_but_not_infinity():
    m = convis.models.LN((1, 1, 1))
    x = np.random.RandomState(0).rand(20, 4, 4)
    y = x.copy()
    y[::2] = np.nan
    assert np.isfinite(m.compute_loss(x, y, loss_fn=losses.mse()))
    y[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match='the target'):
        m.compute_loss(x, y, loss_fn=losses.mse())
