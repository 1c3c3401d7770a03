"""Datasets of videos: one model run per file, on a Dask cluster, streamed chunk by chunk into zarr.

>>> ds = convis.run_files(retina, 'videos/*.mp4', store='out.zarr', dt=500)     # doctest: +SKIP
>>> ds.error.values                  # '' for every file that ran, else the error      # doctest: +SKIP
>>> ds.ganglion_spikes_ON.sel(file='videos/a.mp4')                              # doctest: +SKIP
"""
import glob
import hashlib
import os
import re
import time
import uuid
from collections import OrderedDict

import numpy as np
import torch

from . import cluster
from .sweep import _frames_dims, _output_items

__all__ = ['run_files']

GROUP = 'files'
"""The zarr group holding one sub-group (an xarray Dataset) per file."""


def _file_list(files):
    if isinstance(files, (str, os.PathLike)):
        pattern = os.fspath(files)
        paths = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise FileNotFoundError('run_files: no file matches %r' % pattern)
        return paths
    paths = [os.fspath(f) for f in files]
    if not paths:
        raise ValueError('run_files: the list of files is empty')
    if len(set(paths)) != len(paths):
        raise ValueError('run_files: a file is listed twice')
    return paths


def _key(path):
    """The zarr group name of ``path``: its name made safe, and a hash of its absolute path."""
    name = re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.basename(path.rstrip('/')))[:60] or 'file'
    return '%s-%s' % (name, hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:10])


def _signature(path):
    """``(size, mtime_ns)`` of a file or folder, None for a glob (a file changed since is run again)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _finished(store, key, path):
    """The attributes of the finished run of ``path`` in the store, or None."""
    import zarr
    try:
        attrs = dict(zarr.open_group(store, path='%s/%s' % (GROUP, key), mode='r').attrs)
    except Exception:  # noqa: BLE001 - no group, or a damaged one: run the file again
        return None
    if attrs.get('convis_complete') and attrs.get('convis_source') == path \
            and attrs.get('convis_signature') == _signature(path):
        return attrs
    return None


def _remove_group(store, key):
    import zarr
    try:
        del zarr.open_group(store, path=GROUP, mode='a')[key]
    except KeyError:
        pass


def _file_task(data, token, path, key, store, dt, outputs, device, torch_threads, reader_kwargs):
    """Runs one file chunk by chunk, appending each chunk's outputs to the store; never raises for
    a bad file: returns ``{'frames', 'error', 'seconds'}``."""
    import xarray as xr
    import zarr
    from ..streams import open_input
    start = time.perf_counter()
    group = '%s/%s' % (GROUP, key)
    n = 0
    try:
        signature = _signature(path)
        model = cluster.build_model(data, device=device, torch_threads=torch_threads, token=token)
        res = model.resolution
        sps, ppd = float(res.steps_per_second), float(res.pixel_per_degree)
        with open_input(path, **reader_kwargs) as stream, torch.no_grad():
            while True:
                frames = stream.get(dt)
                if frames is None or len(frames) == 0:
                    break
                items = _output_items(model(frames), outputs)
                model.detach_state()
                ds = xr.Dataset()
                for k, v in items:
                    dims, a = _frames_dims(v.detach().cpu().numpy())
                    ds[k] = (dims, a)
                length = ds.sizes['time']
                ds = ds.assign_coords(time=('time', (n + np.arange(length)) / sps, {'units': 's'}))
                if n == 0:
                    ds = ds.assign_coords(y=('y', np.arange(ds.sizes['y']) / ppd, {'units': 'deg'}),
                                          x=('x', np.arange(ds.sizes['x']) / ppd, {'units': 'deg'}))
                    ds.to_zarr(store, group=group, mode='w', consolidated=False)
                else:
                    ds.to_zarr(store, group=group, append_dim='time', consolidated=False)
                n += length
        if n == 0:
            raise ValueError('the file has no frames')
        zarr.open_group(store, path=group, mode='r+').attrs.update(
            {'convis_source': path, 'convis_signature': signature, 'convis_frames': n, 'convis_complete': True})
        return {'frames': n, 'error': '', 'seconds': time.perf_counter() - start}
    except Exception as e:  # noqa: BLE001 - a bad file is reported in the result; the others go on
        _remove_group(store, key)
        return {'frames': -1, 'error': '%s: %s' % (type(e).__name__, str(e)[:400]),
                'seconds': time.perf_counter() - start}


def run_files(model, files, store, dt=500, client=None, outputs=None, progress=None, device=None, **reader_kwargs):
    """Runs ``model`` over every file of a dataset of videos or image sequences, one Dask task per file.

    Each file is read chunk by chunk (``dt`` frames; :func:`convis.streams.open_input`: videos, image
    files, folders of images, .npy/.npz, HDF5, INR), each chunk run and its outputs appended to the zarr
    store, so memory stays flat however long the file.  Every file starts from a fresh copy of
    ``model`` (its current state; the model is never changed).

    Parameters
    ----------
    model : convis.Layer
        the model
    files : str or list
        a glob pattern (``'videos/*.mp4'``, sorted matches) or a list of paths
    store : str
        the zarr store (folder) the outputs go to, one group per file (``files/<name>-<hash>``); a rerun
        skips the files already finished there (unless the file changed: size or modification time)
    dt : int
        chunk length in frames (frames are 1/steps_per_second s apart)
    client : distributed.Client or None
        None starts a ``distributed.LocalCluster`` with one worker process per core; a client of any
        cluster is used as it is (its workers must reach the files and the store)
    outputs : list of str or None
        the outputs to keep (default: all)
    progress : bool, callable or None
        a progress bar (tqdm.auto); a callable gets ``(done, total)``; None follows
        ``convis.base.show_progress``
    device : str or None
        None takes the worker's GPU when it has one, else its CPU
    reader_kwargs
        passed to the readers (``size=(64, 64)`` crops frames, ``mode='gray'`` ...)

    Returns
    -------
    xarray.Dataset
        dimension ``file`` (the paths as coordinates); ``frames`` (per file, -1 when it failed),
        ``error`` (``''``, or the error's type and message: a corrupt file is reported here and does
        not stop the others) and, read lazily from the store, one variable per output
        ``[file, time, y, x]`` (``time`` in s, ``y`` and ``x`` in degrees; shorter files padded with NaN)

    >>> ds = convis.run_files(convis.retina.Retina(), 'clips/*.mp4', store='clips.zarr')   # doctest: +SKIP
    >>> ds.ganglion_spikes_ON.mean(('y', 'x')).plot.line(x='time')                        # doctest: +SKIP
    """
    import zarr
    from ..base import Layer
    if not isinstance(model, Layer):
        raise TypeError('run_files: model must be a convis.Layer, not %s' % type(model).__name__)
    if store is None:
        raise TypeError('run_files: give a zarr store (a folder path) for the outputs')
    store = os.fspath(store)
    dt = int(dt)
    if dt < 1:
        raise ValueError('run_files: dt must be at least 1 frame, not %d' % dt)
    if outputs is not None:
        outputs = [outputs] if isinstance(outputs, str) else [str(k) for k in outputs]
    paths = _file_list(files)
    keys = OrderedDict((p, _key(p)) for p in paths)
    zarr.open_group(store, mode='a').require_group(GROUP)
    status = OrderedDict()
    for p, k in keys.items():
        attrs = _finished(store, k, p)
        if attrs is not None:
            status[p] = {'frames': int(attrs['convis_frames']), 'error': '', 'seconds': 0.0}
    todo = [p for p in paths if p not in status]
    bar = cluster.progress_bar(progress, len(paths), len(paths) - len(todo), 'files')
    if todo:
        data = cluster.model_bytes(model)
        with cluster.open_client(client) as (c, threads):
            data_f = c.scatter(data, broadcast=True, hash=False)
            token = uuid.uuid4().hex[:12]
            by_key = {'%s-%d' % (token, i): p for i, p in enumerate(todo)}
            model_token = cluster.model_token(data)
            subs = [(k, _file_task,
                     (data_f, model_token, p, keys[p], store, dt, outputs, device, threads, reader_kwargs))
                    for k, p in by_key.items()]
            cluster.run_tasks(c, subs, lambda k, r: status.__setitem__(by_key[k], r), bar=bar)
    elif bar is not None:
        bar.close()
    return _dataset(store, paths, keys, status)


def _dataset(store, paths, keys, status):
    import xarray as xr
    file_index = xr.Variable(('file',), np.asarray(paths, dtype=object))
    summary = xr.Dataset({'frames': ('file', np.asarray([status[p]['frames'] for p in paths], dtype=np.int64)),
                          'error': ('file', np.asarray([status[p]['error'] for p in paths], dtype=object))},
                         coords={'file': file_index})
    ok = [p for p in paths if not status[p]['error']]
    if not ok:
        return summary
    parts = [xr.open_zarr(store, group='%s/%s' % (GROUP, keys[p]), consolidated=False) for p in ok]
    for d in parts:
        d.attrs.clear()  # the per-file bookkeeping (source, signature) stays in the store
    outputs = xr.concat(parts, dim=xr.Variable(('file',), np.asarray(ok, dtype=object)), join='outer',
                        coords='minimal', compat='override')
    outputs = outputs.assign_coords(file=np.asarray(ok, dtype=object))
    return xr.merge([summary, outputs.reindex(file=file_index.values)], compat='override', join='left')

