"""Tensor helpers: broadcasting to 5 dimensions, padding to a common shape, subtraction."""
import numpy as np
import pytest
import torch

import convis
from convis import utils


@pytest.mark.parametrize('shape, expected', [
    ((7,), (1, 1, 7, 1, 1)),
    ((3, 4), (1, 1, 1, 3, 4)),
    ((7, 3, 4), (1, 1, 7, 3, 4)),
    ((2, 7, 3, 4), (1, 2, 7, 3, 4)),
    ((5, 2, 7, 3, 4), (5, 2, 7, 3, 4)),
    ((1, 1, 5, 2, 7, 3, 4), (5, 2, 7, 3, 4)),
    ((), (1, 1, 1, 1, 1)),
])
def test_make_tensor_5d_shapes(shape, expected):
    a = np.asarray(np.random.rand(*shape))
    out = utils.make_tensor_5d(a)
    assert isinstance(out, np.ndarray) and out.shape == expected
    np.testing.assert_array_equal(out.ravel(), np.asarray(a).ravel())
    t = utils.make_tensor_5d(torch.from_numpy(np.asarray(a)))
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == expected


def test_make_tensor_5d_rejects_extra_dimensions():
    with pytest.raises(ValueError):
        utils.make_tensor_5d(np.zeros((2, 1, 1, 3, 3, 3)))


def test_to_numpy_and_mean_as_float():
    p = convis.Parameter([1.0, 2.0, 4.0])
    a = utils.to_numpy(p * 2)
    assert isinstance(a, np.ndarray)
    np.testing.assert_array_equal(a, [2.0, 4.0, 8.0])
    assert utils.mean_as_float(p) == pytest.approx(7.0 / 3)
    assert utils.to_numpy([1, 2]).tolist() == [1, 2]


def test_extend_to_match_aligns_time_at_the_start_and_space_at_the_centre():
    a = np.ones((1, 1, 2, 2, 2))
    b = np.zeros((1, 1, 4, 4, 6))
    out = utils.extend_to_match(a, b, mode='constant')
    assert out.shape == b.shape
    expected = np.zeros(b.shape)
    expected[:, :, :2, 1:3, 2:4] = 1
    np.testing.assert_array_equal(out, expected)
    out = utils.extend_to_match(a, b, align=['b', 'b', 'end', 'begin', 'center'], mode='constant', end_values=-1)
    expected = -np.ones(b.shape)
    expected[:, :, 2:, :2, 2:4] = 1
    np.testing.assert_array_equal(out, expected)


def test_extend_to_match_linear_ramp_and_tensors():
    a = torch.ones(1, 1, 1, 1, 3, dtype=torch.float64)
    out = utils.extend_to_match(a, (1, 1, 1, 1, 7))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy().ravel(), [0, 0.5, 1, 1, 1, 0.5, 0])
    with pytest.raises(ValueError):
        utils.extend_to_match(np.ones((2, 2)), np.ones((2, 2, 2)))


def test_subtract_tensors_pads_both_to_the_common_shape():
    a = np.ones((1, 1, 3, 2, 2))
    b = 2 * np.ones((1, 1, 1, 4, 4))
    d = utils.subtract_tensors(a, b)
    assert d.shape == (1, 1, 3, 4, 4)
    expected = np.zeros((1, 1, 3, 4, 4))
    expected[:, :, :, 1:3, 1:3] += 1
    expected[:, :, :1] -= 2
    np.testing.assert_array_equal(d, expected)


def test_utils_offers_the_plots():
    from convis import plotting
    for name in ['plot', 'plot_5d_matshow', 'plot_5d_time', 'plot_tensor', 'plot_tensor_with_channels']:
        assert getattr(utils, name) is getattr(plotting, name)
        assert name in utils.__all__
