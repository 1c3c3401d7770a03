"""The resolution that turns physical units into steps and pixels, and the global default resolution.

A :class:`Resolution` converts seconds and degrees into steps and pixels.  A layer reads its resolution at
every forward call, so changing the steps per second or the pixels per degree takes effect on the next chunk.
A field left at ``None`` follows the global :data:`default_resolution` (:func:`set_steps_per_second`,
:func:`set_pixel_per_degree`).  :mod:`convis.variables` re-exports every name here.
"""
import math
import numbers

__all__ = ['Resolution', 'ResolutionInfo', 'default_resolution', 'set_steps_per_second', 'set_pixel_per_degree',
           'user_default_resolution', 'reset_default_resolution']

class Resolution(object):
    """Physical resolution of a simulation: steps per second and pixels per degree.

    ``Resolution(pixel_per_degree=None, steps_per_second=None, input_luminosity_range=None)``

    A value of ``None`` follows the global default (``convis.set_steps_per_second``,
    ``convis.set_pixel_per_degree``).  Layers read their resolution at every
    forward call, so a change applies from the next chunk on.

    >>> r = Resolution(steps_per_second=200)
    >>> r.seconds_to_steps(0.01), r.dt
    (2.0, 0.005)
    """

    FIELDS = ('pixel_per_degree', 'steps_per_second', 'input_luminosity_range')

    def __init__(self, pixel_per_degree=None, steps_per_second=None, input_luminosity_range=None, parent=None):
        self._parent = parent
        self._user_set = None
        self._ppd = None
        self._sps = None
        self._range = None
        self.pixel_per_degree = pixel_per_degree
        self.steps_per_second = steps_per_second
        self.input_luminosity_range = input_luminosity_range

    @staticmethod
    def _positive(name, v):
        if v is None:
            return None
        if isinstance(v, str):
            v = float(v)
        if not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise ValueError('%s must be a positive finite number, not %r' % (name, v))
        return float(v)

    def _fallback(self):
        return self._parent if self._parent is not None else (default_resolution if self is not default_resolution else None)

    @property
    def pixel_per_degree(self):
        """Pixels per degree of visual angle."""
        if self._ppd is None:
            fb = self._fallback()
            return fb.pixel_per_degree if fb is not None else 10.0
        return self._ppd

    @pixel_per_degree.setter
    def pixel_per_degree(self, v):
        self._ppd = self._positive('pixel_per_degree', v)
        self._mark('pixel_per_degree')

    @property
    def steps_per_second(self):
        """Simulation steps (frames) per second."""
        if self._sps is None:
            fb = self._fallback()
            return fb.steps_per_second if fb is not None else 1000.0
        return self._sps

    @steps_per_second.setter
    def steps_per_second(self, v):
        self._sps = self._positive('steps_per_second', v)
        self._mark('steps_per_second')

    @property
    def input_luminosity_range(self):
        """Luminance range of the input (VirtualRetina divides the OPL amplification by it)."""
        if self._range is None:
            fb = self._fallback()
            return fb.input_luminosity_range if fb is not None else 1.0
        return self._range

    @input_luminosity_range.setter
    def input_luminosity_range(self, v):
        self._range = self._positive('input_luminosity_range', v)
        self._mark('input_luminosity_range')

    def _mark(self, field):
        # the global default remembers which fields the user set (models that carry their own
        # resolution, such as the retina, adopt those when they are built)
        if self._user_set is not None:
            self._user_set.add(field)

    @property
    def dt(self):
        """Length of one step in seconds."""
        return 1.0 / self.steps_per_second

    def seconds_to_steps(self, t):
        return t * self.steps_per_second

    def steps_to_seconds(self, steps):
        return steps / self.steps_per_second

    def degree_to_pixel(self, d):
        return d * self.pixel_per_degree

    def pixel_to_degree(self, px):
        return px / self.pixel_per_degree

    def copy(self, **changes):
        """An independent copy, with the fields named in ``changes`` replaced.

        >>> Resolution(pixel_per_degree=5, steps_per_second=100).copy(steps_per_second=1000)
        Resolution(pixel_per_degree=5, steps_per_second=1000, input_luminosity_range=1)
        """
        unknown = sorted(set(changes) - set(self.FIELDS))
        if unknown:
            raise TypeError('Resolution has no field(s) %s; the fields are %s' % (', '.join(unknown), ', '.join(self.FIELDS)))
        new = Resolution(self._ppd, self._sps, self._range, parent=self._parent)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def __repr__(self):
        return 'Resolution(pixel_per_degree=%g, steps_per_second=%g, input_luminosity_range=%g)' % (
            self.pixel_per_degree, self.steps_per_second, self.input_luminosity_range)


_BUILT_IN_RESOLUTION = {'pixel_per_degree': 10.0, 'steps_per_second': 1000.0, 'input_luminosity_range': 1.0}
default_resolution = Resolution(**_BUILT_IN_RESOLUTION)
default_resolution._user_set = set()
ResolutionInfo = Resolution


def set_steps_per_second(sps):
    """Sets the default number of simulation steps per second.

    Layers without a resolution of their own follow it from their next chunk on; models that carry
    their own (the :class:`~convis.retina.Retina`) take it when they are built afterwards, unless the
    configuration they read gives its own ``temporal-step__sec``.

    >>> convis.set_steps_per_second(500)
    >>> convis.retina.Retina().resolution.steps_per_second
    500.0
    """
    default_resolution.steps_per_second = sps


def set_pixel_per_degree(ppd):
    """Sets the default number of pixels per degree of visual angle (see :func:`set_steps_per_second`)."""
    default_resolution.pixel_per_degree = ppd


def user_default_resolution():
    """The fields of the global default resolution that were set since start-up (or the last reset).

    A dict ``{field: value}``, for example ``{'steps_per_second': 500.0}`` after
    ``set_steps_per_second(500)``.  Models with a resolution of their own start from these.
    """
    return {f: getattr(default_resolution, f) for f in Resolution.FIELDS if f in default_resolution._user_set}


def reset_default_resolution():
    """Restores the built-in global resolution (10 px/deg, 1000 steps/s, luminosity range 1) and forgets
    what was set (see :func:`user_default_resolution`)."""
    for f, v in _BUILT_IN_RESOLUTION.items():
        setattr(default_resolution, f, v)
    default_resolution._user_set.clear()
