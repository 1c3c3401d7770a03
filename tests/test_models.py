"""Tests of convis.models: the LN family (shapes, batches, exact chunking, initial states) and the containers."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import convis
from convis import models
from convis.filters import Delay, NLRectify, NLSquare
from helpers import assert_chunking_exact

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 1, 18, 6, 5)).astype(np.float32)


def with_random_weights(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith('weight') and p.dim() == 5:
            with torch.no_grad():
                p.copy_(0.3 * torch.randn(p.shape, generator=g).abs())
    return model


@pytest.mark.parametrize('factory, shape', [
    (lambda: models.L((4, 3, 3)), (2, 1, 18, 6, 5)),
    (lambda: models.RF((4, 3, 3)), (2, 1, 18, 1, 1)),
    (lambda: models.LN((4, 3, 3)), (2, 1, 18, 6, 5)),
    (lambda: models.RFN((4, 3, 3)), (2, 1, 18, 1, 1)),
    (lambda: models.LNLN((3, 3, 3)), (2, 1, 18, 6, 5)),
    (lambda: models.LNLN((3, 3, 3), population=False), (2, 1, 18, 1, 1)),
    (lambda: models.LNLNLN((2, 3, 3)), (2, 1, 18, 6, 5)),
    (lambda: models.LNLNLNLN((2, 1, 1)), (2, 1, 18, 6, 5)),
    (lambda: models.LNCascade(2, (3, 3, 3)), (2, 1, 18, 6, 5)),
    (lambda: models.LNFDLNF((3, 3, 3), feedback_length=4), (2, 1, 18, 6, 5)),
    (lambda: models.LNFDLNF((3, 3, 3), feedback_length=4, population=False), (2, 1, 18, 1, 1)),
    (lambda: models.McIntosh((3, 3, 3), out_channels=2, layer1_channels=2, layer2_channels=3), (2, 1, 18, 1, 2)),
    (lambda: models.L((2, 1, 3, 3, 3)), (2, 2, 18, 6, 5)),
])
def test_models_run_batched_and_chunk_exactly(factory, shape):
    out = assert_chunking_exact(lambda: with_random_weights(factory()), X, dts=(1, 5))
    assert out[0].shape == shape
    assert np.abs(out[0]).max() > 0


def test_ln_starts_at_zero_and_nonlinearity_is_replaceable():
    m = models.LN((5, 5, 5))
    assert float(m.conv.weight.detach().abs().sum()) == 0 and m.conv.bias is None
    assert isinstance(m.nonlinearity, NLRectify)
    k = np.random.default_rng(2).standard_normal((5, 5, 5))
    m.conv.set_weight(k)
    x = np.random.default_rng(3).standard_normal((20, 8, 8))
    linear = models.L((5, 5, 5))
    linear.conv.set_weight(k)
    lin = linear.run(x)[0]
    np.testing.assert_allclose(m.run(x)[0].numpy(), np.maximum(lin.numpy(), 0), rtol=1e-5, atol=1e-6)
    m.nonlinearity = lambda v: v ** 2
    m.clear_state()
    np.testing.assert_allclose(m.run(x)[0].numpy(), lin.numpy() ** 2, rtol=1e-5, atol=1e-5)
    m.nonlinearity = NLSquare()
    assert isinstance(m.nonlinearity, NLSquare)
    m.clear_state()
    np.testing.assert_allclose(m.run(x)[0].numpy(), lin.numpy() ** 2, rtol=1e-5, atol=1e-5)
    assert models.LN((3, 3, 3), bias=True).conv.bias is not None


def test_stacked_models_start_as_the_first_stage():
    k = np.random.default_rng(4).standard_normal((3, 3, 3))
    x = np.random.default_rng(5).standard_normal((15, 6, 6))
    ln = models.LN((3, 3, 3))
    ln.conv.set_weight(k)
    ref = ln.run(x)[0].numpy()
    for cls in (models.LNLN, models.LNLNLN, models.LNSN):
        m = cls((3, 3, 3))
        m.conv1.set_weight(k)
        np.testing.assert_allclose(m.run(x)[0].numpy(), ref, rtol=1e-5, atol=1e-6)
    c = models.LNCascade(3, (3, 3, 3))
    c.linearities[0].set_weight(k)
    np.testing.assert_allclose(c.run(x)[0].numpy(), ref, rtol=1e-5, atol=1e-6)
    rf = models.LNLN((3, 3, 3), population=False)
    rf.conv1.set_weight(k)
    np.testing.assert_allclose(rf.run(x)[0].numpy().flatten(), ref.mean(axis=(3, 4)).flatten(), rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_stage():
    m = models.LNLN((2, 3, 3))
    m.conv1.set_weight(np.ones((2, 3, 3)))
    (m(np.random.default_rng(6).random((8, 5, 5))) ** 2).sum().backward()
    assert float(m.conv1.weight.grad.abs().sum()) > 0 and float(m.conv2.weight.grad.abs().sum()) > 0


def test_lncascade_add_layer():
    c = models.LNCascade()
    c.add_layer(kernel_dim=(2, 1, 1))
    c.add_layer(linear=Delay(2), nonlinear=False)
    c.add_layer(linear=False, nonlinear=lambda v: 2 * v)
    assert len(c.linearities) == 3 and len(c.nonlinearities) == 3
    c.linearities[0].set_weight(np.array([1.0, 0.0]))
    o = c.run(np.array([1.0, -1.0, 2.0, 3.0, 4.0]))[0].flatten().tolist()
    assert o == [0.0, 0.0, 2.0, 0.0, 4.0]
    c2 = models.LNCascade(2, (1, 1, 1), nonlinearity=NLSquare(scale=2.0))
    assert c2.nonlinearities[0] is not c2.nonlinearities[1] and float(c2.nonlinearities[1].scale) == 2.0


def test_mcintosh_readout_is_kept_and_size_changes_raise():
    m = models.McIntosh((3, 3, 3), out_channels=2, layer1_channels=2, layer2_channels=3)
    readout = m.readout
    m.set_optimizer.Adam(lr=0.01)
    x = np.random.default_rng(7).random((20, 6, 6)).astype(np.float32)
    y = np.random.default_rng(8).random((1, 1, 20, 1, 2)).astype(np.float32)
    losses = [sum(m.optimize(x, y, dt=10)) for _ in range(3)]
    assert m.readout is readout and readout.shape == (2, 3 * 36)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match='build_readout'):
        m.run(np.zeros((5, 7, 7)))
    m.clear_state()
    m.build_readout(7, 7)
    assert m.readout is readout and m.run(np.zeros((5, 7, 7)))[0].shape == (1, 1, 5, 1, 2)
    assert models.McIntosh(input_size=(4, 4)).readout.shape == (1, 16 * 16)


# ---------------------------------------------------------------------------------------------- containers
def test_list_indexing_appending_and_modes():
    a, b, c = Delay(1), NLSquare(), NLRectify()
    lst = models.List(a, b)
    lst.append(c)
    assert lst[0] is a and lst[-1] is c and lst[-3] is a and lst.layer_1 is b and len(lst) == 3
    assert lst[1:] == [b, c]
    with pytest.raises(IndexError):
        lst[-4]
    lst += [NLRectify()]
    lst += NLRectify()
    assert len(lst) == 5
    x = np.array([-2.0, 3.0])
    assert models.List(Delay(1), NLSquare())(x).flatten().tolist() == [0.0, 4.0]
    par = models.List(NLSquare(), NLRectify(), mode='parallel', sum_if_parallel='sum')
    assert par(x).flatten().tolist() == [4.0, 12.0]
    cat1 = models.List(NLSquare(), NLRectify(), mode='parallel', sum_if_parallel='cat_1')
    assert cat1(x).shape == (1, 2, 2, 1, 1)
    summed = models.List(NLSquare(), NLRectify(), mode='parallel', sum_if_parallel='sum_1')
    assert summed(x).flatten().tolist() == [4.0, 12.0]
    custom = models.List(NLSquare(), NLRectify(), mode='parallel', sum_if_parallel=lambda outs: outs[0] - outs[1])
    assert custom(x).flatten().tolist() == [4.0, 6.0]
    with pytest.raises(ValueError):
        models.List(mode='diagonal')
    with pytest.raises(ValueError):
        models.List(mode='parallel', sum_if_parallel='mean')


def test_parallel_sum_works_with_batches():
    x = np.random.default_rng(9).standard_normal((3, 1, 4, 2, 2))
    par = models.Parallel(NLSquare(), NLRectify(), sum='sum')
    np.testing.assert_allclose(par(x).detach().numpy(), x ** 2 + np.maximum(x, 0), rtol=1e-5)
    assert models.Parallel(NLSquare(), NLRectify())(x).shape == (6, 1, 4, 2, 2)


def test_dict_sequential_parallel_forms():
    d = models.Dict(first=Delay(1), second=NLSquare())
    assert d.keys() == ['first', 'second'] and d['second'] is d.second
    assert d(np.array([2.0, 3.0])).flatten().tolist() == [0.0, 4.0]
    d2 = models.Dict(Delay(1), ('sq', NLSquare()), OrderedDict(r=NLRectify()), mode='parallel', sum_if_parallel='sum')
    assert d2.keys() == ['layer_0', 'sq', 'r']
    seq = models.Sequential(OrderedDict(delay=Delay(1), square=NLSquare()))
    assert seq.keys() == ['delay', 'square'] and seq(np.array([2.0, 3.0])).flatten().tolist() == [0.0, 4.0]
    seq2 = models.Sequential(Delay(1), NLSquare())
    assert seq2.keys() == ['0', '1'] and seq2[1] is seq2._modules['1']
    par = models.Parallel(OrderedDict(a=NLSquare(), b=NLRectify()), sum='sum')
    assert par(np.array([-1.0])).item() == 1.0
    assert_chunking_exact(lambda: models.Sequential(Delay(2), models.LN((3, 1, 1))), X, dts=(1, 4))


def test_nested_models():
    m = models.make_sequential_parallel_model([Delay(1), [NLSquare(), NLRectify()]])
    assert m.mode == 'sequential' and m[1].mode == 'parallel'
    assert m.run(np.ones((10, 2, 2)))[0].shape == (2, 1, 10, 2, 2)
    p = models.make_parallel_sequential_model([[Delay(1), NLSquare()], NLRectify()], sum_if_parallel='sum')
    assert p.mode == 'parallel' and p[0].mode == 'sequential'
    assert p(np.array([2.0, 3.0])).flatten().tolist() == [2.0, 7.0]


def test_models_are_reexported_and_retina_is_lazy():
    assert convis.models.Retina is convis.retina.Retina and convis.models.retina is convis.retina.Retina
    assert models.LNSN is models.LNLN and models.LNFDSNF is models.LNFDLNF
