"""Descriptions (text, dict, HTML) of convis objects and animations of tensors."""
import base64
import html
import io
import math
import re

import imageio.v2 as imageio
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.animation import FuncAnimation
from PIL import Image

import convis
from convis import variable_describe as vd


@pytest.fixture(autouse=True)
def _close_figures():
    plt.close('all')
    yield
    plt.close('all')


class Stage(convis.Layer):
    """A scaled copy of the input.

    y(t) = gain * x(t); the last frame is kept as the state ``last``.
    """

    def __init__(self):
        super().__init__()
        self.gain = convis.Parameter(0.5, doc='amplification <of the input>', unit='1/cd',
                                     retina_config_key='stage-gain', bounds=(0, 10))
        self.kernel = convis.Parameter(np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 1, 2, 3, 3),
                                       doc='a small kernel', unit='')
        self.register_state('last', None)

    def forward(self, x):
        self.last = x[:, :, -1:]
        return self.gain * x


class TwoStages(convis.Layer):
    """Two stages, in parallel."""

    def __init__(self):
        super().__init__()
        self.first = Stage()
        self.second = Stage()
        self.threshold = convis.Parameter(0.2, doc='spike threshold', unit='mV', bounds=(None, None))

    def forward(self, x):
        return convis.Output([self.first(x), self.second(x) > self.threshold], keys=['analog', 'spikes'])


def _pngs(html):
    found = re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)', html)
    return [Image.open(io.BytesIO(base64.b64decode(p))) for p in found]


def test_layer_text_lists_the_tree_with_parameters_and_states():
    m = TwoStages()
    text = repr(vd.describe(m))
    assert text == vd.describe_text(m) == str(vd.describe(m))
    lines = text.split('\n')
    assert lines[0].endswith('TwoStages') and lines[1].strip() == 'Two stages, in parallel.'
    assert '  threshold = 0.2 mV  (spike threshold)' in lines
    assert '    gain = 0.5 1/cd  (amplification <of the input>)  [stage-gain]' in lines
    assert sum(line.startswith('  first: ') or line.startswith('  second: ') for line in lines) == 2
    assert '    state last: None (created from the first input)' in lines
    m.run(np.ones((5, 3, 4)), dt=2)
    assert '    state last: shape (1, 1, 1, 3, 4) float32: min 1, max 1, mean 1' in vd.describe_text(m).split('\n')


def test_layer_dict():
    m = TwoStages()
    d = vd.describe_dict(m)
    assert d['kind'] == 'Layer' and d['cls'].endswith('TwoStages')
    assert list(d['sublayers']) == ['first', 'second']
    gain = d['sublayers']['first']['parameters']['gain']
    assert (gain['value'], gain['unit'], gain['retina_config_key'], gain['bounds']) == (0.5, '1/cd', 'stage-gain', (0, 10))
    assert gain['shape'] == (1,) and gain['requires_grad']
    kernel = d['sublayers']['first']['parameters']['kernel']
    assert kernel['value'] is None and (kernel['min'], kernel['max']) == (0.0, 17.0)
    assert d['sublayers']['first']['states']['last']['value'] is None
    short = vd.describe_dict(m, max_depth=0)
    assert short['sublayers']['first'] == {'kind': 'Layer', 'name': 'first', 'cls': d['sublayers']['first']['cls'],
                                           'truncated': True}


def test_layer_html_shows_parameters_units_docs_and_keys():
    m = TwoStages()
    html = m._repr_html_()
    assert html == vd.describe_html(m) == vd.describe(m)._repr_html_()
    for word in ['TwoStages', 'first', 'second', 'gain', 'kernel', 'threshold', '1/cd', 'mV', 'stage-gain',
                 'spike threshold', '<details', 'last']:
        assert word in html
    assert 'amplification &lt;of the input&gt;' in html and '<of the input>' not in html
    assert vd.describe_layer_with_html(m, max_depth=0).count('<details') == 1


def test_output_html_has_shapes_and_one_png_per_output():
    m = TwoStages()
    o = m.run(np.random.rand(30, 6, 5), dt=7)
    html = o._repr_html_()
    assert 'analog' in html and 'spikes' in html and '(1, 1, 30, 6, 5)' in html and 'bool' in html
    images = _pngs(html)
    assert len(images) == 2 and all(im.size[0] > 50 and im.size[1] > 30 for im in images)
    text = vd.describe_text(o)
    assert text.startswith('Output with 2 entries') and 'spikes: shape (1, 1, 30, 6, 5) bool' in text
    d = vd.describe_dict(o)
    assert d['outputs']['spikes']['count'] == int((o.spikes).sum())
    np.testing.assert_allclose(d['outputs']['analog']['mean'], float(o.analog.mean()), rtol=1e-5)


def test_parameter_state_tensor_and_array_descriptions():
    m = TwoStages()
    html = m.first.gain._repr_html_()
    assert 'gain' in html and '1/cd' in html and 'stage-gain' in html and not _pngs(html)
    html = m.first.kernel._repr_html_()
    assert len(_pngs(html)) == 1 and 'a small kernel' in html
    assert vd.describe_text(m.first.gain).startswith('Parameter gain = 0.5 1/cd  [stage-gain]')
    s = convis.State(torch.ones(2, 3), doc='memory')
    assert vd.describe_dict(s)['doc'] == 'memory' and '(2, 3)' in s._repr_html_()
    t = torch.zeros(4, 5, requires_grad=True)
    d = vd.describe_dict(t)
    assert (d['kind'], d['shape'], d['requires_grad'], d['mean']) == ('tensor', (4, 5), True, 0.0)
    assert vd.describe_text(np.arange(3)) == 'array shape (3,) int64: min 0, max 2, mean 1'
    assert len(_pngs(vd.describe_html(np.random.rand(10, 4, 4)))) == 1
    assert vd.describe_text(torch.tensor(3.0)) == 'tensor 3'
    assert vd.describe_text(5) == '5'


def test_trees_and_help():
    m = TwoStages()
    text = vd.describe_text(m.p)
    assert '  first.gain = 0.5 1/cd  (amplification <of the input>)  [stage-gain]' in text.split('\n')
    html = vd.describe_html(m.p)
    assert 'second.kernel' in html and 'stage-gain' in html
    assert 'second: ' in vd.describe_text(m.m)
    h = repr(vd.help(m))
    assert 'y(t) = gain * x(t)' not in h and 'Two stages, in parallel.' in h
    assert 'first.gain = 0.5 1/cd' in h and 'threshold = 0.2 mV  (spike threshold)' in h
    assert repr(vd.help(m.first.gain)) == 'gain [1/cd]: amplification <of the input>\nconfig key: stage-gain'
    assert 'y(t) = gain * x(t)' in repr(vd.help(m.first))
    assert '&lt;of the input&gt;' in vd.help(m.first.gain)._repr_html_()


def test_failed_plot_keeps_the_description(monkeypatch):
    def fail(fig, a):
        raise RuntimeError('no plot')

    monkeypatch.setattr(vd, '_draw_tensor', fail)
    n = len(vd.plotting_exceptions)
    html = vd.describe_html(convis.Output([torch.rand(1, 1, 10, 3, 3)]))
    assert not _pngs(html) and '(1, 1, 10, 3, 3)' in html
    assert len(vd.plotting_exceptions) == n + 1 and str(vd.plotting_exceptions[-1]) == 'no plot'


def _decode_mp4(html, tmp_path):
    data = re.search(r'base64,([A-Za-z0-9+/=\s]+)"', html).group(1)
    path = tmp_path / 'video.mp4'
    path.write_bytes(base64.b64decode(data))
    return imageio.get_reader(str(path), 'ffmpeg')


def test_animate_to_video_has_one_frame_per_skip(tmp_path):
    video = vd.animate_to_video(np.random.rand(23, 8, 8), skip=2, interval=50)
    assert '<video' in video.data
    reader = _decode_mp4(video.data, tmp_path)
    assert reader.count_frames() == math.ceil(23 / 2)
    assert reader.get_meta_data()['fps'] == pytest.approx(20)
    video = vd.animate_to_video(np.random.rand(2, 1, 9, 4, 4), skip=3, scrolling_plot=True, window_length=5)
    assert _decode_mp4(video.data, tmp_path).count_frames() == 3
    assert plt.get_fignums() == []


def test_animate_to_html_has_one_png_per_frame():
    html = vd.animate_to_html(np.random.rand(25, 6, 6), skip=10).data
    assert html.count('data:image/png;base64,') == 3
    html = vd.animate_to_html(torch.rand(1, 2, 4, 5, 5), skip=1, scrolling_plot=True).data
    assert html.count('data:image/png;base64,') == 4
    assert plt.get_fignums() == []


def test_animate_shows_the_tiled_frames():
    ar = np.random.rand(2, 3, 21, 4, 5)
    anim = vd.animate(ar, skip=5, interval=40)
    assert isinstance(anim, FuncAnimation)
    assert plt.get_fignums() == [1]
    anim.to_jshtml()
    image = plt.gcf().axes[0].images[0].get_array().filled(np.nan)
    assert image.shape == (2 * 5 - 1, 3 * 6 - 1)
    np.testing.assert_allclose(image[5:9, 12:17], ar[1, 2, 20])
    assert plt.gcf().axes[0].get_title() == 't=20'
    with pytest.raises(ValueError):
        vd.animate(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        vd.animate(ar, skip=0)


def test_animate_double_plot_scrolls():
    ar = np.random.rand(30, 3, 3)
    anim = vd.animate_double_plot(ar, skip=4, window_length=10)
    anim.to_jshtml()
    image_ax, trace_ax = plt.gcf().axes
    np.testing.assert_allclose(image_ax.images[0].get_array(), ar[28])
    assert trace_ax.get_xlim() == (18, 29)
    np.testing.assert_allclose(trace_ax.lines[0].get_ydata(), ar.mean(axis=(1, 2)))


def test_ln_model_description():
    m = convis.models.LN((5, 3, 3))
    kernel = np.random.rand(5, 3, 3)
    m.conv.set_weight(kernel)
    d = vd.describe_dict(m)
    assert list(d['sublayers']) == ['conv', 'nonlinearity']
    weight = d['sublayers']['conv']['parameters']['weight']
    assert weight['shape'] == (1, 1, 5, 3, 3)
    np.testing.assert_allclose((weight['min'], weight['max']), (kernel.min(), kernel.max()), rtol=1e-6)
    assert 'conv: convis.filters.conv.Conv3d' in vd.describe_text(m)
    html = m._repr_html_()
    assert 'LN' in html and 'weight' in html and 'Conv3d' in html
    o = m.run(convis.samples.moving_grating(60, 8, 8), dt=25)
    assert len(_pngs(o._repr_html_())) == 1
    assert len(_pngs(m.conv.weight._repr_html_())) == 1


def test_retina_html_names_every_configuration_key():
    retina = convis.retina.Retina()
    page = retina._repr_html_()
    keys = [p.retina_config_key for _, p in retina.named_parameters() if getattr(p, 'retina_config_key', None)]
    assert len(keys) > 10
    for key in keys:
        assert html.escape(key) in page
    assert page.count('<details') == len(list(retina.named_modules()))
