"""The convis base classes, re-exported from where they live (``convis.base.Layer`` etc. stay public API).

* :class:`Layer` (and its alias ``Model``): :mod:`convis.layer`, with its parameter methods in
  :mod:`convis.layer_parameters` and its fitting methods in :mod:`convis.optimizing`;
* :class:`Output`, :func:`prepare_input`, :func:`shape`: :mod:`convis.output`;
* the chunk helpers and the ``show_progress`` switch: :mod:`convis.chunking`;
* :class:`Runner`: :mod:`convis.runner`.

``convis.base.show_progress = False`` switches off the progress bars of long ``run``/``optimize`` calls (it sets
``convis.chunking.show_progress``).

>>> import convis
>>> m = convis.models.LN((10, 5, 5))
>>> o = m.run(convis.samples.moving_grating(2000), dt=500)
>>> o[0].shape
torch.Size([1, 1, 2000, 20, 20])
"""
import sys
import types

from . import chunking
from .chunking import _check_frames, _chunk_bounds, _join, _progress, _stream_chunks  # noqa: F401
from .layer import Layer, Model, _check_states_finite, _default_resolution, _plain_tensor  # noqa: F401
from .optimizing import _OptimizerSelector, _clone_nested, _default_loss, _pop, _shape_mismatch_message  # noqa: F401
from .output import (Output, _as_tensor, _check_finite, _first_output, _is_stream, _model_5d,  # noqa: F401
                     prepare_input, shape)
from .runner import Runner

__all__ = ['Layer', 'Model', 'Output', 'prepare_input', 'shape', 'Runner']


class _BaseModule(types.ModuleType):
    """``convis.base`` itself: its ``show_progress`` reads and sets :data:`convis.chunking.show_progress`."""

    @property
    def show_progress(self):
        """Show a progress bar (tqdm) on long ``run``/``optimize`` calls (10 chunks or more)."""
        return chunking.show_progress

    @show_progress.setter
    def show_progress(self, value):
        chunking.show_progress = value


sys.modules[__name__].__class__ = _BaseModule
