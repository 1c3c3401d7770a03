"""Speed and memory benchmarks of convis (run with ``python -m benchmarks``; not part of the test run).

Each ``benchmarks/bench_*.py`` has a ``main()`` that measures and prints its results (ratios are always
measured within one run, on one machine) and returns them as a dict.
"""
