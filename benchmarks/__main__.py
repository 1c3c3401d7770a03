"""Runs every ``benchmarks/bench_*.py`` ``main()`` (or only those named on the command line) and prints the results.

    python -m benchmarks                 # all
    python -m benchmarks ln_fit          # only bench_ln_fit.py
"""
import importlib
import os
import resource
import sys
import time

import torch


def discover(names=()):
    folder = os.path.dirname(os.path.abspath(__file__))
    found = sorted(f[len('bench_'):-len('.py')] for f in os.listdir(folder)
                   if f.startswith('bench_') and f.endswith('.py'))
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise SystemExit('unknown benchmark(s) %s; available: %s' % (unknown, ', '.join(found)))
        found = [n for n in found if n in names]
    return found


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    names = discover(sys.argv[1:] if argv is None else argv)
    results = {}
    for name in names:
        module = importlib.import_module('benchmarks.bench_%s' % name)
        print('=== %s === (%d CPU cores, %d torch threads)' % (name, os.cpu_count() or 0, torch.get_num_threads()),
              flush=True)
        start = time.perf_counter()
        rss = _peak_rss_mb()
        saved = sys.argv, torch.get_num_threads()
        sys.argv = [module.__file__]                       # each benchmark runs with its own defaults
        try:
            results[name] = module.main()
        finally:
            sys.argv = saved[0]
            torch.set_num_threads(saved[1])
        print('--- %s took %.1f s; peak resident memory %.0f MB (+%.0f MB during this benchmark)'
              % (name, time.perf_counter() - start, _peak_rss_mb(), _peak_rss_mb() - rss), flush=True)
    return results


if __name__ == '__main__':
    main()
