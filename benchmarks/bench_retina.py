"""Frames per second of the default retina (ON and OFF layers, with spikes and with rates only) and each stage's share.

Usage: ``python benchmarks/bench_retina.py [--frames 2000] [--dt 500] [--sizes 50x50 100x100 160x128]
[--threads N] [--device cpu|cuda] [--config FILE]``

Runs the default :class:`convis.retina.Retina` on uniform random input (0..255) in chunks of ``dt``
frames, as ``retina.run`` does (best of ``--repeat`` runs), and prints per size: frames/s (wall clock, and per CPU second of this
process), the same as a multiple of real time at 1 kHz steps (1,000 frames/s) and of the original
toolbox's measured speed (about 1,100 frames/s at 50x50 and 480 at 100x100 on a 2-core CPU), the share
of each stage, and the growth of the process's peak resident memory during the run.  A reference step
(one 100 x 100 float32 matrix product) is timed in the same run, so that runs on different machines
can be compared as ratios.
"""
import argparse
import resource
import time
from collections import OrderedDict

import numpy as np
import torch

import convis

ORIGINAL_FPS = {(50, 50): 1100.0, (100, 100): 480.0}
"""The original toolbox's retina (ON+OFF, spikes, no autograd, dt=500, 2000 frames) on a 2-core CPU."""


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reference_step_us(repeats=2000):
    """Microseconds of one 100 x 100 float32 matrix product (best of three)."""
    a, b, out = torch.rand(100, 100), torch.rand(100, 100), torch.empty(100, 100)
    best = float('inf')
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best * 1e6


def bench(shape, frames, dt, config=None, dtype=torch.float32, device='cpu', spikes=True, repeat=3):
    """Runs the retina over ``frames`` frames of ``shape`` (rows, columns), ``repeat`` times from a cleared
    state; returns the measurements of the fastest run (the least disturbed by other processes)."""
    retina = convis.retina.Retina(seed=0, config=config, spikes=spikes).to(dtype=dtype, device=device)
    x = torch.tensor(255 * np.random.rand(1, 1, frames, *shape), dtype=dtype)
    x = x.to(device)
    best = None
    rss0 = _peak_rss_mb()
    with torch.no_grad():
        retina(x[:, :, :10])                 # builds the blur matrices and compiled loops once
        for _ in range(repeat):
            retina.clear_state()
            shares = OrderedDict()
            c0 = time.process_time()
            t0 = time.perf_counter()
            for s in range(0, frames, dt):
                retina(x[:, :, s:s + dt])
                retina.detach_state()
                for name, seconds in retina._timing:
                    shares[name] = shares.get(name, 0.0) + seconds
            if device != 'cpu':
                torch.cuda.synchronize()
            total = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if best is None or total < best['seconds']:
                best = {'fps': frames / total, 'seconds': total, 'shares': shares, 'fps_cpu': frames / cpu}
    best['peak_rss_growth_mb'] = _peak_rss_mb() - rss0
    return best


def blur_modes(sizes=(50, 100, 160), sigmas_deg=(0.15, 0.3, 0.6, 1.2), steps=300):
    """Microseconds per step of the compiled leaky heat loop with the blur as its matrix band and as the
    recursive filter (float32, one image), for square maps at 5 px/deg and sigma * sqrt(1/4)."""
    from convis.functional import retina_loops as loops
    from convis.native import pointer
    fns = loops._heat_functions()
    if fns is None:
        print('no compiled loops (no C compiler, or CONVIS_NO_COMPILE is set)')
        return {}
    saved, results = loops.RECURSION_COST, {}
    try:
        for n in sizes:
            for sig in sigmas_deg:
                blur = convis.retina.Retina().opl._blur(torch.tensor(sig), torch.zeros(1, 1, 1, n, n),
                                                         scale=torch.tensor(0.5))
                u, y0 = torch.randn(steps, n, n), torch.randn(n, n)
                out = torch.empty_like(u)
                row = {}
                for mode, cost in (('band', float('inf')), ('recursion', -1)):
                    loops.RECURSION_COST = cost
                    op, keep = loops._operator(blur, 0.8, n, n, torch.float32)
                    if mode == 'band':
                        ops = keep[0]
                        row['width'] = float((ops['ghi'] - ops['glo']).double().mean()) + 2 * ops['K'] + 1
                    best = float('inf')
                    for _ in range(3):
                        t0 = time.perf_counter()
                        fns['heat'][torch.float32](steps, 1, n, n, pointer(u), pointer(out), pointer(y0), 0.25, op)
                        best = min(best, (time.perf_counter() - t0) / steps * 1e6)
                    row[mode] = best
                print('blur %dx%d, sigma %.2f deg: band width %3.0f: band %.1f us/step, recursion %.1f us/step (%.2fx)'
                      % (n, n, sig, row['width'], row['band'], row['recursion'], row['band'] / row['recursion']))
                results[(n, sig)] = row
    finally:
        loops.RECURSION_COST = saved
    return results


def _shape(text):
    if 'x' in text:
        rows, cols = text.lower().split('x')
        return int(rows), int(cols)
    return int(text), int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=2000)
    parser.add_argument('--dt', type=int, default=500)
    parser.add_argument('--sizes', nargs='+', default=['50x50', '100x100', '160x128'],
                        help='frame sizes as ROWSxCOLUMNS (or one number for a square)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--config', default=None, help='a VirtualRetina XML file (default: the default retina)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--rates', action='store_true', help='also run without spikes (firing rates only)')
    parser.add_argument('--blurs', action='store_true', help='only compare the two compiled blurs (band, recursion)')
    parser.add_argument('--repeat', type=int, default=3, help='runs per size; the fastest is reported')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.blurs:
        return blur_modes()
    ref = reference_step_us()
    print('torch %s, %d threads, device %s; reference step (100x100 matrix product): %.1f us'
          % (torch.__version__, torch.get_num_threads(), args.device, ref))
    results = {}
    for text in args.sizes:
        shape = _shape(text)
        for spikes in ([True, False] if args.rates else [True]):
            r = bench(shape, args.frames, args.dt, args.config, device=args.device, spikes=spikes, repeat=args.repeat)
            parts = ', '.join('%s %.0f%%' % (k, 100 * v / r['seconds']) for k, v in r['shares'].items())
            original = ORIGINAL_FPS.get(shape)
            print('%dx%d %s: %.0f frames/s (%d frames in %.2f s; %.0f per CPU second) = %.1fx real time at 1 kHz%s; '
                  'one frame = %.1f reference steps; %s; peak memory +%.0f MB'
                  % (shape[0], shape[1], 'spikes' if spikes else 'rates', r['fps'], args.frames, r['seconds'],
                     r['fps_cpu'], r['fps'] / 1000.0,
                     ', %.1fx the original' % (r['fps'] / original) if original and spikes else '',
                     1e6 / r['fps'] / ref, parts, r['peak_rss_growth_mb']), flush=True)
            results[(shape, spikes)] = r
    return results


if __name__ == '__main__':
    main()
