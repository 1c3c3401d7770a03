"""LatestWorker: runs the newest job in a background thread; newer jobs supersede older ones.

Slider changes arrive faster than a model runs.  :meth:`LatestWorker.submit` replaces any job
that has not started yet, and marks a running one as superseded: the running job notices at its
next :meth:`~LatestWorker.check` (between chunks) and stops with :class:`Superseded`.  Jobs run
one after another in one thread, so their results are delivered in the order they were asked
for and a superseded job's results never follow a newer one's.  The thread exists only while
there is work; :meth:`~LatestWorker.close` stops it and waits for it.  A job's exception is
logged, kept as ``last_error`` and passed to ``on_error`` (never swallowed).

A job runs holding ``worker.lock``: give the model's lock (``LatestWorker(lock=model.lock)``, see
:mod:`convis.locking`) and the job's use of the model (push the state, run, pop it) is one atomic
step for every other user of the model: the user's own cells, a :class:`~convis.Runner`, other
widgets.  While the lock is busy elsewhere the job waits for it, and is dropped if superseded
meanwhile.  :func:`take_over` makes a new widget of a model close the older one of its kind (a
re-run notebook cell must not leave a hidden explorer behind that still follows and runs the model).

>>> w = LatestWorker()
>>> w.submit(lambda generation: print('run', generation))
1
>>> w.wait_idle(); w.close()
"""
import logging
import threading
import time
import weakref

__all__ = ['LatestWorker', 'Superseded', 'take_over']

logger = logging.getLogger('convis_widgets')


class Superseded(Exception):
    """Raised by :meth:`LatestWorker.check` inside a job when a newer job was submitted."""


class LatestWorker(object):
    """A background thread that runs only the most recent of the submitted jobs.

    ``job(generation)`` is called with the number :meth:`submit` returned; it should call
    ``worker.check(generation)`` at safe points.  ``on_error(generation, exception)`` is called in
    the worker thread when a job fails.  ``lock`` (the model's lock; by default a lock of its own)
    is held while a job runs.  Counters: ``started``, ``completed``, ``superseded``, ``failed``.
    """

    def __init__(self, name='convis-preview', on_error=None, lock=None):
        self.name = name
        self.on_error = on_error
        self.lock = threading.RLock() if lock is None else lock
        """Held while a job runs (the model's lock when one was given)."""
        self._cond = threading.Condition()
        self._pending = None
        self._generation = 0
        self._running = None
        self._thread = None
        self._closed = False
        self.started = 0
        self.completed = 0
        self.superseded = 0
        self.failed = 0
        self.last_error = None

    @property
    def generation(self):
        """The number of the newest submitted job."""
        return self._generation

    def submit(self, job):
        """Queues ``job`` in place of any job not yet started; returns its generation number."""
        with self._cond:
            if self._closed:
                raise RuntimeError('the worker was closed')
            self._generation += 1
            self._pending = (self._generation, job)
            self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            return self._generation

    def interrupt(self):
        """Marks the running job as superseded without queuing a new one (it stops at its next check).

        Call it before waiting for the lock the running job holds (e.g. to set a parameter), so that
        the wait lasts one sub-chunk rather than the whole job; submit the next job afterwards.
        """
        with self._cond:
            self._generation += 1
            self._pending = None

    def is_superseded(self, generation):
        """True when a newer job was submitted after ``generation`` (or the worker was closed)."""
        return self._closed or generation != self._generation

    def check(self, generation):
        """Raises :class:`Superseded` when job ``generation`` should stop."""
        if self.is_superseded(generation):
            raise Superseded(generation)

    def _loop(self):
        while True:
            with self._cond:
                if self._closed or self._pending is None:
                    if self._thread is threading.current_thread():
                        self._thread = None
                    self._cond.notify_all()
                    return
                generation, job = self._pending
                self._pending = None
                self._running = generation
                self.started += 1
            try:
                self._run_locked(job, generation)
                self.completed += 1
            except Superseded:
                self.superseded += 1
            except Exception as e:  # noqa: BLE001 - logged, kept and reported through on_error
                self.failed += 1
                self.last_error = e
                logger.exception('%s: job %d failed', self.name, generation)
                if self.on_error is not None:
                    try:
                        self.on_error(generation, e)
                    except Exception:  # noqa: BLE001
                        logger.exception('%s: the error handler failed', self.name)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()

    def _run_locked(self, job, generation, poll=0.05):
        """Runs ``job(generation)`` holding the lock; while another thread holds it, stops waiting if superseded."""
        while not self.lock.acquire(timeout=poll):
            self.check(generation)
        try:
            job(generation)
        finally:
            self.lock.release()

    @property
    def busy(self):
        """True while a job runs or waits."""
        with self._cond:
            return self._pending is not None or self._running is not None

    @property
    def closed(self):
        """True once :meth:`close` was called (no job can be submitted then)."""
        return self._closed

    @property
    def alive(self):
        """True while the worker thread exists."""
        t = self._thread
        return t is not None and t.is_alive()

    def wait_idle(self, timeout=30.0):
        """Waits until no job runs or waits (True), or ``timeout`` seconds pass (False)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._running is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout=30.0):
        """Drops the waiting job, lets a running one stop at its next check, and joins the thread."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                logger.warning('%s: the worker thread did not stop within %g s', self.name, timeout)


_owners = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()


def take_over(model, kind, widget):
    """Makes ``widget`` the one ``kind`` of widget (e.g. ``'explorer'``) of ``model``; closes the previous one.

    Re-running a notebook cell that makes a widget leaves the old one hidden but alive: without this it
    would go on following the model's parameters and running the model from its own thread.  The
    old widget's ``close()`` unhooks it from the parameters and stops its threads.  Returns the old
    widget (closed) or None.
    """
    with _owners_lock:
        kinds = _owners.setdefault(model, {})
        ref = kinds.get(kind)
        old = ref() if ref is not None else None
        kinds[kind] = weakref.ref(widget)
    if old is None or old is widget:
        return None
    logger.info('a new %s of %s takes over from the previous one (closed)', kind, type(model).__name__)
    old.close()
    return old
