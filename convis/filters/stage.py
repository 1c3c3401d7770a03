"""What the retina stages share: their Parameter factory, small tensor helpers and the :class:`_Stage` base.

:mod:`convis.filters.retina` (OPL, Bipolar) and :mod:`convis.filters.ganglion` (GanglionInput, GanglionSpiking)
both build on this module, so neither imports the other's private parts.
"""
import numpy as np
import torch

from ..functional.gain_control import SATURATION_HZ  # noqa: F401 (the stages' constant, here too)
from ..layer import Layer
from ..variables import Parameter
from .spatial import blur_operator


def _param(value, doc, unit, key=None, bounds=(None, None), scale='linear', slider=None, grad=True, **meta):
    """A stage's Parameter; ``meta`` holds ``symbol``, ``kind`` and ``choices`` (see Parameter)."""
    return Parameter(value, doc=doc, unit=unit, retina_config_key=key, bounds=bounds, scale=scale,
                     slider_range=slider, requires_grad=grad, exact=float(value), **meta)


def _p(param, like):
    """A scalar parameter as a 0-d tensor of the input's dtype and device (keeps the gradient)."""
    return param.reshape(()).to(dtype=like.dtype, device=like.device)


def _decay(tau, dt, like):
    """``exp(-dt/tau)`` as a tensor (tau a Parameter in seconds)."""
    return torch.exp(-dt / _p(tau, like))


def compiled_loops_apply(layer, x):
    """Whether ``layer`` runs its compiled loops on ``x``: on the CPU, with no parameter needing a gradient."""
    return x.device.type == 'cpu' and not (torch.is_grad_enabled() and any(p.requires_grad for p in layer.parameters()))


def _check_state(name, state, x):
    if state is not None and (state.shape[0] != x.shape[0] or state.shape[1] != x.shape[1]
                              or state.shape[-2:] != x.shape[-2:]):
        raise ValueError('the input %s does not match the state %s kept from the previous chunk (%s): '
                         'call clear_state() before changing the input size'
                         % (tuple(x.shape), tuple(state.shape), name))


class _Stage(Layer):
    """Common parts of the retina stages: recording of intermediate maps and the blur operators."""

    def __init__(self):
        super().__init__()
        self.record = ()
        self.recorded = {}
        self.log_polar = None

    def _apply(self, fn, *args, **kwargs):
        """Converts like any module; in double precision, values still equal to their configured or
        constructor value (``Parameter.exact``) get that value exactly rather than its float32 rounding."""
        result = super()._apply(fn, *args, **kwargs)
        for p in self._parameters.values():
            exact = getattr(p, 'exact', None)
            if (p is not None and exact is not None and p.dtype == torch.float64 and p.numel() == 1
                    and np.float32(exact) == np.float32(float(p.detach()))):
                with torch.no_grad():
                    p.fill_(exact)
        return result

    def _blur(self, sigma_deg, x, scale=1.0):
        res = self.resolution
        return blur_operator(sigma_deg, res.pixel_per_degree, tuple(x.shape[-2:]), x.dtype, x.device,
                             log_polar=self.log_polar, scale=scale)

    def extra_repr(self):
        """The parameters with their values and units, for ``print(retina)``: ``sigma_center=0.05 deg, ...``."""
        parts = []
        for name, p in self._parameters.items():
            if p is None:
                continue
            v = p.detach()
            value = '%.4g' % float(v) if v.numel() == 1 else 'shape %s' % (tuple(v.shape),)
            unit = getattr(p, 'unit', '') or ''
            parts.append('%s=%s%s' % (name, value, ' ' + unit if unit else ''))
        return ', '.join(parts)

    def _keep(self, **maps):
        self.recorded = {k: v for k, v in maps.items() if k in self.record}
