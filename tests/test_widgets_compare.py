"""Pin as A (convis_widgets/compare.py in the ModelExplorer): A, the current set and current - A, the parameters that
differ, one model run at a time, unpin."""
import re
import threading
import time

import numpy as np
import torch

import convis
from convis_widgets import ModelExplorer
from convis_widgets.compare import DIFF_COLORMAP, parameter_differences
from convis_widgets.spikes import RateFilter
from helpers import low_pass


class Pair(convis.Layer):
    """ON and OFF outputs of a gain and a low-pass (time constant tau) around 0.5; counts how many run at once."""
    running = 0
    most_at_once = 0
    guard = threading.Lock()

    def __init__(self, delay=0.0, spikes=False):
        super().__init__()
        self.gain = convis.Parameter(2.0, doc='gain', unit='', bounds=(-10, 10))
        self.tau = convis.Parameter(0.005, doc='time constant', unit='s', bounds=(0, None), scale='log',
                                    slider_range=(0.001, 0.1))
        self.register_state('y', None)
        self.delay, self.spikes, self.calls = delay, spikes, 0

    def forward(self, x):
        with Pair.guard:
            Pair.running += 1
            Pair.most_at_once = max(Pair.most_at_once, Pair.running)
        try:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            r = self.gain * (low_pass(self, x) - 0.5)
            if self.spikes:
                return convis.Output([(r > 0.1).float()], keys=['spikes'])
            return convis.Output([torch.relu(r), torch.relu(-r)], keys=['on', 'off'])
        finally:
            with Pair.guard:
                Pair.running -= 1


def make_explorer(model, **kw):
    e = ModelExplorer(model, shape=(40, 8, 8), first_chunk=10, chunk=10, impulse=False, device=None, **kw)
    assert e.wait(30)
    return e


def independent_run(stimulus, spikes=False, **values):
    """A fresh model with ``values`` run on the explorer's stimulus from the cleared state."""
    m = Pair(spikes=spikes)
    m.set_parameters(values)
    return [convis.utils.to_numpy(o).astype(np.float32) for o in m.run(stimulus)]


def test_pin_change_a_slider_diff_equals_current_minus_a_and_the_differing_parameters_are_listed():
    e = make_explorer(Pair())
    try:
        assert e.comparison.box.children == (e.comparison.button,)
        e.comparison.button.click()                   # "pin as A"
        assert e.wait(30)
        assert e.comparison.active and e.comparison.button.description == 'unpin A'
        assert e.comparison.differences == []
        assert 'no parameter differs' in e.comparison.table.value
        e.panel.set_value('gain', 3.0)
        e.panel.set_value('tau', 0.02)
        assert e.wait(30)
        tau_a, tau_now = float(np.float32(0.005)), float(np.float32(0.02))
        assert e.comparison.differences == [('gain', 2.0, 3.0, ''), ('tau', tau_a, tau_now, 's')]
        table = e.comparison.table.value
        assert re.findall(r'<td[^>]*>(.*?)</td>', table) == ['gain', '2.0', '3.0', '', 'tau', repr(tau_a), repr(tau_now), 's']
        assert 'padding:0 8px 0 0">s</td>' in table
        stim = e._stimulus
        a = independent_run(stim, gain=2.0, tau=0.005)
        now = independent_run(stim, gain=3.0, tau=0.02)
        assert list(e.comparison.views) == ['on', 'off']
        for k, key in enumerate(['on', 'off']):
            a_view, current_view, diff_view = e.comparison.views[key]
            np.testing.assert_allclose(a_view.values(), a[k], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(current_view.values(), now[k], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(diff_view.values(), now[k] - a[k], rtol=1e-6, atol=1e-6)
            assert diff_view.colormap == DIFF_COLORMAP and diff_view.vmin == -diff_view.vmax
            assert diff_view.vmax == np.float32(np.abs(now[k] - a[k]).max())
            assert (a_view.vmin, a_view.vmax) == (current_view.vmin, current_view.vmax)
            assert a_view.vmax == np.float32(max(a[k].max(), now[k].max()))
        e.comparison.button.click()                   # "unpin A"
        assert not e.comparison.active and e.comparison.box.children == (e.comparison.button,)
        assert e.comparison.views == {} and e.comparison.differences == [] and e.comparison.model_a is None
        e.panel.set_value('gain', 4.0)
        assert e.wait(30) and e.comparison.a_outputs == {}
    finally:
        e.close()


def test_a_runs_on_a_copy_once_per_stimulus_and_follows_a_new_stimulus():
    model = Pair()
    e = make_explorer(model)
    try:
        e.pin()
        assert e.wait(30)
        a = e.comparison.model_a
        assert a is not model and a.lock is not model.lock and a.calls > 0
        calls = a.calls
        e.panel.set_value('gain', 1.0)
        assert e.wait(30)
        assert a.calls == calls                       # A's parameters did not change: A is not run again
        assert float(a.gain) == 2.0 and float(model.gain) == 1.0
        e.set_stimulus(np.random.RandomState(1).rand(30, 8, 8).astype(np.float32))
        assert e.wait(30)
        assert a.calls > calls
        expected = independent_run(e._stimulus, gain=2.0)
        np.testing.assert_allclose(e.comparison.a_outputs['on'], expected[0], rtol=1e-6, atol=1e-7)
        assert e.comparison.diffs['on'].shape == (1, 1, 30, 8, 8)
    finally:
        e.close()


def test_a_and_the_users_model_never_run_at_once_even_with_the_users_own_cells():
    Pair.most_at_once = 0
    model = Pair(delay=0.002)
    e = make_explorer(model)
    try:
        e.pin()
        e.panel.set_value('gain', 3.0)
        stim = np.random.RandomState(2).rand(30, 8, 8).astype(np.float32)
        for _ in range(3):
            model.run(stim, dt=10)                    # the user's cell while the preview and A run
        assert e.wait(60)
        assert Pair.most_at_once == 1
        assert e.comparison.differences == [('gain', 2.0, 3.0, '')]
    finally:
        e.close()


def test_spike_outputs_compare_as_rates():
    e = make_explorer(Pair(spikes=True))
    try:
        e.pin()
        e.panel.set_value('gain', 4.0)
        assert e.wait(30)
        stim = e._stimulus
        a = RateFilter(e.dt, e.rate_tau)(independent_run(stim, spikes=True, gain=2.0)[0])
        now = RateFilter(e.dt, e.rate_tau)(independent_run(stim, spikes=True, gain=4.0)[0])
        assert not np.array_equal(a, now)
        np.testing.assert_allclose(e.comparison.diffs['spikes'], now - a, rtol=1e-5, atol=1e-3)
        assert e.comparison.views['spikes'][0].unit == 'Hz'
    finally:
        e.close()


def test_parameter_differences_lists_changed_values_shapes_and_units_in_order():
    a = {'g': np.float32([1.0]), 'k': np.zeros((2, 2)), 'same': np.array(3.0)}
    now = {'same': np.array(3.0), 'k': np.ones((2, 2)), 'g': np.float32([1.5])}
    rows = parameter_differences(a, now, {'g': 'Hz'})
    assert [(r[0], r[3]) for r in rows] == [('k', ''), ('g', 'Hz')]
    assert rows[1][1:3] == (1.0, 1.5) and np.array_equal(rows[0][2], np.ones((2, 2)))
