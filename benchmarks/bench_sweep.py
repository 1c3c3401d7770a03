"""A parameter sweep on a Dask LocalCluster (one worker process per core) against a sequential loop.

Sweeps 16 parameter sets (4 surround sizes x 4 gain-control strengths) of the default retina on a
64x64 grating of 2000 frames, keeping the trial's mean ON and OFF rates per frame (``reduce``), and
reports in one run:

* the wall time of the sequential loop (copy, set, run, reduce; torch with one thread per core in this
  process) and of ``convis.sweep`` on a ``LocalCluster`` with one worker per core and one torch thread
  per worker (the cluster's start reported apart), measured ``--repeats`` times interleaved (sequential
  first in even repeats, the cluster first in odd ones, so that a neighbour's load hits both alike), and
  their ratio per repeat and over the medians; every repeat checks that both give identical results;
* the compute time of a task on a worker (Dask's task stream) against the time of a set in the loop;
* the overhead per task: ``(wall x workers - compute) / tasks`` of the sweep, and a sweep of 16
  one-frame tasks on the running cluster, as worker-seconds per task (``workers x wall / tasks``:
  scheduling, shipping, building the model, collecting the result).

Run with ``python -m benchmarks sweep``, or ``python -m benchmarks.bench_sweep --repeats 5`` (``--sets 4
--frames 200`` for a quick look).
"""
import argparse
import copy
import os
import resource
import time

import numpy as np
import torch

import convis


def cores():
    """The cores this process may run on (``taskset`` limits them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def rates(o):
    """Mean spike count of the ON and OFF cells per frame (spikes per cell per step)."""
    return {'rate_on': o.ganglion_spikes_ON.float().mean((0, 1, 3, 4)),
            'rate_off': o.ganglion_spikes_OFF.float().mean((0, 1, 3, 4))}


def grid(n_sets):
    side = int(round(np.sqrt(n_sets)))
    return {'opl.sigma_surround': list(np.linspace(0.5, 2.0, side)),
            'bipolar.lambda_amp': list(np.linspace(0.0, 150.0, n_sets // side))}


def sequential(model, stim, parameters, dt):
    dims, coords, sets = convis.scale.parameter_sets(model, parameters)
    out = []
    for index, values in sets:
        m = copy.deepcopy(model)
        m.set_parameters(values)
        out.append(rates(m.run(stim, dt=dt, progress=False)))
    return out


def cpu_seconds():
    """User and system CPU time of this process so far (s): all its threads, waiting ones included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def same(ds, seq):
    """Whether the sweep's Dataset holds exactly the sequential loop's rates."""
    flat = [dict(zip(ds['rate_on'].dims, i)) for i in np.ndindex(*ds['rate_on'].shape[:-1])]
    return all(np.array_equal(ds['rate_on'][idx].values, s['rate_on'].numpy())
               and np.array_equal(ds['rate_off'][idx].values, s['rate_off'].numpy())
               for idx, s in zip(flat, seq))


def clustered(client, model, stim, parameters, dt, device):
    """``(dataset, wall s, compute s of its tasks, CPU s of the workers, CPU s of this process (the client and
    the scheduler))`` of one sweep on ``client``."""
    from distributed import get_task_stream
    workers0, here0 = sum(client.run(cpu_seconds).values()), cpu_seconds()
    start = time.perf_counter()
    with get_task_stream(client) as ts:
        ds = convis.sweep(model, stim, parameters, reduce=rates, dt=dt, client=client, progress=False, device=device)
    wall = time.perf_counter() - start
    here = cpu_seconds() - here0
    workers = sum(client.run(cpu_seconds).values()) - workers0
    busy = sum(ss['stop'] - ss['start'] for t in ts.data if str(t['key']).startswith('convis-')
               for ss in t['startstops'] if ss['action'] == 'compute')
    return ds, wall, busy, workers, here


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sets', type=int, default=16)
    parser.add_argument('--frames', type=int, default=2000)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--dt', type=int, default=500)
    parser.add_argument('--repeats', type=int, default=3, help='interleaved measurements of both')
    parser.add_argument('--workers', type=int, default=cores(), help='worker processes (default: one per core)')
    parser.add_argument('--threads', type=int, default=cores(), help='torch threads of the sequential loop')
    parser.add_argument('--device', default='cpu', help="device of the sweep's tasks ('cpu', or None: a GPU if any)")
    args = parser.parse_args()
    device = None if args.device in ('None', 'auto') else args.device
    torch.set_num_threads(args.threads)
    from distributed import Client, LocalCluster

    retina = convis.retina.Retina(seed=0)
    stim = convis.samples.moving_grating(args.frames, args.size, args.size)
    parameters = grid(args.sets)
    n = len(convis.scale.parameter_sets(retina, parameters)[2])
    convis.scale.run_one(retina, stim[:50], {}, dt=args.dt)  # compile and warm the loops once

    seq_s, par_s, busy_s, seq_cpu, worker_cpu, client_cpu, tiny_s, equal = [], [], [], [], [], [], [], True
    tiny = grid(16)
    n_tiny = len(convis.scale.parameter_sets(retina, tiny)[2])
    start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        client.run(torch.set_num_threads, 1)
        t_start = time.perf_counter() - start
        client.run(convis.scale.run_one, retina, stim[:50], {}, args.dt)  # the same warm-up on each worker
        for r in range(args.repeats):
            for which in ('seq', 'par') if r % 2 == 0 else ('par', 'seq'):
                if which == 'seq':
                    t0, c0 = time.perf_counter(), cpu_seconds()
                    seq = sequential(retina, stim, parameters, args.dt)
                    seq_s.append(time.perf_counter() - t0)
                    seq_cpu.append(cpu_seconds() - c0)
                else:
                    ds, wall, busy, workers, here = clustered(client, retina, stim, parameters, args.dt, device)
                    par_s.append(wall)
                    busy_s.append(busy)
                    worker_cpu.append(workers)
                    client_cpu.append(here)
            equal = equal and same(ds, seq)
            t0 = time.perf_counter()
            convis.sweep(retina, stim[:1, :8, :8], tiny, reduce=rates, dt=args.dt, client=client, progress=False)
            tiny_s.append(time.perf_counter() - t0)

    t_seq, t_par, busy, c_seq, c_workers, c_client, t_tiny = (float(np.median(v)) for v in (
        seq_s, par_s, busy_s, seq_cpu, worker_cpu, client_cpu, tiny_s))
    overhead = args.workers * t_tiny / n_tiny
    print('%d parameter sets of the default retina on %dx%dx%d frames (dt=%d), %d cores, tasks on %s, %d repeats'
          % (n, args.size, args.size, args.frames, args.dt, cores(), device or 'the GPU if any', args.repeats))
    print('  sequential loop (%d torch threads):     %7.2f s  (median; %.2f s a set)'
          % (torch.get_num_threads(), t_seq, t_seq / n))
    print('  LocalCluster, %d workers x 1 thread:     %7.2f s  (median; cluster start %.2f s, not included)'
          % (args.workers, t_par, t_start))
    print('  ratio sequential / cluster:             %7.2f  (per repeat: %s)'
          % (t_seq / t_par, ', '.join('%.2f' % (a / b) for a, b in zip(seq_s, par_s))))
    print('  a task computes %.2f s on a worker (median), a set takes %.2f s in the loop'
          % (busy / n, t_seq / n))
    print('  CPU time a set: %.2f s in the workers (+ %.2f s in the client and scheduler), %.2f s in the loop'
          % (c_workers / n, c_client / n, c_seq / n))
    print('  overhead per task %.0f ms: (wall x workers - compute) / tasks'
          % (1000 * (t_par * args.workers - busy) / n))
    print('  one-frame tasks (%d): %.1f ms of a worker each (median)' % (n_tiny, 1000 * overhead))
    print('  results identical to the sequential loop: %s' % equal)
    return {'sets': n, 'sequential_s': t_seq, 'cluster_s': t_par, 'cluster_start_s': t_start,
            'ratio': t_seq / t_par, 'ratios': [a / b for a, b in zip(seq_s, par_s)],
            'overhead_per_task_s': (t_par * args.workers - busy) / n,
            'tiny_task_s': overhead, 'task_compute_s': busy / n, 'identical': equal,
            'cpu_per_set_workers_s': c_workers / n, 'cpu_per_set_client_s': c_client / n,
            'cpu_per_set_sequential_s': c_seq / n}


if __name__ == '__main__':
    main()
