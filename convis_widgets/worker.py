"""LatestWorker: runs the newest job in a background thread; newer jobs supersede older ones.

Slider changes arrive faster than a model runs.  :meth:`LatestWorker.submit` replaces any job
that has not started yet, and marks a running one as superseded: the running job notices at its
next :meth:`~LatestWorker.check` (between chunks) and stops with :class:`Superseded`.  Jobs run
one after another in one thread, so their results are delivered in the order they were asked
for and a superseded job's results never follow a newer one's.  The thread exists only while
there is work; :meth:`~LatestWorker.close` stops it and waits for it.  A job's exception is
logged, kept as ``last_error`` and passed to ``on_error`` (never swallowed).

>>> w = LatestWorker()
>>> w.submit(lambda generation: print('run', generation))
1
>>> w.wait_idle(); w.close()
"""
import logging
import threading
import time

__all__ = ['LatestWorker', 'Superseded']

logger = logging.getLogger('convis_widgets')


class Superseded(Exception):
    """Raised by :meth:`LatestWorker.check` inside a job when a newer job was submitted."""


class LatestWorker(object):
    """A background thread that runs only the most recent of the submitted jobs.

    ``job(generation)`` is called with the number :meth:`submit` returned; it should call
    ``worker.check(generation)`` at safe points.  ``on_error(generation, exception)`` is called in
    the worker thread when a job fails.  Counters: ``started``, ``completed``, ``superseded``,
    ``failed``.
    """

    def __init__(self, name='convis-preview', on_error=None):
        self.name = name
        self.on_error = on_error
        self.lock = threading.RLock()
        """Held while a job runs: hold it to use the model from another thread meanwhile."""
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
                with self.lock:
                    job(generation)
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

    @property
    def busy(self):
        """True while a job runs or waits."""
        with self._cond:
            return self._pending is not None or self._running is not None

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
