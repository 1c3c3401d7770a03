"""convis.layer: fresh_state, run_iter, and the retina stages' extra_repr."""
import numpy as np
import pytest
import torch

import convis
from convis.filters.retina import OPL, Bipolar


def _states_equal(a, b):
    assert list(a) == list(b)
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        else:
            assert torch.equal(a[k], b[k]), k


@pytest.fixture
def ln():
    torch.manual_seed(0)
    m = convis.models.LN((10, 4, 4))
    m.run(np.random.RandomState(1).rand(30, 12, 12), dt=10)  # a state that is not the cleared one
    return m


def test_fresh_state_runs_from_the_cleared_state_and_restores(ln):
    x = np.random.RandomState(2).rand(40, 12, 12)
    before = ln.get_state()
    with ln.fresh_state():
        inside = ln.run(x, dt=20)[0]
    _states_equal(ln.get_state(), before)
    ln.clear_state()
    fresh = ln.run(x, dt=20)[0]
    assert torch.equal(inside, fresh)


def test_fresh_state_restores_the_state_when_the_block_raises(ln):
    before = ln.get_state()
    with pytest.raises(RuntimeError, match='inside'):
        with ln.fresh_state():
            ln.run(np.random.RandomState(3).rand(20, 12, 12), dt=10)
            raise RuntimeError('inside')
    _states_equal(ln.get_state(), before)
    assert ln._state_stack == []


def test_fresh_state_holds_the_lock(ln):
    import threading
    got = []

    def other():
        got.append(ln.lock.acquire(blocking=False))
        if got[-1]:
            ln.lock.release()
    with ln.fresh_state():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert got == [False, True]


@pytest.mark.parametrize('dt', [1, 7, 25, None])
def test_run_iter_joined_equals_run(dt):
    retina = convis.retina.Retina()
    retina.set_resolution(steps_per_second=1000)
    for layer in retina.modules():
        if hasattr(layer, 'seed') and callable(layer.seed):
            layer.seed(5)
    x = 255 * np.random.RandomState(4).rand(25, 10, 10)
    whole = retina.run(x, dt=dt)
    retina.clear_state()
    for layer in retina.modules():
        if hasattr(layer, 'seed') and callable(layer.seed):
            layer.seed(5)
    parts = list(retina.run_iter(x, dt=dt))
    assert len(parts) == (1 if dt is None else -(-25 // dt))
    assert all(p.keys == whole.keys for p in parts)
    for k in range(len(whole)):
        assert torch.equal(torch.cat([p[k] for p in parts], dim=2), whole[k])
    assert all(not p[0].requires_grad for p in parts)


def test_run_iter_stops_when_left_and_checks_its_arguments_at_once(ln):
    x = np.random.RandomState(5).rand(50, 12, 12)
    ln.clear_state()
    it = ln.run_iter(x, dt=10)
    first = next(it)
    it.close()  # cancelled: nothing more runs
    after_one = ln.get_state()
    ln.clear_state()
    ln.run(x[:10], dt=10)
    _states_equal(after_one, ln.get_state())
    assert first[0].shape[2] == 10
    with pytest.raises(ValueError, match='dt'):
        ln.run_iter(x, dt=0)


def test_retina_stages_print_their_parameters_with_units():
    text = repr(convis.retina.Retina())
    assert 'OPL(sigma_center=0.05 deg' in text and 'tau_center=0.01 s' in text
    assert 'g_leak=50 Hz' in repr(Bipolar())
    opl = OPL()
    opl.sigma_center = 0.1
    assert 'sigma_center=0.1 deg' in opl.extra_repr()
