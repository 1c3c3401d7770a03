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


def test_make_tensor_5d_takes_the_first_element_of_longer_inputs():
    """As documented: '6d and more: selects the first element of t until t has 5 dimensions'."""
    a = np.random.rand(2, 3, 1, 4, 3, 3)
    np.testing.assert_array_equal(utils.make_tensor_5d(a), a[0])
    t = torch.from_numpy(np.random.rand(2, 2, 1, 1, 4, 3, 3))
    assert torch.equal(utils.make_tensor_5d(t), t[0, 0])


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


@pytest.mark.parametrize('align', ['center', 'c', 'centre', ['c'] * 5, ('center',) * 5])
def test_extend_to_match_centre_as_one_word_or_a_list_centres_every_dimension(align):
    a = np.ones((1, 1, 2, 2, 2))
    out = utils.extend_to_match(a, (3, 1, 4, 4, 6), align=align, mode='constant')
    expected = np.zeros((3, 1, 4, 4, 6))
    expected[1:2, :, 1:3, 1:3, 2:4] = 1
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('align, where', [('b', slice(0, 2)), ('begin', slice(0, 2)), ('e', slice(3, 5)),
                                          ('End', slice(3, 5))])
def test_extend_to_match_begin_and_end_as_one_word(align, where):
    out = utils.extend_to_match(np.ones((1, 1, 2, 1, 1)), (1, 1, 5, 1, 1), align=align, mode='constant')
    expected = np.zeros(5)
    expected[where] = 1
    np.testing.assert_array_equal(out.ravel(), expected)


def test_extend_to_match_rejects_unknown_alignments_and_wrong_lengths():
    with pytest.raises(ValueError, match="'begin', 'center' or 'end'"):
        utils.extend_to_match(np.ones((1, 1, 2, 2, 2)), (1, 1, 4, 4, 4), align='middle')
    with pytest.raises(ValueError, match='2 alignment'):
        utils.extend_to_match(np.ones((1, 1, 2, 2, 2)), (1, 1, 4, 4, 4), align=['b', 'c'])


def test_extend_to_match_broadcasts_different_ranks_to_5d():
    """dims=5: both go through make_tensor_5d, so a (t, x, y) video matches a 5-d tensor (and an image a video)."""
    video = np.ones((2, 2, 2))
    out = utils.extend_to_match(video, np.zeros((1, 1, 4, 4, 4)), mode='constant')
    expected = np.zeros((1, 1, 4, 4, 4))
    expected[:, :, :2, 1:3, 1:3] = 1
    np.testing.assert_array_equal(out, expected)
    image = torch.ones(2, 2)
    out = utils.extend_to_match(image, np.zeros((3, 4, 4)), mode='constant')
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 1, 3, 4, 4)
    assert out.sum() == 4 and out[0, 0, 0, 1:3, 1:3].sum() == 4
    # a 1-d input is a time series, aligned at the beginning
    out = utils.extend_to_match(np.ones(2), (1, 1, 4, 3, 3), mode='constant')
    assert out.shape == (1, 1, 4, 3, 3) and out[0, 0, :2, 1, 1].tolist() == [1, 1] and out.sum() == 2


def test_extend_to_match_other_dims_keep_the_rank_and_centre_everything():
    out = utils.extend_to_match(np.ones((2, 2)), np.zeros((4, 6)), dims=2, mode='constant')
    expected = np.zeros((4, 6))
    expected[1:3, 2:4] = 1
    np.testing.assert_array_equal(out, expected)
    # the input of lower rank gets leading dimensions of length 1
    out = utils.extend_to_match(np.ones(2), np.zeros((3, 4)), dims=None, mode='constant', align='e')
    expected = np.zeros((3, 4))
    expected[2, 2:] = 1
    np.testing.assert_array_equal(out, expected)


def test_subtract_tensors_pads_both_to_the_common_shape():
    a = np.ones((1, 1, 3, 2, 2))
    b = 2 * np.ones((1, 1, 1, 4, 4))
    d = utils.subtract_tensors(a, b)
    assert d.shape == (1, 1, 3, 4, 4)
    expected = np.zeros((1, 1, 3, 4, 4))
    expected[:, :, :, 1:3, 1:3] += 1
    expected[:, :, :1] -= 2
    np.testing.assert_array_equal(d, expected)


def test_subtract_tensors_accepts_different_ranks():
    a = np.ones((3, 2, 2))              # (t, x, y)
    b = torch.full((1, 1, 1, 4, 4), 2.0)
    d = utils.subtract_tensors(a, b)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32 and tuple(d.shape) == (1, 1, 3, 4, 4)
    expected = np.zeros((1, 1, 3, 4, 4))
    expected[:, :, :, 1:3, 1:3] += 1
    expected[:, :, :1] -= 2
    np.testing.assert_array_equal(d.numpy(), expected)
    # dims other than 5: the lower rank gets a leading axis, and every dimension is centred
    d = utils.subtract_tensors(np.ones((2, 2)), np.ones(4), dims=2)
    np.testing.assert_array_equal(d, [[-1, 0, 0, -1], [0, 1, 1, 0]])


def test_utils_offers_the_plots():
    from convis import plotting
    for name in ['plot', 'plot_5d_matshow', 'plot_5d_time', 'plot_tensor', 'plot_tensor_with_channels']:
        assert getattr(utils, name) is getattr(plotting, name)
        assert name in utils.__all__
