"""Streams: sources and sinks of frames for long or endless runs.

A stream hands out frames with ``get(n)`` (a numpy ``(n, x, y)`` array; fewer frames at the end of a
finite stream, then 0) and takes frames with ``put(frames)``.  :meth:`convis.Layer.run` reads any
stream chunk by chunk (``len(stream)`` frames, or ``max_t`` for an infinite one), and a
:class:`convis.Runner` pushes a model's output into one.

* in memory: :class:`RandomStream` (endless noise), :class:`SequenceStream` (a growing buffer),
  :class:`RepeatingStream` (a loop), :class:`TimedSequenceStream` and :class:`TimedResampleStream`
  (time-stamped frames resampled onto the simulation grid), :class:`ProcessingStream` (a model applied
  as frames are read)
* files: :class:`ImageSequence` (jpg/png/... files), :class:`VideoReader`/:class:`VideoWriter` (mp4 and
  every format ffmpeg knows), :class:`InrImageStreamReader`/:class:`InrImageStreamWriter` (VirtualRetina's
  INRIMAGE-4), :class:`NumpyReader`/:class:`NumpyWriter` (.npy/.npz), :class:`HDF5Reader`/:class:`HDF5Writer`;
  :func:`open_input`/:func:`open_output` pick one by file name

>>> import convis
>>> inp = convis.streams.RandomStream(size=(10, 10), level=100.2, mean=128.0)
>>> o = convis.models.LN().run(inp, dt=100, max_t=500)          # doctest: +SKIP
"""
from .base import ProcessingStream, RandomStream, RepeatingStream, SequenceStream, Stream
from .timed import TimedResampleStream, TimedSequenceStream
from .images import ImageSequence, VideoReader, VideoWriter
from .inr import InrImageFileStreamer, InrImageStreamer, InrImageStreamReader, InrImageStreamWriter
from .arrays import HDF5Reader, HDF5Writer, NumpyReader, NumpyWriter
from .files import open_input, open_output

__all__ = ['Stream', 'RandomStream', 'SequenceStream', 'RepeatingStream', 'ProcessingStream',
           'TimedSequenceStream', 'TimedResampleStream', 'ImageSequence', 'VideoReader', 'VideoWriter',
           'InrImageStreamReader', 'InrImageStreamWriter', 'InrImageStreamer', 'InrImageFileStreamer',
           'NumpyReader', 'NumpyWriter', 'HDF5Reader', 'HDF5Writer', 'open_input', 'open_output']
