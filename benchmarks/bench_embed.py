"""Kernel-free exports: time and size of ``TensorView.to_html`` against matplotlib's ``to_jshtml``.

Both make a self-contained HTML player of the same 100 frames of 64 x 64 pixels, in one run on one machine:

* **ours**: :meth:`convis_widgets.TensorView.to_html` (quantised uint8 frames, colour map as the palette of
  PNG sprite sheets, an inline player; the time includes quantising and encoding, not the view's creation);
* **matplotlib**: ``FuncAnimation`` of an ``imshow`` of the same frames (same colour map and scale, the
  default 6.4 x 4.8 inch figure) and ``anim.to_jshtml()`` (one PNG of the rendered figure a frame).

Contents: a drifting grating (the explorer's default stimulus), a retina's ganglion output to it (smooth,
mostly grey), and uniform noise (the worst case for compression).  Also ours on 500 frames of 128 x 128,
and ``save`` to mp4 and gif.

Run with ``python -m benchmarks embed``.
"""
import os
import statistics
import tempfile
import time

import numpy as np

import convis
from convis_widgets import TensorView, make_stimulus


def _ours(data, colormap, repeats=5):
    """Median seconds of ``to_html`` over ``repeats`` calls (after one warm-up) and the bytes of its output."""
    view = TensorView(data, colormap=colormap)
    view.to_html()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        text = view.to_html()
        times.append(time.perf_counter() - start)
    view.close()
    return statistics.median(times), len(text.encode('utf-8'))


def _matplotlib(data, colormap):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib import animation
    frames = np.asarray(data, np.float32).reshape(-1, data.shape[-2], data.shape[-1])
    start = time.perf_counter()
    fig, ax = plt.subplots()
    im = ax.imshow(frames[0], cmap=colormap, vmin=float(frames.min()), vmax=float(frames.max()))
    fig.colorbar(im)

    def update(i):
        im.set_data(frames[i])
        return [im]
    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=40, blit=True)
    text = anim.to_jshtml()
    seconds = time.perf_counter() - start
    plt.close(fig)
    return seconds, len(text.encode('utf-8'))


def _contents():
    retina = convis.retina.Retina()
    grating = make_stimulus('grating', 100, 64, 64, dt=retina.resolution.dt)
    ganglion = retina.run(255 * grating, dt=100)[0].detach().cpu().numpy()
    noise = np.random.default_rng(0).random((100, 64, 64)).astype(np.float32)
    return [('grating', grating, 'gray'), ('retina ganglion ON', ganglion, 'viridis'), ('noise', noise, 'gray')]


def main():
    results = {}
    print('%-22s %24s %24s %12s' % ('100 frames of 64x64', 'TensorView.to_html', 'matplotlib to_jshtml',
                                     'size, time'))
    for name, data, colormap in _contents():
        ours = _ours(data, colormap)
        mpl = _matplotlib(data, colormap)
        results[name] = {'ours_s': ours[0], 'ours_bytes': ours[1], 'matplotlib_s': mpl[0],
                         'matplotlib_bytes': mpl[1]}
        print('%-22s %10.3f s %10.0f kB %10.3f s %10.0f kB %6.0fx %3.0fx' % (
            name, ours[0], ours[1] / 1e3, mpl[0], mpl[1] / 1e3, mpl[1] / ours[1], mpl[0] / ours[0]),
            flush=True)
    big = make_stimulus('grating', 500, 128, 128, dt=0.001)
    seconds, size = _ours(big, 'gray')
    results['grating 500x128x128'] = {'ours_s': seconds, 'ours_bytes': size}
    print('ours, grating of 500 frames of 128x128: %.3f s, %.0f kB' % (seconds, size / 1e3))
    view = TensorView(_contents()[0][1], colormap='viridis')
    with tempfile.TemporaryDirectory() as d:
        for ext in ('mp4', 'gif'):
            start = time.perf_counter()
            path = view.save(os.path.join(d, 'movie.' + ext))
            results['save_' + ext] = {'s': time.perf_counter() - start, 'bytes': os.path.getsize(path)}
            print('save %s (100 frames of 64x64 at 256x256): %.3f s, %.0f kB' % (
                ext, results['save_' + ext]['s'], results['save_' + ext]['bytes'] / 1e3))
    view.close()
    return results


if __name__ == '__main__':
    main()
