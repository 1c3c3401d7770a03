"""The base class of the spiking neurons: state checks and a seedable noise source that is part of the state.

Every noisy neuron draws its random numbers from its own :class:`torch.Generator`, seeded with
``seed`` (an argument of every neuron, or ``layer.seed(n)``: the seed API of :class:`convis.noise.Seeded`).  The numbers are drawn step
by step in a fixed order, and the generator's position is kept as the state ``noise_state``, so

* a run in chunks of any length gives exactly the spikes of one whole run;
* ``push_state``/``pop_state`` (and ``get_state``/``set_state``) also rewind the noise;
* ``clear_state()`` starts the noise again from the seed: a cleared neuron repeats its first run.

>>> lif = LeakyIntegrateAndFireNeuron(seed=1)
>>> a = lif.run(x, dt=100); lif.clear_state(); b = lif.run(x, dt=7)
>>> bool((a[0] == b[0]).all())
True
"""
import math

import torch

from ...layer import Layer
from ...noise import Seeded, check_seed

__all__ = ['SpikingLayer']


class SpikingLayer(Seeded, Layer):
    """A layer with per-pixel states created on the first chunk, and its own seedable noise.

    ``seed``, ``seed(n)``, ``set_seed(n)`` and ``seed_value`` are the seed API of :class:`convis.noise.Seeded`
    (``seed=None`` draws a seed from torch's global generator).  Subclasses call :meth:`_generator` at the start
    of ``forward`` and :meth:`_keep_generator` at its end.
    """

    def __init__(self, seed=None):
        super().__init__()
        self._seed = check_seed(seed)
        self._rng = None
        self.register_state('noise_state', None)

    def _restart_noise(self):
        self.noise_state = None

    def _generator(self, device):
        """The layer's generator on ``device``, at the position stored in ``noise_state``."""
        device = torch.device(device)
        if self._rng is None or self._rng.device.type != device.type or (
                device.index is not None and self._rng.device.index != device.index):
            self._rng = torch.Generator(device=device)
        gen, saved = self._rng, self.noise_state
        if saved is None or saved.numel() != gen.get_state().numel():
            gen.manual_seed(self._seed)
        else:
            gen.set_state(saved.detach().cpu())
        return gen

    def _keep_generator(self, gen):
        self.noise_state = gen.get_state()

    @staticmethod
    def _state_shape(x):
        if x.dim() != 5:
            raise ValueError('spiking neurons take 5-d input [batch, channel, time, x, y], not %d-d' % x.dim())
        return (x.shape[0], x.shape[1], x.shape[3], x.shape[4])

    def _check_state(self, name, shape):
        """The state ``name`` if it exists; a ValueError if it has another shape than ``shape``."""
        v = getattr(self, name)
        if v is not None and tuple(v.shape) != tuple(shape):
            raise ValueError('%s: the state %r has shape %s but the input needs %s (a different batch, channel or '
                             'image size): call clear_state() first' % (type(self).__name__, name, tuple(v.shape),
                                                                         tuple(shape)))
        return v

    def _dt(self):
        dt = float(self.resolution.dt)
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError('the step length must be positive, not %r s' % dt)
        return dt

    def extra_repr(self):
        return 'seed=%d' % self._seed


def value(p, like):
    """A parameter's value as a plain tensor on the device and dtype of ``like`` (no gradient)."""
    return p.detach().to(device=like.device, dtype=like.dtype)

