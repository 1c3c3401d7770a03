"""The Runner and stream examples of the user documentation run unchanged and do what they say.

The code is read from the seed documents themselves (the block after a given sentence), so a
change to either side shows up here.
"""
import glob
import os
import re
import textwrap
import threading
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import convis
from helpers import reference_path


def doc_block(document, after):
    """The first code block (``.. code-block::`` or ``::``) after the text ``after`` in a seed document."""
    with open(glob.glob(reference_path('seed-docs', document + '_*.txt'))[0]) as f:
        text = f.read()
    rest = text[text.index(after) + len(after):]
    lines = rest.split('\n')
    i = 0
    while not lines[i].startswith('    ') or lines[i].strip() in ('python',):
        i += 1
    block = []
    while i < len(lines) and (lines[i].startswith('    ') or not lines[i].strip()):
        block.append(lines[i])
        i += 1
    code = textwrap.dedent('\n'.join(block)).strip()
    return '\n'.join(re.sub(r'^>>> ?', '', line) for line in code.split('\n'))


@pytest.fixture(autouse=True)
def _clean_up():
    plt.close('all')
    yield
    plt.close('all')
    for r in list(convis.runner._live_runners):
        if r.is_running:
            r.stop()


def test_using_runner_objects_example():
    code = doc_block('000', 'The execution can also happen in a separate thread:')
    assert 'runner.start()' in code and 'time.sleep(5)' in code and 'runner.stop()' in code
    ns = {'plot': plt.plot}
    exec(compile(code, '<Using Runner objects>', 'exec'), ns)
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
    code = doc_block('001', 'A runner runs in its own thread and consumes an input stream::')
    assert "InrImageStreamWriter('output.inr')" in code and code.endswith('runner.start()')
    ns = {}
    exec(compile(code, '<A runner runs in its own thread>', 'exec'), ns)
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
    setup = doc_block('001', 'some input:')
    streams = doc_block('001', 'you can use a stream class:')
    running = doc_block('001', 'to split up the input into smaller batches.')
    assert "ImageSequence('input_*.jpg')" in streams and "VideoReader('a_video.mp4')" in streams
    assert running == 'o = retina.run(inp, dt=500)'
    ns = {'np': np}
    exec(compile(setup, '<retina>', 'exec'), ns)
    for line in streams.split('\n'):
        if line.startswith('inp = convis.streams'):
            exec(compile(line, '<stream>', 'exec'), ns)
            exec(compile(running, '<run>', 'exec'), ns)
            o = ns['o']
            assert o[0] is o.ganglion_spikes_ON and o[1] is o.ganglion_spikes_OFF
            assert tuple(o[0].shape) == (1, 1, 30, 20, 24)
            ns['retina'].clear_state()
    assert os.path.exists('a_video.mp4')
