"""LN fitting time per epoch with the direct and the FFT convolution, the FFT speed-up of a large Conv3d
(forward and forward + backward), and the sweep behind ``convis.filters.conv.FFT_COST_RATIO``.

All ratios compare timings taken in the same run (best of a few repeats).  Run with
``python -m benchmarks ln_fit``.
"""
import itertools
import time

import numpy as np
import torch

import convis
from convis.filters import conv as conv_module


def _best(f, repeat):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def _fit_epoch(inp, out, kernel, dt, opt, fft):
    """Time and number of model evaluations of the first epoch of a fresh model."""
    m = convis.models.LN(kernel, population=True)
    m.conv.fft = fft
    calls = [0]
    forward = m.forward

    def counting_forward(x):
        calls[0] += 1
        return forward(x)
    m.forward = counting_forward
    getattr(m.set_optimizer, opt)()
    start = time.perf_counter()
    m.optimize(inp, out, dt=dt, progress=False)
    return time.perf_counter() - start, calls[0]


def fit_epoch_times(size=(2000, 20, 20), kernel=(12, 7, 7), dt=500, repeat=3):
    """Seconds of the first epoch (one ``optimize`` pass over the input) of Adam and LBFGS from a zero kernel,
    direct vs FFT, and seconds per model evaluation (forward + backward; LBFGS evaluates several times per chunk).
    Best of ``repeat`` runs, alternating the two paths."""
    inp, out = convis.samples.generate_sample_data('random', size)
    result = {}
    for opt in ('Adam', 'LBFGS'):
        runs = {False: [], True: []}
        for _ in range(repeat):
            for fft in (False, True):
                runs[fft].append(_fit_epoch(inp, out, kernel, dt, opt, fft))
        for fft in (False, True):
            seconds, calls = min(runs[fft])
            name = '%s_%s' % (opt, 'fft' if fft else 'direct')
            result[name + '_s_per_epoch'] = seconds
            result[name + '_evaluations_per_epoch'] = calls
            result[name + '_s_per_evaluation'] = seconds / calls
        d, f = result['%s_direct_s_per_epoch' % opt], result['%s_fft_s_per_epoch' % opt]
        de, fe = result['%s_direct_s_per_evaluation' % opt], result['%s_fft_s_per_evaluation' % opt]
        print('LN %s fit, %s input, %s kernel, dt=%d: direct %.3f s/epoch, FFT %.3f s/epoch (speed-up %.1fx); '
              'per evaluation direct %.3f s, FFT %.3f s (speed-up %.1fx; %d and %d evaluations)'
              % (opt, size, kernel, dt, d, f, d / f, de, fe, de / fe, result['%s_direct_evaluations_per_epoch' % opt],
                 result['%s_fft_evaluations_per_epoch' % opt]))
    return result


def conv_speedup(size=(500, 100, 100), kernel=(10, 15, 15), repeat=2):
    """FFT vs direct Conv3d: forward and forward + backward (gradient of the weight) times and their ratios."""
    torch.manual_seed(0)
    x = torch.randn((1, 1) + tuple(size))
    conv = convis.filters.Conv3d(1, 1, kernel).set_weight(np.random.default_rng(0).standard_normal(kernel))
    outputs, times = {}, {}
    for fft in (False, True):
        conv.fft = fft

        def forward():
            conv.clear_state()
            with torch.no_grad():
                outputs[fft] = conv(x)

        def forward_backward():
            conv.clear_state()
            conv.weight.grad = None
            conv(x).sum().backward()
        times[('forward', fft)] = _best(forward, repeat)
        times[('forward+backward', fft)] = _best(forward_backward, repeat)
    a, b = outputs[False], outputs[True]
    rel = float((a - b).abs().max() / a.abs().max())
    result = {'max_relative_difference': rel}
    for what in ('forward', 'forward+backward'):
        d, f = times[(what, False)], times[(what, True)]
        print('Conv3d %s kernel on %s input, %s: direct %.3f s, FFT %.3f s, speed-up %.1fx'
              % (kernel, size, what, d, f, d / f))
        result['%s_speedup' % what] = d / f
    print('largest |FFT - direct| / max|direct| = %.2e' % rel)
    return result


def threshold_sweep(threads=1, repeat=5):
    """FFT speed-up against the cost estimate that ``fft='auto'`` compares with ``FFT_COST_RATIO``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for (t, n), (kt, k) in itertools.product([(200, 50), (500, 20), (100, 100)],
                                                 itertools.product([1, 3, 5, 10, 20], [1, 3, 5, 9, 15])):
            if kt == 1 and k == 1:
                continue
            x = torch.randn(1, 1, t + kt - 1, n + k - 1, n + k - 1)
            w = torch.randn(1, 1, kt, k, k)
            direct = _best(lambda: conv_module.correlate(x, w, fft=False), repeat)
            fft = _best(lambda: conv_module.correlate(x, w, fft=True), repeat)
            rows.append((conv_module.cost_ratio(tuple(x.shape), tuple(w.shape)), direct / fft, (t, n, kt, k)))
    finally:
        torch.set_num_threads(previous)
    rows.sort()
    print('FFT speed-up by estimated cost ratio (%d thread(s)); auto uses the FFT above %.2f:' % (threads, conv_module.FFT_COST_RATIO))
    for est, speedup, (t, n, kt, k) in rows:
        print('  est %6.2f  speed-up %6.2f   input %dx%dx%d kernel %dx%dx%d' % (est, speedup, t, n, n, kt, k, k))
    above = [s for e, s, _ in rows if e > conv_module.FFT_COST_RATIO]
    below = [s for e, s, _ in rows if e <= conv_module.FFT_COST_RATIO]
    print('  median speed-up where auto picks the FFT: %.2f (%d cases); where it picks direct: %.2f (%d cases)'
          % (np.median(above), len(above), np.median(below), len(below)))
    return {'median_speedup_fft_chosen': float(np.median(above)), 'median_speedup_direct_chosen': float(np.median(below))}


def main():
    convis.base.show_progress = False
    print('torch %s, %d thread(s)' % (torch.__version__, torch.get_num_threads()))
    result = {'threads': torch.get_num_threads()}
    result.update(fit_epoch_times())
    result.update(conv_speedup())
    result.update(threshold_sweep())
    return result


if __name__ == '__main__':
    main()
