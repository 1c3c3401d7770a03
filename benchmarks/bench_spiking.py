"""Steps per second of the spiking neurons at 100 x 100 pixels on the CPU, and of compiled variants of the LIF step.

Run: ``python benchmarks/bench_spiking.py [--size 100] [--steps 1000] [--threads 1] [--no-compile]``

Times are the CPU time of this process (``time.process_time``, best of 3) with one torch thread by
default, so that other load on the machine distorts the ratios as little as possible.

The LIF rows compare the layer's plain per-step loop with the same update written as one step function
run (a) in a plain Python loop, (b) scripted with ``torch.jit.script`` over the whole chunk and (c)
compiled with ``torch.compile`` (inductor; its compile time is reported separately).  The variants are
checked against the layer (same spikes, no noise) before they are timed.  Ratios are within this run.
"""
import argparse
import math
import time

import numpy as np
import torch

import convis
from convis.filters import spiking

convis.base.show_progress = False


def lif_step(J, V, a: float, b: float, g: float, dt: float):
    """One exact LIF step (the layer's update, without noise): returns (spikes, V)."""
    V_free = a * V + b * J
    spk = V_free > 1.0
    over = (J - g).clamp_min(1e-30)
    after = (dt - torch.log1p(g * (1.0 - V) / over) / g).clamp_min(0.0)
    period = torch.log1p(g / over) / g
    since = after - torch.floor(after / period) * period
    V = torch.where(spk, -torch.expm1(-g * since) / g * J, V_free)
    return spk.to(J.dtype), V


lif_step_scripted = torch.jit.script(lif_step)


@torch.jit.script
def lif_chunk_scripted(drive, V, a: float, b: float, g: float, dt: float):
    out = torch.empty_like(drive)
    for k in range(drive.shape[2]):
        spk, V = lif_step_scripted(drive[:, :, k], V, a, b, g, dt)
        out[:, :, k] = spk
    return out, V


def run_loop(step, drive, V, consts):
    out = torch.empty_like(drive)
    for k in range(drive.shape[2]):
        s, V = step(drive[:, :, k], V, *consts)
        out[:, :, k] = s
    return out, V


def timed(f, repeats=3):
    best = float('inf')
    for _ in range(repeats):
        t = time.process_time()
        result = f()
        best = min(best, time.process_time() - t)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=100)
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--no-compile', action='store_true', help='skip torch.compile (slow to compile)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, T = args.size, args.steps
    rng = np.random.RandomState(0)
    x = (1.0 + rng.rand(T, n, n)).astype(np.float32)
    rows = []

    def layer_rate(make, inp, label):
        def go():
            return make().run(inp, dt=500)
        sec, _ = timed(go)
        rows.append((label, T / sec))

    quiet = lambda: _quiet(spiking.LeakyIntegrateAndFireNeuron(seed=0))  # noqa: E731
    layer_rate(quiet, x, 'LIF layer, no noise')
    layer_rate(lambda: spiking.LeakyIntegrateAndFireNeuron(seed=0), x, 'LIF layer, noise')
    layer_rate(lambda: spiking.RefractoryLeakyIntegrateAndFireNeuron(seed=0), x, 'refractory LIF layer, noise')
    layer_rate(lambda: spiking.Poisson(seed=0), 100.0 * x, 'Poisson layer')
    layer_rate(lambda: spiking.IzhikevichNeuron(preset='Tonic spiking'), 10.0 * x, 'Izhikevich layer (2 sub-steps)')

    layer = _quiet(spiking.LeakyIntegrateAndFireNeuron(seed=0))
    reference = layer.run(x, dt=None)[0]
    g, tau, dt = 50.0, 0.02, 1e-3
    a, b = math.exp(-g * dt), -math.expm1(-g * dt) / g
    drive = torch.from_numpy(x)[None, None] / tau
    V0 = torch.zeros(1, 1, n, n)
    consts = (a, b, g, dt)
    variants = [('step function, Python loop', lambda: run_loop(lif_step, drive, V0, consts)),
                ('torch.jit.script (whole chunk)', lambda: lif_chunk_scripted(drive, V0, a, b, g, dt))]
    compile_seconds = None
    if not args.no_compile:
        compiled = torch.compile(lif_step, dynamic=False)
        t = time.perf_counter()
        run_loop(compiled, drive[:, :, :2], V0, consts)
        compile_seconds = time.perf_counter() - t  # wall time: compilation runs in worker processes
        variants.append(('torch.compile (step function)', lambda: run_loop(compiled, drive, V0, consts)))
    for label, f in variants:
        sec, (out, _) = timed(f)
        mismatch = float((out != reference).float().mean())
        rows.append(('%s [spikes differing: %.1e]' % (label, mismatch), T / sec))

    base = rows[0][1]
    print('spiking neurons at %d x %d pixels, %d steps, torch %s, %d threads' % (n, n, T, torch.__version__,
                                                                               torch.get_num_threads()))
    for label, rate in rows:
        print('  %-62s %9.0f steps/s  (%.2f x the LIF layer without noise)' % (label, rate, rate / base))
    if compile_seconds is not None:
        print('  torch.compile: first call (compilation) took %.1f s' % compile_seconds)


def _quiet(layer):
    layer.noise_sigma = 0.0
    layer.random_init = 0.0
    return layer


if __name__ == '__main__':
    main()
