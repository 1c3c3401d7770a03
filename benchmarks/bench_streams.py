"""Throughput of the file pipeline (video file -> model -> HDF5) and of the background Runner.

Measures, in one run on one machine (frames per second, best of a few repeats where cheap):

* reading an mp4 (``VideoReader``), writing it (``VideoWriter``), writing HDF5 / INR / npy;
* an LN model and the retina alone on frames in memory, and the same model fed from the mp4 and
  writing HDF5 through ``Runner.run`` (the ratio is the cost of the streams);
* the background ``Runner`` on ``RandomStream -> Retina -> SequenceStream`` (the documented example) and
  with an LN model, for a fixed wall time;
* the memory growth (tracemalloc) over 20,000 frames through a Runner.

Run with ``python -m benchmarks streams``.
"""
import os
import tempfile
import time
import tracemalloc

import numpy as np

import convis
from convis.streams import (HDF5Writer, InrImageStreamWriter, NumpyWriter, RandomStream, SequenceStream,
                            VideoReader, VideoWriter)


def _stimulus(n, shape):
    t = np.arange(n)[:, None, None]
    x = np.arange(shape[0])[None, :, None]
    y = np.arange(shape[1])[None, None, :]
    return (127.5 * (1 + 0.5 * np.sin(2 * np.pi * (4 * x / shape[0] + 2 * y / shape[1] - 0.02 * t)))).astype(np.float32)


def _fps(n, seconds):
    return n / seconds if seconds > 0 else float('nan')


def _timed(f):
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def _ln():
    m = convis.models.LN((10, 5, 5))
    m.conv.set_weight(np.random.RandomState(0).rand(10, 5, 5) / 250.0)
    return m


def file_throughput(folder, n=2000, shape=(64, 64)):
    """Frames/s of writing and reading the file formats."""
    frames = _stimulus(n, shape)
    video = os.path.join(folder, 'stimulus.mp4')
    result = {}

    def write_video():
        with VideoWriter(video, fps=25, value_range=(0, 255)) as w:
            for s in range(0, n, 500):
                w.put(frames[s:s + 500])
    _, sec = _timed(write_video)
    result['mp4 write'] = _fps(n, sec)

    def read_video():
        r = VideoReader(video)
        k = sum(r.get(500).shape[0] for _ in range(n // 500))
        r.close()
        return k
    k, sec = _timed(read_video)
    assert k == n
    result['mp4 read'] = _fps(n, sec)
    for name, make in (('HDF5 write (gzip)', lambda: HDF5Writer(os.path.join(folder, 'x.h5'), overwrite=True)),
                       ('INR write (float64)', lambda: InrImageStreamWriter(os.path.join(folder, 'x.inr'))),
                       ('npy write', lambda: NumpyWriter(os.path.join(folder, 'x.npy')))):
        def write(make=make):
            with make() as w:
                for s in range(0, n, 500):
                    w.put(frames[s:s + 500])
        _, sec = _timed(write)
        result[name] = _fps(n, sec)
    return video, result


def pipeline(video, dt=500, repeat=5):
    """A model on frames in memory vs the same model between an mp4 and an HDF5 file (Runner.run).

    Both runs use the same warmed-up model (state cleared before each), alternate ``repeat`` times,
    and the best time of each is kept.
    """
    result = {}
    folder = os.path.dirname(video)
    for name, make, n in (('LN 10x5x5', _ln, 2000), ('Retina', convis.retina.Retina, 1000)):
        frames = VideoReader(video).get(n)
        model = make()
        model.run(frames[:dt], dt=dt, progress=False)
        best_mem = best_files = float('inf')
        for _ in range(repeat):
            model.clear_state()
            _, sec = _timed(lambda: model.run(frames, dt=dt, progress=False))
            best_mem = min(best_mem, sec)
            model.clear_state()
            with HDF5Writer(os.path.join(folder, 'out.h5'), overwrite=True) as out:
                runner = convis.Runner(model, VideoReader(video), out, chunk_size=dt)
                k, sec = _timed(lambda: runner.run(n, progress=False))
            assert k == n
            best_files = min(best_files, sec)
        mem, files = _fps(n, best_mem), _fps(n, best_files)
        result[name] = {'in memory': mem, 'mp4 -> model -> HDF5': files, 'streams share of time': 1 - files / mem}
    return result


def background_runner(seconds=5.0):
    """Frames/s of a Runner thread: the documented Retina example (10x10) and an LN model (50x50)."""
    result = {}
    cases = (('Retina 10x10 (documented example)', convis.retina.Retina,
              RandomStream(size=(10, 10), pixel_per_degree=1.0, level=100.2, mean=128.0, seed=0)),
             ('Retina 50x50', convis.retina.Retina, RandomStream(size=(50, 50), level=255.0, seed=0)),
             ('LN 10x5x5 50x50', _ln, RandomStream(size=(50, 50), level=255.0, seed=0)))
    for name, make, inp in cases:
        out = SequenceStream(np.ones((0,) + inp.size), max_frames=10000)
        runner = convis.Runner(make(), inp, out)
        runner.start()
        time.sleep(seconds)
        start = time.perf_counter()
        runner.stop()
        stop_s = time.perf_counter() - start
        result[name] = {'frames/s': runner.frames_per_second, 'frames': runner.frames, 'stop took s': stop_s}
    return result


def memory_growth(frames=20000):
    """Traced memory growth over ``frames`` frames through a Runner (should not grow with length)."""
    runner = convis.Runner(_ln(), RandomStream((20, 20), seed=0), SequenceStream(max_frames=1000), chunk_size=500)
    runner.run(2000, progress=False)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    runner.run(frames, progress=False)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {'frames': frames, 'growth bytes': after - before, 'peak above start bytes': peak - before}


def main():
    convis.base.show_progress = False
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        video, results['files (frames/s, 64x64)'] = file_throughput(folder)
        results['pipeline (frames/s, 64x64, dt=500)'] = pipeline(video)
    results['background Runner'] = background_runner()
    results['memory over a long run'] = memory_growth()
    for section, values in results.items():
        print(section)
        for k, v in values.items():
            if isinstance(v, dict):
                print('  %-36s %s' % (k, ', '.join('%s %.3g' % kv for kv in v.items())))
            else:
                print('  %-36s %.3g' % (k, v))
    return results


if __name__ == '__main__':
    main()
