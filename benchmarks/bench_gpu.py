"""The CUDA path, checked and timed: does the retina compute on a GPU what it computes on the CPU, and how fast?

Usage: ``python benchmarks/bench_gpu.py [--frames 2000] [--sizes 50 100 256] [--batch 1 8]``

Without a GPU it prints one line and returns.  With one it runs, for the default retina:

* the same noise-free input on the CPU (torch loops, float64) and on the GPU (float64 and float32), and prints the
  largest difference of every output, relative to the output's range;
* one whole run against chunks of 100 frames on the GPU (exact chunking);
* frames/s on the GPU (float32, chunks of 500 frames, best of 3) for square sizes and batches, against the CPU
  in the same run, and the 64x64x500 explorer preview in milliseconds;
* an LN model fitted for 5 LBFGS steps on the GPU, with the loss before and after.
"""
import argparse
import os
import time

import numpy as np
import torch

import convis


def _sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _retina(device, dtype):
    """The default retina without spikes (its outputs are then deterministic firing rates)."""
    return convis.retina.Retina(spikes=False, seed=0).to(device=device, dtype=dtype)


def compare(frames=300, size=40, device='cuda'):
    """Largest |GPU - CPU| / range of each output (no spikes: rates), and whole-vs-chunked on the GPU."""
    rng = np.random.RandomState(0)
    x = 128 + 60 * rng.randn(frames, size, size)
    rows = []
    for dtype in (torch.float64, torch.float32):
        cpu = _retina('cpu', torch.float64).run(x, dt=100)
        gpu_model = _retina(device, dtype)
        gpu = gpu_model.run(x, dt=100)
        for k, a, b in zip(cpu.keys, cpu, gpu):
            a = a.double().cpu().numpy()
            b = b.double().cpu().numpy()
            span = max(np.ptp(a), 1e-12)
            rows.append(('%s %s' % (str(dtype)[6:], k), float(np.abs(a - b).max() / span)))
        whole = _retina(device, dtype)(torch.as_tensor(x, dtype=dtype, device=device)[None, None])
        whole = [t.detach() for t in whole]
        for k, a, b in zip(gpu.keys, whole, gpu):
            span = max(float((a.max() - a.min()).cpu()), 1e-12)
            rows.append(('%s whole-vs-chunked %s' % (str(dtype)[6:], k), float((a - b).abs().max().cpu()) / span))
    for name, err in rows:
        print('  %-45s max |diff| / range = %.3g' % (name, err), flush=True)
    return rows


def speed(sizes, frames, batches, device='cuda', repeat=3):
    """Frames/s of the default retina with spikes, float32, chunks of 500, on ``device`` and on the CPU."""
    out = {}
    for n in sizes:
        for batch in batches:
            for dev in (device, 'cpu'):
                if dev == 'cpu' and (n > 100 or batch > 1):
                    continue
                r = convis.retina.Retina(seed=0).to(device=dev, dtype=torch.float32)
                x = torch.rand(batch, 1, frames, n, n, device=dev) * 255
                with torch.no_grad():
                    r(x[:, :, :10])
                    best = float('inf')
                    for _ in range(repeat):
                        r.clear_state()
                        _sync(dev)
                        t0 = time.perf_counter()
                        for s in range(0, frames, 500):
                            r(x[:, :, s:s + 500])
                        _sync(dev)
                        best = min(best, time.perf_counter() - t0)
                fps = frames * batch / best
                out[(n, batch, dev)] = fps
                print('  %4dx%-4d batch %2d on %-4s: %9.0f frames/s (%d x %d frames in %.3f s)'
                      % (n, n, batch, dev, fps, batch, frames, best), flush=True)
    return out


def preview(device='cuda', repeat=5):
    """Milliseconds of the explorer's 64x64x500 preview: push state, run, pop state."""
    r = convis.retina.Retina(seed=0).to(device=device)
    x = torch.rand(1, 1, 500, 64, 64, device=device) * 255
    times = []
    with torch.no_grad():
        r(x[:, :, :10])
        for _ in range(repeat):
            _sync(device)
            t0 = time.perf_counter()
            r.push_state()
            r.clear_state()
            o = r(x)
            [t.cpu() for t in o]
            r.pop_state()
            times.append(1000 * (time.perf_counter() - t0))
    print('  explorer preview 64x64x500 on %s: best %.1f ms, median %.1f ms' % (device, min(times), np.median(times)))
    return times


def gradients(device='cuda', frames=200, size=24):
    """Gradients of a retina's rates with respect to its parameters (as when fitting) on the GPU and the CPU."""
    x = torch.as_tensor(128 + 60 * np.random.RandomState(1).randn(1, 1, frames, size, size))
    grads = {}
    for dev in ('cpu', device):
        r = convis.retina.Retina(spikes=False, seed=0).to(device=dev, dtype=torch.float64)
        o = r(x.to(dev))
        loss = sum(t.double().pow(2).mean() for t in o)
        names = [n for n, p in r.named_parameters() if p.requires_grad]
        params = [p for n, p in r.named_parameters() if p.requires_grad]
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        grads[dev] = {n: (None if g is None else g.detach().cpu()) for n, g in zip(names, gs)}
    worst = 0.0
    for n, g in grads['cpu'].items():
        h = grads[device][n]
        if g is None or h is None:
            continue
        worst = max(worst, float((g - h).abs().max() / max(float(g.abs().max()), 1e-30)))
    print('  gradients of %d parameters: largest |GPU - CPU| / |CPU| = %.3g' % (len(grads['cpu']), worst))
    return worst


def _loss(values):
    return float(sum(float(v) for v in values)) if isinstance(values, (list, tuple)) else float(values)


def fit(device='cuda'):
    """Five LBFGS steps of an LN model on the GPU; returns (loss before, loss after)."""
    inp, out = convis.samples.generate_sample_data(input='random', size=(1000, 20, 20))
    m = convis.models.LN(kernel_dim=(12, 7, 7)).to(device)
    before = _loss(m.compute_loss(inp, out, dt=500))
    m.set_optimizer.LBFGS()
    t0 = time.perf_counter()
    for _ in range(5):
        m.optimize(inp, out, dt=500)
    _sync(device)
    after = _loss(m.compute_loss(inp, out, dt=500))
    print('  LN fit on %s: loss %.4g -> %.4g in 5 LBFGS steps (%.2f s)' % (device, before, after,
                                                                         time.perf_counter() - t0))
    return before, after


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=2000)
    parser.add_argument('--sizes', nargs='+', type=int, default=[50, 100, 256])
    parser.add_argument('--batch', nargs='+', type=int, default=[1, 8])
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print('no CUDA device: nothing to check (torch %s)' % torch.__version__)
        return {}
    print('torch %s, CUDA %s, %s, %d CPU threads' % (torch.__version__, torch.version.cuda,
                                                     torch.cuda.get_device_name(0), torch.get_num_threads()))
    print('GPU against CPU (noise-free rates, 300 frames of 40x40):', flush=True)
    results = {'compare': compare()}
    print('speed (default retina with spikes, float32):', flush=True)
    results['speed'] = speed(args.sizes, args.frames, args.batch)
    print('fitting path (autograd):', flush=True)
    results['gradients'] = gradients()
    results['preview'] = preview()
    results['fit'] = fit()
    return results


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
