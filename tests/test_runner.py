"""The Runner: a model between an input and an output stream, in a background thread or in the caller's."""
import gc
import logging
import threading
import time
import tracemalloc

import numpy as np
import pytest
import torch

import convis
from convis.streams import (HDF5Reader, HDF5Writer, InrImageStreamReader, InrImageStreamWriter, NumpyWriter,
                            RandomStream, SequenceStream)


def ln_model(kernel=(5, 3, 3), seed=0):
    """An LN model with a random kernel (its temporal memory makes chunk boundaries matter)."""
    m = convis.models.LN(kernel)
    m.conv.set_weight(np.random.RandomState(seed).rand(*kernel))
    return m


class Failing(convis.Layer):
    """Passes frames through until ``after`` frames have been seen, then raises."""

    def __init__(self, after):
        super().__init__()
        self.after, self.seen = after, 0

    def forward(self, x):
        self.seen += x.shape[2]
        if self.seen > self.after:
            raise ArithmeticError('model failed at frame %d' % self.seen)
        return x


def runner_threads():
    return [t for t in threading.enumerate() if t.name == 'convis-Runner']


def wait_until(condition, timeout=20.0):
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()


def test_start_stop_cycle_produces_frames_and_leaves_no_thread():
    inp = RandomStream(size=(10, 10), pixel_per_degree=1.0, level=100.2, mean=128.0, seed=0)
    out = SequenceStream(sequence=np.ones((0, 10, 10)), max_frames=10000)
    runner = convis.Runner(ln_model(), input=inp, output=out, chunk_size=50)
    assert not runner.is_running and runner.closed
    runner.start()
    assert runner.is_running and len(runner_threads()) == 1
    assert wait_until(lambda: runner.frames >= 500)
    runner.stop(timeout=10)
    assert not runner.is_running and runner_threads() == []
    n = runner.frames
    assert n % 50 == 0 and out.sequence.shape == (min(n, 10000), 10, 10)
    assert runner.frames_per_second > 0 and runner.chunks == n // 50
    runner.start()
    assert wait_until(lambda: runner.frames >= n + 100)
    runner.stop()
    assert runner_threads() == [] and out.sequence.shape[0] == min(runner.frames, 10000)


def test_thread_output_equals_one_run_and_ends_with_the_input():
    x = np.random.rand(1003, 9, 9)
    expected = ln_model().run(x)[0][0, 0].numpy()
    out = SequenceStream(max_frames=None)
    runner = convis.Runner(ln_model(), input=x, output=out, chunk_size=64)
    runner.start()
    assert runner.join(timeout=30)
    assert runner.input_ended and runner.frames == 1003 and runner_threads() == []
    np.testing.assert_allclose(out.sequence, expected, rtol=1e-5, atol=1e-6)
    runner.stop()


def test_an_exception_in_the_thread_is_kept_logged_and_raised_once(caplog):
    runner = convis.Runner(Failing(after=250), RandomStream((4, 4), seed=0), SequenceStream(), chunk_size=100)
    with caplog.at_level(logging.ERROR, logger='convis.runner'):
        runner.start()
        assert wait_until(lambda: not runner.is_running)
    assert isinstance(runner.exception, ArithmeticError)
    assert any('ArithmeticError' in r.getMessage() for r in caplog.records)
    assert runner.frames == 200 and runner_threads() == []
    with pytest.raises(ArithmeticError, match='frame 300'):
        runner.stop()
    runner.stop()
    assert isinstance(runner.exception, ArithmeticError)


def test_the_exception_surfaces_on_join_and_on_the_next_call():
    runner = convis.Runner(Failing(after=0), RandomStream((4, 4)), None, chunk_size=10)
    runner.start()
    with pytest.raises(ArithmeticError):
        runner.join(timeout=30)
    runner.start()
    assert wait_until(lambda: not runner.is_running)
    with pytest.raises(ArithmeticError):
        runner.run(10)
    runner.run(0)


def test_stopped_runner_leaves_complete_files(tmp_path):
    inr, h5 = str(tmp_path / 'output.inr'), str(tmp_path / 'output.h5')
    runner = convis.Runner(ln_model(), RandomStream((12, 12), seed=1),
                           [InrImageStreamWriter(inr)], chunk_size=40)
    runner.start()
    assert wait_until(lambda: runner.frames >= 200)
    runner.stop()
    r = InrImageStreamReader(inr)
    assert len(r) == runner.frames and r.size == (12, 12)
    assert r.get(1).min() >= 0
    writer = HDF5Writer(h5, 'ganglion')
    runner2 = convis.Runner(ln_model(), RandomStream((12, 12), seed=1), writer, chunk_size=40)
    runner2.start()
    assert wait_until(lambda: runner2.frames >= 120)
    runner2.stop()
    reader = HDF5Reader(h5, 'ganglion')
    assert len(reader) == runner2.frames
    np.testing.assert_allclose(reader.get(40), InrImageStreamReader(inr).get(40), rtol=1e-6)
    reader.close()
    runner2.close()
    assert writer.closed


def test_run_synchronously_gives_exactly_the_frames_asked_for(tmp_path):
    out = SequenceStream(max_frames=None)
    runner = convis.Runner(ln_model(), RandomStream((6, 6), seed=2), out, chunk_size=30)
    assert runner.run(100) == 100 and out.sequence.shape == (100, 6, 6)
    assert runner.run(1) == 1 and out.sequence.shape[0] == 101
    ref = ln_model().run(RandomStream((6, 6), seed=2), max_t=101)[0][0, 0].numpy()
    np.testing.assert_allclose(out.sequence, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='infinite'):
        runner.run()
    finite = convis.Runner(ln_model(), np.random.rand(77, 6, 6), NumpyWriter(str(tmp_path / 'o.npy')), chunk_size=30)
    assert finite.run() == 77 and finite.run() == 0 and finite.input_ended
    finite.close()
    assert np.load(str(tmp_path / 'o.npy')).shape == (77, 6, 6)


def test_several_outputs_go_to_several_streams():
    class Two(convis.Layer):
        def forward(self, x):
            return convis.Output([x, -x], keys=['a', 'b'])

    a, b = SequenceStream(max_frames=None), SequenceStream(max_frames=None)
    x = np.random.rand(20, 3, 3)
    convis.Runner(Two(), x, [a, b], chunk_size=7).run()
    np.testing.assert_allclose(a.sequence, x, rtol=1e-6)
    np.testing.assert_allclose(b.sequence, -x, rtol=1e-6)


def test_the_model_belongs_to_the_thread_and_the_lock_pauses_it():
    model = ln_model()
    runner = convis.Runner(model, RandomStream((8, 8), seed=0), SequenceStream(), chunk_size=20)
    runner.start()
    try:
        assert wait_until(lambda: runner.frames > 0)
        with pytest.raises(RuntimeError, match='stop'):
            runner.run(10)
        with pytest.raises(RuntimeError, match='another Runner'):
            convis.Runner(model, RandomStream((8, 8)), None).start()
        with pytest.raises(RuntimeError, match='another Runner'):
            convis.Runner(model, RandomStream((8, 8)), None).run(10)
        with runner.lock:
            n = runner.frames
            model.conv.set_weight(np.ones((5, 3, 3)))
            time.sleep(0.1)
            assert runner.frames == n
        assert wait_until(lambda: runner.frames > n)
    finally:
        runner.stop()
    other = convis.Runner(model, RandomStream((8, 8)), None).start()
    other.stop()


def test_waiting_for_input_from_another_thread():
    feed = SequenceStream(np.zeros((0, 6, 6)), max_frames=None)
    out = SequenceStream(max_frames=None)
    runner = convis.Runner(ln_model(), feed, out, chunk_size=10, wait_for_input=True, poll_interval=0.01)
    runner.start()
    for i in range(5):
        feed.put(np.full((10, 6, 6), float(i)))
        assert wait_until(lambda: runner.frames >= 10 * (i + 1))
    assert runner.is_running
    runner.stop()
    assert out.sequence.shape == (50, 6, 6) and runner_threads() == []


def test_optimize_fits_the_model_to_the_goal_stream():
    torch.manual_seed(0)
    x = np.random.rand(300, 6, 6)
    goal = ln_model((1, 1, 1)).conv
    goal.set_weight(np.full((1, 1, 1), 2.0))
    y = goal.run(x)[0][0, 0].numpy()
    model = convis.models.L((1, 1, 1))
    model.conv.set_weight(np.full((1, 1, 1), 0.5))
    model.set_optimizer.SGD(lr=1e-3)
    runner = convis.Runner(model, x, goal=y, chunk_size=20)
    losses = runner.optimize(200)
    assert len(losses) == 10 and losses[-1] < 0.01 * losses[0]
    runner.start(mode='optimize')
    assert runner.join(timeout=30)
    assert len(runner.losses) == 15
    assert abs(float(model.conv.weight.detach().reshape(-1)[0]) - 2.0) < 0.01
    with pytest.raises(ValueError, match='goal'):
        convis.Runner(model, x).optimize(10)


def test_bad_arguments_raise_early():
    with pytest.raises(TypeError, match='stream'):
        convis.Runner(ln_model(), input=42)
    with pytest.raises(ValueError, match='chunk_size'):
        convis.Runner(ln_model(), RandomStream((4, 4)), chunk_size=0)
    with pytest.raises(ValueError, match='no input'):
        convis.Runner(ln_model()).start()
    with pytest.raises(ValueError, match='no model'):
        convis.Runner(None, RandomStream((4, 4))).run(5)
    with pytest.raises(ValueError, match='mode'):
        convis.Runner(ln_model(), RandomStream((4, 4))).start(mode='train')


def test_context_manager_stops_and_closes(tmp_path):
    path = str(tmp_path / 'c.inr')
    with convis.Runner(ln_model(), RandomStream((8, 8), seed=0), InrImageStreamWriter(path), chunk_size=25) as r:
        r.start()
        assert wait_until(lambda: r.frames >= 50)
    assert runner_threads() == [] and r.output.closed and r.input.closed
    assert len(InrImageStreamReader(path)) == r.frames


def test_memory_stays_flat_over_a_long_run():
    model = ln_model((5, 3, 3))
    out = SequenceStream(np.zeros((0, 10, 10)), max_frames=1000)
    runner = convis.Runner(model, RandomStream((10, 10), seed=0), out, chunk_size=500)
    runner.run(2000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        runner.run(20000)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert runner.frames == 22000 and out.sequence.shape == (1000, 10, 10)
    assert after - before < 64 * 1024, 'traced memory grew by %d bytes over 20000 frames' % (after - before)
    assert all(v is None or not v.requires_grad for _, v in model.named_states())


class BlockingStream(object):
    """An input whose ``get()`` waits until ``release`` is set (or the stream is closed, when ``closable``)."""

    def __init__(self, closable=True):
        self.release = threading.Event()
        self.closed = False
        self.reads = 0
        if closable:
            self.close = self._close

    def get(self, n):
        self.release.wait()
        self.reads += 1
        return np.zeros((0 if self.closed else n, 4, 4))

    def _close(self):
        self.closed = True
        self.release.set()


class Counting(convis.Layer):
    """Passes frames through and counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def test_two_threads_calling_start_at_once_start_one_thread(monkeypatch):
    callers = [threading.Thread(target=lambda: runner.start()) for _ in range(2)]
    barrier = threading.Barrier(2, timeout=0.5)

    class Meeting(threading.Thread):
        def __init__(self, *args, **kwargs):
            try:   # both callers meet here (just before a thread is made) unless start() lets one in at a time
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            super().__init__(*args, **kwargs)

    runner = convis.Runner(Counting(), RandomStream((4, 4), seed=0), None, chunk_size=5)
    monkeypatch.setattr(convis.runner.threading, 'Thread', Meeting)
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    monkeypatch.undo()
    try:
        assert len(runner_threads()) == 1
    finally:
        runner.stop()
        for t in runner_threads():
            t.join()


def test_stop_and_close_return_while_get_blocks_and_close_the_stream():
    stream = BlockingStream(closable=True)
    runner = convis.Runner(Counting(), stream, SequenceStream(), chunk_size=5).start()
    with pytest.warns(RuntimeWarning, match='abandoned'):
        runner.stop(timeout=0.2)
    assert stream.closed and not runner.is_running
    runner.abandoned[0].join()      # the closed stream let get() return: the thread ended by itself
    assert runner_threads() == [] and runner.model.calls == 0


def test_an_abandoned_thread_drops_what_it_reads_later(monkeypatch):
    monkeypatch.setattr(convis.runner, 'STOP_TIMEOUT', 0.2)
    stream, out = BlockingStream(closable=False), SequenceStream()
    runner = convis.Runner(Counting(), stream, out, chunk_size=5).start()
    try:
        with pytest.warns(RuntimeWarning, match='abandoned'):
            runner.close()                              # the default timeout applies
        assert not runner.is_running and out.closed
    finally:
        stream.release.set()
        for t in runner.abandoned:
            t.join()
    assert stream.reads >= 1 and runner.model.calls == 0 and runner.frames == 0
    assert runner_threads() == []


def test_runner_shares_the_model_lock():
    model = ln_model()
    assert convis.Runner(model, RandomStream((4, 4))).lock is model.lock
    plain = convis.Runner(lambda x: x, RandomStream((4, 4)))
    assert hasattr(plain.lock, 'acquire')


def test_error_messages_do_not_echo_huge_values():
    huge = 'x' * 1_000_000
    with pytest.raises(TypeError, match='input must be a stream') as e:
        convis.Runner(ln_model(), input=huge)
    assert len(str(e.value)) < 300 and '1000002 characters' in str(e.value)
    with pytest.raises(ValueError, match='mode') as e:
        convis.Runner(ln_model(), RandomStream((4, 4))).start(mode=huge)
    assert len(str(e.value)) < 300
    model = ln_model()
    for call in (lambda: model.run(np.zeros((5, 2, 2)), dt=huge), lambda: model.set_optimizer(huge),
                 lambda: model.set_resolution(huge), lambda: model.retrieve_all(huge)):
        with pytest.raises((TypeError, ValueError, KeyError, AttributeError)) as e:
            call()
        assert len(str(e.value)) < 500      # the value cut to 200 characters, plus the choices
