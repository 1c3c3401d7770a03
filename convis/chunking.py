"""Chunks of a long run: frame counts checked, ``(start, stop)`` bounds, progress bars, frames read from streams.

:meth:`convis.Layer.run`, :meth:`~convis.Layer.run_iter`, :meth:`~convis.Layer.optimize` and :mod:`convis.fitting`
cut their inputs with :func:`_chunk_bounds`; ``show_progress`` (also reachable as ``convis.base.show_progress``)
switches the progress bars of long calls.
"""
import numpy as np
import torch

from .output import _model_5d
from .tensors import _short_repr


show_progress = True
"""Show a progress bar (tqdm) on long ``run``/``optimize`` calls (10 chunks or more)."""


def _check_frames(name, v, allow_none=False, positive=False):
    if v is None:
        if allow_none:
            return None
        raise ValueError('%s must be given' % name)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)):
        raise TypeError('%s must be a number of frames, not %s' % (name, _short_repr(v)))
    if isinstance(v, (float, np.floating)) and not float(v).is_integer():
        raise ValueError('%s must be a whole number of frames, not %s' % (name, _short_repr(v)))
    v = int(v)
    if v < 0 or (positive and v == 0):
        raise ValueError('%s must be %s number of frames, not %d' % (name, 'a positive' if positive else 'a non-negative', v))
    return v


def _chunk_bounds(t, end, dt):
    """``(start, stop)`` frame pairs covering ``[t, end)`` in chunks of ``dt`` frames (one chunk without dt)."""
    step = dt if dt is not None else max(end - t, 1)
    return [(s, min(s + step, end)) for s in range(t, end, step)]


def _join(chunks):
    if len(chunks) == 1:
        return chunks[0]
    if all(isinstance(c, torch.Tensor) for c in chunks):
        return torch.cat(chunks, dim=2)
    return chunks


def _progress(iterable, progress, desc):
    n = len(iterable)
    if progress is None:
        progress = show_progress and n >= 10
    if not progress:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, unit='chunk', leave=False)


def _stream_chunks(stream, dt, t, max_t, progress):
    """Reads exactly the requested frames from a stream, chunk by chunk."""
    try:
        length = len(stream)
    except TypeError:
        length = None
    end = length if max_t is None else (max_t if length is None else min(length, max_t))
    if end is None:
        raise ValueError('the stream has no defined end: give max_t (the number of frames to run)')
    for s, e in _progress(_chunk_bounds(t, end, dt), progress, 'run'):
        frames = stream.get(e - s)
        if frames is None:
            return
        if not isinstance(frames, torch.Tensor):
            frames = np.asarray(frames)
        frames = _model_5d(frames)
        if frames.shape[2] == 0:
            return
        yield frames
