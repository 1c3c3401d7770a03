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
    outs, keys = impulse_response(m, (40, 7, 7), amplitude=2.0, chunk=7)
    assert keys == ['ON', 'OFF']
    np.testing.assert_allclose(outs[0][0, 0, :, 3, 3], analytic(0.01, 2.0, 40), rtol=1e-5)
    assert np.abs(outs[0][0, 0, :, 0, 0]).max() == 0  # only the centre pixel responds
    np.testing.assert_allclose(outs[1], -outs[0])
    assert torch.equal(m.get_state()['y'], before)


def test_panel_shows_on_and_off_and_recomputes_when_a_parameter_changes():
    m = LowPass()
    panel = ImpulseResponsePanel(m, shape=(50, 5, 5), time=0.003)
    assert list(panel.lines.labels) == ['ON', 'OFF']
    y = np.array(panel.lines.y)
    np.testing.assert_allclose(y[0], analytic(0.01, 1.0, 50), rtol=1e-5)
    np.testing.assert_allclose(panel.lines.x, np.arange(50) * 0.001)
    assert [v.title for v in panel.views] == ['ON', 'OFF']
    assert panel.views[0].frame == 3 and panel.views[0].n_frames == 50
    assert list(panel.cursor.x) == [pytest.approx(0.003)] * 2
    m.p.gain = 3.0
    m.tau = 0.02
    assert panel.worker.wait_idle(10)
    np.testing.assert_allclose(np.array(panel.lines.y)[0], analytic(0.02, 3.0, 50), rtol=1e-5)
    assert panel.computed >= 2
    panel.views[0].frame = 10
    assert list(panel.cursor.x) == [pytest.approx(0.010)] * 2
    panel.close()
    assert not any(t.name == 'convis-impulse' for t in threading.enumerate())
    m.p.gain = 1.0  # a closed panel no longer follows


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
