"""Inputs that overflow the arithmetic: the retina refuses implausible luminances, and no layer's state becomes
NaN or infinite silently (the call raises and the state is what it was before it, so later chunks are not
poisoned)."""
import re

import numpy as np
import pytest
import torch

import convis
from convis.base import Layer
from convis.variables import State
from test_every_layer import NAMES, make, stimulus

BIG = 1e38
"""A finite float32 value whose products and sums overflow."""


def assert_states_equal(a, b):
    assert list(a) == list(b)
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        else:
            assert torch.equal(a[k], b[k]), k


def assert_outputs_equal(a, b):
    a = a if isinstance(a, convis.Output) else [a]
    b = b if isinstance(b, convis.Output) else [b]
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def video(t=30, seed=0):
    return 255 * np.random.RandomState(seed).rand(1, 1, t, 10, 12)


@pytest.mark.parametrize('value', [BIG, -BIG, 3e8])
def test_an_implausible_luminance_is_refused_and_changes_nothing(value):
    """A pixel far above the luminosity range (1e38 made the ganglion currents infinite and the spiking state
    infinite for every later chunk) raises a ValueError naming the value and the bound; the next chunk then
    gives what it gives without the bad one."""
    x = video(30)
    retina = convis.retina.Retina(seed=1)
    first = retina(x[:, :, :10])
    before = retina.get_state()
    bad = x[:, :, 10:20].copy()
    bad[0, 0, 3, 4, 5] = value
    with pytest.raises(ValueError, match=r'retina input has a value of magnitude %s, above the bound 2\.55e\+08 '
                                         r'\(Retina\.INPUT_BOUND 1e\+06 times input_luminosity_range 255'
                                         % re.escape('%.4g' % abs(value))):
        retina(bad)
    assert_states_equal(retina.get_state(), before)
    reference = convis.retina.Retina(seed=1)
    assert_outputs_equal(reference(x[:, :, :10]), first)
    assert_outputs_equal(retina(x[:, :, 20:]), reference(x[:, :, 20:]))


def test_run_stops_at_the_bad_chunk_with_the_state_after_the_good_ones():
    x = video(30)
    x[0, 0, 25, 0, 0] = BIG
    retina = convis.retina.Retina(seed=2)
    with pytest.raises(ValueError, match='above the bound'):
        retina.run(x, dt=10)
    reference = convis.retina.Retina(seed=2)
    reference.run(x[:, :, :20], dt=10)
    assert_states_equal(retina.get_state(), reference.get_state())


def test_the_bound_follows_the_input_luminosity_range():
    retina = convis.retina.Retina(spikes=False)
    retina.resolution.input_luminosity_range = 1.0
    x = np.full((1, 1, 5, 4, 4), 0.5)
    x[0, 0, 2, 1, 1] = 2e6
    with pytest.raises(ValueError, match=r'magnitude 2e\+06, above the bound 1e\+06'):
        retina(x)
    x[0, 0, 2, 1, 1] = -9e5
    assert all(bool(torch.isfinite(o).all()) for o in retina(x))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('lambda_amp', [0.0, 1000.0])
def test_inputs_up_to_the_bound_keep_outputs_and_states_finite(dtype, lambda_amp):
    """The bound is far inside what the arithmetic takes: frames alternating between plus and minus the bound,
    with and without a strong gain control, leave every output and state finite."""
    bound = convis.retina.Retina.INPUT_BOUND * 255
    x = np.full((1, 1, 40, 10, 12), bound)
    x[:, :, 1::2] = -bound
    x[:, :, :, :5] = 0
    for spikes in (True, False):
        retina = convis.retina.Retina(spikes=spikes, record=('bipolar',)).to(dtype)
        retina.bipolar.lambda_amp = lambda_amp
        out = retina.run(x, dt=15)
        assert all(bool(torch.isfinite(o).all()) for o in out)
        assert all(v is None or not v.is_floating_point() or bool(torch.isfinite(v).all())
                   for v in retina.get_state().values())


def test_a_state_that_overflows_raises_and_is_restored():
    """Past the input check (here lifted), the arithmetic overflows: the call raises a ValueError naming the
    states, which are restored, and the next chunk computes what it computes without the bad chunk."""
    x = video(30)
    retina = convis.retina.Retina(seed=3)
    retina.INPUT_BOUND = float('inf')
    retina(x[:, :, :10])
    before = retina.get_state()
    bad = x[:, :, 10:20].copy()
    bad[0, 0, 3, 4, 5] = BIG
    with pytest.raises(ValueError, match=r'Retina: the state .*gang_0_spikes\.V.* became NaN or infinite .* '
                                         r'restored'):
        retina(bad)
    assert_states_equal(retina.get_state(), before)
    reference = convis.retina.Retina(seed=3)
    reference(x[:, :, :10])
    assert_outputs_equal(retina(x[:, :, 20:]), reference(x[:, :, 20:]))


class Accumulator(Layer):
    """Adds every input frame to its state ``total`` (and fails on request after doing so)."""

    def __init__(self):
        super().__init__()
        self.total = State(torch.zeros(()))
        self.fail = False

    def forward(self, x):
        self.total = self.total + x.sum()
        if self.fail:
            raise KeyboardInterrupt
        return x * self.total


def test_a_failing_call_changes_no_state():
    """A call that stops half way (an error or an interrupt after some state was updated) leaves the state as
    it was before the call."""
    layer = Accumulator()
    layer(np.ones((1, 1, 2, 2, 2)))
    assert float(layer.total) == 8
    layer.fail = True
    with pytest.raises(KeyboardInterrupt):
        layer(np.ones((1, 1, 2, 2, 2)))
    assert float(layer.total) == 8


def test_an_overflowing_user_layer_is_refused_too():
    layer = Accumulator()
    layer(np.ones((1, 1, 1, 1, 1)))
    with pytest.raises(ValueError, match='Accumulator: the state total became NaN or infinite'):
        layer(np.full((1, 1, 4, 1, 1), 3e38, dtype=np.float32))
    assert float(layer.total) == 1


@pytest.mark.parametrize('name', NAMES)
def test_no_layer_keeps_a_state_that_overflowed(name):
    """Every layer, given a chunk with a pixel of 1e38 (the retina's own bound lifted): either the call raises,
    restores the state and the next chunk equals the continuation without the bad chunk, or every state stayed
    finite."""
    x = stimulus(name, t=30)
    bad = x[:, :, 10:20].copy()
    bad[0, 0, 3, 2, 2] = BIG
    layer = make(name)
    if name == 'retina.Retina':
        layer.INPUT_BOUND = float('inf')
    layer(x[:, :, :10])
    before = layer.get_state()
    try:
        layer(bad)
    except ValueError as e:
        assert 'became NaN or infinite' in str(e)
        assert_states_equal(layer.get_state(), before)
        reference = make(name)
        reference(x[:, :, :10])
        assert_outputs_equal(layer(x[:, :, 20:]), reference(x[:, :, 20:]))
    else:
        for path, v in layer.named_states():
            assert v is None or not v.is_floating_point() or bool(torch.isfinite(v).all()), path
