"""Assertions and paths shared by the tests (import with ``from helpers import ...``)."""
import hashlib
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


DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def reference_path(*parts):
    """Path to a file of the test data in ``tests/data`` (VirtualRetina configurations and reference outputs)."""
    return os.path.join(DATA, *parts)


def reference_stimulus(name):
    """The stimulus of the VirtualRetina reference runs (``tests/data/virtualretina/README.md``), float32
    luminance in 0...255 with axes (frame, y, x): 200 frames of 64 x 64 pixels.

    ``grating``: ``127.5 (1 + 0.5 sin(2 pi (4 x / 64 + 2 y / 64 - 0.02 t)))`` (computed in float64);
    ``flash``: 127.5 everywhere except 255 in the square ``y in [22, 38)``, ``x in [26, 42)`` of frames 50...99.
    """
    t, y, x = np.arange(200)[:, None, None], np.arange(64)[None, :, None], np.arange(64)[None, None, :]
    if name == 'grating':
        return (127.5 * (1 + 0.5 * np.sin(2 * np.pi * (4 * x / 64 + 2 * y / 64 - 0.02 * t)))).astype(np.float32)
    if name == 'flash':
        stimulus = np.full((200, 64, 64), 127.5, dtype=np.float32)
        stimulus[50:100, 22:38, 26:42] = 255
        return stimulus
    raise ValueError('no reference stimulus %r (grating or flash)' % (name[:40],))


def virtualretina_reference(name):
    """The arrays of ``tests/data/virtualretina/<name>.npz`` as a dict, decoded as the README there describes:
    each ``<key>__planes`` (four byte planes of float32 maps) becomes ``<key>`` (float32), and ``stimulus`` is
    recomputed and checked against the SHA-256 of the stimulus VirtualRetina was given."""
    with np.load(reference_path('virtualretina', name + '.npz')) as d:
        out = {}
        for key in d.files:
            if key.endswith('__planes'):
                planes = d[key]
                out[key[:-len('__planes')]] = np.moveaxis(planes, 0, -1).copy().view('<f4')[..., 0]
            else:
                out[key] = d[key]
    stimulus = reference_stimulus(str(out['stimulus_name']))
    assert hashlib.sha256(stimulus.astype('<f4')).hexdigest() == str(out['stimulus_sha256']), name
    out['stimulus'] = stimulus
    return out
