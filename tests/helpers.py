"""Assertions and paths shared by the tests (import with ``from helpers import ...``)."""
import os

import numpy as np
import torch

import convis


def assert_chunking_exact(make_layer, x, dts=(1, 3, 17, None), rtol=1e-5, atol=1e-6, seed=0):
    """Runs a fresh layer from ``make_layer()`` over ``x`` whole and in chunks of each ``dt``; all must agree.

    Every output of the layer is compared to ``rtol`` relative to its largest magnitude (``atol`` absolute for
    outputs that are all near zero).  The seed is reset before each run, so layers with noise must give
    identical results too.
    """
    results = {}
    for dt in (None,) + tuple(d for d in dts if d is not None):
        torch.manual_seed(seed)
        np.random.seed(seed)
        layer = make_layer()
        o = layer.run(x, dt=dt)
        results[dt] = [convis.utils.to_numpy(t).astype(np.float64) for t in o]
    whole = results[None]
    for dt, outs in results.items():
        assert len(outs) == len(whole)
        for k, (a, b) in enumerate(zip(whole, outs)):
            assert a.shape == b.shape, 'dt=%s output %d: shape %s != %s' % (dt, k, a.shape, b.shape)
            scale = max(np.abs(a).max(), 1e-12)
            err = np.abs(a - b).max()
            assert err <= max(rtol * scale, atol), 'dt=%s output %d: max |diff| %g (scale %g)' % (dt, k, err, scale)
    return whole


def low_pass(layer, x):
    """``y_t = a y_(t-1) + (1 - a) x_t`` per pixel over the time axis of ``x``, with ``a = exp(-dt / layer.tau)``,
    continuing and updating the state ``layer.y`` (the forward of the small test models)."""
    a = float(torch.exp(-layer.resolution.dt / layer.tau))
    y = layer.y if layer.y is not None else torch.zeros_like(x[:, :, :1])
    out = []
    for t in range(x.shape[2]):
        y = a * y + (1 - a) * x[:, :, t:t + 1]
        out.append(y)
    layer.y = y
    return torch.cat(out, dim=2)


REFERENCE = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'reference'))


def reference_path(*parts):
    """Path to a file of the shared reference data (VirtualRetina outputs, configurations, seed documents),
    kept in ``shared/reference`` beside the repository."""
    return os.path.join(REFERENCE, *parts)
