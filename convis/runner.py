"""Runner: a model, an input stream and an output stream in a background thread."""
from .base import Layer  # noqa: F401


class Runner(object):
    """Runs ``model`` on frames from ``input`` and puts results into ``output``."""

    def __init__(self, model=None, input=None, output=None, goal=None):
        self.model, self.input, self.output, self.goal = model, input, output, goal
