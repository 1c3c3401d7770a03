"""ImpulseResponsePanel, KernelVolume and the stimuli (convis_widgets/impulse.py, volume.py, stimuli.py)."""
import math
import threading

import ipyvolume
import numpy as np
import pytest
import torch

import convis
from convis_widgets import (ImpulseResponsePanel, KernelVolume, impulse_response, load_stimulus,
                            make_stimulus)
from convis_widgets.impulse import firing_rate
from convis_widgets.volume import kernel_3d, lobe_surfaces
from helpers import low_pass


class LowPass(convis.Layer):
    """y_t = a y_(t-1) + (1 - a) x_t per pixel, a = exp(-dt / tau); outputs gain * y and -gain * y."""

    def __init__(self):
        super().__init__()
        self.tau = convis.Parameter(0.01, doc='time constant', unit='s', bounds=(0, None), scale='log')
        self.gain = convis.Parameter(1.0, doc='gain', unit='', bounds=(None, None))
        self.register_state('y', None)

    def forward(self, x):
        r = self.gain * low_pass(self, x)
        return convis.Output([r, -r], keys=['ON', 'OFF'])


def analytic(tau, gain, n, dt=0.001):
    a = math.exp(-dt / tau)
    return gain * (1 - a) * a ** np.arange(n)


# ---------------------------------------------------------------------------- impulse responses
def test_impulse_response_is_the_analytic_filter_and_keeps_the_state():
    m = LowPass()
    m.run(np.ones((5, 7, 7)))
    before = m.get_state()['y'].clone()
    r = impulse_response(m, (40, 7, 7), amplitude=2.0, chunk=7)
    assert r.keys == ['ON', 'OFF'] and r.background == 0.0
    np.testing.assert_allclose(r.responses[0][0, 0, :, 3, 3], analytic(0.01, 2.0, 40), rtol=1e-5)
    assert np.abs(r.responses[0][0, 0, :, 0, 0]).max() == 0  # only the centre pixel responds
    np.testing.assert_allclose(r.responses[1], -r.responses[0])
    assert torch.equal(m.get_state()['y'], before)
    # on a grey of 3: the grey's own response (a rising low-pass) is subtracted
    g = impulse_response(m, (40, 7, 7), amplitude=2.0, background=3.0)
    np.testing.assert_allclose(g.responses[0][0, 0, :, 3, 3], analytic(0.01, 2.0, 40), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g.baseline[0][0, 0, :, 0, 0], 3.0 * (1 - np.exp(-0.1) ** np.arange(1, 41)),
                               rtol=1e-4)
    with pytest.raises(ValueError, match='positive'):
        impulse_response(m, (0, 3, 3))


def independent_opl_difference(opl, t=40, size=21, amplitude=255.0):
    """The OPL run by hand on its adapting grey with and without a centre impulse, minus each other."""
    grey = np.full((t, size, size), opl.resolution.input_luminosity_range / 2, np.float32)
    flash = grey.copy()
    flash[0, size // 2, size // 2] += amplitude
    opl.clear_state()
    a = opl.run(flash, dt=t)[0][0, 0].numpy()
    opl.clear_state()
    return a - opl.run(grey, dt=t)[0][0, 0].numpy()


def test_opl_panel_subtracts_the_adapting_grey():
    # before: the impulse was shown on black to an OPL adapted to grey: every pixel read -2.92 at 10 ms
    # and the centre peak 2.72 instead of 5.64
    opl = convis.retina.Retina().opl
    expected = independent_opl_difference(opl)
    panel = ImpulseResponsePanel(opl, shape=(40, 21, 21), auto=False)
    trace = panel.traces['output']
    np.testing.assert_allclose(trace, expected[:, 10, 10], atol=1e-4)
    assert abs(trace.max() - 5.638) < 0.01 and abs(expected[:, 10, 10].max() - 5.638) < 0.01
    assert np.abs(panel.responses['output'][0, 0, :, 0, 0]).max() < 1e-4
    np.testing.assert_allclose(np.array(panel.lines['output'].y), trace)
    view, = panel.views
    assert view.frame == 1 and view.unit  # the peak frame, a colour bar with a unit
    peak_map = view.values()[0, 0, view.frame]
    assert np.abs(peak_map).max() == pytest.approx(np.abs(expected).max(), rel=1e-4)
    panel.close()


@pytest.fixture(scope='module')
def retina_panel():
    retina = convis.retina.Retina(seed=3)
    panel = ImpulseResponsePanel(retina, shape=(60, 15, 15), auto=False, trials=16)
    yield retina, panel
    panel.close()


def test_retina_panel_shows_linear_stages_and_on_off_rates(retina_panel):
    retina, panel = retina_panel
    assert list(panel.traces) == ['OPL', 'bipolar', 'ganglion input ON', 'ganglion input OFF',
                                  'firing rate ON', 'firing rate OFF']
    assert retina.record == ()  # the panel's temporary recording is undone
    np.testing.assert_allclose(panel.traces['OPL'], independent_opl_difference(retina.opl, 60, 15)[:, 7, 7],
                               atol=1e-4)
    on, off = panel.traces['firing rate ON'], panel.traces['firing rate OFF']
    assert set(panel.rates) == {'ganglion_spikes_ON', 'ganglion_spikes_OFF'}
    # rates in Hz, both clearly visible and different: a bright flash excites ON first, OFF on the rebound
    assert on.min() >= 0 and off.min() >= 0
    assert on.max() > 20 and off.max() > 10 and np.abs(on - off).max() > 10
    assert int(np.argmax(on)) < int(np.argmax(off))
    g_on, g_off = panel.traces['ganglion input ON'], panel.traces['ganglion input OFF']
    assert g_on.max() > 100 and g_off.min() < -10 and not np.allclose(g_on, -g_off)
    a, b = panel.lines['firing rate ON'], panel.lines['firing rate OFF']
    assert list(a.colors) != list(b.colors) and (a.line_style, b.line_style) == ('solid', 'dashed')
    for k in ('ganglion input ON', 'firing rate ON', 'ganglion input OFF', 'firing rate OFF'):
        np.testing.assert_allclose(np.array(panel.lines[k].y), panel.traces[k])
    assert [f.title for f in panel.figures] == ['OPL and bipolar (minus grey)',
                                                'ganglion input current (minus grey)',
                                                'ganglion firing rate (mean of trials)']
    assert panel.figures[2].axes[1].label == 'rate (Hz)'


def test_retina_panel_legends_are_beside_the_plots(retina_panel):
    _, panel = retina_panel
    for fig, legend in zip(panel.figures, panel.legends):
        marks = [m for m in fig.marks if m.labels]
        assert marks and not any(m.display_legend for m in fig.marks)  # nothing drawn over the data
        row = next(c for c in panel.children[0].children if fig in c.children)
        assert list(row.children) == [fig, legend]  # the labelled list is a sibling, outside the figure
        for m in marks:
            assert m.labels[0] in legend.value and m.colors[0] in legend.value
    assert 'dashed' in panel.legends[2].value


def test_retina_panel_maps_start_at_their_peaks(retina_panel):
    _, panel = retina_panel
    assert [v.title for v in panel.views] == ['OPL', 'bipolar', 'ganglion input ON', 'ganglion input OFF']
    assert [v.unit for v in panel.views] == ['a.u.', 'a.u.', 'Hz', 'Hz']
    for v in panel.views:
        values = v.values()[0, 0]
        peak = int(np.argmax(np.abs(values).max(axis=(1, 2))))
        assert v.frame == peak > 0
        assert np.abs(values[v.frame]).max() > 0.5 * np.abs(values).max() > 0
    assert [v.frame for v in panel.views] == [1, 2, 4, 4]
    # each plot's cursor marks its first map's frame; the rate plot has no map and no cursor
    assert list(panel.cursors[0].x) == [pytest.approx(0.01)] * 2
    assert list(panel.cursors[1].x) == [pytest.approx(0.04)] * 2
    assert panel.cursors[2].visible is False


def test_firing_rate_is_counts_per_second_smoothed():
    counts = np.zeros(101)
    counts[50] = 3.0
    r = firing_rate(counts, 0.01, 0.02)
    assert r.sum() * 0.01 == pytest.approx(3.0)  # no spike lost
    assert int(np.argmax(r)) == 50 and r[50] < 300
    np.testing.assert_allclose(firing_rate(np.full(40, 0.5), 0.01, 0.05), 50.0)  # constant at the ends too
    np.testing.assert_allclose(firing_rate(counts, 0.01, 0.0), counts / 0.01)
    with pytest.raises(ValueError):
        firing_rate(counts, 0.0, 0.01)


def test_panel_shows_on_and_off_and_recomputes_when_a_parameter_changes():
    m = LowPass()
    panel = ImpulseResponsePanel(m, shape=(50, 5, 5), time=0.003)
    assert list(panel.traces) == ['ON', 'OFF']
    np.testing.assert_allclose(panel.traces['ON'], analytic(0.01, 1.0, 50), rtol=1e-5)
    np.testing.assert_allclose(panel.lines['ON'].x, np.arange(50) * 0.001)
    assert [v.title for v in panel.views] == ['ON', 'OFF']
    assert panel.views[0].frame == 3 and panel.views[0].n_frames == 50
    assert list(panel.cursors[0].x) == [pytest.approx(0.003)] * 2
    m.p.gain = 3.0
    m.tau = 0.02
    assert panel.worker.wait_idle(10)
    np.testing.assert_allclose(np.array(panel.lines['ON'].y), analytic(0.02, 3.0, 50), rtol=1e-5)
    assert panel.computed >= 2
    panel.views[0].frame = 10
    assert list(panel.cursors[0].x) == [pytest.approx(0.010)] * 2
    panel.close()
    assert not any(t.name == 'convis-impulse' for t in threading.enumerate())
    m.p.gain = 1.0  # a closed panel no longer follows


def test_panel_maps_follow_the_peak_until_moved():
    m = LowPass()
    panel = ImpulseResponsePanel(m, shape=(30, 5, 5), auto=False)
    assert [v.frame for v in panel.views] == [0, 0]  # a low-pass peaks at once
    panel.views[1].frame = 7
    m.tau = 0.02
    panel.compute()
    assert [v.frame for v in panel.views] == [0, 7]  # a frame chosen by hand stays
    panel.close()


def test_panel_reports_errors():
    m = LowPass()
    panel = ImpulseResponsePanel(m, shape=(10, 3, 3))
    m.register_state('y', None)
    m.forward = lambda x: (_ for _ in ()).throw(RuntimeError('broken model'))
    m.p.gain = 2.0
    assert panel.worker.wait_idle(10)
    assert 'broken model' in panel.status.value
    panel.close()


# ---------------------------------------------------------------------------- kernel volume
def two_lobes():
    t, x, y = np.meshgrid(np.arange(12), np.arange(9), np.arange(9), indexing='ij')
    return (np.exp(-((t - 3) ** 2 + (x - 4) ** 2 + (y - 4) ** 2) / 2.0)
            - 0.5 * np.exp(-((t - 8) ** 2 + (x - 4) ** 2 + (y - 4) ** 2) / 2.0)).astype(np.float32)


def test_kernel_3d_takes_the_first_filter():
    w = torch.zeros(2, 3, 4, 5, 6)
    w[0, 0, 1, 2, 3] = 1.0
    k = kernel_3d(w)
    assert k.shape == (4, 5, 6) and k[1, 2, 3] == 1.0
    with pytest.raises(ValueError):
        kernel_3d(np.zeros((4, 5)))
    with pytest.raises(ValueError, match='NaN'):
        kernel_3d(np.full((2, 2, 2), np.nan))


def test_lobe_surfaces_enclose_the_lobes():
    k = two_lobes()
    positive, negative = lobe_surfaces(k, 0.3)
    verts, faces = positive
    assert faces.max() < len(verts)
    centre = verts.mean(axis=0)
    np.testing.assert_allclose(centre, [3, 4, 4], atol=0.1)
    np.testing.assert_allclose(negative[0].mean(axis=0), [8, 4, 4], atol=0.1)
    # at 0.6 of the peak the negative lobe (half as strong) has no surface
    positive, negative = lobe_surfaces(k, 0.6)
    assert positive is not None and negative is None


def test_kernel_volume_is_an_ipyvolume_figure_with_a_level_slider():
    m = convis.models.LN((6, 5, 5))
    kv = KernelVolume(m.conv.weight)
    assert kv.kernel.shape == (6, 5, 5)
    assert isinstance(kv.figure, ipyvolume.Figure)
    kv.set_kernel(two_lobes())
    red, blue = kv.meshes
    assert red.visible and blue.visible
    kv.level.value = 0.6
    assert red.visible and not blue.visible
    assert len(red.x) > 0 and float(np.max(red.z)) < 12
    assert 'max |w| = 1' in kv.info.value
    kv.close()


# ---------------------------------------------------------------------------- stimuli
def test_generated_stimuli():
    g = make_stimulus('grating', 100, 16, 16, dt=0.001, frequency=10.0)
    assert g.shape == (100, 16, 16) and g.dtype == np.float32
    assert g.min() >= 0.0 and g.max() <= 1.0
    # 10 Hz at 1 ms per frame: the grating repeats every 100 frames, half a period is a sign flip
    np.testing.assert_allclose(g[50] - 0.5, -(g[0] - 0.5), atol=1e-5)
    f = make_stimulus('flash', 400, 4, 4, dt=0.001, onset=0.1, duration=0.2)
    assert (f[:100] == 0).all() and (f[100:300] == 1).all() and (f[300:] == 0).all()
    c = make_stimulus('checkerboard', 300, 16, 16, dt=0.001, square=8, reversal=0.25)
    np.testing.assert_allclose(c[250], 1.0 - c[0])
    assert c[0, 0, 0] != c[0, 0, 8]
    b = make_stimulus('bar', 10, 20, 20, dt=0.001, width=4.0, speed=0.0)
    assert set(np.unique(b)) == {0.0, 1.0} and (b[0] == 1).sum() == 4 * 20
    n = make_stimulus('noise', 5, 3, 3)
    assert set(np.unique(n)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match='unknown stimulus'):
        make_stimulus('spiral')
    with pytest.raises(ValueError):
        make_stimulus('grating', 0, 4, 4)


def test_load_stimulus_from_arrays_and_outputs():
    assert load_stimulus(np.zeros((7, 3, 2))).shape == (1, 1, 7, 3, 2)
    o = convis.Output([torch.ones(1, 1, 4, 2, 2)], keys=['x'])
    assert load_stimulus(o).shape == (1, 1, 4, 2, 2)
    assert load_stimulus(np.zeros((9, 3, 3)), max_frames=5).shape[2] == 5
    with pytest.raises(ValueError, match='NaN'):
        load_stimulus(np.array([np.nan, 1.0]))
