"""The compiled loops on 1 and on 2 threads, stage by stage, in one run; the torch reference beside them.

Usage: ``python benchmarks/bench_threads.py [--frames 1000] [--dt 500] [--sizes 50x50 100x100]
[--threads 1 2] [--repeat 5] [--no-torch] [--log-polar]``

For each size, the default retina (ON and OFF layers with spikes, float32, chunks of ``dt`` frames) runs
``--repeat`` times on each thread count, the counts taking turns so that a disturbance of the shared machine
falls on all of them; per thread count the fastest run is kept, and per stage (OPL, gain control, the two
ganglion inputs, the spikes, the rest) the fastest of its times.  ``torch.set_num_threads`` sets both torch's
and the loops' threads (they share one OpenMP runtime).  The torch reference (``CONVIS_NO_COMPILE=1``, the
code the compiled loops are tested against) runs in a child process on the largest thread count.

``--log-polar`` also times a log-polar retina (VirtualRetina's scheme: one blur per line), with spikes and rates
only, in float32 and float64.

Results are frames per second and ratios measured in the same run; compare machines by the ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

import convis

STAGES = ('opl', 'bipolar', 'gang_0_input', 'gang_1_input', 'spikes')


def _shape(text):
    rows, _, cols = text.lower().partition('x')
    return int(rows), int(cols or rows)


def _retina(log_polar=False, dtype=torch.float32, spikes=True):
    retina = convis.retina.Retina(seed=0, spikes=spikes).to(dtype)
    if log_polar:
        retina.resolution.pixel_per_degree = 10.0
        for stage in (retina.opl, retina.bipolar):
            stage.log_polar = (0.5, 1.0)
    return retina


def run_once(retina, x, dt):
    """Seconds of one run over ``x`` from a cleared state, and the seconds of each stage."""
    retina.clear_state()
    stages = dict.fromkeys(STAGES, 0.0)
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, x.shape[2], dt):
            retina(x[:, :, s:s + dt])
            retina.detach_state()
            for name, seconds in retina._timing:
                stages[name] = stages.get(name, 0.0) + seconds
    total = time.perf_counter() - t0
    stages['rest'] = total - sum(stages.values())
    return total, stages


def measure(shape, frames, dt, threads, repeat, log_polar=False, dtype=torch.float32, spikes=True):
    """``{threads: {'fps': .., 'stages': {name: fastest seconds}}}``, the thread counts taking turns."""
    retina = _retina(log_polar, dtype, spikes)
    x = torch.tensor(255 * np.random.RandomState(0).rand(1, 1, frames, *shape), dtype=dtype)
    with torch.no_grad():
        retina(x[:, :, :10])                  # builds the blur operators and loads the compiled loops
    saved = torch.get_num_threads()
    best = {}
    try:
        for _ in range(repeat):
            for n in threads:
                torch.set_num_threads(n)
                total, stages = run_once(retina, x, dt)
                b = best.setdefault(n, {'seconds': float('inf'), 'stages': {}})
                b['seconds'] = min(b['seconds'], total)
                for k, v in stages.items():
                    b['stages'][k] = min(b['stages'].get(k, float('inf')), v)
    finally:
        torch.set_num_threads(saved)
    for b in best.values():
        b['fps'] = frames / b['seconds']
    return best


def _torch_reference(shape, frames, dt, threads, repeat):
    """The same measurement in a child process without compiled loops."""
    env = dict(os.environ, CONVIS_NO_COMPILE='1')
    code = ('import json, sys; sys.path.insert(0, %r); import bench_threads as b; '
            'print(json.dumps(b.measure(%r, %d, %d, [%d], %d)))'
            % (os.path.dirname(os.path.abspath(__file__)), shape, frames, dt, threads, repeat))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])[str(threads)]


def _row(label, r):
    parts = ', '.join('%s %.0f' % (k, 1e6 * v / r['frames']) for k, v in r['stages'].items())
    return '  %-22s %8.0f frames/s   (us per frame: %s)' % (label, r['fps'], parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=1000)
    parser.add_argument('--dt', type=int, default=500)
    parser.add_argument('--sizes', nargs='+', default=['50x50', '100x100'])
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--no-torch', action='store_true', help='leave out the torch reference')
    parser.add_argument('--log-polar', action='store_true', help='also float32 against float64, log-polar')
    args = parser.parse_args(argv)
    print('torch %s, %d cores; loops built with OpenMP: %s' % (torch.__version__, os.cpu_count(), openmp_built()))
    results = {}
    for text in args.sizes:
        shape = _shape(text)
        best = measure(shape, args.frames, args.dt, args.threads, args.repeat)
        print('%dx%d, default retina with spikes, float32, chunks of %d:' % (shape + (args.dt,)))
        for n in args.threads:
            best[n]['frames'] = args.frames
            print(_row('compiled, %d thread%s' % (n, '' if n == 1 else 's'), best[n]))
        lo, hi = min(args.threads), max(args.threads)
        ratios = ', '.join('%s %.2fx' % (k, best[lo]['stages'][k] / max(best[hi]['stages'][k], 1e-12))
                           for k in best[lo]['stages'])
        print('  %d threads against %d: %.2fx overall; by stage: %s' % (hi, lo, best[hi]['fps'] / best[lo]['fps'],
                                                                        ratios))
        if not args.no_torch:
            ref = _torch_reference(shape, args.frames, args.dt, hi, max(1, args.repeat // 2))
            ref['frames'] = args.frames
            print(_row('torch reference, %d th' % hi, ref))
            print('  compiled (%d threads) against the torch reference: %.1fx' % (hi, best[hi]['fps'] / ref['fps']))
        results[text] = best
        if args.log_polar:
            for spikes in (True, False):
                lp = {}
                for dtype in (torch.float32, torch.float64):
                    lp[dtype] = measure(shape, args.frames, args.dt, [hi], args.repeat, log_polar=True, dtype=dtype,
                                        spikes=spikes)[hi]
                    lp[dtype]['frames'] = args.frames
                    print(_row('log-polar %s %s' % (str(dtype)[6:], 'spikes' if spikes else 'rates'), lp[dtype]))
                ratio = lp[torch.float32]['fps'] / lp[torch.float64]['fps']
                print('  log-polar %s: float64 takes %.2fx the time of float32'
                      % ('with spikes' if spikes else 'rates only', ratio))
    return results


def openmp_built():
    """Whether the loaded heat library calls the OpenMP runtime (its file names ``GOMP_parallel``)."""
    from convis import native
    from convis.functional import retina_loops
    retina_loops._heat_functions()
    path = native._LOADED.get('heat')
    if not path:
        return False
    with open(path, 'rb') as f:
        return b'GOMP_parallel' in f.read()


if __name__ == '__main__':
    main()
