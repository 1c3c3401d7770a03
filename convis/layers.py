"""Every filter and model in one namespace (``convis.layers.LN``, ``convis.layers.Conv3d`` ...)."""
from .filters import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
