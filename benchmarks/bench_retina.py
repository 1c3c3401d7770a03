"""Frames per second of the default retina (ON and OFF layers with spikes) and each stage's share.

Usage: ``python benchmarks/bench_retina.py [--frames 2000] [--dt 500] [--sizes 50 100] [--threads N]``

Runs the default :class:`convis.retina.Retina` on uniform random input (0..255) in chunks of ``dt``
frames, as ``retina.run`` does, and prints frames/s (wall clock and per CPU second, which is less
disturbed by other processes) and the share of the time spent in each stage.
"""
import argparse
import time
from collections import OrderedDict

import numpy as np
import torch

import convis


def bench(size, frames, dt, config=None, dtype=torch.float32, device='cpu'):
    retina = convis.retina.Retina(seed=0, config=config).to(dtype=dtype, device=device)
    x = torch.tensor(255 * np.random.rand(1, 1, frames, size, size), dtype=dtype, device=device)
    with torch.no_grad():
        retina(x[:, :, :10])                 # builds the blur matrices once
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
    return frames / total, total, shares, frames / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=2000)
    parser.add_argument('--dt', type=int, default=500)
    parser.add_argument('--sizes', type=int, nargs='+', default=[50, 100])
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--config', default=None, help='a VirtualRetina XML file (default: the default retina)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print('torch %s, %d threads, device %s' % (torch.__version__, torch.get_num_threads(), args.device))
    for size in args.sizes:
        fps, total, shares, fps_cpu = bench(size, args.frames, args.dt, args.config, device=args.device)
        parts = ', '.join('%s %.0f%%' % (k, 100 * v / total) for k, v in shares.items())
        print('%dx%d: %.0f frames/s (%d frames in %.2f s; %.0f frames per CPU second); %s'
              % (size, size, fps, args.frames, total, fps_cpu, parts))


if __name__ == '__main__':
    main()
