"""ModelExplorer and LatestWorker (convis_widgets/explorer.py, worker.py): coalesced background previews."""
import copy
import logging
import threading
import time

import numpy as np
import pytest
import torch

import convis
from convis_widgets import LatestWorker, ModelExplorer, Superseded
from convis_widgets.stimuli import physical_stimulus
from convis_widgets.frames import quantise
from helpers import low_pass

THREAD_NAMES = ('convis-explorer', 'convis-tensorview', 'convis-impulse', 'convis-preview')


def widget_threads():
    return [t for t in threading.enumerate() if t.name in THREAD_NAMES]


class OnOff(convis.Layer):
    """ON and OFF rectified outputs of a gain and a first-order low-pass, y_t = a y_(t-1) + (1 - a) x_t."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.gain = convis.Parameter(2.0, doc='gain', unit='', bounds=(-10, 10), scale='linear')
        self.tau = convis.Parameter(0.005, doc='time constant', unit='s', bounds=(0, None), scale='log',
                                    slider_range=(0.001, 0.1))
        self.register_state('y', None)
        self.delay = delay
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if float(self.gain) > 8:
            raise ValueError('gain above 8 is not supported by this test model')
        r = self.gain * (low_pass(self, x) - 0.5)
        return convis.Output([torch.relu(r), torch.relu(-r)], keys=['on', 'off'])


def expected_outputs(model, stimulus):
    fresh = copy.deepcopy(model)
    fresh.delay = 0.0
    fresh.clear_state()
    return [convis.utils.to_numpy(o) for o in fresh.run(stimulus)]


def explorer(model, **kw):
    kw.setdefault('shape', (40, 8, 8))
    kw.setdefault('first_chunk', 10)
    kw.setdefault('chunk', 10)
    kw.setdefault('impulse', False)
    kw.setdefault('device', None)
    e = ModelExplorer(model, **kw)
    assert e.wait(30)
    return e


# ---------------------------------------------------------------------------- LatestWorker
def test_worker_runs_only_the_newest_waiting_job():
    w = LatestWorker()
    release = threading.Event()
    done = []

    def job(value):
        def run(generation):
            release.wait(5)
            w.check(generation)
            done.append(value)
        return run
    for v in range(10):
        w.submit(job(v))
    release.set()
    assert w.wait_idle(5)
    assert done == [9]
    assert w.started <= 2 and w.completed == 1
    w.close()
    assert not w.alive


def test_worker_supersedes_a_running_job_and_keeps_order():
    w = LatestWorker()
    finished = []
    started = threading.Event()

    def slow(generation):
        started.set()
        for _ in range(200):
            w.check(generation)
            time.sleep(0.005)
        finished.append(generation)
    w.submit(slow)
    assert started.wait(5)
    g2 = w.submit(lambda generation: finished.append(generation))
    g3 = w.submit(lambda generation: finished.append(generation))
    assert w.wait_idle(5)
    assert finished == [g3] and g2 < g3
    assert w.superseded == 1 and w.completed == 1
    for _ in range(3):
        w.submit(lambda generation: finished.append(generation))
        assert w.wait_idle(5)
    assert finished == sorted(finished)
    w.close()


def test_worker_reports_errors(caplog):
    errors = []
    w = LatestWorker(on_error=lambda generation, e: errors.append((generation, e)))
    with caplog.at_level(logging.ERROR, logger='convis_widgets'):
        g = w.submit(lambda generation: 1 / 0)
        assert w.wait_idle(5)
    assert errors[0][0] == g and isinstance(errors[0][1], ZeroDivisionError)
    assert isinstance(w.last_error, ZeroDivisionError) and w.failed == 1
    assert 'ZeroDivisionError' in caplog.text
    w.close()
    with pytest.raises(RuntimeError):
        w.submit(lambda generation: None)


def test_worker_check_raises_when_superseded():
    w = LatestWorker()
    g = w.generation
    w.check(g)
    w._generation += 1
    with pytest.raises(Superseded):
        w.check(g)
    w.close()


def test_worker_jobs_hold_the_given_lock_and_a_waiting_job_can_be_superseded():
    lock = threading.RLock()
    w = LatestWorker(lock=lock)
    ran = []

    def job(generation):
        assert lock.acquire(blocking=False)     # the worker thread holds it (re-entrant: this succeeds)
        lock.release()
        ran.append(generation)
    with lock:                                  # someone else uses the model: the job waits
        first = w.submit(job)
        second = w.submit(job)
    assert w.wait_idle(30)
    assert ran == [second] and first != second
    w.close()


# ---------------------------------------------------------------------------- ModelExplorer
def test_preview_equals_a_run_from_the_cleared_state_and_restores_the_state():
    m = OnOff()
    m.run(np.random.rand(30, 8, 8))
    before = m.get_state()
    e = explorer(m)
    assert e.output_keys == ['on', 'off']
    assert [v.title for v in e.output_views] == ['on', 'off']
    res = m.resolution
    stimulus = physical_stimulus('grating', (8, 8), res.pixel_per_degree, res.steps_per_second,
                                 duration=40 / res.steps_per_second)
    np.testing.assert_allclose(e._stimulus[0, 0], stimulus)
    for got, want in zip(e.outputs, expected_outputs(m, stimulus)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    after = m.get_state()
    assert torch.equal(before['y'], after['y'])
    assert e.last_run['frames'] == 40 and e.last_run['device'] == 'cpu'
    assert 'run 1: 40 frames' in e.status.value
    e.close()


def test_moving_a_control_triggers_exactly_one_run():
    m = OnOff()
    e = explorer(m)
    started, runs = e.worker.started, e.runs
    e.panel.controls['gain'].slider.value = 3.0
    assert e.wait(30)
    assert e.worker.started == started + 1 and e.runs == runs + 1
    assert e.last_run['generation'] == e.worker.generation
    stimulus = e._stimulus
    np.testing.assert_allclose(e.outputs[0], expected_outputs(m, stimulus)[0], rtol=1e-5, atol=1e-6)
    view = e.output_views[0]
    assert np.array_equal(view.frames(), quantise(e.outputs[0][0, 0], view.vmin, view.vmax))
    e.close()


def test_a_change_supersedes_the_running_preview():
    m = OnOff(delay=0.05)
    e = explorer(m)
    m.calls = 0
    e.panel.set_value('gain', 3.0)
    while m.calls == 0:
        time.sleep(0.005)
    e.panel.set_value('gain', 4.0)
    assert e.wait(30)
    assert e.worker.superseded >= 1
    assert m.calls < 8  # the first preview stopped early (4 sub-chunks each)
    np.testing.assert_allclose(e.outputs[0], expected_outputs(m, e._stimulus)[0], rtol=1e-5, atol=1e-6)
    e.close()


def test_a_slow_model_with_many_rapid_changes_ends_with_the_last_value():
    m = OnOff(delay=0.01)
    e = explorer(m)
    runs = e.runs
    values = np.linspace(0.5, 6.0, 25)
    for v in values:
        e.panel.controls['gain'].text.value = float(v)
    assert e.wait(60)
    assert float(m.gain) == pytest.approx(6.0)
    assert e.runs - runs < len(values)
    assert e.worker.started == e.worker.completed + e.worker.superseded
    want = expected_outputs(m, e._stimulus)
    for got, w, view in zip(e.outputs, want, e.output_views):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
        assert np.array_equal(view.frames(), quantise(w[0, 0], view.vmin, view.vmax))
    e.close()


def test_errors_show_in_the_status_line_and_the_log(caplog):
    m = OnOff()
    e = explorer(m)
    with caplog.at_level(logging.ERROR, logger='convis_widgets'):
        e.panel.set_value('gain', 9.0)
        assert e.wait(30)
    assert 'ValueError' in e.status.value and 'gain above 8' in e.status.value
    assert 'gain above 8' in caplog.text
    assert isinstance(e.worker.last_error, ValueError)
    e.panel.set_value('gain', 1.0)
    assert e.wait(30)
    assert 'run' in e.status.value and 'failed' not in e.status.value
    e.close()


def test_stimulus_picker_and_custom_arrays():
    m = OnOff()
    e = explorer(m)
    e.picker.value = 'flash'
    assert e.wait(30)
    res = m.resolution
    flash = physical_stimulus('flash', (8, 8), res.pixel_per_degree, res.steps_per_second,
                              duration=40 / res.steps_per_second)
    np.testing.assert_allclose(e.input_view.values()[0, 0], flash)
    custom = np.random.rand(25, 6, 5).astype(np.float32)
    e.set_stimulus(custom)
    assert e.wait(30)
    assert e.picker.value == 'custom'
    assert e.output_views[0].n_frames == 25 and e.output_views[0].height == 6
    np.testing.assert_allclose(e.outputs[1], expected_outputs(m, custom)[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='NaN'):
        e.set_stimulus(np.full((3, 2, 2), np.nan))
    e.close()


def test_close_leaves_no_thread_behind():
    m = OnOff(delay=0.02)
    e = explorer(m, impulse=True, impulse_shape=(20, 5, 5))
    for v in e.output_views + [e.input_view]:
        v.send = lambda content, buffers=None: None
        v._handle_frontend_msg(v, {'type': 'request'}, [])
    e.panel.set_value('gain', 3.0)
    e.close()
    assert widget_threads() == []
    assert not e.worker.alive


def test_impulse_panel_inside_the_explorer_follows_the_runs():
    m = OnOff()
    e = explorer(m, impulse=True, impulse_shape=(30, 5, 5))
    first = np.array(list(e.impulse.traces.values()))
    e.panel.set_value('gain', 4.0)
    assert e.wait(30)
    np.testing.assert_allclose(np.array(list(e.impulse.traces.values())), 2.0 * first, rtol=1e-5, atol=1e-7)
    e.close()


def test_the_retina_explorer_shows_on_and_off_spikes():
    retina = convis.retina.Retina()
    e = explorer(retina, shape=(20, 16, 16), first_chunk=5, chunk=5)
    assert e.output_keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
    assert e.stages == ['opl', 'bipolar', 'ganglion_0', 'ganglion_1']
    assert [v.n_frames for v in e.output_views] == [20, 20]
    assert e.input_view.n_frames == 20
    runs = e.runs
    e.panel.set_value('bipolar.g_leak', 50.0)
    assert e.wait(60) and e.runs == runs + 1
    assert 'run %d: 20 frames' % e.runs in e.status.value
    e.close()
    assert widget_threads() == []


# ---------------------------------------------------------------------------- one model, one lock
def test_runs_in_the_next_cell_while_the_explorer_previews_equal_runs_without_it():
    retina = convis.retina.Retina()
    x = (255 * np.random.RandomState(3).rand(40, 12, 12)).astype(np.float32)
    retina.clear_state()
    want = [convis.utils.to_numpy(o) for o in retina.run(x, dt=10)]
    e = explorer(retina, shape=(60, 12, 12), first_chunk=5, chunk=5)
    assert e.worker.lock is retina.lock and e.panel.lock is not None
    previews = e.runs
    for trial in range(10):
        retina.clear_state()
        first = retina.run(x[:20], dt=10)
        e.schedule()                                  # the explorer previews (push, run, pop) meanwhile
        second = retina.run(x[20:], dt=10)
        for k, w in enumerate(want):
            got = np.concatenate([convis.utils.to_numpy(first[k]), convis.utils.to_numpy(second[k])], axis=2)
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5, err_msg='trial %d output %d' % (trial, k))
    assert e.wait(60)
    assert e.runs > previews and 'failed' not in e.status.value
    e.close()


def test_a_second_explorer_on_a_model_takes_over_from_the_first():
    m = OnOff()
    first = explorer(m)
    started = first.worker.started
    second = explorer(m)
    assert first.worker.closed and not first.worker.alive
    assert first.panel._hook not in convis.variables.parameter_set_hooks
    second.panel.set_value('gain', 3.0)
    assert second.wait(30)
    assert first.worker.started == started             # the hidden first explorer did not run
    assert 'failed' not in second.status.value and second.worker.failed == 0
    for got, want in zip(second.outputs, expected_outputs(m, second._stimulus)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    second.close()
    assert widget_threads() == []


def test_a_second_impulse_panel_on_a_model_takes_over_from_the_first():
    from convis_widgets import ImpulseResponsePanel
    m = OnOff()
    first = ImpulseResponsePanel(m, shape=(20, 5, 5), trials=1)
    computed = first.computed
    second = ImpulseResponsePanel(m, shape=(20, 5, 5), trials=1)
    assert first.worker.closed and second.worker.lock is m.lock
    m.gain.set(3.0)
    assert second.worker.wait_idle(30)
    assert first.computed == computed and second.computed == 2 and second.worker.failed == 0
    second.close()
    assert widget_threads() == []


# ---------------------------------------------------------------------------- issue 18: views that teach
def test_physical_stimuli_use_the_resolution():
    g = physical_stimulus('grating', (20, 20), pixel_per_degree=10.0, steps_per_second=100.0, duration=1.0,
                          spatial_frequency=0.5, speed=4.0, contrast=0.5, background=0.4, luminance_range=255.0)
    assert g.shape == (100, 20, 20)
    assert g.max() == pytest.approx(0.4 * 255 * 1.5, rel=1e-3) and g.min() == pytest.approx(0.4 * 255 * 0.5, rel=1e-3)
    # 0.5 cycles/deg at 10 px/deg: a period of 20 px; 4 deg/s: 2 Hz, so the pattern repeats after 50 frames
    np.testing.assert_allclose(g[50], g[0], atol=1e-3)
    bar = physical_stimulus('bar', (40, 40), 10.0, 100.0, duration=0.1, bar_width=1.0, speed=0.0)
    assert (bar[0] > 0.5).sum(axis=0).max() == 10          # 1 deg = 10 px
    with pytest.raises(ValueError, match='contrast'):
        physical_stimulus('grating', contrast=3.0)
    with pytest.raises(ValueError, match='unknown stimulus parameters'):
        physical_stimulus('grating', period=3)


def test_spike_outputs_show_as_rates_and_a_clicked_cell_gets_raster_and_psth():
    from convis_widgets.spikes import RateFilter
    retina = convis.retina.Retina(seed=2)
    e = explorer(retina, shape=(60, 12, 12), first_chunk=7, chunk=9)
    assert [v.title for v in e.output_views] == ['ganglion ON rate (Hz)', 'ganglion OFF rate (Hz)']
    assert [v.unit for v in e.output_views] == ['Hz', 'Hz']
    counts = e.spike_counts['ganglion_spikes_ON']
    want = RateFilter(retina.resolution.dt)(counts)          # one piece: the sub-chunks gave the same rates
    np.testing.assert_allclose(e.outputs[0], want, rtol=1e-5, atol=1e-3)
    assert set(np.unique(counts)) <= {0.0, 1.0, 2.0, 3.0}
    row, col = np.unravel_index(np.argmax(counts[0, 0].sum(0)), counts.shape[3:])
    e.output_views[0].selected_pixel = [int(row), int(col)]
    assert e.output_views[1].selected_pixel == [int(row), int(col)]
    assert e.cell_panel.cell == (row, col) and len(e.cell_panel.children) == 2
    times = e.cell_panel.spike_times['ganglion_spikes_ON']
    assert len(times) == int((counts[0, 0, :, row, col] > 0).sum()) > 0
    assert e.cell_panel.psth['ganglion_spikes_ON'].sum() * 0.05 == pytest.approx(counts[0, 0, :, row, col].sum())
    # each output has one colour in the raster and the PSTH, and the PSTH's title names it
    raster, psth = e.cell_panel.raster_figure.marks, e.cell_panel.psth_figure.marks
    assert [m.colors for m in raster] == [m.colors for m in psth] and raster[0].colors != raster[1].colors
    assert list(raster[0].x) == list(times)
    assert 'ON orange' in e.cell_panel.psth_figure.title and 'OFF blue' in e.cell_panel.psth_figure.title
    top = max(r.max() for r in e.cell_panel.psth.values())
    scale = e.cell_panel.psth_figure.marks[0].scales['y']
    assert scale.min == 0 and top <= scale.max < 2 * top           # the axis starts at 0 Hz and holds the peak
    assert list(e.cell_panel.psth_figure.axes[1].tick_values) == list(np.linspace(0, scale.max, 5))
    e.close()


def test_inner_stages_are_views_and_the_record_is_restored():
    retina = convis.retina.Retina(seed=2)
    e = explorer(retina, shape=(30, 10, 10), first_chunk=10, chunk=10, stages=('opl',))
    assert e.output_keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF', 'opl'] and retina.record == ()
    e.stage_buttons['ganglion_0'].value = True
    assert e.wait(60)
    assert e.output_keys[-1] == 'ganglion_0' and e.output_views[-1].unit == 'Hz'
    fresh = convis.retina.Retina(seed=2, record=('opl', 'ganglion_0'))
    o = fresh.run(e._stimulus, dt=30)
    np.testing.assert_allclose(e.outputs[2], convis.utils.to_numpy(o.opl), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(e.outputs[3], convis.utils.to_numpy(o.ganglion_0), rtol=1e-4, atol=1e-3)
    assert retina.record == ()
    with pytest.raises(ValueError, match='cannot show the stages'):
        ModelExplorer(convis.retina.Retina(), shape=(5, 4, 4), stages=('cortex',), impulse=False, device=None)
    e.close()


def test_colour_scales_follow_the_data_after_a_run():
    m = OnOff()
    e = explorer(m)
    view = e.output_views[0]
    e.panel.set_value('gain', 8.0)        # four times the outputs: the first scale would clip
    assert e.wait(30)
    assert view.clipped == 0.0
    assert view.vmax == pytest.approx(float(e.outputs[0].max()), rel=1e-6)
    e.close()


def test_sub_chunks_reach_the_time_cursor_first():
    m = OnOff()
    e = explorer(m, shape=(40, 8, 8), first_chunk=5, chunk=5)
    m.calls = 0
    e.input_view.frame = 30
    e.schedule()
    assert e.wait(30)
    assert m.calls == 3          # frames 0..30 in one piece, then 31..35 and 36..39
    for got, want in zip(e.outputs, expected_outputs(m, e._stimulus)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    e.close()


def test_sections_open_independently_and_attach_content_only_when_open():
    import ipywidgets as widgets
    from convis_widgets.sections import Sections
    a, b, c = widgets.Label('a'), widgets.Label('b'), widgets.Label('c')
    s = Sections([a, b, c], titles=['A', 'B', 'C'], open=[0])
    s.set_open(2)
    assert s.is_open(0) and s.is_open(2) and not s.is_open(1)
    assert s.bodies[0].children == (a,) and s.bodies[1].children == () and s.bodies[2].children == (c,)
    s.headers[0].value = False
    assert s.bodies[0].children == () and s.headers[0].description.endswith('A')
    with pytest.raises(ValueError):
        Sections([a], titles=['A', 'B'])
    retina = convis.retina.Retina()
    e = explorer(retina, shape=(5, 6, 6))
    assert isinstance(e.panel.body, Sections) and e.panel.body.is_open(0)
    e.close()
