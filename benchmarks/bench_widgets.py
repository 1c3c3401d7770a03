"""Latency and bandwidth of the widgets: slider change to first new frame, bytes per second.

Measures, kernel side, in one run on one machine:

* **latency**: a ParameterPanel slider moves (as the browser's message would move it) on a
  ``ModelExplorer`` of ``convis.retina.Retina()`` with a 64 x 64 x 500 stimulus, until the first
  frames message of the new result leaves the output view (schedule + compute of the first
  sub-chunk + quantise + compress + send), after an idle explorer and while a previous preview is
  still running (superseding); the same for an LN model, where compute is negligible, shows the
  cost of the pipeline itself;
* **bytes**: the compressed size of one update (500 frames) of 64 x 64 and 128 x 128 views of
  retina outputs and stimuli, and the bytes/s a 128 x 128 view sends under continuous updates
  (held under the shared budget, ``convis_widgets._sender.budget.rate``).  Playing sends nothing:
  the browser plays the frames it holds.

Run with ``python -m benchmarks widgets``.
"""
import statistics
import time

import numpy as np

import convis
from convis_widgets import ModelExplorer, TensorView, make_stimulus
from convis_widgets._sender import budget
from convis_widgets.frames import encode_batch, quantise


def _connect(view, log):
    """Records (time, generation, bytes) of every frames message the view sends, as if a browser showed it."""
    def send(content, buffers=None):
        if content.get('type') == 'frames':
            log.append((time.perf_counter(), view, content['generation'], len(buffers[0])))
    view.send = send
    view._handle_frontend_msg(view, {'type': 'request'}, [])


def _first_send_after(log, view, t0, generation):
    times = [t for t, v, g, _ in log if v is view and g >= generation and t >= t0]
    return min(times) - t0 if times else float('nan')


def latency(model, name, parameter, values, shape=(500, 64, 64), supersede=False):
    """Seconds from a slider change to the first frames message of the new result (median over ``values``)."""
    e = ModelExplorer(model, shape=shape, impulse=False, device='auto')
    log = []
    for v in [e.input_view] + e.output_views:
        _connect(v, log)
    e.wait(600)
    # one more run so that the sub-chunk sizes are fitted to the model's speed
    e.panel.set_value(parameter, values[0])
    e.wait(600)
    control = e.panel.controls[parameter]
    results = []
    for v in values[1:]:
        if supersede:
            e.panel.set_value(parameter, values[0])
            while not e.worker.busy:
                time.sleep(0.001)
            time.sleep(e.first_latency)
        t0 = time.perf_counter()
        control.slider.value = v
        generation_before = e.output_views[0]._generation
        e.wait(600)
        for view in e.output_views:
            view.wait_sent(60)
        results.append(_first_send_after(log, e.output_views[0], t0, generation_before + 1))
    run = dict(e.last_run)
    e.close()
    first = statistics.median(results)
    print('%-34s first new frames sent after %6.1f ms (median of %d; %s); whole chunk %6.0f ms on %s' % (
        name + (' (superseding)' if supersede else ''), 1000 * first, len(results),
        ', '.join('%.0f' % (1000 * r) for r in results), 1000 * run['outputs'], run['device']))
    return {'first_frames_s': first, 'all_s': results, 'chunk_s': run['outputs'], 'device': run['device']}


def pipeline_costs(shape=(50, 64, 64)):
    """Milliseconds to quantise and to compress one sub-chunk of frames."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(20):
        q = quantise(x, 0.0, 1.0)
    tq = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    for _ in range(20):
        encode_batch(q, 0, 'auto')
    te = (time.perf_counter() - t0) / 20
    print('quantise %s: %.2f ms, compress (auto): %.2f ms' % ('x'.join(map(str, shape)), 1000 * tq, 1000 * te))
    return {'quantise_ms': 1000 * tq, 'encode_ms': 1000 * te}


def update_sizes(retina_out64, retina_out128):
    """Compressed bytes of one 500-frame update of a view, for typical contents."""
    cases = {
        'retina ON spikes 64x64': retina_out64,
        'retina ON spikes 128x128': retina_out128,
        'grating 128x128': make_stimulus('grating', 500, 128, 128),
        'moving bar 128x128': make_stimulus('bar', 500, 128, 128),
        'white noise 128x128': make_stimulus('noise', 500, 128, 128),
    }
    sizes = {}
    for name, data in cases.items():
        view = TensorView(data)
        log = []
        _connect(view, log)
        view.wait_sent(120)
        sizes[name] = sum(b for *_, b in log)
        raw = int(np.prod(np.shape(data)[-3:]))
        print('%-28s one update: %8d bytes (%.1f%% of %d raw uint8 bytes)' % (name, sizes[name],
                                                                            100.0 * sizes[name] / raw, raw))
        view.close()
    return sizes


def sustained_rate(seconds=6.0):
    """Bytes/s sent by a 128 x 128 view replaced with new smooth 500-frame contents 4 times a second."""
    view = TensorView(vmin=-3.0, vmax=3.0)
    log = []
    rng = np.random.default_rng(0)
    view.set_data(np.zeros((500, 128, 128), np.float32))
    _connect(view, log)
    view.wait_sent(60)
    log.clear()
    start = time.perf_counter()
    sent_before = budget.sent
    while time.perf_counter() - start < seconds:
        walk = np.cumsum(rng.normal(scale=0.2, size=(500, 16, 16)), axis=0).astype(np.float32)
        view.set_data(np.kron(walk, np.ones((1, 8, 8), np.float32)))
        time.sleep(0.25)
    elapsed = time.perf_counter() - start
    rate = sum(b for *_, b in log) / elapsed
    print('128x128 view, 4 new 500-frame contents/s for %.0f s: %.0f bytes/s sent (budget %.0f bytes/s, '
          'shared by all views; %.0f bytes through it)' % (elapsed, rate, budget.rate, budget.sent - sent_before))
    view.close()
    return {'bytes_per_s': rate, 'budget': budget.rate}


def main():
    results = {'pipeline': pipeline_costs()}
    ln = convis.models.LN((5, 3, 3), bias=True)
    ln.conv.set_weight(np.random.default_rng(0).random((5, 3, 3)) / 45.0)
    results['ln'] = latency(ln, 'LN 64x64x500', 'conv.bias', [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    retina = convis.retina.Retina()
    values = [100.0, 120.0, 140.0, 160.0]
    results['retina'] = latency(retina, 'Retina 64x64x500', 'bipolar.g_leak', values)
    results['retina_supersede'] = latency(convis.retina.Retina(), 'Retina 64x64x500', 'bipolar.g_leak', values,
                                          supersede=True)
    stim64 = 255 * make_stimulus('grating', 500, 64, 64, dt=retina.resolution.dt)
    stim128 = 255 * make_stimulus('grating', 500, 128, 128, dt=retina.resolution.dt)
    out64 = convis.retina.Retina().run(stim64, dt=100)[0]
    out128 = convis.retina.Retina().run(stim128, dt=100)[0]
    results['sizes'] = update_sizes(out64, out128)
    results['sustained'] = sustained_rate()
    return results


if __name__ == '__main__':
    main()
