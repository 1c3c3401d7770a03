"""One model, one lock (convis/locking.py): concurrent use of one model is serialised and correct."""
import copy
import io
import pickle
import threading

import numpy as np
import pytest
import torch

import convis


def ln_model():
    m = convis.models.LN((5, 3, 3))
    m.conv.set_weight(np.random.RandomState(0).rand(5, 3, 3))
    return m


MODELS = {'LN': ln_model, 'Retina': convis.retina.Retina}


def stimulus(frames=40, size=12, seed=1):
    return (255 * np.random.RandomState(seed).rand(frames, size, size)).astype(np.float32)


def arrays(o):
    return [convis.utils.to_numpy(t).astype(np.float64) for t in o]


def same(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, rtol=1e-5, atol=1e-5)
                                    for x, y in zip(a, b))


def in_threads(n, job):
    """Runs ``job(i)`` in ``n`` threads that start together; returns the results (or raises the first error)."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def target(i):
        barrier.wait()
        try:
            results[i] = job(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            errors.append(e)
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------------------- one lock a model tree
def test_every_layer_of_a_model_shares_the_model_lock():
    retina = convis.retina.Retina()
    layers = [m for m in retina.modules() if isinstance(m, convis.Layer)]
    assert len(layers) > 3 and all(m.lock is retina.lock for m in layers)
    assert retina.opl.lock is retina.lock
    with retina.lock:                      # re-entrant: the model's own calls inside take it again
        retina.push_state()
        retina.pop_state()


def test_an_assigned_subtree_joins_the_lock_of_its_new_model():
    outer, inner = convis.models.LN((2, 1, 1)), convis.models.LN((3, 1, 1))
    assert inner.lock is not outer.lock
    outer.extra = inner
    assert inner.lock is outer.lock and inner.conv.lock is outer.lock
    outer.others = torch.nn.ModuleList()
    late = convis.models.LN((1, 1, 1))
    outer.others.append(late)               # a container of the model passes the lock on
    assert late.lock is outer.lock and late.conv.lock is outer.lock


def test_copies_get_a_new_lock_shared_by_all_their_layers():
    retina = convis.retina.Retina()
    for twin in (copy.deepcopy(retina), pickle.loads(pickle.dumps(retina))):
        assert twin.lock is not retina.lock
        assert all(m.lock is twin.lock for m in twin.modules() if isinstance(m, convis.Layer))
    buffer = io.BytesIO()
    torch.save(retina, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded.opl.lock is loaded.lock and loaded.lock is not retina.lock


# ---------------------------------------------------------------------------- two plain threads
@pytest.mark.parametrize('name', sorted(MODELS))
def test_two_threads_running_one_model_each_get_a_whole_run(name):
    """Two concurrent runs equal the two runs one after the other (the second continues the first's state)."""
    model, x = MODELS[name](), stimulus()
    model.clear_state()
    first, second = arrays(model.run(x, dt=5)), arrays(model.run(x, dt=5))
    assert not same(first, second)
    for trial in range(5):
        model.clear_state()
        a, b = in_threads(2, lambda i: arrays(model.run(x, dt=5)))
        assert (same(a, first) and same(b, second)) or (same(a, second) and same(b, first)), 'trial %d' % trial


@pytest.mark.parametrize('name', sorted(MODELS))
def test_push_run_pop_in_another_thread_leaves_a_chunked_run_intact(name):
    """A thread that pushes, clears, runs and pops (as the widgets do) never shows in another thread's runs."""
    model, x = MODELS[name](), stimulus()
    model.clear_state()
    want = [arrays(model.run(x[s:s + 10], dt=5)) for s in range(0, 40, 10)]
    impulse = np.zeros((20, 12, 12), dtype=np.float32)
    impulse[0, 6, 6] = 255.0
    model.clear_state()

    def job(i):
        if i == 0:
            return [arrays(model.run(x[s:s + 10], dt=5)) for s in range(0, 40, 10)]
        for _ in range(4):
            model.impulse_response(impulse.shape, dt=5)
            model.compute_loss(impulse, np.zeros_like(impulse), dt=10)
    got = in_threads(2, job)[0]
    assert all(same(g, w) for g, w in zip(got, want))


# ---------------------------------------------------------------------------- setting values takes the lock
def _blocked_while_locked(model, assign):
    """Runs ``assign`` in a thread while this thread holds the model's lock: returns whether it waited for the
    lock (it had not finished 0.2 s later) and whether it finished once the lock was released."""
    done = threading.Event()
    with model.lock:
        worker = threading.Thread(target=lambda: (assign(), done.set()))
        worker.start()
        waited = not done.wait(0.2)
    worker.join(5)
    return waited, done.is_set()


@pytest.mark.parametrize('how', ['tree', 'attribute', 'user_parameters', 'state'])
def test_setting_a_value_waits_for_a_run_holding_the_lock(how):
    """``model.p.x = v``, ``model.layer.x = v`` and state assignments wait while a run (or anyone) holds the model's
    lock, so a parameter never changes in the middle of a chunk."""
    retina = convis.retina.Retina()
    assign = {'tree': lambda: setattr(retina.p.opl, 'sigma_center', 0.07),
              'attribute': lambda: setattr(retina.opl, 'sigma_center', 0.07),
              'user_parameters': lambda: setattr(retina.user_parameters.opl, 'sigma_center', 0.07),
              'state': lambda: setattr(retina.bipolar, 'V', torch.zeros(1, 1, 1, 4, 4))}[how]
    waited, finished = _blocked_while_locked(retina, assign)
    assert waited and finished
    if how != 'state':
        assert float(retina.opl.sigma_center) == pytest.approx(0.07)
    else:
        assert retina.bipolar.V.shape == (1, 1, 1, 4, 4)
