"""FitMonitor (convis_widgets/fit_monitor.py): records arrive and the curves hold them, Stop ends the thread before
the next chunk, Resume continues from the last epoch, Apply best sets the best epoch's parameters."""
import threading

import numpy as np
import pytest
import torch

import convis
import convis.losses as losses
from convis_widgets.fit_monitor import FitMonitor

CHUNK = 5


class LowPass(convis.Layer):
    """``gain * y`` with ``y_t = a y_(t-1) + (1 - a) x_t`` per pixel, ``a = exp(-dt / tau)``; counts its chunks."""

    def __init__(self):
        super().__init__()
        self.tau = convis.Parameter(0.01, doc='time constant', unit='s', bounds=(0.001, 1.0))
        self.gain = convis.Parameter(1.0, doc='gain', unit='a.u.', bounds=(None, None))
        self.register_state('y', None)
        self.chunks = 0
        self.on_chunk = None

    def forward(self, x):
        if x.shape[2] == CHUNK:   # a chunk of the fit (the monitor's predictions run the whole input)
            self.chunks += 1
            if self.on_chunk is not None:
                self.on_chunk(self.chunks)
        a = torch.exp(-self.resolution.dt / self.tau)
        y = self.y if self.y is not None else torch.zeros_like(x[:, :, :1])
        out = []
        for t in range(x.shape[2]):
            y = a * y + (1 - a) * x[:, :, t:t + 1]
            out.append(y)
        self.y = y
        return self.gain * torch.cat(out, dim=2)


def data(gain=2.0, tau=0.02, seed=0, frames=40):
    m = LowPass().double()
    m.gain.set(gain)
    m.tau.set(tau)
    x = np.random.RandomState(seed).rand(frames, 4, 3)
    with torch.no_grad():
        y = m.run(x)[0]
    return x, y


def monitor(model, epochs=4, **kw):
    x, y = data()
    kw.setdefault('held_out', data(seed=1))
    return FitMonitor(model, x, y, losses.mse(), parameters=['gain', 'tau'], epochs=epochs, dt=CHUNK, max_iter=5, **kw)


@pytest.fixture
def model():
    return LowPass().double()


def test_records_arrive_and_the_curves_hold_the_losses(model):
    m = monitor(model, interval=1e9)    # redrawn only at the end
    assert m.wait(120) and m.error is None
    assert len(m.records) == 4 and [r['epoch'] for r in m.records] == [0, 1, 2, 3]
    np.testing.assert_array_equal(m.loss_lines.y[0], [r['loss'] for r in m.records])
    np.testing.assert_array_equal(m.loss_lines.y[1], [r['held_out_loss'] for r in m.records])
    np.testing.assert_array_equal(m.loss_lines.x, [0, 1, 2, 3])
    np.testing.assert_array_equal(m.parameter_lines['gain'].y, [r['parameters']['gain'] for r in m.records])
    assert m.records[-1]['loss'] < 0.5 * m.records[0]['loss']
    assert float(model.gain) == m.records[-1]['parameters']['gain']
    assert m.redraws == 2               # the first record (the last draw is long ago) and the end: throttled
    assert m.status.value.startswith('done: epoch 3')
    assert isinstance(m.loss_figure.marks[0].scales['y'], __import__('bqplot').LogScale)
    # the prediction against the target: the trace at the chosen pixel, the maps at the chosen frame
    x, y = data()
    m.row.value, m.column.value, m.time.value = 1, 2, 30
    np.testing.assert_allclose(m.trace_lines.y[0], y[0, 0, :, 1, 2].numpy())
    with torch.no_grad():
        model.clear_state()
        p = model.run(x)[0]
    np.testing.assert_allclose(m.trace_lines.y[1], p[0, 0, :, 1, 2].numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.maps[0].color, y[0, 0, 30].numpy())
    np.testing.assert_allclose(m.maps[1].color, p[0, 0, 30].numpy(), rtol=1e-12)
    notes = [box.children[1].value for box in m.children[3].children]     # tau, gain: bounds and units
    assert 'bounds [0.001, 1] s' in notes[0] and 'no bounds (a.u.)' in notes[1]
    # no legend box over the curves: the titles name the colours
    figures = [m.loss_figure, m.trace_figure] + m._parameter_figures
    assert not any(getattr(mark, 'display_legend', False) for f in figures for mark in f.marks)
    assert 'training blue' in m.loss_figure.title and 'held out orange' in m.loss_figure.title
    assert m.loss_lines.colors[:2] == ['#1565c0', '#e65100']
    assert 'prediction (red)' in m.trace_figure.title and m.trace_lines.colors[1] == '#c62828'
    m.close()


def test_stop_ends_the_thread_before_the_next_chunk_and_restores_the_last_epoch(model):
    m = monitor(model, epochs=50, start=False)
    stopped_at = []
    seen = threading.Event()

    def on_chunk(n):
        if len(m.records) == 2 and not stopped_at:   # a click on Stop in the middle of the third epoch
            stopped_at.append(n)
            m.stop_button.click()
            seen.set()
    model.on_chunk = on_chunk
    m.start()
    assert seen.wait(120) and m.wait(60)
    assert model.chunks == stopped_at[0]   # the chunk under way was the last one
    assert len(m.records) == 2 and m.status.value.startswith('stopped')
    assert float(model.gain) == m.records[-1]['parameters']['gain']
    assert float(model.tau) == m.records[-1]['parameters']['tau']


def test_resume_continues_from_the_last_epoch(model):
    m = monitor(model, epochs=2, held_out=None)
    assert m.wait(120)
    last = m.records[-1]
    m.resume_button.click()
    assert m.wait(120) and m.error is None
    assert [r['epoch'] for r in m.records] == [0, 1, 2, 3]
    assert m.records[2]['loss'] <= last['loss']       # from where it was, not from the start
    assert m.records[0]['loss'] > last['loss']


def test_apply_best_sets_the_parameters_of_the_lowest_held_out_loss(model):
    # the held-out recording has a gain of 1.5: the fit passes it on its way from 1 to 2
    m = monitor(model, epochs=4, held_out=data(gain=1.5, seed=1))
    assert m.wait(120)
    held = [r['held_out_loss'] for r in m.records]
    best = m.records[int(np.argmin(held))]
    assert best is not m.records[-1]
    with torch.no_grad():
        model.gain.fill_(7.0)
    m.best_button.click()
    assert float(model.gain) == best['parameters']['gain'] and float(model.tau) == best['parameters']['tau']
    assert 'best of epoch %d applied' % best['epoch'] in m.status.value


def test_a_failing_fit_is_shown_and_no_parameter_means_a_clear_error(model):
    x, y = data()
    with pytest.raises(ValueError, match='requires a gradient'):
        for p in model.parameters():
            p.requires_grad_(False)
        FitMonitor(model, x, y, losses.mse(), start=False)
    m = FitMonitor(model, x, y[:, :, :, :2], losses.mse(), parameters=['gain'], epochs=2)
    assert m.wait(60) and isinstance(m.error, ValueError) and 'failed' in m.status.value
    assert 'target' in m.status.value


def test_the_explorer_fits_its_own_stimulus_in_a_fit_tab_and_its_sliders_follow(model):
    from convis_widgets import ModelExplorer
    x, y = data(gain=2.0, tau=0.01)
    explorer = ModelExplorer(model, stimulus=x, impulse=False)
    try:
        monitor = explorer.fit(y, parameters=['gain'], epochs=2, dt=CHUNK, max_iter=5)
        assert monitor.wait(120) and monitor.error is None
        assert explorer.fit_tab in explorer.children and monitor in explorer.fit_tab.children
        assert float(model.gain) == pytest.approx(2.0, rel=1e-6)
        assert explorer.panel.controls['gain'].value == pytest.approx(2.0, rel=1e-6)
        assert explorer.wait(60)
        second = explorer.fit(y, parameters=['tau'], epochs=1, start=False)   # a new fit replaces the tab
        assert sum(1 for c in explorer.children if 'convis-explorer-fit' in c._dom_classes) == 1
        assert second is explorer.fit_monitor and not monitor.running
    finally:
        explorer.close()
    assert not monitor.running and not explorer.fit_monitor.running
