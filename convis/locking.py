"""One model, one lock: the re-entrant lock that serialises everything that runs or changes a model.

Every :class:`~convis.Layer` has ``layer.lock``, a :class:`ModelLock` (a ``threading.RLock`` that
survives ``copy.deepcopy`` and pickling).  A whole model tree shares one lock: when a module is
assigned as a submodule of a module that has a lock (``retina.opl = ...``, ``add_module``, an
``nn.ModuleList`` of a model growing by ``append``), every module of the new subtree is re-pointed to
the parent's lock, so ``retina.opl.lock is retina.lock``.  (This is done by a torch module
registration hook that this module installs once; modules outside convis models are not touched.)

The model's entry points hold the lock (``run``, ``__call__``, ``optimize``, ``compute_loss``,
``push/pop/get/set/clear_state``, ``set/load/push/pop_parameters``, ``parse_config``,
``impulse_response``, moving the model between devices), and so do the widgets of
:mod:`convis_widgets` and the :class:`~convis.Runner` while they use the model.  To make several
steps atomic in your own code, hold it yourself (it is re-entrant)::

    with retina.lock:
        retina.clear_state()
        o = retina.run(x, dt=500)
"""
import contextlib
import functools
import signal
import threading

import torch

__all__ = ['ModelLock', 'lock_of', 'locked', 'deferred_signals']

_ATTRIBUTE = '_convis_lock'
_creating = threading.Lock()


class ModelLock(object):
    """A re-entrant lock (``threading.RLock``) that a copied or unpickled model gets anew.

    Copies keep the sharing: all modules of one model that shared a lock share one new lock in
    the copy.  Use it as ``with model.lock: ...`` or with ``acquire(blocking=True, timeout=-1)`` /
    ``release()``.
    """
    __slots__ = ('_rlock', 'acquire', 'release', '__weakref__')

    def __init__(self):
        self._rlock = threading.RLock()
        self.acquire = self._rlock.acquire
        self.release = self._rlock.release

    def __enter__(self):
        return self._rlock.__enter__()

    def __exit__(self, *exc):
        return self._rlock.__exit__(*exc)

    def __reduce__(self):
        return (ModelLock, ())

    def __repr__(self):
        return '<convis.ModelLock %s>' % repr(self._rlock).split(' ', 1)[0].strip('<')


def lock_of(module):
    """The lock of ``module`` (created on first use for a module that has none yet)."""
    lock = module.__dict__.get(_ATTRIBUTE)
    if lock is None:
        with _creating:
            lock = module.__dict__.get(_ATTRIBUTE)
            if lock is None:
                lock = ModelLock()
                module.__dict__[_ATTRIBUTE] = lock
    return lock


def share_lock(module, lock):
    """Points ``module`` and every module below it to ``lock``."""
    for m in module.modules():
        m.__dict__[_ATTRIBUTE] = lock


def _submodule_registered(parent, name, child):
    """torch module registration hook: a subtree joins the lock of the model it is assigned to."""
    lock = parent.__dict__.get(_ATTRIBUTE)
    if lock is not None and isinstance(child, torch.nn.Module) and child.__dict__.get(_ATTRIBUTE) is not lock:
        share_lock(child, lock)
    return None


torch.nn.modules.module.register_module_module_registration_hook(_submodule_registered)


def locked(method):
    """Decorates a Layer method so that it runs holding the model's lock."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with lock_of(self):
            return method(self, *args, **kwargs)
    return wrapper


@contextlib.contextmanager
def deferred_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Holds Ctrl-C (SIGINT) and SIGTERM back for the block, then delivers the first one that came.

    Used around the writes of one chunk to several outputs, so that an interrupted run stops between
    chunks and every output file holds the same frames.  In other threads than the main thread (where
    Python cannot change signal handlers) the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {}

    def hold(signum, frame):
        received.append((signum, frame))

    try:
        for signum in signums:
            handler = signal.getsignal(signum)
            if handler is None or handler == signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, hold)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signum, frame = received[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt()
            else:
                signal.raise_signal(signum)
