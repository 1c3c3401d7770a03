"""Streams whose frames carry time stamps, and resampling them onto a regular time grid.

A :class:`TimedSequenceStream` holds frames shown at times ``times[i]`` (seconds; regular
``t_zero + i * dt`` by default, or irregular, e.g. from a camera).  A
:class:`TimedResampleStream` reads such a stream at the regular times
``t_zero + k * dt`` of a simulation, interpolating between frames:

.. math::  y[k] = \\operatorname{interp}(t_0 + k\\,\\Delta t;\\ \\mathrm{times}, \\mathrm{frames})

>>> src = TimedSequenceStream(np.ones((10, 4, 4)), dt=0.01)
>>> TimedResampleStream(src, dt=0.001).get(5).shape
(5, 4, 4)
"""
import numpy as np

from .base import SequenceStream, Stream, frames_public, frames_time_first

__all__ = ['TimedSequenceStream', 'TimedResampleStream']


class TimedSequenceStream(SequenceStream):
    """Frames in memory, each shown from its time stamp on (seconds).

    Besides the stream protocol (``get(n)`` reads frames in order), frames are found by time:
    ``time_to_bin(t)`` is the frame shown at time ``t`` and ``get_tspan(t1, t2)`` the frames stamped in
    ``[t1, t2)``.

    Parameters
    ----------
    sequence : array ``(t, x, y)``
        the frames
    times : array ``(t,)`` or None
        increasing time stamps in seconds (default: ``t_zero + i * dt``)
    t_zero : float
        time of the first frame in seconds (when ``times`` is not given)
    dt : float
        seconds between frames (when ``times`` is not given, and for frames put later)

    >>> s = TimedSequenceStream(np.zeros((100, 5, 5)), t_zero=1.0, dt=0.01)
    >>> s.time_to_bin(1.055), s.get_tspan(1.0, 1.1).shape
    (5, (10, 5, 5))
    """

    def __init__(self, sequence, times=None, size=None, pixel_per_degree=10, t_zero=0.0, dt=0.001):
        super().__init__(sequence, size=size, pixel_per_degree=pixel_per_degree, max_frames=None)
        if not dt > 0:
            raise ValueError('dt must be a positive number of seconds, not %r' % (dt,))
        self.t_zero, self.dt = float(t_zero), float(dt)
        n = self._length()
        if times is None:
            self._times = self.t_zero + self.dt * np.arange(n, dtype=np.float64)
        else:
            self._times = self._check_times(times, n)

    def _check_times(self, times, n, after=None):
        times = np.asarray(times, dtype=np.float64).ravel()
        if times.shape[0] != n:
            raise ValueError('%d time stamps were given for %d frames' % (times.shape[0], n))
        if not np.all(np.isfinite(times)):
            raise ValueError('time stamps must be finite')
        if np.any(np.diff(times) <= 0) or (after is not None and n and times[0] <= after):
            raise ValueError('time stamps must increase strictly')
        return times

    @property
    def times(self):
        """The time stamps of the frames held, in seconds."""
        return self._times.copy()

    def put(self, frames, times=None):
        """Appends frames, stamped ``times`` (default: ``dt`` apart, after the last frame)."""
        with self._lock:
            n = frames_time_first(frames).shape[0]
            last = self._times[-1] if self._times.shape[0] else self.t_zero - self.dt
            if times is None:
                new = last + self.dt * np.arange(1, n + 1)
            else:
                new = self._check_times(times, n, after=last if self._times.shape[0] else None)
            super().put(frames)
            self._times = np.concatenate([self._times, new])

    def time_to_bin(self, t):
        """Index of the frame shown at time ``t`` (the last one stamped at or before ``t``; -1 before the first)."""
        return int(np.searchsorted(self._times, float(t) + 1e-12 * max(1.0, abs(float(t))), side='right')) - 1

    def get_tspan(self, t1, t2):
        """The frames stamped in ``[t1, t2)`` seconds (this does not move the read position)."""
        with self._lock:
            i1 = int(np.searchsorted(self._times, float(t1) - 1e-12 * max(1.0, abs(float(t1))), side='left'))
            i2 = int(np.searchsorted(self._times, float(t2) - 1e-12 * max(1.0, abs(float(t2))), side='left'))
            if self._buf is None:
                return self._empty()
            return frames_public(self._buf[self._start + i1:self._start + max(i1, i2)].copy())


class TimedResampleStream(Stream):
    """A timed stream read at regular times ``t_zero + k * dt``, interpolated between its frames (scipy).

    The stream ends after the last sample time that is not later than the source's last frame.

    Parameters
    ----------
    stream : TimedSequenceStream
        the source (anything with ``times`` and ``sequence``)
    t_zero : float
        time of the first sample in seconds
    dt : float
        seconds between samples (the simulation step)
    kind : str
        interpolation of :func:`scipy.interpolate.interp1d`: ``'linear'``, ``'previous'`` (each frame held
        until the next, as a screen shows it), ``'nearest'``, ``'cubic'``, ...

    >>> src = TimedSequenceStream(np.arange(3.)[:, None, None] * np.ones((3, 1, 1)), dt=0.1)
    >>> TimedResampleStream(src, dt=0.05).get(10)[:, 0, 0]
    array([0. , 0.5, 1. , 1.5, 2. ])
    """

    def __init__(self, stream, t_zero=0.0, dt=0.001, kind='linear'):
        if not hasattr(stream, 'times') or not hasattr(stream, 'sequence'):
            raise TypeError('TimedResampleStream needs a timed stream (with times and sequence), not %r' % (stream,))
        if not dt > 0:
            raise ValueError('dt must be a positive number of seconds, not %r' % (dt,))
        super().__init__(size=stream.size, pixel_per_degree=stream.pixel_per_degree)
        self.stream, self.t_zero, self.dt, self.kind = stream, float(t_zero), float(dt), kind
        self.channels = stream.channels

    def _sample_time(self, k):
        return self.t_zero + self.dt * k

    def _length(self):
        times = self.stream.times
        if times.shape[0] == 0 or times[-1] < self.t_zero:
            return 0
        return int(np.floor((times[-1] - self.t_zero) / self.dt + 1e-9)) + 1

    _seek = Stream._seek_position

    def _read(self, n):
        from scipy.interpolate import interp1d
        k = min(n, self._length() - self._pos)
        if k <= 0:
            return None
        ts = self._sample_time(self._pos + np.arange(k))
        times = self.stream.times
        frames = frames_time_first(self.stream.sequence)
        lo = max(int(np.searchsorted(times, ts[0], side='right')) - 3, 0)
        hi = min(int(np.searchsorted(times, ts[-1], side='left')) + 3, times.shape[0])
        times, frames = times[lo:hi], frames[lo:hi]
        if times.shape[0] == 1:
            return np.repeat(frames, k, axis=0)
        f = interp1d(times, frames, axis=0, kind=self.kind, bounds_error=False,
                     fill_value=(frames[0], frames[-1]), assume_sorted=True)
        return np.asarray(f(ts), dtype=frames.dtype)
