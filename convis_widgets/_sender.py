"""Paced sending of frame batches: one shared byte budget, one short-lived thread a view.

Jupyter servers limit how much a kernel may send (``iopub_data_rate_limit``, 1 MB/s by default,
and ``iopub_msg_rate_limit``, 1000 messages/s), and a browser on a slow link drowns in
megabytes of pixels.  Every :class:`~convis_widgets.tensor_view.TensorView` therefore sends
its frames through :data:`budget`, a token bucket shared by all views of the kernel: a message
goes out at once while the bucket holds tokens (so the first batch after a slider move is never
delayed), and the next one waits until the debt it left is paid back at ``rate`` bytes/s.
"""
import logging
import threading
import time

__all__ = ['ByteBudget', 'budget', 'BatchSender']

logger = logging.getLogger('convis_widgets')


class ByteBudget(object):
    """A token bucket: at most ``burst`` bytes at once, ``rate`` bytes/s on average.

    ``take(n)`` never blocks; it returns how many seconds the caller should wait *before* its
    next message (0 while the bucket is not in debt).  ``sent`` counts every byte taken.

    >>> b = ByteBudget(rate=1000, burst=1000)
    >>> b.take(1500) > 0
    True
    """

    def __init__(self, rate=500_000, burst=256_000, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._time = clock()
        self._lock = threading.Lock()
        self.sent = 0
        self.messages = 0

    def _refill(self, now):
        self._tokens = min(self.burst, self._tokens + (now - self._time) * self.rate)
        self._time = now

    def delay(self):
        """Seconds until the bucket is out of debt (0 when a message may go now)."""
        with self._lock:
            self._refill(self._clock())
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, nbytes):
        """Counts a message of ``nbytes`` bytes; returns the delay the debt asks for."""
        with self._lock:
            self._refill(self._clock())
            self._tokens -= nbytes
            self.sent += nbytes
            self.messages += 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


budget = ByteBudget()
"""The budget every TensorView of this kernel shares (change ``budget.rate`` to allow more)."""


class BatchSender(object):
    """Sends queued items through ``send_one(item) -> nbytes`` in a thread that lives while there is work.

    ``replace(items)`` drops everything queued and queues ``items`` (a newer content supersedes
    what was not sent yet); ``extend(items)`` appends.  ``close()`` empties the queue and joins the
    thread.  Items are sent in order, one at a time, paced by ``budget``; with ``urgent=n`` the first
    ``n`` items of ``extend``/``replace`` go out without waiting for the budget's debt (the batch at the
    frame on screen after a slider move: the person waits for it), their bytes still counted, so
    the items after them wait longer.
    """

    def __init__(self, send_one, budget_=None, name='convis-frames'):
        self._send_one = send_one
        self._budget = budget_ if budget_ is not None else budget
        self._queue = []
        self._cond = threading.Condition()
        self._thread = None
        self._closed = False
        self._name = name
        self.error = None

    def replace(self, items, urgent=0):
        with self._cond:
            self._queue = self._entries(items, urgent)
            self._start()

    def extend(self, items, urgent=0):
        with self._cond:
            self._queue.extend(self._entries(items, urgent))
            self._start()

    @staticmethod
    def _entries(items, urgent):
        return [(i < urgent, item) for i, item in enumerate(items)]

    def pending(self):
        with self._cond:
            return len(self._queue)

    def _start(self):
        self._cond.notify_all()
        if self._closed or not self._queue:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def _loop(self):
        while True:
            with self._cond:
                while True:
                    if self._closed or not self._queue:
                        self._thread = None if self._thread is threading.current_thread() else self._thread
                        return
                    wait = 0.0 if self._queue[0][0] else self._budget.delay()
                    if wait <= 0:
                        break
                    self._cond.wait(min(wait, 0.5))
                _, item = self._queue.pop(0)
            try:
                nbytes = self._send_one(item)
            except Exception as e:  # noqa: BLE001 - logged, and kept for the owner to report
                logger.exception('sending frames failed')
                self.error = e
                nbytes = 0
            if nbytes:
                self._budget.take(nbytes)

    def wait_idle(self, timeout=10.0):
        """Blocks until the queue is empty and the thread has ended (True) or ``timeout`` passes (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._cond:
                t = self._thread
                if not self._queue and (t is None or not t.is_alive()):
                    return True
            if t is not None:
                t.join(min(0.05, max(0.0, end - time.monotonic())))
            else:
                time.sleep(0.005)
        return False

    def close(self, timeout=5.0):
        with self._cond:
            self._closed = True
            self._queue = []
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    @property
    def alive(self):
        t = self._thread
        return t is not None and t.is_alive()
