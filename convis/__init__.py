"""convis: models of early vision in PyTorch.

A retina model numerically equivalent to VirtualRetina, LN cascade models,
spiking neurons and filters with memory, run chunk by chunk over long or
endless videos and fitted to data.

>>> import convis
>>> retina = convis.retina.Retina()
>>> o = retina.run(convis.samples.moving_grating(2000, 50, 50), dt=500)
>>> o.ganglion_spikes_ON.shape
torch.Size([1, 1, 2000, 50, 50])
"""
__version__ = '1.0.0'

from . import variables, o, utils, base  # noqa: E402
from .variables import (Parameter, State, VirtualParameter, Resolution, default_resolution,  # noqa: E402
                        set_steps_per_second, set_pixel_per_degree)
from .base import Layer, Model, Output, prepare_input, Runner  # noqa: E402


def _get_default_resolution():
    return default_resolution

from . import filters, models, retina, streams, samples, variable_describe, numerical_filters, kernels, analysis  # noqa: E402,F401
from . import layers, losses, fitting  # noqa: E402,F401
from . import compiled  # noqa: E402,F401
from . import scale  # noqa: E402,F401
from .scale import sweep, run_files  # noqa: E402,F401
from .utils import plot, plot_5d_matshow, plot_5d_time, plot_tensor, plot_tensor_with_channels  # noqa: E402,F401
from .variable_describe import (help, describe, describe_text, describe_dict, describe_html,  # noqa: E402,F401
                                animate, animate_to_video, animate_to_html, animate_double_plot)
