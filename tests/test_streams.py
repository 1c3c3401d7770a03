"""The stream protocol and the in-memory streams; Layer.run over finite and infinite streams."""
import threading

import numpy as np
import pytest
import torch

import convis
from convis.streams import (ProcessingStream, RandomStream, RepeatingStream, SequenceStream, Stream,
                            TimedResampleStream, TimedSequenceStream)


class LowPass(convis.Layer):
    """y[s] = a y[s-1] + (1 - a) x[s], a stateful layer for the tests."""

    def __init__(self, a=0.9):
        super().__init__()
        self.a = a
        self.register_state('y', None)

    def forward(self, x):
        y = self.y if self.y is not None else torch.zeros_like(x[:, :, :1])
        out = []
        for s in range(x.shape[2]):
            y = self.a * y + (1 - self.a) * x[:, :, s:s + 1]
            out.append(y)
        self.y = y
        return torch.cat(out, dim=2)


def ramp(n=10, shape=(3, 4)):
    return np.arange(n, dtype=np.float64)[:, None, None] * np.ones((n,) + shape)


# ------------------------------------------------------------------ the protocol
def test_sequence_stream_gives_fewer_frames_at_the_end_then_none():
    s = SequenceStream(ramp(10))
    assert len(s) == 10
    a, b, c = s.get(4), s.get(4), s.get(4)
    assert a.shape == (4, 3, 4) and b.shape == (4, 3, 4) and c.shape == (2, 3, 4)
    np.testing.assert_array_equal(np.concatenate([a, b, c])[:, 0, 0], np.arange(10))
    assert s.get(5).shape == (0, 3, 4)
    assert s.get(0).shape == (0, 3, 4)
    assert s.t == 10 and s.remaining == 0 and not s.available(1)


def test_get_rejects_bad_counts():
    s = SequenceStream(ramp(3))
    with pytest.raises(ValueError, match='negative'):
        s.get(-1)
    with pytest.raises(ValueError, match='whole'):
        s.get(2.5)
    with pytest.raises(TypeError):
        s.get('3')
    assert s.get(2.0).shape[0] == 2


def test_iteration_seek_rewind_and_get_image():
    s = SequenceStream(ramp(5))
    assert s.get_image().shape == (3, 4) and s.get_image().sum() == 0
    frames = list(s)
    assert len(frames) == 5 and frames[3].shape == (3, 4) and frames[3][0, 0] == 3
    assert s.get_image()[0, 0] == 4
    s.rewind()
    assert s.tell() == 0 and s.get(1)[0, 0, 0] == 0
    s.seek(3)
    assert s.get(10)[:, 0, 0].tolist() == [3, 4]
    with pytest.raises(ValueError, match='cannot seek'):
        s.seek(6)


def test_closed_stream_raises_and_context_manager_closes():
    with SequenceStream(ramp(3)) as s:
        assert s.get(1).shape[0] == 1
    assert s.closed and not s.available()
    with pytest.raises(ValueError, match='closed'):
        s.get(1)
    with pytest.raises(ValueError, match='closed'):
        s.put(np.zeros((1, 3, 4)))
    s.close()


def test_end_repeat_makes_a_finite_stream_loop():
    s = SequenceStream(ramp(3), end='repeat')
    np.testing.assert_array_equal(s.get(8)[:, 0, 0], [0, 1, 2, 0, 1, 2, 0, 1])
    with pytest.raises(TypeError, match='infinite'):
        len(s)
    assert bool(s) and s.available(100)
    with pytest.raises(ValueError, match='end must be'):
        SequenceStream(ramp(3), end='bounce')


def test_base_stream_is_neither_source_nor_sink():
    s = Stream(size=(4, 4))
    with pytest.raises(Exception, match='cannot be read'):
        s.get(1)
    with pytest.raises(Exception, match='does not accept'):
        s.put(np.zeros((1, 4, 4)))
    with pytest.raises(TypeError, match='infinite'):
        len(s)


# ------------------------------------------------------------------ random and sequence streams
def test_random_stream_is_infinite_uniform_and_seeded():
    s = RandomStream(size=(10, 10), pixel_per_degree=1.0, level=100.2, mean=128.0, seed=3)
    with pytest.raises(TypeError, match='infinite'):
        len(s)
    a = s.get(2000)
    assert a.shape == (2000, 10, 10) and s.available(10 ** 9)
    assert a.min() >= 128.0 and a.max() < 128.0 + 100.2
    assert abs(a.mean() - (128.0 + 100.2 / 2)) < 0.5
    assert abs(a.std() - 100.2 / np.sqrt(12)) < 0.5
    np.testing.assert_array_equal(RandomStream((10, 10), seed=3, level=100.2, mean=128.0).get(5), a[:5])
    assert not np.array_equal(s.get(5), a[:5])


def test_sequence_stream_buffer_keeps_the_last_max_frames():
    out = SequenceStream(sequence=np.ones((0, 10, 10)), max_frames=250)
    for i in range(10):
        out.put(np.full((100, 10, 10), float(i)))
    seq = out.sequence
    assert seq.shape == (250, 10, 10) and len(out) == 250
    np.testing.assert_array_equal(seq[:, 0, 0], np.repeat([7., 8., 9.], [50, 100, 100]))
    assert out._buf.shape[0] <= 500
    out.put(np.full((1000, 10, 10), 5.0))
    assert out.sequence.shape == (250, 10, 10) and np.all(out.sequence == 5.0)


def test_sequence_stream_put_shapes():
    out = SequenceStream(np.ones((0, 10, 10)))
    out.put(np.zeros((10, 10)))
    out.put(torch.ones(1, 1, 3, 10, 10))
    out.put(np.zeros((0, 10, 10)))
    assert out.sequence.shape == (4, 10, 10)
    with pytest.raises(ValueError, match=r'holds frames of shape \(10, 10\).*\(5, 5\)'):
        out.put(np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match='batch'):
        out.put(np.zeros((2, 1, 3, 10, 10)))
    empty = SequenceStream(max_frames=None)
    assert empty.get(3).shape[0] == 0
    empty.put(np.ones((2, 6, 7)))
    assert empty.size == (6, 7) and empty.get(5).shape == (2, 6, 7)


def test_sequence_stream_reader_and_writer_interleave():
    s = SequenceStream(max_frames=5)
    s.put(ramp(3))
    assert s.get(2)[:, 0, 0].tolist() == [0, 1]
    s.put(ramp(10)[3:7])
    # frames 0..6 were put, 5 are kept (2..6): the reader continues at frame 2
    assert s.get(10)[:, 0, 0].tolist() == [2, 3, 4, 5, 6]
    s.put(ramp(20)[7:15])
    # frames 10..14 are kept; 7..9 were dropped before they were read
    assert s.get(10)[:, 0, 0].tolist() == [10, 11, 12, 13, 14]


def test_sequence_stream_is_safe_with_a_writer_thread():
    s = SequenceStream(np.zeros((0, 8, 8)), max_frames=300)
    done = threading.Event()

    def writer():
        for i in range(300):
            s.put(np.full((7, 8, 8), float(i)))
        done.set()

    th = threading.Thread(target=writer)
    th.start()
    while not done.is_set():
        seq = s.sequence
        assert seq.shape[1:] == (8, 8) and seq.shape[0] <= 300
        assert np.all(np.diff(seq[:, 0, 0]) >= 0)
    th.join()
    assert s.sequence[-1, 0, 0] == 299 and s.sequence.shape[0] == 300


def test_colour_frames_are_channel_first():
    x = np.random.rand(3, 12, 4, 5)
    s = SequenceStream(x)
    assert s.channels == 3 and len(s) == 12
    a = s.get(5)
    assert a.shape == (3, 5, 4, 5)
    np.testing.assert_array_equal(a, x[:, :5])
    assert s.get_image().shape == (3, 4, 5)
    np.testing.assert_array_equal(s.sequence, x)
    o = convis.Layer.run(LowPass(), SequenceStream(x), dt=5)[0]
    assert tuple(o.shape) == (1, 3, 12, 4, 5)


def test_repeating_stream_loops_forever_and_accepts_put():
    s = RepeatingStream(ramp(3))
    np.testing.assert_array_equal(s.get(7)[:, 0, 0], [0, 1, 2, 0, 1, 2, 0])
    with pytest.raises(TypeError):
        len(s)
    s.put(ramp(4)[3:])
    np.testing.assert_array_equal(s.get(6)[:, 0, 0], [1, 2, 3, 0, 1, 2])
    assert s.available(1000)
    assert RepeatingStream(np.zeros((0, 2, 2))).get(5).shape == (0, 2, 2)


# ------------------------------------------------------------------ timed streams
def test_timed_sequence_stream_finds_frames_by_time():
    s = TimedSequenceStream(ramp(100), t_zero=1.0, dt=0.01)
    assert s.time_to_bin(1.0) == 0 and s.time_to_bin(1.055) == 5 and s.time_to_bin(1.06) == 6
    assert s.time_to_bin(0.5) == -1 and s.time_to_bin(100.0) == 99
    span = s.get_tspan(1.1, 1.2)
    assert span.shape == (10, 3, 4) and span[0, 0, 0] == 10
    assert s.get(3)[:, 0, 0].tolist() == [0, 1, 2]
    s.put(ramp(2) + 100)
    np.testing.assert_allclose(s.times[-2:], [1.0 + 0.01 * 100, 1.0 + 0.01 * 101])
    irregular = TimedSequenceStream(ramp(3), times=[0.0, 0.1, 0.5])
    assert irregular.time_to_bin(0.3) == 1
    with pytest.raises(ValueError, match='increase'):
        TimedSequenceStream(ramp(3), times=[0.0, 0.2, 0.1])
    with pytest.raises(ValueError, match='3 frames'):
        TimedSequenceStream(ramp(3), times=[0.0, 0.2])
    with pytest.raises(ValueError, match='increase'):
        irregular.put(ramp(1), times=[0.4])


def test_timed_resample_stream_interpolates_onto_the_simulation_grid():
    src = TimedSequenceStream(ramp(3, (1, 1)), times=[0.0, 0.1, 0.3])
    lin = TimedResampleStream(src, dt=0.05)
    assert len(lin) == 7
    np.testing.assert_allclose(lin.get(100)[:, 0, 0], [0, 0.5, 1, 1.25, 1.5, 1.75, 2])
    held = TimedResampleStream(src, dt=0.05, kind='previous')
    np.testing.assert_allclose(held.get(100)[:, 0, 0], [0, 0, 1, 1, 1, 1, 2])
    late = TimedResampleStream(src, t_zero=0.12, dt=0.1)
    np.testing.assert_allclose(late.get(10)[:, 0, 0], [1.1, 1.6])
    o = LowPass().run(TimedResampleStream(TimedSequenceStream(ramp(11), dt=0.01), dt=0.001), dt=17)
    assert o[0].shape[2] == 101
    with pytest.raises(TypeError, match='timed stream'):
        TimedResampleStream(RandomStream((2, 2)))


# ------------------------------------------------------------------ processing
def test_processing_stream_equals_a_whole_run():
    x = np.random.rand(50, 4, 4)
    whole = LowPass().run(x)[0][0, 0].numpy()
    s = ProcessingStream(SequenceStream(x), LowPass(), post=lambda y: 2 * y)
    assert len(s) == 50
    parts = [s.get(7) for _ in range(8)]
    np.testing.assert_allclose(np.concatenate(parts), 2 * whole, rtol=1e-6)
    assert s.get(5).shape[0] == 0
    plain = ProcessingStream(RandomStream((3, 3), seed=0), lambda a: a * 0 + 1, pre=lambda a: a[:, :2])
    assert plain.get(4).shape == (4, 2, 3) and np.all(plain.get(4) == 1)
    with pytest.raises(TypeError, match='stream'):
        ProcessingStream(np.zeros((3, 3, 3)), LowPass())


# ------------------------------------------------------------------ Layer.run over streams
@pytest.mark.parametrize('dt', [1, 7, 150, 400, 5000, None])
def test_run_over_a_finite_stream_returns_every_frame(dt):
    x = np.random.rand(400, 3, 3)
    expected = LowPass().run(x)[0]
    o = LowPass().run(SequenceStream(x, max_frames=None), dt=dt)
    assert o[0].shape[2] == 400
    torch.testing.assert_close(o[0], expected, rtol=1e-5, atol=1e-6)


def test_run_over_an_infinite_stream_needs_and_honours_max_t():
    with pytest.raises(ValueError, match='max_t'):
        LowPass().run(RandomStream((4, 4), seed=1), dt=100)
    o = LowPass().run(RandomStream((4, 4), seed=1), dt=100, max_t=777)
    assert o[0].shape == (1, 1, 777, 4, 4)
    ref = LowPass().run(RandomStream((4, 4), seed=1).get(777), dt=None)
    torch.testing.assert_close(o[0], ref[0], rtol=1e-5, atol=1e-6)
    finite = SequenceStream(np.ones((50, 2, 2)))
    assert LowPass().run(finite, dt=20, max_t=30)[0].shape[2] == 30
    assert LowPass().run(finite, dt=20)[0].shape[2] == 20
