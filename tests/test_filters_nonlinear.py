"""Tests of convis.filters.nonlinear: values, gradients, Sum/sum and Diff with state."""
import numpy as np
import pytest
import torch

import convis
from convis.filters.nonlinear import (NL, Diff, NLRectify, NLRectifyScale, NLRectifySquare, NLSigmoid, NLSquare, Sum,
                                      sum as tsum)
from helpers import assert_chunking_exact

X = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])


def values(layer, x=X):
    return layer(x).detach().numpy().flatten()


def test_values():
    np.testing.assert_allclose(values(NLRectify()), np.maximum(X, 0))
    np.testing.assert_allclose(values(NLRectifyScale(2.0, -1.0)), np.maximum(2 * X - 1, 0))
    np.testing.assert_allclose(values(NLSquare(0.5, 1.0)), (0.5 * X + 1) ** 2)
    np.testing.assert_allclose(values(NLRectifySquare(1.0, -0.5)), np.maximum(X - 0.5, 0) ** 2)
    np.testing.assert_allclose(values(NLSigmoid(2.0, 0.0, 3.0)), 3 / (1 + np.exp(-2 * X)), rtol=1e-6)


def test_rectification_passes_gradient_at_zero():
    x = torch.zeros(1, 1, 3, 1, 1, requires_grad=True)
    NLRectify()(x).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 1.0, 1.0]


def test_parameters_are_documented_and_fitted():
    nl = NLRectifyScale()
    assert set(dict(nl.named_parameters())) == {'scale', 'bias'}
    for p in nl.parameters():
        assert p.doc and p.unit == '' and p.scale == 'linear'
    x = torch.linspace(-1, 1, 50).reshape(1, 1, 50, 1, 1)
    target = torch.clamp(3 * x + 0.5, min=0)
    opt = torch.optim.LBFGS(nl.parameters(), line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = ((nl(x) - target) ** 2).sum()
        loss.backward()
        return loss
    for _ in range(2):
        opt.step(closure)
    assert float(nl.scale) == pytest.approx(3.0, rel=1e-3) and float(nl.bias) == pytest.approx(0.5, abs=1e-3)


def test_generic_nl():
    nl = NL(lambda x, a, b: a * torch.tanh(b * x), a=2.0, b=0.5)
    np.testing.assert_allclose(values(nl), 2 * np.tanh(0.5 * X), rtol=1e-6)
    assert set(dict(nl.named_parameters())) == {'a', 'b'}
    nl.p.a = 1.0
    np.testing.assert_allclose(values(nl), np.tanh(0.5 * X), rtol=1e-6)
    with pytest.raises(TypeError):
        NL(3.0)


def test_sum():
    a, b = torch.ones(1, 1, 4, 2, 2), 2 * torch.ones(1, 1, 4, 2, 2)
    assert tsum(a, b).shape == (1, 1, 4, 2, 2) and float(tsum(a, b).max()) == 3.0
    assert tsum(a, b, dim=1).shape == (1, 1, 4, 2, 2)
    assert tsum([a, b]).shape == (1, 1, 4, 2, 2)
    assert float(Sum()(a, b).min()) == 3.0
    assert Sum(dim=2)(a, b).shape == (1, 1, 1, 2, 2)
    with pytest.raises(ValueError):
        tsum()


def test_diff():
    x = np.array([1.0, 3.0, 2.0, 2.0, 5.0])
    assert values(Diff(), x).tolist() == [0.0, 2.0, -1.0, 0.0, 3.0]
    rng = np.random.default_rng(0).standard_normal((2, 1, 20, 3, 3))
    out = assert_chunking_exact(Diff, rng, dts=(1, 6))
    np.testing.assert_allclose(out[0][:, :, 1:], np.diff(rng, axis=2), rtol=1e-5, atol=1e-6)


def test_nonlinearities_are_exported():
    for name in ('NLRectify', 'NLRectifyScale', 'NLSquare', 'NLRectifySquare', 'NLSigmoid', 'NL', 'Sum', 'sum', 'Diff'):
        assert getattr(convis.filters, name) is getattr(convis.filters.nonlinear, name)
