"""ModelExplorer: sliders, a stimulus, the model's outputs and impulse responses, live.

Moving a slider sets the parameter and asks a :class:`~convis_widgets.worker.LatestWorker` for a
preview: the stimulus chunk is run on the model's device, from the cleared state (the model's
own state is pushed before and popped after), in sub-chunks; after each sub-chunk the new frames
go to the output views, so the first new frames are on their way long before the chunk is done.
A newer slider value supersedes a waiting or running preview (checked between sub-chunks);
previews run one at a time, so results arrive in order.  Errors appear in the status line and in
the log.  ``close()`` stops the worker thread and the senders.

A preview holds the model's lock (``model.lock``, :mod:`convis.locking`) from pushing the state to
popping it, so ``retina.run(...)`` in the next cell waits for the preview under way (at most one
preview) and gets the same result as without the explorer; a slider first interrupts the running
preview, then sets its parameter under the lock.  One explorer follows a model: a new
``ModelExplorer(model)`` (a re-run cell) closes the older one of the same model.

>>> explorer = ModelExplorer(convis.retina.Retina())            # doctest: +SKIP
>>> explorer                                                      # doctest: +SKIP
>>> explorer.panel.set_value('bipolar.g_leak', 20.0)             # doctest: +SKIP
>>> explorer.wait(); explorer.last_run                           # doctest: +SKIP
"""
import html
import logging
import time

import ipywidgets as widgets
import torch

import convis

from .impulse import ImpulseResponsePanel
from .parameters import ParameterPanel
from .stimuli import STIMULI, load_stimulus, make_stimulus
from .frames import color_range
from .tensor_view import TensorView, sync_views
from .worker import LatestWorker, take_over

__all__ = ['ModelExplorer']

logger = logging.getLogger('convis_widgets')


GPU_MIN_PIXELS = 256 * 256
"""``device='auto'`` moves a CPU model to the GPU only for frames of at least this many pixels (or when the CPU has
no compiled loops).  A preview runs one stimulus through time, step by step; on an H200 the GPU's retina ran at
about 1,100-1,300 frames/s at any size up to 256x256 (its steps are bound by kernel launches), the CPU's compiled
loops at 16,000 (50x50) and 3,800 (100x100) frames/s: a 64x64x500 preview took 400 ms there against 45 ms here."""


def _cpu_loops_compiled():
    from convis.filters.retina_loops import _heat_functions
    return _heat_functions() is not None


def _choose_device(model, device, shape=(1, 64, 64)):
    if device == 'auto':
        big = int(shape[-1]) * int(shape[-2]) >= GPU_MIN_PIXELS
        if torch.cuda.is_available() and model.device.type == 'cpu' and (big or not _cpu_loops_compiled()):
            model.cuda()
        return model.device
    if device is not None:
        model.to(device)
    return model.device


def _outputs(o):
    if isinstance(o, convis.Output):
        return list(o), list(o.keys)
    return [o], ['output']


class _InterruptingLock(object):
    """The model's lock for the explorer's sliders: interrupts the running preview first, then waits for the lock.

    A failed change (the preview was interrupted, the parameter was not set) asks for a new preview.
    """

    def __init__(self, explorer):
        self._explorer = explorer

    def __enter__(self):
        self._explorer.worker.interrupt()
        self._explorer.lock.acquire()
        return self

    def __exit__(self, kind, error, tb):
        self._explorer.lock.release()
        if kind is not None and not self._explorer.worker.closed:
            self._explorer.schedule()
        return False


class ModelExplorer(widgets.VBox):
    """Parameter sliders, a stimulus picker, animated input and outputs and impulse responses of one model.

    Parameters
    ----------
    model : convis.Layer or None
        the model to explore (default: a new ``convis.retina.Retina()``)
    stimulus : None, str, array, tensor or video file name
        a stimulus name of :data:`convis_widgets.stimuli.STIMULI`, any array (1-d to 5-d), or a video
        file; default: a drifting grating of ``shape``
    shape : (t, x, y)
        frames and pixels of the generated stimuli (64 x 64 pixels and 500 frames by default)
    device : 'auto', None or a torch device
        'auto' moves a CPU model to the GPU when there is one and the frames have at least
        :data:`GPU_MIN_PIXELS` pixels (below that the CPU's compiled loops are faster for one preview);
        None keeps the model where it is
    first_chunk, chunk : int or 'auto'
        frames run before the first frames are sent, and in each later sub-chunk (a newer request is
        noticed between sub-chunks); ``'auto'`` sizes them to take about ``first_latency`` and
        ``chunk_latency`` seconds, from the speed of the previous run
    impulse : bool
        show an :class:`ImpulseResponsePanel` (recomputed with each preview)
    continuous_update : bool
        whether sliders act while dragged (default: on release)

    Attributes
    ----------
    last_run : dict
        timings of the last completed preview (seconds): ``schedule``, ``first_frames``, ``total``,
        plus ``frames`` and ``device``
    """

    def __init__(self, model=None, stimulus=None, shape=(500, 64, 64), device='auto', first_chunk='auto', chunk='auto',
                 first_latency=0.03, chunk_latency=0.1, impulse=True, impulse_shape=(100, 21, 21),
                 continuous_update=False, colormap='gray'):
        if model is None:
            model = convis.retina.Retina()
        take_over(model, 'explorer', self)
        self.model = model
        self.shape = tuple(int(v) for v in shape)
        self.device = _choose_device(model, device, self.shape)
        self.first_chunk = first_chunk if first_chunk == 'auto' else int(first_chunk)
        self.chunk = chunk if chunk == 'auto' else int(chunk)
        self.first_latency = float(first_latency)
        self.chunk_latency = float(chunk_latency)
        self._seconds_per_frame = None
        self.dt = model.resolution.dt
        self.last_run = {}
        self.runs = 0
        self._requested = {}
        self._scaled = False
        self.lock = model.lock
        self.worker = LatestWorker('convis-explorer', on_error=self._show_error, lock=self.lock)
        self.status = widgets.HTML('')
        self.status.add_class('convis-explorer-status')
        self.panel = ParameterPanel(model, continuous_update=continuous_update)
        self.panel.lock = _InterruptingLock(self)
        self.panel.on_change(self._parameter_changed)

        names = list(STIMULI) + ['custom']
        self.picker = widgets.Dropdown(options=names, value='grating', description='stimulus',
                                       layout=widgets.Layout(width='220px'))
        self.rescale_button = widgets.Button(description='Rescale', icon='arrows-v',
                                             tooltip='fit the colour scales of the outputs to the last run')
        self.rescale_button.on_click(lambda _: self.rescale())
        self.input_view = TensorView(title='input', dt=self.dt, colormap=colormap)
        self.output_views = []
        self._outputs_box = widgets.HBox([self.input_view])
        self.impulse = ImpulseResponsePanel(model, shape=impulse_shape, auto=False) if impulse else None
        self._stimulus = None
        self._x = None
        self.set_stimulus(stimulus if stimulus is not None else 'grating', run=False)
        self.picker.observe(self._picked, 'value')
        self._make_output_views()

        controls = widgets.HBox([self.picker, self.rescale_button])
        right = [controls, self._outputs_box] + ([self.impulse] if self.impulse is not None else [])
        self._outputs_box.layout = widgets.Layout(flex_flow='row wrap')
        super().__init__([self.status, widgets.HBox([self.panel, widgets.VBox(right)],
                                                    layout=widgets.Layout(flex_flow='row wrap'))])
        self.add_class('convis-model-explorer')
        self.schedule()

    # ----------------------------------------------------------------- stimulus
    def set_stimulus(self, stimulus, run=True):
        """Uses ``stimulus`` (a name of STIMULI, an array/tensor/Output, or a video file) and re-runs."""
        t, x, y = self.shape
        if isinstance(stimulus, str) and stimulus in STIMULI:
            # generated stimuli span the model's input luminance range (0..255 for the retina)
            scale = self.model.resolution.input_luminosity_range
            a = scale * make_stimulus(stimulus, t, x, y, dt=self.dt)[None, None]
            name = stimulus
        else:
            a = load_stimulus(stimulus)
            name = 'custom'
        self._stimulus = a
        self._x = torch.as_tensor(a, device=self.device, dtype=self.model.dtype)
        self.input_view.set_data(a)
        self.input_view.rescale()
        if self.picker.value != name:
            self._setting_picker = True
            try:
                self.picker.value = name
            finally:
                self._setting_picker = False
        self._scaled = False
        if run:
            self.schedule()

    def _picked(self, change):
        if getattr(self, '_setting_picker', False) or change['new'] == 'custom':
            return
        self.set_stimulus(change['new'])

    def _make_output_views(self):
        """Runs the first frames once to learn the outputs' number, names and shapes."""
        with torch.no_grad(), self.lock:
            self.model.push_state()
            try:
                self.model.clear_state()
                outs, keys = _outputs(self.model(self._x[:, :, :min(2, self._x.shape[2])]))
            finally:
                self.model.pop_state()
        self.output_keys = keys
        self.output_views = [TensorView(title=k, dt=self.dt) for k in keys]
        self._outputs_box.children = [self.input_view] + self.output_views
        self._links = sync_views(self.input_view, *self.output_views)

    # ----------------------------------------------------------------- runs
    def _parameter_changed(self, name, value):
        self.schedule()

    def schedule(self):
        """Asks for a preview with the current parameters (superseding any waiting or running one)."""
        generation = self.worker.submit(self._preview)
        self._requested[generation] = time.perf_counter()
        return generation

    def _preview(self, generation):
        t_request = self._requested.pop(generation, time.perf_counter())
        for g in [g for g in self._requested if g < generation]:
            self._requested.pop(g, None)
        t_start = time.perf_counter()
        model, x = self.model, self._x
        total = x.shape[2]
        t_first = None
        # The first run sets the colour scales from all its frames; later runs send frames per sub-chunk.
        progressive = self._scaled
        collected = [[] for _ in self.output_views]
        with torch.no_grad():
            model.push_state()
            try:
                model.clear_state()
                s = 0
                while s < total:
                    self.worker.check(generation)
                    e = min(total, s + self._chunk_frames(s == 0))
                    outs, _ = _outputs(model(x[:, :, s:e]))
                    if len(outs) != len(self.output_views):
                        raise RuntimeError('the model gave %d outputs, it gave %d before' % (
                            len(outs), len(self.output_views)))
                    outs = [convis.utils.make_tensor_5d(o.detach()) for o in outs]
                    if s == 0 and any(o.shape[2] != e - s for o in outs):
                        progressive = False
                    for i, (view, out) in enumerate(zip(self.output_views, outs)):
                        if progressive:
                            if s == 0:
                                view.begin_update(total, shape=out.shape)
                            view.write(s, out)
                        else:
                            collected[i].append(out.float().cpu())
                    if progressive and t_first is None:
                        t_first = time.perf_counter()
                    s = e
            finally:
                model.pop_state()
        if not progressive:
            self.worker.check(generation)
            for view, chunks in zip(self.output_views, collected):
                data = torch.cat(chunks, dim=2)
                if not self._scaled:
                    view.rescale(*color_range(data))
                view.set_data(data)
                if t_first is None:
                    t_first = time.perf_counter()
            self._scaled = True
        t_outputs = time.perf_counter()
        self._seconds_per_frame = (t_outputs - t_start) / total
        if self.impulse is not None:
            self.impulse.compute(check=lambda: self.worker.check(generation))
        self.worker.check(generation)
        done = time.perf_counter()
        self.runs += 1
        self.last_run = {'generation': generation, 'frames': total, 'device': str(self.device),
                         'schedule': t_start - t_request, 'first_frames': t_first - t_request,
                         'outputs': t_outputs - t_start, 'total': done - t_request,
                         'finished': time.time()}
        self.status.value = html.escape(
            'run %d: %d frames in %.0f ms (first frames after %.0f ms, impulse response %s) on %s, %s' % (
                self.runs, total, 1000 * (t_outputs - t_start), 1000 * (t_first - t_request),
                '%.0f ms' % (1000 * (done - t_outputs)) if self.impulse is not None else 'off',
                self.device, time.strftime('%H:%M:%S')))

    def _chunk_frames(self, first):
        """Frames in a sub-chunk: fixed, or (auto) as many as the last run computed in the latency asked for."""
        size = self.first_chunk if first else self.chunk
        if size != 'auto':
            return size
        if self._seconds_per_frame is None:
            return 10 if first else 50
        latency = self.first_latency if first else self.chunk_latency
        return int(max(1, latency / self._seconds_per_frame))

    def _show_error(self, generation, error):
        self.status.value = '<span style="color:#c62828">run failed: %s</span>' % html.escape(
            '%s: %s' % (type(error).__name__, error))

    def rescale(self):
        """Fits the colour scale of every output view to its current frames."""
        for v in self.output_views:
            if v.n_frames:
                v.rescale()

    def embed(self, **kwargs):
        """Shows the input and output views side by side as one kernel-free HTML player (titles, colour bars).

        The cell output survives ``jupyter nbconvert --to html`` and plays without a kernel; it shows the last
        finished preview (call :meth:`wait` first).  Keyword arguments as :func:`convis_widgets.embed.animation_html`.
        """
        from .embed import embed, panels_of
        embed(panels_of(*[v for v in [self.input_view] + self.output_views if v.n_frames]), **kwargs)

    def wait(self, timeout=60.0):
        """Waits until no preview runs or waits; True when idle."""
        return self.worker.wait_idle(timeout)

    @property
    def outputs(self):
        """The last preview's outputs as float32 arrays ``[b, c, t, x, y]`` (after :meth:`wait`)."""
        return [v.values() for v in self.output_views]

    def close(self):
        """Stops the worker (no thread is left behind) and closes every part of the explorer."""
        for part in ('worker', 'panel', 'impulse'):
            if getattr(self, part, None) is not None:
                getattr(self, part).close()
        for w in getattr(self, '_links', []) + [getattr(self, 'input_view', None)] + getattr(self, 'output_views', []):
            if w is not None:
                w.close()
        super().close()
