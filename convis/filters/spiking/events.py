"""Spike and event generators without membrane dynamics: Poisson spikes and a DVS-like event sensor.

The equations are :func:`convis.functional.events.poisson_spikes` and
:func:`~convis.functional.events.sensor_events`; these layers keep the generator or the sensor's state.
"""
from ...functional.events import MotionSensorParameters, MotionSensorState, poisson_spikes, sensor_events
from ...layer import Layer
from ...variables import Parameter
from .base import SpikingLayer, value

__all__ = ['Poisson', 'IntegrativeMotionSensor']


class Poisson(SpikingLayer):
    """Poisson (Bernoulli) spikes at every pixel, with the input as the firing rate in Hz.

    .. math:: P(\\text{spike in a step}) = \\min(1, \\max(0, r(t))\\, \\Delta t)

    ``Delta t`` is the step length in seconds (from the layer's resolution), so the same rate gives the
    same number of spikes per second at any step size (as long as ``r dt`` stays below 1).  Negative
    rates give no spikes.  One uniform number per pixel is drawn at every step from the layer's own
    generator (``seed``), so chunked runs equal whole runs.

    Parameters: none; the input is the rate.  ``seed`` seeds the generator.

    Examples
    --------
    >>> p = convis.filters.spiking.Poisson(seed=0)
    >>> o = p.run(50.0 * np.ones((1000, 10, 10)), dt=500)   # about 50 spikes per pixel
    """

    def __init__(self, seed=None, **kwargs):
        if kwargs:
            raise TypeError('Poisson got unexpected arguments %s' % sorted(kwargs))
        super().__init__(seed=seed)

    def forward(self, x):
        self._state_shape(x)
        gen = self._generator(x.device)
        spikes = poisson_spikes(x, self._dt(), gen)
        self._keep_generator(gen)
        return spikes


class IntegrativeMotionSensor(Layer):
    """ON and OFF events wherever the (integrated or logarithmic) input has moved by a threshold: a DVS-like sensor.

    *linear* mode (an integrator): ``A(t) = A(t - dt) + I(t) dt / tau``; each time ``A`` passes
    ``+threshold`` it emits an ON event and drops by ``threshold``, each time it passes ``-threshold``
    an OFF event and rises by ``threshold``.

    *log* mode (a level-crossing sensor, as a dynamic vision sensor): with the reference ``R`` (the
    input at the last event; at first the first frame), an ON event for every factor ``threshold``
    that ``I(t)/R`` has grown, and an OFF event for every factor it has shrunk; ``R`` moves by those
    factors.  The input must be positive.

    .. math::

        n(t) = \\operatorname{trunc}\\left(\\frac{A(t)}{\\theta}\\right)\\ \\text{(linear)}, \\qquad
        n(t) = \\operatorname{trunc}\\left(\\frac{\\ln I(t) - \\ln R}{\\ln \\theta}\\right)\\ \\text{(log)}

    ``n > 0`` are ON events, ``n < 0`` OFF events.  The output has twice the input's channels,
    ``[ON, OFF]`` along the channel axis, as event counts per step (0/1 unless the input moves by more
    than a threshold within one step).

    Parameters (``.p``)
    -------------------
    threshold : input units (linear) or a factor above 1 (log)
        the change that makes an event
    tau : s
        integration time constant of the linear mode (with the default 1 ms, one step at 1000
        steps/s adds the input itself)

    Examples
    --------
    >>> ims = convis.filters.spiking.IntegrativeMotionSensor('log', threshold=1.2)
    >>> o = ims.run(1.0 + convis.samples.moving_grating() / 2, dt=500)
    >>> on, off = o[0][:, :1], o[0][:, 1:]
    """

    def __init__(self, spiking_mode='linear', threshold=1.0, tau=0.001):
        super().__init__()
        if spiking_mode not in ('linear', 'log'):
            raise ValueError("spiking_mode must be 'linear' or 'log', not %r" % (spiking_mode,))
        self.spiking_mode = spiking_mode
        self.threshold = Parameter(threshold, doc='change of the input that makes an event (a factor in log mode)',
                                   unit='input (linear) or factor (log)', bounds=(0.0, None), scale='log',
                                   slider_range=(0.01, 10.0), requires_grad=False)
        self.tau = Parameter(tau, doc='integration time constant of the linear mode', unit='s',
                             bounds=(1e-9, None), scale='log', slider_range=(1e-4, 1.0), requires_grad=False)
        self.register_state('accumulator', None)
        self.register_state('log_reference', None)

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.events.MotionSensorParameters` of
        :func:`convis.functional.events.sensor_events` for input like ``x``."""
        return MotionSensorParameters(value(self.threshold, x), value(self.tau, x), self.spiking_mode == 'log')

    def forward(self, x):
        if x.dim() != 5:
            raise ValueError('IntegrativeMotionSensor takes 5-d input [batch, channel, time, x, y], not %d-d' % x.dim())
        shape = (x.shape[0], x.shape[1], x.shape[3], x.shape[4])
        state_name = 'accumulator' if self.spiking_mode == 'linear' else 'log_reference'
        state = getattr(self, state_name)
        if state is not None and tuple(state.shape) != shape:
            raise ValueError('the state %r has shape %s but the input needs %s: call clear_state() first'
                             % (state_name, tuple(state.shape), shape))
        events, (level,) = sensor_events(x, MotionSensorState(state), self.kernel_parameters(x),
                                         float(self.resolution.dt))
        setattr(self, state_name, level)
        return events
