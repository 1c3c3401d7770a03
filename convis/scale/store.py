"""Where a sweep's results go: an in-memory xarray Dataset, or a zarr store written task by task.

A store holds one xarray Dataset: the sweep's parameter dimensions and coordinates, one variable per
output, chunked one parameter set per chunk, and ``_done`` (one flag per set).  A task's outputs are
written into their region first and its flag after them, so a sweep killed at any moment leaves
flags only on complete results; a restart with the same store reads the flags and runs the rest.
``fingerprint`` (a hash of the model's class, parameters and state, the stimulus and the sweep)
guards against resuming a store with another sweep.
"""
import os
from collections import OrderedDict

import numpy as np

__all__ = ['Collector', 'StoreCollector']

DONE = '_done'
FINGERPRINT = 'convis_sweep_fingerprint'


class Collector(object):
    """Gathers ``name -> (dims, array, coords)`` results of the sets of a sweep into one Dataset.

    ``dims`` are the sweep's dimensions, ``coords`` their coordinates (``name -> (dims, values,
    attrs)``), ``n`` the number of sets.
    """

    def __init__(self, dims, coords, n, attrs=None):
        self.dims, self.coords, self.n = tuple(dims), coords, n
        self.attrs = dict(attrs or {})
        self.shape = tuple(len(coords[d][1]) for d in self.dims)
        self.variables = None  # name -> (dims, dtype, shape, coords) of one set's result
        self.variable_attrs = {}  # name -> attrs of the variable (units...)
        self.data = OrderedDict()

    def describe(self, result):
        """Learns the variables' dims, dtypes, shapes, coordinates and attrs from the first result."""
        self.variables = OrderedDict((k, (tuple(d), a.dtype, a.shape, c)) for k, (d, a, c) in result.items())
        self.variable_attrs = {k: dict(getattr(v, 'attrs', {})) for k, v in result.items()}

    def check(self, result):
        if set(result) != set(self.variables):
            raise ValueError('sweep: a task returned the variables %s, the first one %s (reduce must return '
                             'the same names for every set)' % (sorted(result), sorted(self.variables)))
        for k, (d, a, c) in result.items():
            if tuple(a.shape) != self.variables[k][2]:
                raise ValueError('sweep: variable %r has shape %s in one set and %s in another (reduce must '
                                 'return the same shape for every set)' % (k, a.shape, self.variables[k][2]))

    def done(self, index):
        return False

    def add(self, index, result):
        if self.variables is None:
            self.describe(result)
            for k, (d, dtype, shape, c) in self.variables.items():
                self.data[k] = np.zeros(self.shape + shape, dtype=dtype)
        self.check(result)
        for k, (d, a, c) in result.items():
            self.data[k][index] = a

    def base_dataset(self):
        import xarray as xr
        coords = OrderedDict((k, xr.Variable(d, v, attrs)) for k, (d, v, attrs) in self.coords.items())
        for k, (d, dtype, shape, c) in (self.variables or {}).items():
            for name, (cd, cv, ca) in c.items():
                coords.setdefault(name, xr.Variable(cd, cv, ca))
        return xr.Dataset(coords=coords, attrs=self.attrs)

    def dataset(self):
        ds = self.base_dataset()
        for k, (d, dtype, shape, c) in self.variables.items():
            ds[k] = (self.dims + d, self.data[k])
            ds[k].attrs.update(self.variable_attrs.get(k, {}))
        return ds


class StoreCollector(object):
    """A :class:`Collector` that writes each result into the zarr store ``path`` as it arrives."""

    def __init__(self, path, collector, fingerprint):
        self.path, self.inner, self.fingerprint = path, collector, fingerprint
        self.flags = np.zeros(collector.shape, dtype=bool)
        self.started = False
        if os.path.isdir(path) and os.listdir(path):
            import xarray as xr
            try:
                ds = xr.open_zarr(path, consolidated=False)
            except Exception as e:  # noqa: BLE001 - any unreadable folder is refused alike
                raise ValueError('sweep: store %r exists and is not a sweep store (%s: %s); give a new path'
                                 % (path, type(e).__name__, str(e)[:200])) from e
            if ds.attrs.get(FINGERPRINT) != fingerprint:
                raise ValueError('sweep: store %r holds another sweep (a different model, parameters, state, '
                                 'stimulus, dt, outputs or reduce); give a new path, or delete it' % path)
            self.flags = np.asarray(ds[DONE].values, dtype=bool)
            self.started = True

    def done(self, index):
        return bool(self.flags[index])

    def _start(self, result):
        import dask.array as da
        c = self.inner
        c.describe(result)
        ds = c.base_dataset()
        ds.attrs[FINGERPRINT] = self.fingerprint
        for k, (d, dtype, shape, cc) in c.variables.items():
            ds[k] = (c.dims + d, da.zeros(c.shape + shape, dtype=dtype, chunks=(1,) * len(c.dims) + shape))
            ds[k].attrs.update(c.variable_attrs.get(k, {}))
        ds[DONE] = (c.dims, np.zeros(c.shape, dtype=bool))
        ds[DONE].encoding['chunks'] = (1,) * len(c.dims)
        ds.to_zarr(self.path, mode='w', compute=False, consolidated=False)
        self.started = True

    def add(self, index, result):
        import xarray as xr
        if not self.started:
            self._start(result)
        elif self.inner.variables is None:
            ds = xr.open_zarr(self.path, consolidated=False)
            self.inner.variables = OrderedDict(
                (k, (ds[k].dims[len(self.inner.dims):], ds[k].dtype, ds[k].shape[len(self.inner.dims):], {}))
                for k in ds.data_vars if k != DONE)
        self.inner.check(result)
        region = {d: slice(i, i + 1) for d, i in zip(self.inner.dims, index)}
        part = xr.Dataset({k: (self.inner.dims + tuple(d), a[(None,) * len(index)]) for k, (d, a, c) in result.items()})
        part.to_zarr(self.path, region=region, consolidated=False)
        xr.Dataset({DONE: (self.inner.dims, np.ones((1,) * len(index), dtype=bool))}).to_zarr(
            self.path, region=region, consolidated=False)
        self.flags[index] = True

    def dataset(self):
        import xarray as xr
        ds = xr.open_zarr(self.path, consolidated=False).drop_vars(DONE)
        return ds.assign_coords({k: ds[k].load() for k in ds.coords})
