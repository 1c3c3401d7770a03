"""Sweeps, A/B comparisons and datasets of videos, from one notebook to a Dask cluster.

* :func:`sweep` runs a model once per parameter set (a grid, or explicit sets) and returns an
  ``xarray.Dataset`` labelled by the parameters (with their units), optionally written task by task
  into a zarr store that a restarted sweep resumes.
* :func:`run_files` runs a model over many video or image-sequence files, streamed chunk by chunk,
  into a zarr store with the file names as coordinates.
* :func:`parameter_sets` checks and lists a sweep's sets without running anything (for interfaces that
  preview a sweep), :func:`run_one` computes one set in this process.

The tasks run on Dask ``distributed``: ``client=None`` starts a ``LocalCluster`` with one worker process
per core for the call; any ``distributed.Client`` is used as it is.  Dask retries the tasks of a worker
that died.

>>> ds = convis.sweep(convis.retina.Retina(), stim, {'opl.sigma_surround': [0.5, 1.0]})   # doctest: +SKIP
"""
from .sweep import sweep, parameter_sets, run_one, SET_DIM
from .datasets import run_files

__all__ = ['sweep', 'run_files', 'parameter_sets', 'run_one', 'SET_DIM']
