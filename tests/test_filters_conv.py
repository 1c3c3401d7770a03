"""Tests of convis.filters.conv: impulse responses, exact chunking, FFT == direct, padding, kernels."""
import numpy as np
import pytest
import torch
from scipy.signal import lfilter

import convis
from convis.filters import conv as conv_module
from convis.filters.conv import RF, Conv1d, Conv2d, Conv3d
from helpers import assert_chunking_exact


def impulse(t=12, x=11, y=11):
    a = np.zeros((t, x, y))
    a[0, x // 2, y // 2] = 1.0
    return a


@pytest.mark.parametrize('ks', [(5, 3, 3), (4, 4, 2), (1, 5, 5), (6, 1, 1), (3, 2, 5)])
@pytest.mark.parametrize('fft', [False, True])
def test_impulse_response_equals_kernel(ks, fft):
    k = np.random.default_rng(1).standard_normal(ks)
    c = Conv3d(1, 1, ks, bias=False, fft=fft).set_weight(k)
    o = c.run(impulse())[0][0, 0].numpy()
    kt, kx, ky = ks
    sub = o[:kt, 5 - kx // 2:5 - kx // 2 + kx, 5 - ky // 2:5 - ky // 2 + ky]
    np.testing.assert_allclose(sub, k, atol=1e-5)
    assert np.abs(o).sum() == pytest.approx(np.abs(k).sum(), rel=1e-4)


def test_flip_false_stores_the_cross_correlation_kernel():
    k = np.arange(8.0).reshape(2, 2, 2)
    c = Conv3d(1, 1, (2, 2, 2), bias=False).set_weight(k, flip=False)
    np.testing.assert_array_equal(c.weight.detach().numpy()[0, 0], k)
    c2 = Conv3d(1, 1, (2, 2, 2), bias=False).set_weight(k)
    np.testing.assert_array_equal(c2.weight.detach().numpy()[0, 0], k[::-1, ::-1, ::-1])


@pytest.mark.parametrize('fft', [False, True])
@pytest.mark.parametrize('time_pad_mode', ['zeros', 'first_frame'])
def test_chunking_exact_multichannel_batch(fft, time_pad_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 16, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 6, 3, 4))

    def make():
        c = Conv3d(2, 3, (6, 3, 4), fft=fft, time_pad_mode=time_pad_mode).set_weight(w)
        c.bias.set([0.5, -1.0, 2.0])
        return c
    out = assert_chunking_exact(make, x, dts=(1, 5))
    assert out[0].shape == (2, 3, 16, 7, 6)


def test_first_frame_history_is_the_steady_state_of_a_constant():
    c = Conv3d(1, 1, (5, 1, 1), bias=False, time_pad_mode='first_frame').set_weight(np.ones(5))
    o = c.run(2.0 * np.ones((3, 2, 2)))[0]
    np.testing.assert_allclose(o.numpy(), 10.0)
    c0 = Conv3d(1, 1, (5, 1, 1), bias=False).set_weight(np.ones(5))
    np.testing.assert_allclose(c0.run(2.0 * np.ones((3, 2, 2)))[0][0, 0, :, 0, 0].numpy(), [2, 4, 6])


@pytest.mark.parametrize('ks', [(10, 15, 15), (7, 1, 1), (1, 9, 9), (3, 4, 5)])
def test_fft_equals_direct_forward_and_backward(ks):
    torch.manual_seed(0)
    x = torch.randn(2, 2, 12 + ks[0] - 1, 10 + ks[1] - 1, 9 + ks[2] - 1, dtype=torch.float32, requires_grad=True)
    w = torch.randn((3, 2) + ks, requires_grad=True)
    g = torch.randn(2, 3, 12, 10, 9)
    results = []
    for fft in (False, True):
        y = conv_module.correlate(x, w, fft=fft)
        gx, gw = torch.autograd.grad((y * g).sum(), (x, w))
        results.append((y.detach(), gx, gw))
    for a, b in zip(*results):
        assert float((a - b).abs().max() / a.abs().max()) < 1e-5


def test_fft_layer_gradient_matches_direct():
    x = np.random.default_rng(3).standard_normal((40, 12, 12)).astype(np.float32)
    grads = []
    for fft in (False, True):
        c = Conv3d(1, 1, (8, 5, 5), fft=fft).set_weight(np.random.default_rng(4).standard_normal((8, 5, 5)))
        (c(x) ** 2).sum().backward()
        grads.append(c.weight.grad.clone())
    assert float((grads[0] - grads[1]).abs().max() / grads[0].abs().max()) < 1e-5


def test_auto_chooses_fft_for_large_kernels_only():
    assert conv_module.cost_ratio((1, 1, 509, 114, 114), (1, 1, 10, 15, 15)) > 10 * conv_module.FFT_COST_RATIO
    assert conv_module.cost_ratio((1, 1, 100, 22, 22), (1, 1, 1, 3, 3)) < conv_module.FFT_COST_RATIO
    assert conv_module.cost_ratio((1, 1, 100, 20, 20), (1, 1, 1, 1, 1)) == 0.0
    with pytest.raises(ValueError):
        c = Conv3d(1, 1, (2, 2, 2), fft='sometimes')
        c(np.zeros((3, 4, 4)))


def test_next_fast_len():
    assert [conv_module.next_fast_len(n) for n in (1, 11, 13, 509, 512)] == [1, 12, 14, 512, 512]


@pytest.mark.parametrize('mode', ['replicate', 'reflect', 'mirror', 'constant', 'circular'])
def test_padding_modes_keep_the_frame_size(mode):
    x = np.random.default_rng(5).standard_normal((4, 9, 8))
    c = Conv3d(1, 1, (1, 5, 3), bias=False, autopad_mode=mode).set_weight(np.ones((5, 3)))
    assert c(x).shape == (1, 1, 4, 9, 8)


def test_padding_values():
    ones = np.ones((2, 6, 6))
    replicate = Conv3d(1, 1, (1, 3, 3), bias=False).set_weight(np.ones((3, 3)), normalize=True)
    np.testing.assert_allclose(replicate(ones).detach().numpy(), 1.0, rtol=1e-6)
    constant = Conv3d(1, 1, (1, 3, 3), bias=False, autopad_mode='constant').set_weight(np.ones((3, 3)))
    o = constant(ones).detach().numpy()[0, 0, 0]
    assert o[0, 0] == 4.0 and o[0, 3] == 6.0 and o[3, 3] == 9.0
    ramp = np.arange(6.0)[None, :, None] * np.ones((1, 6, 6))
    reflect = Conv3d(1, 1, (1, 3, 1), bias=False, autopad_mode='reflect').set_weight(np.array([[0.0], [0], [1]]))
    np.testing.assert_allclose(reflect(ramp).detach().numpy()[0, 0, 0, :, 0], [1, 0, 1, 2, 3, 4])
    with pytest.raises(ValueError):
        Conv3d(1, 1, (1, 3, 3), autopad_mode='wrap')
    with pytest.raises(ValueError):
        Conv3d(1, 1, (1, 9, 9), autopad_mode='reflect')(np.ones((2, 3, 3)))


def test_set_weight_shapes():
    c = Conv3d()
    assert c.set_weight(np.ones(7)).kernel_size == (7, 1, 1)
    assert c.set_weight(np.ones((3, 5))).kernel_size == (1, 3, 5)
    assert c.set_weight(np.ones((2, 3, 5))).kernel_size == (2, 3, 5)
    c.set_weight(2.5)
    assert c.kernel_size == (2, 3, 5) and float(c.weight.detach().min()) == 2.5
    c.set_weight(np.ones((2, 3, 4)), normalize=True)
    assert float(c.weight.detach().sum()) == pytest.approx(1.0)
    c4 = Conv3d(2, 3, (1, 1, 1)).set_weight(np.ones((2, 3, 3)), preserve_channels=True)
    assert tuple(c4.weight.shape) == (3, 2, 2, 3, 3)
    c5 = Conv3d().set_weight(torch.ones(2, 1, 3, 3, 3))
    assert (c5.out_channels, c5.in_channels) == (2, 1) and c5.bias.shape == (2,)
    with pytest.raises(ValueError):
        Conv3d().set_weight(np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError):
        Conv3d().set_weight(np.zeros(3), normalize=True)


def test_set_weight_keeps_the_parameter_object():
    c = Conv3d(1, 1, (2, 2, 2))
    w = c.weight
    opt = torch.optim.SGD(c.parameters(), lr=0.1)
    c.set_weight(np.ones((5, 1, 1)))
    c.set_weight(np.ones((1, 5, 1)))
    assert c.weight is w and c.kernel_size == (1, 5, 1)
    assert any(p is w for group in opt.param_groups for p in group['params'])


def test_constructor_forms():
    assert Conv3d(1, (20, 1, 1)).kernel_size == (20, 1, 1)
    assert Conv3d(1, 1, 3).kernel_size == (3, 3, 3)
    assert Conv3d(2, 4, (1, 2, 3), bias=False).bias is None
    with pytest.raises(ValueError):
        Conv3d(1, 1, (0, 1, 1))
    y = Conv3d(1, 1, (3, 1, 1))(np.ones((5, 2, 2)))
    assert y.shape == (1, 1, 5, 2, 2)


def test_without_time_pad_output_is_shorter():
    c = Conv3d(1, 1, (4, 1, 1), bias=False, time_pad=False).set_weight(np.ones(4))
    o = c(np.arange(6.0))
    np.testing.assert_allclose(o.flatten().detach().numpy(), [6, 10, 14])
    with pytest.raises(ValueError):
        c(np.ones(3))


def test_gaussian_is_normalised_and_uses_the_resolution_at_call_time():
    c = Conv3d().gaussian(0.2)
    assert float(c.weight.sum()) == pytest.approx(1.0, rel=1e-6)
    n10 = c.kernel_size[1]
    convis.set_pixel_per_degree(20)
    c.gaussian(0.2)
    assert c.kernel_size[1] == 2 * (n10 // 2) * 2 + 1 or c.kernel_size[1] > n10
    w = c.weight.detach().numpy()[0, 0, 0]
    centre = w.shape[0] // 2
    sigma_px = 4.0
    ratio = w[centre, centre + 4] / w[centre, centre]
    assert ratio == pytest.approx(np.exp(-16 / (2 * sigma_px ** 2)), rel=1e-5)
    assert Conv3d().gaussian(0.0).kernel_size == (1, 1, 1)


def test_exponential_and_highpass_kernels():
    c = Conv3d().exponential(0.01)
    h = c.run(impulse(200, 1, 1))[0].flatten().numpy()
    e = np.exp(-1 / 10.0)
    assert h.sum() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(h[1:30] / h[:29], e, rtol=1e-4)
    hp = Conv3d().highpass_exponential(0.02, w=0.7)
    o = hp.run(np.ones(500))[0].flatten().numpy()
    assert o[-1] == pytest.approx(0.3, rel=1e-5)
    cascade = Conv3d().exponential(0.005, n=2)
    ref = convis.filters.TemporalLowPassCascade(0.005, n=2).impulse_response((100, 1, 1))[0].flatten().numpy()
    mine = cascade.impulse_response((100, 1, 1))[0].flatten().numpy()
    np.testing.assert_allclose(mine, ref, atol=2e-4)


def test_state_size_change_raises_until_cleared():
    c = Conv3d(1, 1, (3, 1, 1))
    c.run(np.ones((5, 4, 4)))
    with pytest.raises(ValueError, match='clear_state'):
        c.run(np.ones((5, 3, 3)))
    c.clear_state()
    assert c.run(np.ones((5, 3, 3)))[0].shape == (1, 1, 5, 3, 3)


def test_wrong_channels_raise():
    with pytest.raises(ValueError, match='input channel'):
        Conv3d(2, 1, (1, 1, 1))(np.ones((1, 3, 4, 4)))


def test_plot_impulse_and_properties():
    import matplotlib
    matplotlib.use('Agg')
    c = Conv3d(1, 1, (5, 3, 4)).set_weight(np.ones((5, 3, 4)))
    assert c.filter_length == 4 and c.kernel_padding == (1, 2, 1, 1, 0, 0)
    o = c.plot_impulse((20, 7, 7))
    assert o[0].shape == (1, 1, 20, 7, 7)
    assert 'kernel_size=(5, 3, 4)' in repr(c)


def test_conv2d():
    c = Conv2d().gaussian(0.1)
    c.gaussian(0.1)
    assert c.kernel_size == (1, 9, 9)
    x = np.random.default_rng(6).standard_normal((20, 10, 10))
    assert_chunking_exact(lambda: Conv2d(1, 2, (3, 3)).set_weight(np.ones((2, 1, 3, 3)), normalize=True), x)
    assert Conv2d(1, (5, 5)).kernel_size == (1, 5, 5)
    with pytest.raises(ValueError):
        Conv2d().set_weight(np.ones((3, 3, 3)))
    with pytest.raises(TypeError):
        Conv2d().exponential(0.01)


def test_conv1d():
    c = Conv1d().exponential(0.01)
    assert c.kernel_size == (70, 1, 1)
    x = np.random.default_rng(7).standard_normal((60, 3, 2))
    assert_chunking_exact(lambda: Conv1d(1, 1, 1).exponential(0.01), x)
    assert Conv1d().set_weight(np.ones((2, 1, 4))).kernel_size == (4, 1, 1)
    with pytest.raises(ValueError):
        Conv1d().set_weight(np.ones((3, 3)))
    with pytest.raises(TypeError):
        Conv1d().gaussian(0.1)


def test_rf_spreads_a_point_weight_and_fits_the_frame():
    rf = RF(1, 1, (1, 1, 1), bias=False)
    rf.set_weight(1.0)
    x = np.random.default_rng(8).random((10, 6, 5))
    o = rf.run(x)[0]
    assert o.shape == (1, 1, 10, 1, 1)
    np.testing.assert_allclose(o.flatten().numpy(), x.mean(axis=(1, 2)), rtol=1e-5)
    corner = RF(1, 1, (1, 2, 2), bias=False).set_weight(np.ones((2, 2)))
    np.testing.assert_allclose(corner.run(x)[0].flatten().numpy(), x[:, :2, :2].sum(axis=(1, 2)), rtol=1e-5)
    centre = RF(1, 1, (1, 8, 3), bias=False, rf_mode='center').set_weight(np.ones((8, 3)))
    np.testing.assert_allclose(centre.run(x)[0].flatten().numpy(), x[:, :, 1:4].sum(axis=(1, 2)), rtol=1e-5)
    three = RF(1, 3, (5, 1, 1))
    assert three.run(x, dt=3)[0].shape == (1, 3, 10, 1, 1)
    assert_chunking_exact(lambda: RF(1, 2, (4, 1, 1)).set_weight(np.ones((2, 1, 4, 1, 1))), x)
    assert rf.reset_weight().kernel_size == (1, 1, 1)


def test_gauss_filter_2d_is_the_normalised_sampled_gaussian():
    nf = convis.numerical_filters
    g = nf.gauss_filter_2d(0.3, 0.15)
    sx, sy = 3.0, 1.5
    i = np.arange(g.shape[0]) - g.shape[0] // 2
    j = np.arange(g.shape[1]) - g.shape[1] // 2
    ref = np.exp(-i[:, None] ** 2 / (2 * sx ** 2) - j[None, :] ** 2 / (2 * sy ** 2))
    np.testing.assert_allclose(g, ref / ref.sum(), rtol=1e-12)
    assert g.sum() == pytest.approx(1.0)
    assert g[g.shape[0] // 2 + 1:, g.shape[1] // 2].max() < g[g.shape[0] // 2, g.shape[1] // 2]
    raw = nf.gauss_filter_2d(0.3, normalize=False)
    assert raw.max() == pytest.approx(1 / (2 * np.pi * 9), rel=1e-12)
    assert raw.sum() == pytest.approx(1.0, abs=2e-3)
    assert nf.gauss_filter_2d(0.0).tolist() == [[1.0]]
    assert nf.gauss_filter_2d(0.1, even=True).shape[0] % 2 == 0
    assert nf.gauss_filter_5d(0.1).shape == (1, 1, 1, 9, 9)
    with pytest.raises(ValueError):
        nf.gauss_filter_2d(-1)


def test_deriche_coefficients_have_unit_dc_gain():
    c = convis.numerical_filters.deriche_coefficients(1 / 2.0)
    dc = (c['A1'] + c['A2'] + c['A3'] + c['A4']) / (1 - c['B1'] - c['B2'])
    assert dc == pytest.approx(1.0, abs=1e-12)
    x = np.zeros(201)
    x[100] = 1.0
    causal = lfilter([c['A1'], c['A2']], [1, -c['B1'], -c['B2']], x)
    anti = lfilter([0, c['A3'], c['A4']], [1, -c['B1'], -c['B2']], x[::-1])[::-1]
    y = causal + anti
    assert y.sum() == pytest.approx(1.0, abs=1e-6)
    spread = np.sqrt(((np.arange(201) - 100) ** 2 * y).sum())
    assert spread == pytest.approx(2 / (1.695 / 2.0), rel=0.02)  # the continuous kernel (1 + a|x|) e^(-a|x|) has sd 2/a


def test_kernel_helpers():
    nf = convis.numerical_filters
    s = nf.sum_kernels([np.ones((2, 1, 1)), np.ones((1, 3, 3))])
    assert s.shape == (2, 3, 3) and s[0, 1, 1] == 2 and s[1, 1, 1] == 1 and s[1, 0, 0] == 0
    c = nf.concatenate_time(np.ones((2, 1, 1)), np.ones((1, 3, 3)))
    assert c.shape == (3, 3, 3) and c[0, 0, 0] == 0 and c[0, 1, 1] == 1


def test_simple_filters():
    from convis.filters import LN, L, SmoothConv
    x = np.random.default_rng(9).standard_normal((30, 6, 6))
    lin = L((3, 3, 3)).set_weight(np.random.default_rng(10).standard_normal((3, 3, 3)))
    rect = LN((3, 3, 3)).set_weight(lin.weight.detach().numpy(), flip=False)
    np.testing.assert_allclose(rect.run(x)[0].numpy(), np.maximum(lin.run(x)[0].numpy(), 0), rtol=1e-5, atol=1e-6)
    sc = SmoothConv(n=2, tau=0.005, spatial_filter=(3, 3))
    assert not sc.e[0].tau.requires_grad and sc.g[1].weight.requires_grad
    out = assert_chunking_exact(lambda: SmoothConv(n=2, tau=0.005, spatial_filter=(3, 3)), x, dts=(1, 7))
    components = sc.get_all_components(torch.as_tensor(x[None, None], dtype=torch.float32))
    assert components.shape == (1, 2, 30, 6, 6)
    ones = SmoothConv(n=2, tau=0.005, spatial_filter=(3, 3))
    for g in ones.g:
        g.set_weight(np.ones((3, 3)), normalize=True)
    assert float(ones.run(np.ones((400, 4, 4)))[0][0, 0, -1, 0, 0]) == pytest.approx(2.0, rel=1e-4)
    assert out[0].shape == (1, 1, 30, 6, 6)
