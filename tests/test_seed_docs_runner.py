"""The Runner and stream examples of the user documentation run unchanged and do what they say.

The examples are those of the original toolbox's usage guide ("Using Runner objects") and examples page ("Running
convis in a thread", "Input streams"), written out here as the user types them.
"""
import os
import threading
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import convis

USING_RUNNER_OBJECTS = """
import convis, time
import numpy as np

inp = convis.streams.RandomStream(size=(10,10),pixel_per_degree=1.0,level=100.2,mean=128.0)
out1 = convis.streams.SequenceStream(sequence=np.ones((0,10,10)), max_frames=10000)
retina = convis.retina.Retina()
runner = convis.base.Runner(retina, input = inp, output = out1)
runner.start()
time.sleep(5) # let thread run for 5 seconds or longer
plot(out1.sequence.mean((1,2)))
# some time later
runner.stop()
"""

RUNNER_IN_ITS_OWN_THREAD = """
import convis
model = convis.retina.Retina()
input_stream = convis.streams.RandomStream(size=(50,50))
output_stream = convis.streams.InrImageStreamWriter('output.inr')
runner = convis.Runner(model,input_stream,output_stream)
runner.start()
"""

SOME_INPUT = """
import convis
retina = convis.retina.Retina()
"""

STREAM_CLASSES = """
inp = convis.streams.ImageSequence('input_*.jpg')
# or
inp = convis.streams.VideoReader('a_video.mp4')
# or
inp = np.random.randn(2000,50,50)
"""

RUN_IN_BATCHES = """
o = retina.run(inp, dt=500)
"""


@pytest.fixture(autouse=True)
def _clean_up():
    plt.close('all')
    yield
    plt.close('all')
    for r in list(convis.runner._live_runners):
        if r.is_running:
            r.stop()


def test_using_runner_objects_example():
    ns = {'plot': plt.plot}
    exec(compile(USING_RUNNER_OBJECTS, '<Using Runner objects>', 'exec'), ns)
    runner, out1 = ns['runner'], ns['out1']
    assert not runner.is_running and runner.exception is None
    assert [t for t in threading.enumerate() if t.name == 'convis-Runner'] == []
    seq = out1.sequence
    assert runner.frames >= 100 and runner.frames % 100 == 0
    assert seq.shape == (min(runner.frames, 10000), 10, 10)
    assert set(np.unique(seq)) <= {0.0, 1.0} and seq.sum() > 0
    plotted = np.asarray(plt.gca().lines[0].get_ydata())
    assert plotted.shape[0] % 100 == 0 and plotted.shape[0] <= 10000
    np.testing.assert_allclose(plotted * 100, np.round(plotted * 100), atol=1e-4)
    assert runner.frames_per_second > 0


def test_a_runner_runs_in_its_own_thread_into_an_inr_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(RUNNER_IN_ITS_OWN_THREAD, '<A runner runs in its own thread>', 'exec'), ns)
    runner = ns['runner']
    assert runner.is_running
    end = time.monotonic() + 60
    while runner.frames < 100 and time.monotonic() < end:
        time.sleep(0.05)
    runner.stop()
    assert runner.frames >= 100
    r = convis.streams.InrImageStreamReader('output.inr')
    assert len(r) == runner.frames and r.size == (50, 50)
    spikes = r.get(len(r))
    assert set(np.unique(spikes)) <= {0.0, 1.0} and spikes.sum() > 0


def test_image_sequence_and_video_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = (127 + 100 * np.sin(np.arange(30)[:, None, None] / 3.0 + np.arange(24)[None, None, :] / 4.0)
              * np.ones((30, 20, 24))).astype(np.uint8)
    for i, f in enumerate(frames):
        Image.fromarray(f).save('input_%03d.jpg' % i)
    with convis.streams.VideoWriter('a_video.mp4', value_range=(0, 255)) as w:
        w.put(frames)
    ns = {'np': np}
    exec(compile(SOME_INPUT, '<retina>', 'exec'), ns)
    inputs = [line for line in STREAM_CLASSES.split('\n') if line.startswith('inp = ')]
    assert len(inputs) == 3
    for line, frames in zip(inputs, (30, 30, 2000)):
        exec(compile(line, '<input>', 'exec'), ns)
        exec(compile(RUN_IN_BATCHES, '<run>', 'exec'), ns)
        o = ns['o']
        assert o[0] is o.ganglion_spikes_ON and o[1] is o.ganglion_spikes_OFF
        assert tuple(o[0].shape) == (1, 1, frames) + ((20, 24) if frames == 30 else (50, 50))
        assert o[0].sum() + o[1].sum() > 0
        ns['retina'].clear_state()
    assert os.path.exists('a_video.mp4')
