"""Tests of convis.samples: stimulus values and units, masks and kernels, the sample LN generator."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import convis
from convis import samples


def test_moving_grating_formula_and_units():
    g = samples.moving_grating(100, 11, 7)
    assert g.shape == (100, 11, 7) and g.min() >= -1 and g.max() <= 1
    X, Y = np.linspace(-1, 1, 11), np.linspace(-1, 1, 7)
    assert g[40, 3, 5] == pytest.approx(np.sin(0.005 * 40 + 3.0 * X[3] + 2.0 * Y[5]))
    per_second = samples.moving_grating(100, 11, 7, vt=5.0, frames_per_second=1000)
    np.testing.assert_allclose(per_second, g, atol=1e-12)
    deg = samples.moving_grating(10, 11, 7, vt=0.0, vx=2 * np.pi, vy=0.0, pixel_per_degree=5)
    np.testing.assert_allclose(deg[0, 0, 0], deg[0, 5, 0], atol=1e-9)  # one cycle per degree = 5 pixels
    np.testing.assert_allclose(deg[0, 5, 0], 0.0, atol=1e-9)


def test_moving_bar_position_speed_and_smoothing():
    sharp = samples.moving_bar(50, 21, 5, bar_pos=-1.0, bar_v=0.1, bar_width=1.0, sharp=True)
    assert sharp.shape == (50, 21, 5) and set(np.unique(sharp)) <= {0.0, 1.0}
    # the bar starts on the first column and moves 1 pixel per frame (0.1 half-extents of 10 pixels)
    assert np.nonzero(sharp[0, :, 0])[0].tolist() == [0]
    assert np.nonzero(sharp[7, :, 0])[0].tolist() == [7]
    smooth = samples.moving_bar(50, 21, 5, bar_pos=-1.0, bar_v=0.1, temporal_smoothing=2.0)
    assert smooth.max() <= 1 and smooth.min() >= 0
    assert smooth[5:45, 10, 0].sum() == pytest.approx(sharp[5:45, 10, 0].sum(), rel=1e-2)
    assert int(np.argmax(smooth[:, 10, 0])) == 10
    across_y = samples.moving_bar(30, 5, 21, bar_pos=-1.0, bar_direction=np.pi / 2, bar_v=0.1, sharp=True)
    assert np.nonzero(across_y[4, 0, :])[0].tolist() == [4]
    deg = samples.moving_bar(20, 21, 3, bar_pos=0.0, bar_v=1.0, bar_width=0.1, pixel_per_degree=10,
                             frames_per_second=10, sharp=True)
    assert np.nonzero(deg[0, :, 0])[0].tolist() == [10] and np.nonzero(deg[1, :, 0])[0].tolist() == [11]
    assert samples.moving_bars is samples.moving_bar


def test_random_checker_seed_and_checks():
    a = samples.random_checker_stimulus(20, 12, 11, checker_size=4, seed=5)
    b = samples.random_checker_stimulus(20, 12, 11, checker_size=4, seed=5)
    c = samples.random_checker_stimulus(20, 12, 11, checker_size=4, seed=6)
    assert a.shape == (20, 12, 11) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 1
    assert np.all(a[:, :4, :4] == a[:, :1, :1]) and not np.all(a[:, :4, :] == a[:, :1, :1])
    big = samples.random_checker_stimulus(2, 20, 20, checker_size=0.5, pixel_per_degree=20, seed=1)
    assert np.all(big[:, :10, :10] == big[:, :1, :1]) and big[0, 0, 0] != big[0, 10, 0]


def test_sparse_input_and_pulse():
    s = samples.sparse_input(2000, 10, 10, p=0.05, seed=1)
    assert s.mean() == pytest.approx(0.05, abs=0.005) and set(np.unique(s)) == {0.0, 1.0}
    per_frame = samples.sparse_input(p=[0.0, 1.0, 0.0], x=4, y=4, seed=1)
    assert per_frame.shape == (3, 4, 4) and per_frame.sum(axis=(1, 2)).tolist() == [0, 16, 0]
    p = samples.pulse(10, 2, 2, pulse_length=3)
    assert p[:, 0, 0].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 0]
    np.testing.assert_array_equal(samples.pulse(10, 2, 2, pulse_length=0.003, frames_per_second=1000), p)


def test_chirp_segments():
    c = samples.chirp(4500, 2, 2, scale=False)[:, 0, 0]
    assert c.min() >= 0 and c.max() <= 1
    assert np.all(c[:500] == 0) and np.all(c[500:1000] == 1) and np.all(c[1000:1500] == 0.5) and np.all(c[4000:] == 0.5)
    amp = np.abs(c[1500:2500] - 0.5)
    assert amp[:100].max() < 0.06 and amp[-200:].max() > 0.45
    sweep = np.sign(c[3000:4000] - 0.5)
    crossings = np.nonzero(np.diff(sweep))[0]
    assert np.diff(crossings)[-1] < np.diff(crossings)[0]
    scaled = samples.chirp(900, 1, 1)[:, 0, 0]
    np.testing.assert_allclose(scaled[::5], samples.chirp(4500, 1, 1, scale=False)[::25, 0, 0], atol=0.05)


def test_masks_and_kernels():
    sq = samples.mask_square(20, 20, width=2)
    assert sq.shape == (1, 20, 20) and sq.sum() == 25 and sq[0, 10, 10] == 1
    assert samples.mask_square(4, 4, width=0.5, center_on_pixel=False).sum() == 4
    circle = samples.mask_circle(21, 21, radius=5, smooth=True)
    assert circle[0, 10, 10] > 0.99 and circle[0, 10, 15] == pytest.approx(0.5) and circle[0, 0, 0] < 1e-6
    hard = samples.mask_circle(21, 21, radius=3, smooth=False)
    assert hard.sum() == 29
    t = samples.text_kernel()
    assert t.shape == (16, 16) and set(np.unique(t)) == {0.0, 1.0} and 40 < t.sum() < 90
    g = samples.gabor_kernel(size=16)
    assert g.shape == (16, 16) and abs(g).max() <= 1
    np.testing.assert_allclose(g, -g[::-1, ::-1], atol=1e-12)
    assert samples.sigmoid(0.0) == 0.5


def test_stimulus_size():
    s = samples.StimulusSize(100, 8, 9)
    for name in ('moving_grating', 'moving_bar', 'moving_bars', 'random_checker_stimulus', 'sparse_input', 'pulse',
                 'chirp'):
        assert getattr(s, name)().shape == (100, 8, 9)
    prepared = samples.StimulusSize(10, 4, 4, prepare=True).pulse()
    assert isinstance(prepared, torch.Tensor) and prepared.shape == (1, 1, 10, 4, 4)
    assert samples.default_stimulus_size.t == 2000 and samples.default_stimulus_size_cuda.cuda


def test_sample_generator_inputs_and_output():
    g = samples.SampleGenerator('random', kernel_size=(4, 3, 3), dt=7, seed=1)
    g2 = samples.SampleGenerator('random', kernel_size=(4, 3, 3), dt=7, seed=1)
    assert torch.equal(g.conv.weight, g2.conv.weight) and not g.conv.weight.requires_grad
    x, y = g.generate('rand', (30, 6, 6))
    assert x.shape == (30, 6, 6) and x.min() >= 0 and y.shape == (1, 1, 30, 6, 6) and float(y.min()) >= 0
    ref = convis.models.LN((4, 3, 3))
    ref.conv.set_weight(g.conv.weight.detach().numpy(), flip=False)
    np.testing.assert_allclose(y.numpy(), ref.run(x)[0].numpy(), rtol=1e-5, atol=1e-6)
    arr = np.random.default_rng(2).standard_normal((25, 5, 5))
    xa, ya = g.generate(arr)
    assert xa is arr and ya.shape == (1, 1, 25, 5, 5)
    _, y5 = g.generate(arr[None, None])
    np.testing.assert_allclose(y5.numpy(), ya.numpy())
    sparse = samples.SampleGenerator('sparse', kernel_size=(3, 3, 3), p=0.5, seed=0)
    assert set(np.unique(sparse.conv.weight.detach().numpy())) <= {0.0, 1.0}
    xs, _ = sparse.generate('sparse', (100, 5, 5), p=0.2)
    assert xs.mean() == pytest.approx(0.2, abs=0.03)
    k = np.zeros((2, 1, 1))
    k[1] = 2.0
    _, yk = samples.SampleGenerator(k).generate(np.arange(5.0))
    assert yk.flatten().tolist() == [0.0, 0.0, 2.0, 4.0, 6.0]
    with pytest.raises(ValueError):
        samples.SampleGenerator('gaussian')


def test_generate_sample_data_any_size_and_fixed_kernel():
    w = samples._g.conv.weight.detach().clone()
    x1, y1 = samples.generate_sample_data('random', (50, 20, 20))
    x2, y2 = samples.generate_sample_data('random', (40, 7, 9))
    assert y1.shape == (1, 1, 50, 20, 20) and y2.shape == (1, 1, 40, 7, 9) and x2.shape == (40, 7, 9)
    assert torch.equal(samples._g.conv.weight, w) and samples._g.conv.kernel_size == (10, 5, 5)
    _, again = samples.generate_sample_data(x2)
    np.testing.assert_array_equal(again.numpy(), y2.numpy())


def test_import_builds_nothing_and_leaves_numpy_random_alone():
    code = ('import numpy as np; np.random.seed(3); s = np.random.random(); np.random.seed(3); import convis; '
            'assert "_g" not in vars(convis.samples); assert np.random.random() == s; '
            'assert convis.samples._g is convis.samples._g')
    subprocess.run([sys.executable, '-c', code], check=True)
