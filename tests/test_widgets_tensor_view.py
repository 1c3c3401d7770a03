"""TensorView (convis_widgets/tensor_view.py, frames.py, _sender.py): quantised frames, buffers, pacing."""
import threading
import time
import zlib

import numpy as np
import pytest
import torch
import traitlets

import convis
from convis_widgets import TensorView, sync_views
from convis_widgets._sender import BatchSender, ByteBudget
from convis_widgets.frames import (color_range, decode_batch, dequantise, encode_batch, frame_checksum,
                                   quantise)


def connect(view):
    """Records what the view sends, and says 'request' as the browser does when it shows the view."""
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._handle_frontend_msg(view, {'type': 'request'}, [])
    assert view.wait_sent(10)
    return sent


def received(sent, generation=None):
    """The frames a browser holds after applying the frame messages (newest generation wins)."""
    frames = {}
    newest = max(c['generation'] for c, _ in sent)
    for content, buffers in sent:
        if content['generation'] != (newest if generation is None else generation):
            continue
        if content['type'] == 'frames':
            for i, f in enumerate(decode_batch(content, buffers[0])):
                frames[content['start'] + i] = f
    return np.stack([frames[i] for i in sorted(frames)]), sorted(frames)


def adler32_reference(data):
    """Adler-32 written out as the browser computes it (labextension/src/codec.ts)."""
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return (b << 16) | a


# ---------------------------------------------------------------------------- frames.py
def test_quantise_maps_the_scale_to_256_levels_and_clips():
    q = quantise(np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0, np.nan]), 0.0, 1.0)
    assert q.dtype == np.uint8
    assert q.tolist() == [0, 0, 64, 128, 255, 255, 0]
    assert quantise(torch.tensor([10.0, 20.0]), 10.0, 20.0).tolist() == [0, 255]
    with pytest.raises(ValueError, match='larger'):
        quantise(np.zeros(3), 1.0, 1.0)


def test_dequantise_is_within_half_a_level():
    v = np.linspace(-3, 5, 1001)
    back = dequantise(quantise(v, -3.0, 5.0), -3.0, 5.0)
    assert np.abs(back - v).max() <= 0.5 * 8.0 / 255 + 1e-9


def test_color_range_never_empty_and_symmetric_on_request():
    assert color_range(np.array([1.0, 3.0])) == (1.0, 3.0)
    assert color_range(np.full(5, 2.0)) == (1.5, 2.5)
    assert color_range(np.array([-1.0, 3.0]), symmetric=True) == (-3.0, 3.0)
    lo, hi = color_range(np.arange(101.0), percentile=10)
    assert (lo, hi) == (10.0, 90.0)
    assert color_range(np.array([np.nan, np.inf])) == (0.0, 1.0)


@pytest.mark.parametrize('encoding', ['zlib-delta', 'zlib', 'raw'])
def test_batches_decode_to_the_frames(encoding):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(7, 5, 9), dtype=np.uint8)
    frames[3] = 255
    frames[4] = 0  # differences wrap around modulo 256
    header, buf = encode_batch(frames, start=11, encoding=encoding)
    assert header == {'type': 'frames', 'start': 11, 'count': 7, 'height': 5, 'width': 9, 'encoding': encoding}
    assert np.array_equal(decode_batch(header, buf), frames)
    if encoding == 'raw':
        assert len(buf) == frames.size


def test_auto_encoding_keeps_the_smaller_coding():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(100, 32, 32)), axis=0)  # smooth in time
    smooth = quantise(walk, walk.min(), walk.max())
    spikes = (rng.random((100, 32, 32)) < 0.01).astype(np.uint8) * 255
    # 100 frames are judged on their first AUTO_SAMPLE frames, 12 frames on all of them
    for frames, best in ((smooth, 'zlib-delta'), (spikes, 'zlib'), (smooth[:12], 'zlib-delta'), (spikes[:12], 'zlib')):
        sizes = {e: len(encode_batch(frames, 0, e)[1]) for e in ('zlib-delta', 'zlib')}
        header, buf = encode_batch(frames, 0, 'auto')
        assert header['encoding'] == best and len(buf) == min(sizes.values())
        assert np.array_equal(decode_batch(header, buf), frames)
    assert len(encode_batch(smooth, 0, 'zlib-delta')[1]) < 0.8 * len(encode_batch(smooth, 0, 'zlib')[1])


def test_frame_checksum_is_the_browser_adler32():
    frame = (np.arange(300) * 7 % 256).astype(np.uint8).reshape(15, 20)
    assert frame_checksum(frame) == adler32_reference(frame.tobytes()) == zlib.adler32(frame.tobytes())
    big = np.full((128, 128), 255, np.uint8)  # sums past the modulus
    assert frame_checksum(big) == adler32_reference(big.tobytes())


# ---------------------------------------------------------------------------- TensorView
def test_sends_nothing_before_the_browser_asks():
    view = TensorView(np.random.rand(20, 4, 4))
    sent = []
    view.send = lambda content, buffers=None: sent.append(content)
    view.put(np.random.rand(3, 4, 4))
    assert view.wait_sent(5)
    assert sent == []
    view.close()


def test_buffers_decode_to_the_quantised_frames():
    data = np.random.default_rng(0).normal(size=(2, 3, 50, 6, 7)).astype(np.float32)
    view = TensorView(torch.from_numpy(data), vmin=-2.0, vmax=2.0)
    assert (view.n_batch, view.n_channel, view.n_frames, view.height, view.width) == (2, 3, 50, 6, 7)
    sent = connect(view)
    assert sent[0][0]['type'] == 'clear'
    frames, indices = received(sent)
    assert indices == list(range(50))
    assert np.array_equal(frames, quantise(data[0, 0], -2.0, 2.0))
    assert np.array_equal(frames, view.frames())
    assert all(c['version'] <= view.data_version for c, _ in sent)
    assert view.bytes_sent == sum(len(b[0]) for c, b in sent if c['type'] == 'frames')
    view.close()


def test_first_data_sets_a_stable_colour_scale():
    view = TensorView(np.linspace(0, 4, 10 * 9).reshape(10, 3, 3))
    assert (view.vmin, view.vmax) == (0.0, 4.0)
    view.put(np.full((2, 3, 3), 8.0))  # beyond the scale: clipped, the scale stays
    assert (view.vmin, view.vmax) == (0.0, 4.0)
    assert (view.frames()[-2:] == 255).all()
    view.close()


def test_choosing_batch_and_channel_sends_that_slice():
    data = np.arange(2 * 2 * 4 * 3 * 3, dtype=np.float32).reshape(2, 2, 4, 3, 3)
    view = TensorView(data)
    sent = connect(view)
    sent.clear()
    view.batch, view.channel = 1, 1
    assert view.wait_sent(5)
    frames, _ = received(sent)
    assert np.array_equal(frames, quantise(data[1, 1], view.vmin, view.vmax))
    with pytest.raises(traitlets.TraitError):
        view.batch = 2
    view.close()


def test_sending_starts_at_the_shown_frame():
    view = TensorView(np.random.rand(200, 16, 16))
    view.batch_frames = 10
    view.frame = 125
    sent = connect(view)
    starts = [c['start'] for c, _ in sent if c['type'] == 'frames']
    assert starts[0] == 120
    assert sorted(starts) == list(range(0, 200, 10))
    view.close()


def test_put_appends_frames_like_a_stream():
    view = TensorView(vmin=0.0, vmax=1.0)
    sent = connect(view)
    chunks = [np.random.rand(5, 8, 6) for _ in range(3)]
    for c in chunks:
        view.put(c)
    view.put(convis.Output([torch.rand(1, 1, 2, 8, 6)], keys=['a']))
    assert view.wait_sent(5)
    assert view.n_frames == 17 and (view.height, view.width) == (8, 6)
    frames, indices = received(sent)
    assert indices == list(range(17))
    assert np.array_equal(frames[:15], quantise(np.concatenate(chunks), 0.0, 1.0))
    with pytest.raises(ValueError, match='do not fit'):
        view.put(np.zeros((2, 5, 5)))
    view.close()


def test_max_frames_drops_the_oldest_frames_in_the_browser_too():
    view = TensorView(vmin=0.0, vmax=10.0, max_frames=8)
    sent = connect(view)
    for i in range(3):
        view.put(np.full((5, 2, 2), float(i)))
    assert view.wait_sent(5)
    assert view.n_frames == 8
    expected = quantise(np.array([0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])[-8:], 0.0, 10.0)
    assert view.frames()[:, 0, 0].tolist() == expected.tolist()
    drops = [c for c, _ in sent if c['type'] == 'drop']
    assert [d['count'] for d in drops] == [2, 5]
    frames, _ = received(sent)
    assert np.array_equal(frames, view.frames())
    view.close()


def test_new_scale_requantises_and_starts_a_new_generation():
    data = np.linspace(-1, 1, 6 * 4).reshape(6, 2, 2)
    view = TensorView(data)
    sent = connect(view)
    generation = max(c['generation'] for c, _ in sent)
    view.rescale(-2.0, 2.0)
    assert view.wait_sent(5)
    frames, _ = received(sent)
    assert max(c['generation'] for c, _ in sent) > generation
    assert np.array_equal(frames, quantise(data, -2.0, 2.0))
    view.vmax = 1.0
    assert view.wait_sent(5)
    assert np.array_equal(received(sent)[0], quantise(data, -2.0, 1.0))
    view.rescale(symmetric=True)
    assert (view.vmin, view.vmax) == (-1.0, 1.0)
    view.close()


def test_progressive_update_keeps_generation_order():
    view = TensorView(np.zeros((1, 1, 30, 4, 4)), vmin=0.0, vmax=1.0)
    sent = connect(view)
    g = view.begin_update(30)
    view.write(0, np.full((10, 4, 4), 0.5))
    view.write(10, np.full((20, 4, 4), 1.0))
    assert view.wait_sent(5)
    generations = [c['generation'] for c, _ in sent]
    assert generations == sorted(generations) and generations[-1] == g
    frames, _ = received(sent)
    assert (frames[:10] == 128).all() and (frames[10:] == 255).all()
    with pytest.raises(ValueError, match='outside'):
        view.write(25, np.zeros((10, 4, 4)))
    view.close()


def test_validation_of_traits():
    view = TensorView(np.zeros((3, 2, 2)))
    with pytest.raises(traitlets.TraitError, match='colormap'):
        view.colormap = 'rainbow'
    with pytest.raises(traitlets.TraitError, match='fps'):
        view.fps = 0
    view.frame = 99
    assert view.frame == 2
    with pytest.raises(TypeError):
        TensorView(np.array(['a', 'b']))
    view.close()


def test_sync_views_links_the_time_cursors():
    a, b, c = (TensorView(np.zeros((5, 2, 2))) for _ in range(3))
    links = sync_views(a, b, c)
    assert [(link.source[0], link.target[0]) for link in links] == [(a, b), (b, c)]
    assert all(link.source[1] == link.target[1] == 'frame' for link in links)
    with pytest.raises(ValueError):
        sync_views(a)
    for w in links + [a, b, c]:
        w.close()


def test_close_leaves_no_sender_thread():
    view = TensorView(np.random.rand(300, 32, 32))
    view.send = lambda content, buffers=None: None
    view._handle_frontend_msg(view, {'type': 'request'}, [])
    view.close()
    assert not view._sender.alive
    assert not any(t.name == 'convis-tensorview' for t in threading.enumerate())


# ---------------------------------------------------------------------------- pacing
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_byte_budget_asks_for_a_delay_only_in_debt():
    clock = FakeClock()
    b = ByteBudget(rate=1000.0, burst=500.0, clock=clock)
    assert b.take(400) == 0.0
    assert b.take(600) == pytest.approx(0.5)
    assert b.delay() == pytest.approx(0.5)
    clock.now = 0.25
    assert b.delay() == pytest.approx(0.25)
    clock.now = 10.0
    assert b.delay() == 0.0
    assert b.take(500) == 0.0  # the bucket refills up to the burst only
    assert b.take(1) == pytest.approx(0.001)
    assert b.sent == 1501 and b.messages == 4


def test_sender_sends_in_order_and_replace_drops_what_waits():
    b = ByteBudget(rate=1e9, burst=1e9)
    release = threading.Event()
    sent = []

    def send(item):
        release.wait(5)
        sent.append(item)
        return 10
    sender = BatchSender(send, budget_=b)
    sender.extend([1, 2, 3])
    sender.replace([7, 8])  # 1 may be under way already; 2 and 3 are dropped
    release.set()
    assert sender.wait_idle(5)
    assert sent in ([1, 7, 8], [7, 8])
    assert b.sent == 10 * len(sent)
    sender.close()
    assert not sender.alive


# ---------------------------------------------------------------------------- issue 18: clipping, speed, compact
def test_clipped_fraction_counts_values_outside_the_scale_and_follows_rescale():
    from convis_widgets import TensorView
    v = TensorView(np.zeros((1, 1, 4, 5, 4)), vmin=0.0, vmax=1.0)
    assert v.clipped == 0.0
    a = np.zeros((4, 5, 4), np.float32)
    a[0, 0, :2] = 2.0          # 2 of 80 values above vmax
    a[3, 4, 0] = -1.0          # 1 below vmin
    v.set_data(a)
    assert v.clipped == pytest.approx(3 / 80)
    v.put(np.zeros((2, 5, 4)))
    assert v.clipped == pytest.approx(3 / 120)
    v.rescale()
    assert v.clipped == 0.0 and v.vmax == 2.0 and v.vmin == -1.0
    v.close()


def test_speed_relative_to_real_time_and_compact_trait():
    from convis_widgets import TensorView
    v = TensorView(np.zeros((1, 1, 2, 3, 3)), dt=0.01, fps=25.0, compact=True)
    assert v.speed == pytest.approx(0.25) and v.compact
    v.fps = 100.0
    assert v.speed == pytest.approx(1.0)
    v.close()


def test_an_urgent_batch_goes_out_while_the_budget_is_in_debt_and_the_rest_waits():
    clock = FakeClockForSender()
    b = ByteBudget(rate=1000, burst=100, clock=clock)
    b.take(1100)                               # one second of debt
    sent = []
    sender = BatchSender(lambda item: sent.append(item) or 50, budget_=b)
    sender.extend(['cursor', 'next'], urgent=1)
    deadline = time.time() + 5
    while not sent and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)
    assert sent == ['cursor']                  # 'next' waits for the debt (the clock does not move)
    assert b.sent == 1150
    clock.now = 10.0                           # the debt is paid
    with sender._cond:
        sender._cond.notify_all()
    assert sender.wait_idle(5)
    assert sent == ['cursor', 'next']
    sender.close()


class FakeClockForSender(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now
