"""What sweeps and datasets share: the Dask client, the model shipped to workers, the task loop.

A model travels to the workers once, as cloudpickle bytes (its class, configuration, parameters and
state; classes defined in a notebook travel by value).  Each worker process unpickles it once (cached
under a token, the hash of the bytes) and every task runs its own deep copy of that one: the user's
model is never changed, and a task starts from exactly the state the model was sent with.  Tasks are
handed to Dask ``distributed``, which retries a task whose worker died; the loop here only collects
results as they finish.

The first convis task in a worker process prepares the process once (:func:`prepare_process`): glibc's
malloc keeps freed memory for reuse (Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
which hands every freed block above 64 KiB back to the system: the retina's next piece of frames then
faults the same memory back in page by page, about 113,000 page faults and 70 % more CPU time per
64x64x2000 run).
"""
import contextlib
import copy
import ctypes
import hashlib
import logging
import os
import pickle
import sys
import threading
from collections import OrderedDict

import torch

logger = logging.getLogger('convis')

__all__ = ['open_client', 'model_bytes', 'model_token', 'build_model', 'prepare_process', 'run_tasks',
           'progress_bar']


def _check_client(client):
    from distributed import Client
    if client is not None and not isinstance(client, Client):
        raise TypeError('client must be a distributed.Client (or None to start a LocalCluster), not %s'
                        % type(client).__name__)


@contextlib.contextmanager
def open_client(client=None, n_workers=None):
    """Yields ``(client, torch_threads)``: the user's client as is, or a new ``LocalCluster`` client.

    ``client=None`` starts a ``distributed.LocalCluster`` with one worker process per core
    (``n_workers``, default ``os.cpu_count()``), one thread each, and closes it at the end; its tasks run
    torch with one thread (``torch_threads=1``), so the workers do not compete for the cores.  With the
    user's client, ``torch_threads`` is None: torch's thread setting on the workers is left alone.
    """
    _check_client(client)
    if client is not None:
        yield client, None
        return
    from distributed import Client, LocalCluster
    n = int(n_workers or os.cpu_count() or 1)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c, 1


def model_bytes(model):
    """The model as cloudpickle bytes; a model that cannot be pickled raises a TypeError naming why."""
    import cloudpickle
    try:
        return cloudpickle.dumps(model)
    except Exception as e:  # noqa: BLE001 - any pickling failure is reported the same way
        raise TypeError('the model cannot be sent to the workers: pickling %s failed (%s: %s)'
                        % (type(model).__name__, type(e).__name__, str(e)[:200])) from e


def model_token(data):
    """The key under which workers cache the model unpickled from ``data`` (:func:`model_bytes`)."""
    return hashlib.sha1(data).hexdigest()


MALLOC_TRIM_BYTES = 256 << 20
"""Freed memory glibc's malloc keeps in a worker process before handing it back to the system (bytes)."""

MALLOC_MMAP_BYTES = 32 << 20
"""Allocations from this size on get their own memory map (bytes; glibc's largest, as its default grows to)."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)

MODELS_KEPT = 2
"""Unpickled models a worker process keeps (the most recently used), for the tasks of the sweeps that follow."""

_PROCESS = {'pid': None, 'models': OrderedDict()}
_PROCESS_LOCK = threading.RLock()


def _keep_freed_memory():
    """Sets glibc's malloc thresholds (:data:`MALLOC_TRIM_BYTES`, :data:`MALLOC_MMAP_BYTES`); True when set.
    Other C libraries (macOS, musl) are left alone."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_BYTES)) and bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES))


def prepare_process(torch_threads=None):
    """Prepares this (worker) process for convis tasks, once per process: keeps freed memory for reuse
    (see the module's description).  ``torch_threads`` (when given) is set
    with ``torch.set_num_threads`` on every call.  Returns whether malloc's thresholds were set (None:
    the process was prepared before)."""
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    with _PROCESS_LOCK:
        if _PROCESS['pid'] == os.getpid():
            return None
        _PROCESS['pid'] = os.getpid()
        _PROCESS['models'].clear()  # a forked process starts its own cache
        return _keep_freed_memory()


def build_model(data, device=None, torch_threads=None, token=None):
    """A fresh model from :func:`model_bytes` on this worker: on ``device`` (None: the worker's GPU when
    it has one, else the CPU), with ``torch.set_num_threads(torch_threads)`` when given.

    With a ``token`` (:func:`model_token` of ``data``) the process unpickles the bytes once and returns a
    deep copy of that model for every call (a copy costs a third of unpickling); without, it unpickles."""
    prepare_process(torch_threads)
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else None
    if token is None:
        model = pickle.loads(data)
        return model.to(device) if device is not None else model
    key = (token, str(device))
    with _PROCESS_LOCK:
        models = _PROCESS['models']
        model = models.get(key)
        if model is None:
            model = pickle.loads(data)
            if device is not None:
                model = model.to(device)
            models[key] = model
            while len(models) > MODELS_KEPT:
                models.popitem(last=False)
        models.move_to_end(key)
        return copy.deepcopy(model)


def progress_bar(progress, total, initial, desc):
    """A tqdm.auto bar (a widget in a notebook, text in a terminal), a callable ``progress(done, total)``
    wrapped as one, or None.  ``progress=None`` follows ``convis.base.show_progress``."""
    from .. import base
    if progress is None:
        progress = base.show_progress
    if callable(progress):
        return _CallbackBar(progress, total, initial)
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit='task')


class _CallbackBar(object):
    """The part of tqdm's interface the task loop uses, reporting to ``callback(done, total)``."""

    def __init__(self, callback, total, initial):
        self.callback, self.total, self.n = callback, total, initial
        callback(initial, total)

    def update(self, k=1):
        self.n += k
        self.callback(self.n, self.total)

    def close(self):
        pass


def run_tasks(client, submissions, on_result, bar=None):
    """Submits ``submissions`` (``(key, function, args)``) and calls ``on_result(key, result)`` as each
    finishes, in the order they finish.  Results are fetched from the workers in the background as their
    tasks finish (not one round trip after another in this loop).

    A task that raises cancels the others and raises its error again (Dask has already retried tasks
    whose worker died, up to ``distributed.scheduler.allowed-failures`` times).
    """
    from distributed import as_completed
    futures = {}
    for key, function, args in submissions:
        f = client.submit(function, *args, key='convis-%s' % key, pure=False, retries=0)
        futures[f] = key
    try:
        for f, result in as_completed(list(futures), with_results=True):
            if f.status != 'finished':  # cancelled elsewhere: raises its CancelledError
                f.result()
            on_result(futures[f], result)
            f.release()
            if bar is not None:
                bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if bar is not None:
            bar.close()
