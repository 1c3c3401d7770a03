"""Runner: a model, an input stream and an output stream, run chunk by chunk in a background thread.

Each step reads ``chunk_size`` frames from the input stream, runs the model on them
(its state carries from chunk to chunk, so the frames equal one long run) and puts the
model's output into the output stream(s).  ``start()`` does this in a thread until
``stop()`` or the end of the input; ``run(length)`` does it in the calling thread.

The runner holds the model's lock (``runner.lock`` is ``model.lock``, see :mod:`convis.locking`)
while it runs a chunk, so the model's own calls from other threads (``model.run``, a widget's
preview) wait for the chunk under way, and several changes made under the lock land between two
chunks, e.g. ``with runner.lock: model.p.tau = 0.02``.  Only one runner at a time may run a model
in its thread.  An error in the thread stops it; the error is logged, kept in
``runner.exception`` and raised again by the next ``stop()``, ``join()``, ``start()``, ``run()``
or ``optimize()``.  Stopping flushes the outputs, so files are complete (a video is finished by
this: a stopped runner cannot add frames to it); ``close()`` (or leaving a ``with`` block, or the
end of the program) also closes the streams.

``stop()`` and ``close()`` return within ``timeout`` seconds (:data:`STOP_TIMEOUT` by default)
even when the thread is stuck, e.g. in the ``get()`` of an input stream that waits for frames that
never come: the thread (a daemon) is then abandoned with a warning, the input streams are closed
(when they have ``close()``, which unblocks most of them) and whatever it reads afterwards is
dropped.

>>> import convis, time
>>> import numpy as np
>>> inp = convis.streams.RandomStream(size=(10, 10), pixel_per_degree=1.0, level=100.2, mean=128.0)
>>> out = convis.streams.SequenceStream(sequence=np.ones((0, 10, 10)), max_frames=10000)
>>> runner = convis.Runner(convis.retina.Retina(), input=inp, output=out)   # doctest: +SKIP
>>> runner.start(); time.sleep(5); runner.stop()                             # doctest: +SKIP
>>> out.sequence.shape, runner.frames_per_second                             # doctest: +SKIP
"""
import atexit
import logging
import threading
import time
import warnings
import weakref

import numpy as np

from . import chunking
from .streams.base import ClosedOnExit, SequenceStream, check_count, model_output_frames
from .utils import _short_repr
from .locking import deferred_signals

__all__ = ['Runner']

logger = logging.getLogger('convis.runner')

_live_runners = weakref.WeakSet()
_model_owners = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()

STOP_TIMEOUT = 10.0
"""Seconds ``Runner.stop()`` and ``close()`` wait for the thread by default before abandoning it."""


def _frames_in(a):
    return 0 if a is None else int(np.shape(a)[-3]) if np.ndim(a) >= 3 else 1


class Runner(ClosedOnExit):
    """Runs ``model`` on frames from ``input`` and puts the results into ``output``, in a background thread.

    Parameters
    ----------
    model : convis.Layer or callable
        the model (``model.run(chunk)`` for a Layer; any other callable is called on the chunk)
    input : stream or array
        frames to run (anything with ``get(n)``; an array ``(t, x, y)`` is wrapped in a
        :class:`~convis.streams.SequenceStream`); it may be infinite
    output : stream, list or dict of streams, or None
        receives the model's first output as numpy frames ``(t, x, y)`` of batch 0 (``(c, t, x, y)`` when
        the output has several channels); with a list, output ``k`` goes to stream ``k`` (``None``
        entries are skipped); with a dict, the output named by each key goes to its stream
    goal : stream or array
        target frames for :meth:`optimize`, as long as ``input``
    chunk_size : int
        frames per step (memory use grows with it; results do not depend on it)
    wait_for_input : bool
        when the input has no frames: ``False`` ends the thread; ``True`` waits for more (for a
        :class:`~convis.streams.SequenceStream` that another thread fills) until ``stop()``

    Attributes: ``frames`` (frames run), ``chunks``, ``elapsed`` (seconds spent running chunks),
    ``frames_per_second``, ``losses`` (from :meth:`optimize`), ``exception``, ``is_running``, ``lock`` (the
    model's lock, held while a chunk runs).
    """

    def __init__(self, model=None, input=None, output=None, goal=None, chunk_size=100, wait_for_input=False,
                 poll_interval=0.05):
        self.model = model
        self.input = self._as_stream(input, 'input')
        self.output = output
        self.goal = self._as_stream(goal, 'goal')
        self.chunk_size = check_count(chunk_size, 'chunk_size')
        if self.chunk_size == 0:
            raise ValueError('chunk_size must be at least 1 frame')
        self.wait_for_input = bool(wait_for_input)
        self.poll_interval = float(poll_interval)
        self._own_lock = threading.RLock()
        self._start_lock = threading.Lock()
        self.frames = 0
        self.chunks = 0
        self.elapsed = 0.0
        self.losses = []
        self.exception = None
        self.input_ended = False
        self._exception_raised = True
        self._thread = None
        self._stop_event = threading.Event()
        self.abandoned = []
        """Threads that did not stop within the timeout of :meth:`stop` (they end when their ``get()`` returns)."""

    @staticmethod
    def _as_stream(s, name):
        if s is None or callable(getattr(s, 'get', None)):
            return s
        if isinstance(s, (np.ndarray, list, tuple)) or hasattr(s, 'detach'):
            return SequenceStream(s, max_frames=None)
        raise TypeError('%s must be a stream (with get(n)) or an array of frames, not %s' % (name, _short_repr(s)))

    # -------------------------------------------------------------- state
    @property
    def lock(self):
        """The model's re-entrant lock (a runner of a plain callable has one of its own); held while a chunk runs."""
        lock = getattr(self.model, 'lock', None)
        return lock if hasattr(lock, 'acquire') else self._own_lock

    @property
    def is_running(self):
        """Whether the background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def closed(self):
        return not self.is_running

    @property
    def frames_per_second(self):
        """Frames run per second of computing (model plus streams)."""
        return self.frames / self.elapsed if self.elapsed > 0 else float('nan')

    def _outputs(self):
        """``(output index or key, stream)`` pairs."""
        if self.output is None:
            return []
        if isinstance(self.output, dict):
            return list(self.output.items())
        if isinstance(self.output, (list, tuple)):
            return [(i, s) for i, s in enumerate(self.output) if s is not None]
        return [(0, self.output)]

    def _raise_pending(self):
        if self.exception is not None and not self._exception_raised:
            self._exception_raised = True
            raise self.exception

    def _check_ready(self, need_goal=False):
        self._raise_pending()
        if self.is_running:
            raise RuntimeError('the runner is running in its thread; stop() it first')
        if self.model is None:
            raise ValueError('the runner has no model')
        if self.input is None:
            raise ValueError('the runner has no input stream')
        if need_goal and self.goal is None:
            raise ValueError('optimize needs a goal stream (Runner(..., goal=...))')
        owner = _model_owners.get(id(self.model))
        if owner is not None and owner is not self and owner.is_running:
            raise RuntimeError('this model is already run by another Runner; stop that one first')

    # -------------------------------------------------------------- one chunk
    def _step(self, mode, n=None, thread=None):
        """Runs one chunk; returns the number of frames (0 when the input has none).

        The streams are read and written outside the model's lock (a stream may block); ``thread`` is the
        runner thread calling, which drops what it read once it was abandoned by :meth:`stop`.
        """
        n = self.chunk_size if n is None else n
        t0 = time.perf_counter()
        x = self.input.get(n)
        k = _frames_in(x)
        if k == 0:
            return 0
        y = None
        if mode == 'optimize':
            y = self.goal.get(k)
            if _frames_in(y) != k:
                raise ValueError('the goal stream gave %d frames for %d input frames' % (_frames_in(y), k))
        abandoned = (lambda: thread is not self._thread) if thread is not None else (lambda: False)
        if abandoned():
            return 0
        with self.lock:
            if mode == 'optimize':
                loss = self.model.optimize(x, y)
                self.losses.append(float(np.sum(loss)))
            elif hasattr(self.model, 'run'):
                o = self.model.run(x, progress=False)
            else:
                import torch
                with torch.no_grad():
                    o = self.model(x)
            self.frames += k
            self.chunks += 1
        if mode != 'optimize' and not abandoned():
            with deferred_signals():  # Ctrl-C or SIGTERM stops between chunks: every output holds the same frames
                for key, stream in self._outputs():
                    stream.put(model_output_frames(o, key))
        self.elapsed += time.perf_counter() - t0
        return k

    def _flush_outputs(self):
        for _, s in self._outputs():
            flush = getattr(s, 'flush', None)
            if flush is not None:
                flush()

    # -------------------------------------------------------------- the thread
    def start(self, mode='run'):
        """Runs the model in a background thread (``mode='optimize'`` fits it to ``goal`` instead); returns self.

        Does nothing when the thread runs already (also when two threads call it at once: one thread starts).
        """
        if mode not in ('run', 'optimize'):
            raise ValueError("mode must be 'run' or 'optimize', not %s" % _short_repr(mode))
        with self._start_lock:
            if self.is_running:
                return self
            with _registry_lock:
                self._check_ready(need_goal=mode == 'optimize')
                _model_owners[id(self.model)] = self
            self.exception, self._exception_raised, self.input_ended = None, True, False
            self._stop_event = stop_event = threading.Event()
            thread = threading.Thread(target=self._loop, args=(mode, stop_event), name='convis-Runner', daemon=True)
            self._thread = thread
            _live_runners.add(self)
            thread.start()
        return self

    def _loop(self, mode, stop_event):
        me = threading.current_thread()
        try:
            while not stop_event.is_set():
                if self._step(mode, thread=me) == 0:
                    if self._thread is not me:
                        break
                    if self.wait_for_input and not getattr(self.input, 'closed', False):
                        stop_event.wait(self.poll_interval)
                        continue
                    self.input_ended = True
                    break
        except BaseException as e:
            if self._thread is me:
                self._fail(e)
            else:
                logger.info('Runner: an abandoned thread ended with %s: %s', type(e).__name__, _short_repr(e))
        finally:
            try:
                if self._thread is me:
                    self._flush_outputs()
            except BaseException as e:
                if self.exception is None:
                    self._fail(e)

    def _fail(self, e):
        self.exception, self._exception_raised = e, False
        logger.error('Runner: %s in the model thread after %d frames; it is raised again on stop()/join()',
                     type(e).__name__, self.frames, exc_info=e)

    def stop(self, timeout=None):
        """Stops the thread after the chunk under way, waits for it (at most ``timeout`` s) and flushes outputs.

        Returns within ``timeout`` seconds (``None``: :data:`STOP_TIMEOUT`, 10 s; ``math.inf`` waits as long
        as it takes).  A thread still busy then (most often blocked in the ``get()`` of its input stream) is
        abandoned with a ``RuntimeWarning``: its input and goal streams are closed when they have ``close()``
        (which unblocks most streams), frames it reads afterwards are dropped, and it ends by itself; the
        runner can be started again.  Raises the thread's exception if it failed.
        """
        with self._start_lock:
            self._stop_event.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            timeout = STOP_TIMEOUT if timeout is None else float(timeout)
            thread.join(None if timeout == float('inf') else timeout)
            if thread.is_alive():
                self._abandon(thread, timeout)
        self._raise_pending()

    def _abandon(self, thread, timeout):
        with self._start_lock:
            if self._thread is thread:
                self._thread = None
            self.abandoned = [t for t in self.abandoned if t.is_alive()] + [thread]
        warnings.warn('the Runner thread did not stop within %s s (blocked in a stream or a long chunk); it is '
                      'abandoned: its input streams are closed and what it reads is dropped' % timeout,
                      RuntimeWarning, stacklevel=3)
        for s in (self.input, self.goal):
            close = getattr(s, 'close', None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing is a courtesy to the stuck thread; it is logged
                    logger.exception('Runner: closing the input stream of an abandoned thread failed')

    def join(self, timeout=None):
        """Waits until the thread ends by itself (at the end of the input); True when it has ended.

        Raises the thread's exception if it failed.
        """
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._raise_pending()
        return not self.is_running

    # -------------------------------------------------------------- in the calling thread
    def _limit(self, length):
        if length is not None:
            return check_count(length, 'length')
        try:
            return len(self.input) - getattr(self.input, 'tell', lambda: 0)()
        except TypeError:
            raise ValueError('the input stream is infinite: give the number of frames (length=...)') from None

    def _steps(self, mode, length, progress, desc):
        total = self._limit(length)
        if length is None and total == 0:
            self.input_ended = True
        done = 0
        bar = None
        if progress is None:
            progress = chunking.show_progress and total >= 10 * self.chunk_size
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, desc=desc, unit='frame')
        try:
            while done < total:
                k = self._step(mode, min(self.chunk_size, total - done))
                if k == 0:
                    self.input_ended = True
                    break
                done += k
                if bar is not None:
                    bar.update(k)
            if length is None:
                self.input_ended = True
        finally:
            if bar is not None:
                bar.close()
            self._flush_outputs()
        return done

    def run(self, length=None, progress=None):
        """Runs ``length`` frames (or up to the end of a finite input) in this thread; returns the frames run."""
        self._check_ready()
        return self._steps('run', length, progress, 'run')

    def optimize(self, length=None, progress=None):
        """Fits the model to the goal stream chunk by chunk (``model.optimize`` per chunk) in this thread.

        Uses the model's optimizer (``model.set_optimizer...``); returns this call's losses, one per chunk
        (all losses are in ``runner.losses``).
        """
        self._check_ready(need_goal=True)
        before = len(self.losses)
        self._steps('optimize', length, progress, 'optimize')
        return self.losses[before:]

    # -------------------------------------------------------------- closing
    def close(self, timeout=None):
        """Stops the thread (see :meth:`stop`: returns within ``timeout`` s) and closes all the streams."""
        try:
            self.stop(timeout)
        finally:
            for s in [self.input, self.goal] + [s for _, s in self._outputs()]:
                close = getattr(s, 'close', None)
                if close is not None:
                    close()

    def __repr__(self):
        state = 'running' if self.is_running else ('failed' if self.exception is not None else 'stopped')
        return '<Runner %s: %d frames, %.0f frames/s>' % (state, self.frames, self.frames / self.elapsed
                                                         if self.elapsed > 0 else 0.0)


@atexit.register
def _stop_all_runners():
    """At exit, stops running runners and closes their outputs, so that files are complete."""
    for r in list(_live_runners):
        if r.is_running:
            try:
                r.stop(STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 - at exit the thread's error is only logged
                logger.exception('stopping a Runner at exit failed')
            for _, s in r._outputs():
                try:
                    s.close()
                except Exception:
                    logger.exception('closing an output of a Runner at exit failed')
