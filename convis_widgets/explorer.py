"""ModelExplorer: sliders, a stimulus, the model's outputs and impulse responses, live.

Moving a slider sets the parameter and asks a :class:`~convis_widgets.worker.LatestWorker` for a
preview: the stimulus chunk is run on the model's device, from the cleared state (the model's
own state is pushed before and popped after), in sub-chunks; after each sub-chunk the new frames
go to the output views, so the first new frames are on their way long before the chunk is done.
A newer slider value supersedes a waiting or running preview (checked between sub-chunks);
previews run one at a time, so results arrive in order.  Errors appear in the status line and in
the log.  ``close()`` stops the worker thread and the senders.

Layout: the views (input, outputs, chosen inner stages) stand in a compact strip above the controls;
parameter sections open and close independently, beside the stimulus (in physical units), the choice of
views and the impulse responses.  Spike counts are shown as smoothed firing rates (Hz,
:class:`~convis_widgets.spikes.RateFilter`); a click on a cell shows its raster and PSTH.  A preview first
computes the frames up to the time cursor and sends the batch shown at the cursor before the others.
After each preview a view whose colour scale clips more than :data:`CLIP_TOLERANCE` of its values, or
uses less than half of its scale, takes the range of its data (the colour bar flags clipping meanwhile).

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

from collections import OrderedDict

import ipywidgets as widgets
import numpy as np
import torch

import convis

from .compare import Comparison
from .impulse import ImpulseResponsePanel
from .parameters import ParameterPanel
from .sections import Sections
from .spikes import RATE_TAU, CellPanel, RateFilter, is_spike_output
from .stimuli import PHYSICAL_PARAMETERS, STIMULI, USES, load_stimulus, physical_stimulus
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


CLIP_TOLERANCE = 0.002
"""After a preview, a view rescales when more than this fraction of its values lies outside its colour scale."""

STAGE_LABELS = {'opl': 'OPL', 'bipolar': 'bipolar', 'center': 'centre', 'horizontal': 'horizontal'}


def _stage_label(name, keys):
    if name.startswith('ganglion_'):
        k = int(name.split('_')[1])
        sign = keys[k].replace('ganglion_spikes_', '') if k < len(keys) else str(k)
        return 'ganglion %s current' % sign
    return STAGE_LABELS.get(name, name)


def _stages_of(model, x, n_outputs):
    """The inner stages the model can record (the retina's ``record``): OPL, bipolar, ganglion inputs."""
    if not hasattr(model, 'record') or not isinstance(getattr(model, 'record'), tuple):
        return []
    found = []
    for name in ['opl', 'bipolar'] + ['ganglion_%d' % k for k in range(n_outputs)]:
        old = model.record
        model.record = (name,)
        try:
            model.clear_state()
            model(x)
            found.append(name)
        except ValueError:
            pass
        finally:
            model.record = old
    return found


def _view_title(key, rates):
    if is_spike_output(key):
        name = key.replace('ganglion_spikes_', 'ganglion ')
        return '%s rate (Hz)' % name if rates else '%s spikes' % name
    return key


def _cpu_loops_compiled():
    from convis.functional.retina_loops import _heat_functions
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
    rates : bool
        show spike outputs as firing rates (Hz, causal exponential smoothing with ``rate_tau`` seconds);
        False shows the counts per step
    stages : sequence of str
        inner stages to show from the start (of :attr:`stages`, e.g. ``('opl', 'bipolar')``)

    Attributes
    ----------
    last_run : dict
        timings of the last completed preview (seconds): ``schedule``, ``first_frames``, ``total``,
        plus ``frames`` and ``device``
    stages : list of str
        the inner stages the model can show (the retina's ``record`` names: 'opl', 'bipolar', 'ganglion_0', ...)
    spike_counts : dict
        output name -> spike counts ``[b, c, t, x, y]`` of the last preview (the views show rates)
    """

    def __init__(self, model=None, stimulus=None, shape=(500, 64, 64), device='auto', first_chunk='auto', chunk='auto',
                 first_latency=0.03, chunk_latency=0.1, impulse=True, impulse_shape=(100, 21, 21),
                 continuous_update=False, colormap='gray', rates=True, rate_tau=RATE_TAU, stages=()):
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
        self.rates, self.rate_tau = bool(rates), float(rate_tau)
        self.spike_counts = {}
        self.lock = model.lock
        self.worker = LatestWorker('convis-explorer', on_error=self._show_error, lock=self.lock)
        self.status = widgets.HTML('')
        self.status.add_class('convis-explorer-status')
        self.panel = ParameterPanel(model, continuous_update=continuous_update, group_by='sections')
        self.panel.lock = _InterruptingLock(self)
        self.panel.on_change(self._parameter_changed)

        names = list(STIMULI) + ['custom']
        self.picker = widgets.Dropdown(options=names, value='grating', description='stimulus',
                                       layout=widgets.Layout(width='220px'))
        res = model.resolution
        self.stimulus_parameters = dict((k, v[0]) for k, v in PHYSICAL_PARAMETERS.items())
        self.stimulus_parameters['duration'] = self.shape[0] / float(res.steps_per_second)
        self.stimulus_controls = {}
        for k, (default, unit, meaning, (low, high)) in PHYSICAL_PARAMETERS.items():
            c = widgets.BoundedFloatText(value=self.stimulus_parameters[k], min=low, max=high,
                                         description=k.replace('_', ' '), tooltip=meaning,
                                         style={'description_width': '130px'}, layout=widgets.Layout(width='210px'))
            c.observe(lambda change, k=k: self._stimulus_parameter(k, change['new']), 'value')
            self.stimulus_controls[k] = widgets.HBox(
                [c, widgets.HTML('<span style="color:#616161">%s</span>' % html.escape(unit))])
            self.stimulus_controls[k].add_class('convis-stimulus-%s' % k)
        self.resolution_note = widgets.HTML('')
        self._stimulus_box = widgets.VBox([])
        self.rescale_button = widgets.Button(description='Rescale', icon='arrows-v',
                                             tooltip='fit the colour scales of the outputs to the last run')
        self.rescale_button.on_click(lambda _: self.rescale())
        self.input_view = TensorView(title='input', dt=self.dt, colormap=colormap, compact=True, zoom=2,
                                     unit='of %g' % res.input_luminosity_range)
        self.output_views = []
        self._outputs_box = widgets.HBox([self.input_view], layout=widgets.Layout(flex_flow='row wrap'))
        self._outputs_box.add_class('convis-explorer-views')
        self.cell_panel = CellPanel(self.dt)
        self.impulse = ImpulseResponsePanel(model, shape=impulse_shape, auto=False) if impulse else None
        self._stimulus = None
        self._x = None
        self.set_stimulus(stimulus if stimulus is not None else 'grating', run=False)
        self.picker.observe(self._picked, 'value')
        self._show_stimulus_controls()
        self.stage_buttons = {}
        self._make_output_views(stages)

        self.stage_box = widgets.HBox(list(self.stage_buttons.values()), layout=widgets.Layout(flex_flow='row wrap'))
        views_section = widgets.VBox([self.stage_box, self.rescale_button])
        side = [widgets.VBox([self.picker, self._stimulus_box, self.resolution_note]), views_section]
        titles = ['stimulus', 'views']
        if self.impulse is not None:
            side.append(self.impulse)
            titles.append('impulse response')
        self.side = Sections(side, titles=titles, open=[0, 1], layout=widgets.Layout(width='400px'))
        self.comparison = Comparison(self)
        super().__init__([self.status, self._outputs_box, self.comparison.box, self.cell_panel,
                          widgets.HBox([self.panel, self.side], layout=widgets.Layout(flex_flow='row wrap'))])
        self.add_class('convis-model-explorer')
        self.schedule()

    # ----------------------------------------------------------------- stimulus
    def set_stimulus(self, stimulus, run=True):
        """Uses ``stimulus`` (a name of STIMULI, an array/tensor/Output, or a video file) and re-runs."""
        t, x, y = self.shape
        if isinstance(stimulus, str) and stimulus in STIMULI:
            # generated stimuli: physical units converted with the model's resolution; luminances in its range
            res = self.model.resolution
            a = physical_stimulus(stimulus, (x, y), res.pixel_per_degree, res.steps_per_second,
                                  res.input_luminosity_range, **self.stimulus_parameters)[None, None]
            name = stimulus
            self.resolution_note.value = '<small style="color:#616161">%s</small>' % html.escape(
                '%d x %d px = %.3g x %.3g deg (%g px/deg), %d frames of %g ms; luminance range %g' % (
                    x, y, x / res.pixel_per_degree, y / res.pixel_per_degree, res.pixel_per_degree, a.shape[2],
                    1000 * self.dt, res.input_luminosity_range))
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
        self._show_stimulus_controls()
        if getattr(self, '_setting_picker', False) or change['new'] == 'custom':
            return
        self.set_stimulus(change['new'])

    def _show_stimulus_controls(self):
        uses = ('contrast', 'background', 'duration') + USES.get(self.picker.value, ())
        self._stimulus_box.children = [self.stimulus_controls[k] for k in uses] if self.picker.value in USES else []

    def set_stimulus_parameters(self, **parameters):
        """Sets stimulus parameters in physical units (see :data:`~.stimuli.PHYSICAL_PARAMETERS`) and re-runs."""
        for k, v in parameters.items():
            if k not in PHYSICAL_PARAMETERS:
                raise ValueError('unknown stimulus parameter %r; known: %s' % (k, list(PHYSICAL_PARAMETERS)))
            self.stimulus_parameters[k] = float(v)
            if k in getattr(self, 'stimulus_controls', {}):
                self.stimulus_controls[k].children[0].value = float(v)
        self.stimulus_parameters['duration'] = float(self.stimulus_parameters['duration'])
        self.shape = (max(1, int(round(self.stimulus_parameters['duration'] * self.model.resolution.steps_per_second))),
                      ) + self.shape[1:]
        if self.picker.value in STIMULI:
            self.set_stimulus(self.picker.value)

    def _stimulus_parameter(self, name, value):
        if self.stimulus_parameters.get(name) != value:
            self.set_stimulus_parameters(**{name: value})

    def _make_output_views(self, stages=()):
        """Runs the first frames once to learn the outputs' number, names and shapes, and the inner stages."""
        with torch.no_grad(), self.lock, self.model.fresh_state():
            x = self._x[:, :, :min(2, self._x.shape[2])]
            outs, keys = _outputs(self.model(x))
            self.stages = _stages_of(self.model, x, len(outs))
        unknown = [s for s in stages if s not in self.stages]
        if unknown:
            raise ValueError('cannot show the stages %s: this model has %s' % (unknown, self.stages))
        self.model_keys = keys
        self.stage_buttons = OrderedDict()
        for key in keys:
            b = widgets.ToggleButton(value=True, description=_view_title(key, self.rates), disabled=len(keys) == 1,
                                     tooltip='show the output %s' % key, layout=widgets.Layout(width='auto'))
            self.stage_buttons[key] = b
        for name in self.stages:
            self.stage_buttons[name] = widgets.ToggleButton(
                value=name in stages, description=_stage_label(name, keys), tooltip='record and show %s' % name,
                layout=widgets.Layout(width='auto'))
        for name, b in self.stage_buttons.items():
            b.add_class('convis-view-toggle')
            b.observe(lambda change: self._views_chosen(), 'value')
        self._views = {}
        self._views_chosen(run=False)

    def _views_chosen(self, run=True):
        """Shows the views of the chosen outputs and stages (a new stage is recorded from the next preview on)."""
        with self.lock:
            chosen = [k for k, b in self.stage_buttons.items() if b.value]
            for key in chosen:
                if key not in self._views:
                    spikes = self.rates and is_spike_output(key)
                    self._views[key] = TensorView(
                        title=_view_title(key, self.rates), dt=self.dt, compact=True, zoom=2,
                        unit='Hz' if spikes or key.startswith('ganglion_') else ('spikes' if is_spike_output(key) else ''),
                        colormap='hot' if spikes else 'gray')
                    self._views[key].observe(self._cell_clicked, 'selected_pixel')
            self.output_keys = chosen
            self.output_views = [self._views[k] for k in chosen]
            self._record = tuple(k for k in chosen if k in self.stages)
            for link in getattr(self, '_links', []):
                link.close()
            views = [self.input_view] + self.output_views
            self._outputs_box.children = views
            self._links = sync_views(*views) if len(views) > 1 else []
            self._scaled = False
        if run:
            self.schedule()

    def _cell_clicked(self, change):
        pixel = change['new']
        spiking = [k for k in self.output_keys if k in self.spike_counts]
        if len(pixel) != 2 or not spiking:
            return
        for v in self.output_views:
            if v.selected_pixel != pixel and v.height == self.input_view.height and v.width == self.input_view.width:
                v.selected_pixel = pixel
        row, col = pixel
        counts = OrderedDict((k, self.spike_counts[k][0, 0, :, row, col]) for k in spiking
                             if row < self.spike_counts[k].shape[3] and col < self.spike_counts[k].shape[4])
        if counts:
            self.cell_panel.show((row, col), counts)

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
        views, keys, record = list(self.output_views), list(self.output_keys), self._record
        cursor = min(max(int(self.input_view.frame), 0), total - 1)
        filters = {k: RateFilter(self.dt, self.rate_tau) for k in keys if self.rates and is_spike_output(k)}
        counts = {k: [] for k in keys if is_spike_output(k)}
        t_first = None
        # The first run sets the colour scales from all its frames; later runs send frames per sub-chunk.
        progressive = self._scaled
        collected = [[] for _ in views]
        old_record = getattr(model, 'record', None)
        # the worker holds the model's lock for the whole job; fresh_state takes it again (re-entrant)
        with torch.no_grad(), model.fresh_state():
            try:
                if self.stages:
                    model.record = record
                s = 0
                while s < total:
                    self.worker.check(generation)
                    # the first sub-chunk reaches the time cursor: the frame on screen is among the first sent
                    e = min(total, max(s + self._chunk_frames(s == 0), cursor + 1 if s == 0 else 0))
                    outs, got = _outputs(model(x[:, :, s:e]))
                    if len(outs) != len(self.model_keys) + len(record):
                        raise RuntimeError('the model gave %d outputs, it gave %d before' % (
                            len(outs), len(self.model_keys) + len(record)))
                    by_key = dict(zip(list(self.model_keys) + list(record), outs))
                    outs = []
                    for k in keys:
                        o = convis.utils.make_tensor_5d(by_key[k].detach())
                        if k in counts:
                            counts[k].append(o.float().cpu().numpy())
                            if k in filters:
                                o = torch.from_numpy(filters[k](counts[k][-1]))
                        outs.append(o)
                    if s == 0 and any(o.shape[2] != e - s for o in outs):
                        progressive = False
                    for i, (view, out) in enumerate(zip(views, outs)):
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
                if self.stages:
                    model.record = old_record
        if not progressive:
            self.worker.check(generation)
            for view, chunks in zip(views, collected):
                data = torch.cat([torch.as_tensor(c) for c in chunks], dim=2)
                if not self._scaled:
                    view.rescale(*color_range(data))
                view.set_data(data)
                if t_first is None:
                    t_first = time.perf_counter()
            self._scaled = True
        self.spike_counts = {k: np.concatenate(c, axis=2) for k, c in counts.items() if c}
        for view in views:
            self._follow_data(view)
        t_outputs = time.perf_counter()
        self._seconds_per_frame = (t_outputs - t_start) / total
        self.comparison.update(generation, keys, views, record)
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

    def _follow_data(self, view):
        """Rescales a view whose scale clips more than CLIP_TOLERANCE of its values or uses under half of it."""
        if not view.n_frames:
            return
        lo, hi = color_range(view.values())
        if view.clipped > CLIP_TOLERANCE or (hi - lo) < 0.5 * (view.vmax - view.vmin):
            view.rescale(lo, hi)

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

    def pin(self):
        """Pins the current parameters as A: the next previews show A, the current set and current - A
        (:mod:`convis_widgets.compare`; ``comparison.differences`` lists the parameters that differ)."""
        self.comparison.pin()

    def unpin(self):
        """Drops A and returns to the normal view."""
        self.comparison.unpin()

    def fit(self, target, parameters, loss_fn=None, **kwargs):
        """Fits ``parameters`` of the model to ``target``, a recording of the explorer's current stimulus, in the
        background; returns the :class:`~convis_widgets.fit_monitor.FitMonitor` shown in the explorer's Fit tab.

        The sliders follow the fitted values (and each move re-runs the preview).  ``loss_fn`` and ``kwargs`` as
        for FitMonitor (default: the squared error of the first output); a new fit closes the previous one.
        """
        from .fit_monitor import FitMonitor
        if getattr(self, 'fit_monitor', None) is not None:
            self.fit_monitor.close()
        self.fit_monitor = FitMonitor(self.model, self._stimulus, target, loss_fn, parameters=parameters, **kwargs)
        self.fit_monitor.on_redraw(lambda monitor: self.panel.refresh())
        old, self.fit_tab = getattr(self, 'fit_tab', None), widgets.VBox([widgets.HTML('<b>Fit</b>'), self.fit_monitor])
        self.fit_tab.add_class('convis-explorer-fit')
        self.children = tuple(c for c in self.children if c is not old) + (self.fit_tab,)
        return self.fit_monitor

    def wait(self, timeout=60.0):
        """Waits until no preview runs or waits; True when idle."""
        return self.worker.wait_idle(timeout)

    @property
    def outputs(self):
        """The last preview's shown outputs as float32 arrays ``[b, c, t, x, y]`` (after :meth:`wait`).

        Spike counts appear as firing rates (Hz) unless ``rates=False``; :attr:`spike_counts` has the counts.
        """
        return [v.values() for v in self.output_views]

    def close(self):
        """Stops the worker (no thread is left behind) and closes every part of the explorer."""
        for part in ('fit_monitor', 'worker', 'panel', 'impulse', 'comparison'):
            if getattr(self, part, None) is not None:
                getattr(self, part).close()
        for w in getattr(self, '_links', []) + [getattr(self, 'input_view', None)] + list(getattr(self, '_views', {}).values()):
            if w is not None:
                w.close()
        super().close()
