"""Runs every ``benchmarks/bench_*.py`` ``main()`` (or only those named on the command line) and prints the results.

    python -m benchmarks                 # all
    python -m benchmarks ln_fit          # only bench_ln_fit.py
"""
import importlib
import os
import sys
import time


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


def main(argv=None):
    names = discover(sys.argv[1:] if argv is None else argv)
    results = {}
    for name in names:
        module = importlib.import_module('benchmarks.bench_%s' % name)
        print('=== %s ===' % name, flush=True)
        start = time.perf_counter()
        saved, sys.argv = sys.argv, [module.__file__]     # each benchmark runs with its own defaults
        try:
            results[name] = module.main()
        finally:
            sys.argv = saved
        print('--- %s took %.1f s' % (name, time.perf_counter() - start), flush=True)
    return results


if __name__ == '__main__':
    main()
