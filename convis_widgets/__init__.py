"""convis_widgets: Jupyter widgets to explore convis models.

* :class:`ParameterPanel` - sliders for every scalar parameter of a model (units, ranges, log scales, reset)
* :class:`TensorView` - an animated view of a 5-d tensor, played in the browser
* :class:`ImpulseResponsePanel` - temporal and spatial impulse responses, recomputed when a parameter changes
* :class:`KernelVolume` - a 3-d view of a spatio-temporal kernel
* :class:`ModelExplorer` - all of these around one model, with a stimulus picker and a background worker;
  ``explorer.pin()`` keeps the current parameters as A and compares the next ones with them
* :class:`FitMonitor` - a fit running in the background, live: losses, parameters, prediction against target,
  Stop / Resume / Apply best parameters (``explorer.fit(target, parameters=[...])`` in a ModelExplorer)
* :class:`SweepView` - small multiples of a sweep's results (``convis.sweep``) over one or two parameters
* :mod:`convis_widgets.embed` - kernel-free exports of views: ``view.embed()`` / ``explorer.embed()`` (an HTML
  player that survives ``nbconvert``), ``view.save('movie.mp4')`` (docs/sharing.md)

>>> import convis, convis_widgets
>>> convis_widgets.ModelExplorer(convis.retina.Retina())   # doctest: +SKIP

The browser half is a JupyterLab 4 extension that ``pip install`` puts in place (it works in
JupyterLab, Notebook 7 and Voila).
"""
from ._frontend import MODULE_NAME, MODULE_VERSION
from .frames import quantise, dequantise, encode_batch, decode_batch, frame_checksum
from .tensor_view import TensorView, sync_views, COLORMAPS
from .embed import animation_html, save_movie
from .parameters import ParameterPanel, ParameterControl, control_range
from .worker import LatestWorker, Superseded
from .stimuli import STIMULI, make_stimulus, load_stimulus

__version__ = '1.0.0'

# bqplot and ipyvolume take seconds to import: the parts that need them load on first use.
_LAZY = {'ImpulseResponsePanel': 'impulse', 'impulse_response': 'impulse', 'KernelVolume': 'volume',
         'ModelExplorer': 'explorer', 'SweepView': 'sweep_view', 'FitMonitor': 'fit_monitor'}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module('.' + _LAZY[name], __name__), name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

__all__ = ['TensorView', 'sync_views', 'COLORMAPS', 'ParameterPanel', 'ParameterControl', 'control_range',
           'ImpulseResponsePanel', 'impulse_response', 'KernelVolume', 'ModelExplorer', 'SweepView', 'FitMonitor', 'LatestWorker',
           'Superseded', 'STIMULI', 'make_stimulus', 'load_stimulus', 'quantise', 'dequantise', 'encode_batch',
           'decode_batch', 'frame_checksum', 'animation_html', 'save_movie', 'MODULE_NAME', 'MODULE_VERSION']


def _jupyter_labextension_paths():
    """Where the built front end lies (for ``jupyter labextension develop``)."""
    return [{'src': 'labextension', 'dest': MODULE_NAME}]
