"""Runner: a model, an input stream and an output stream, run chunk by chunk in a background thread.

Each step reads ``chunk_size`` frames from the input stream, runs the model on them
(its state carries from chunk to chunk, so the frames equal one long run) and puts the
model's output into the output stream(s).  ``start()`` does this in a thread until
``stop()`` or the end of the input; ``run(length)`` does it in the calling thread.

While a runner's thread is running, the thread owns the model: do not call the model from
another thread then, or hold ``runner.lock`` while you do (the thread takes it for every
chunk), e.g. ``with runner.lock: model.p.tau = 0.02``.  An error in the thread stops it; the
error is logged, kept in ``runner.exception`` and raised again by the next ``stop()``,
``join()``, ``start()``, ``run()`` or ``optimize()``.  Stopping flushes the outputs, so files
are complete (a video is finished by this: a stopped runner cannot add frames to it);
``close()`` (or leaving a ``with`` block, or the end of the program) also closes the streams.

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
import weakref

import numpy as np

from .streams.base import ClosedOnExit, SequenceStream, check_count, model_output_frames

__all__ = ['Runner']

logger = logging.getLogger('convis.runner')

_live_runners = weakref.WeakSet()
_model_owners = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


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
    ``frames_per_second``, ``losses`` (from :meth:`optimize`), ``exception``, ``is_running``, ``lock``.
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
        self.lock = threading.RLock()
        self.frames = 0
        self.chunks = 0
        self.elapsed = 0.0
        self.losses = []
        self.exception = None
        self.input_ended = False
        self._exception_raised = True
        self._thread = None
        self._stop_event = threading.Event()

    @staticmethod
    def _as_stream(s, name):
        if s is None or callable(getattr(s, 'get', None)):
            return s
        if isinstance(s, (np.ndarray, list, tuple)) or hasattr(s, 'detach'):
            return SequenceStream(s, max_frames=None)
        raise TypeError('%s must be a stream (with get(n)) or an array of frames, not %r' % (name, s))

    # -------------------------------------------------------------- state
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
    def _step(self, mode, n=None):
        """Runs one chunk; returns the number of frames (0 when the input has none)."""
        n = self.chunk_size if n is None else n
        with self.lock:
            t0 = time.perf_counter()
            x = self.input.get(n)
            k = _frames_in(x)
            if k == 0:
                return 0
            if mode == 'optimize':
                y = self.goal.get(k)
                if _frames_in(y) != k:
                    raise ValueError('the goal stream gave %d frames for %d input frames' % (_frames_in(y), k))
                loss = self.model.optimize(x, y)
                self.losses.append(float(np.sum(loss)))
            else:
                if hasattr(self.model, 'run'):
                    o = self.model.run(x, progress=False)
                else:
                    import torch
                    with torch.no_grad():
                        o = self.model(x)
                for key, stream in self._outputs():
                    stream.put(model_output_frames(o, key))
            self.frames += k
            self.chunks += 1
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

        Does nothing when the thread runs already.
        """
        if mode not in ('run', 'optimize'):
            raise ValueError("mode must be 'run' or 'optimize', not %r" % (mode,))
        if self.is_running:
            return self
        with _registry_lock:
            self._check_ready(need_goal=mode == 'optimize')
            _model_owners[id(self.model)] = self
        self.exception, self._exception_raised, self.input_ended = None, True, False
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._loop, args=(mode,), name='convis-Runner', daemon=True)
        _live_runners.add(self)
        self._thread.start()
        return self

    def _loop(self, mode):
        try:
            while not self._stop_event.is_set():
                if self._step(mode) == 0:
                    if self.wait_for_input and not getattr(self.input, 'closed', False):
                        self._stop_event.wait(self.poll_interval)
                        continue
                    self.input_ended = True
                    break
        except BaseException as e:
            self._fail(e)
        finally:
            try:
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

        Raises ``TimeoutError`` if the thread is still busy after ``timeout`` seconds, and the thread's
        exception if it failed.
        """
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError('the runner thread is still running a chunk after %s s; call stop() again'
                                   % timeout)
        self._raise_pending()

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
            from . import base
            progress = base.show_progress and total >= 10 * self.chunk_size
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
        """Stops the thread and closes the input, goal and output streams."""
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
            r._stop_event.set()
            r._thread.join(30)
            for _, s in r._outputs():
                try:
                    s.close()
                except Exception:
                    logger.exception('closing an output of a Runner at exit failed')
