"""What sweeps and datasets share: the Dask client, the model shipped to workers, the task loop.

A model travels to the workers once, as cloudpickle bytes (its class, configuration, parameters and
state; classes defined in a notebook travel by value), and every task unpickles its own fresh copy on
its worker: the user's model is never changed.  Tasks are handed to Dask ``distributed``, which retries
a task whose worker died; the loop here only collects results as they finish.
"""
import contextlib
import logging
import os

import torch

logger = logging.getLogger('convis')

__all__ = ['open_client', 'model_bytes', 'build_model', 'run_tasks', 'progress_bar']


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


def build_model(data, device=None, torch_threads=None):
    """A fresh model from :func:`model_bytes` on this worker: on ``device`` (None: the worker's GPU when
    it has one, else the CPU), with ``torch.set_num_threads(torch_threads)`` when given."""
    import pickle
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    model = pickle.loads(data)
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else None
    if device is not None:
        model = model.to(device)
    return model


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
    finishes, in the order they finish.

    A task that raises cancels the others and raises its error again (Dask has already retried tasks
    whose worker died, up to ``distributed.scheduler.allowed-failures`` times).
    """
    from distributed import as_completed
    futures = {}
    for key, function, args in submissions:
        f = client.submit(function, *args, key='convis-%s' % key, pure=False, retries=0)
        futures[f] = key
    try:
        for f in as_completed(list(futures)):
            key = futures[f]
            on_result(key, f.result())
            f.release()
            if bar is not None:
                bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if bar is not None:
            bar.close()
