"""Plots of 5-d tensors: the drawn data must equal the (tiled, averaged) input."""
import os
import subprocess
import sys
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import convis
from convis import plotting

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _close_figures():
    plt.close('all')
    yield
    plt.close('all')


def _rand(*shape):
    return np.random.rand(*shape).astype(np.float32)


def _agg_axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _run_python(code):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('MPLBACKEND', None)
    r = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_import_convis_does_not_import_matplotlib():
    out = _run_python("""
        import sys
        import convis
        import convis.utils, convis.plotting, convis.variable_describe
        print('matplotlib' in sys.modules, convis.variable_describe.plotting_possible)
    """)
    assert out.split() == ['False', 'True']


def test_plots_and_descriptions_keep_the_chosen_backend_and_pyplot_figures():
    out = _run_python("""
        import matplotlib
        matplotlib.use('svg')
        import numpy as np
        import convis
        from convis import variable_describe as vd
        o = convis.Output([np.random.rand(20, 4, 4)], keys=['a'])
        html = o._repr_html_()
        vd.animate_to_html(np.random.rand(4, 3, 3), skip=2)
        import matplotlib.pyplot as plt
        print(matplotlib.get_backend(), len(plt.get_fignums()), 'base64' in html)
        convis.utils.plot(np.random.rand(20, 4, 4))
        print(matplotlib.get_backend(), len(plt.get_fignums()))
    """)
    assert out.split() == ['svg', '0', 'True', 'svg', '1']


def _expected_tiles(w, border_val=None):
    """Batches and channels stacked down, x down inside a tile; time across, y across inside a tile."""
    b, c, t, x, y = w.shape
    step_x, step_y = (x + 1, y + 1) if border_val is not None else (x, y)
    img = np.full((b * c * step_x - (step_x - x), t * step_y - (step_y - y)),
                  np.nan if border_val is None else border_val, dtype=np.float64)
    for bi in range(b):
        for ci in range(c):
            for ti in range(t):
                r, s = (bi * c + ci) * step_x, ti * step_y
                img[r:r + x, s:s + y] = w[bi, ci, ti]
    return img


def test_plot_5d_matshow_tiles_the_tensor():
    w = _rand(2, 3, 4, 5, 6)
    im = convis.utils.plot_5d_matshow(w, border=False)
    np.testing.assert_allclose(im.get_array(), _expected_tiles(w))
    assert list(plt.gca().images) == [im]
    im = convis.utils.plot_5d_matshow(w, border_val=-1.0)
    assert im.get_array().shape == (2 * 3 * 6 - 1, 4 * 7 - 1)
    np.testing.assert_allclose(im.get_array(), _expected_tiles(w, -1.0))
    im = convis.utils.plot_5d_matshow(w, border_val='max')
    np.testing.assert_allclose(im.get_array(), _expected_tiles(w, w.max()))


def test_plot_5d_matshow_other_dims_and_errors():
    w = _rand(1, 2, 3, 4, 5)
    img = plotting.tile_5d(w, dims=[(0, 3), (2, 1, 4)], border=False)
    assert img.shape == (4, 3 * 2 * 5)
    np.testing.assert_allclose(img[:, (2 * 2 + 1) * 5:(2 * 2 + 2) * 5], w[0, 1, 2])
    with pytest.raises(ValueError):
        plotting.tile_5d(w, dims=[(0, 3), (2, 4)])
    with pytest.raises(ValueError):
        plotting.tile_5d(w, border_val='median')


@pytest.mark.parametrize('device', DEVICES)
def test_plots_accept_tensors_parameters_and_spikes(device):
    w = torch.rand(1, 1, 3, 4, 4, device=device, requires_grad=True)
    np.testing.assert_allclose(convis.utils.plot_5d_matshow(w, border=False).get_array(),
                               _expected_tiles(w.detach().cpu().numpy()))
    p = convis.Parameter(np.arange(12.0).reshape(3, 2, 2)).to(device)
    np.testing.assert_allclose(convis.utils.plot_5d_matshow(p, border=False).get_array(),
                               np.arange(12.0).reshape(3, 2, 2).transpose(1, 0, 2).reshape(2, 6))
    spikes = torch.rand(1, 1, 10, 3, 3, device=device) > 0.5
    lines = convis.utils.plot_5d_time(spikes, mean=True)
    np.testing.assert_allclose(lines[0].get_ydata(), spikes.float().mean(dim=(0, 1, 3, 4)).cpu().numpy(), rtol=1e-6)
    axes = convis.utils.plot_tensor(spikes.to(torch.uint8))
    assert len(axes) == 6
    with pytest.raises(TypeError):
        convis.utils.plot(np.array(['a', 'b']))
    with pytest.raises(ValueError):
        convis.utils.plot(np.zeros((0, 3, 3)))


def test_plot_5d_time_means_and_lines():
    w = _rand(2, 3, 7, 4, 5)
    lines = convis.utils.plot_5d_time(w, mean=(3, 4))
    assert len(lines) == 6
    for k, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(7))
        np.testing.assert_allclose(line.get_ydata(), w[k // 3, k % 3].mean(axis=(1, 2)), rtol=1e-6)
    lines = convis.utils.plot_5d_time(w, '--', mean=True)
    assert len(lines) == 1 and lines[0].get_linestyle() == '--'
    np.testing.assert_allclose(lines[0].get_ydata(), w.mean(axis=(0, 1, 3, 4)), rtol=1e-6)
    assert len(convis.utils.plot_5d_time(w)) == 2 * 3 * 4 * 5
    lines = convis.utils.plot_5d_time(w, mean=(0, 3, 4), time=(1, 2))
    np.testing.assert_allclose(lines[0].get_ydata(), w.mean(axis=(0, 3, 4)).ravel(), rtol=1e-6)
    fig, ax = _agg_axes()
    lines = convis.utils.plot_5d_time(w[0, 0, :, 0, 0], 'r-', ax=ax, lw=3)
    assert list(ax.lines) == lines and lines[0].get_linewidth() == 3
    with pytest.raises(ValueError):
        convis.utils.plot_5d_time(w, mean=(2, 3))


def test_plot_chooses_by_shape():
    frame = _rand(6, 7)
    im = convis.utils.plot(frame)
    np.testing.assert_allclose(im.get_array(), frame)
    plt.close('all')
    trace = _rand(50)
    lines = convis.utils.plot(trace)
    assert len(lines) == 1
    np.testing.assert_allclose(lines[0].get_ydata(), trace)
    plt.close('all')
    axes = convis.utils.plot(_rand(30, 5, 5))
    assert len(axes) == 6 and len(plt.gcf().axes) == 6


def test_plot_modes_and_output_plot():
    x = _rand(2, 1, 30, 4, 4)
    lines = convis.utils.plot(x, mode='lines')
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1].get_ydata(), x[1, 0].mean(axis=(1, 2)), rtol=1e-6)
    im = convis.utils.plot(x, mode='matshow')
    assert im.get_array().shape == (2 * 5 - 1, 30 * 5 - 1)
    with pytest.raises(ValueError):
        convis.utils.plot(x, mode='surface')
    o = convis.Output([torch.from_numpy(x[:1]), torch.zeros(1, 1, 30, 1, 1)], keys=['a', 'b'])
    lines = o.plot(mode='lines')
    np.testing.assert_allclose(lines[0].get_ydata(), x[0, 0].mean(axis=(1, 2)), rtol=1e-6)
    assert len(o.plot(k='b')) == 1
    plt.close('all')
    assert len(convis.utils.plot(o)) == 6


def test_plot_tensor_content():
    x = _rand(1, 1, 40, 20, 20)
    axes = convis.utils.plot_tensor(x, n_examples=4, max_lines=16)
    fig = plt.gcf()
    assert fig.axes == axes and len(axes) == 5
    by_label = {line.get_label(): line for line in axes[0].lines}
    np.testing.assert_allclose(by_label['mean'].get_ydata(), x.mean(axis=(0, 1, 3, 4)), rtol=1e-6)
    np.testing.assert_allclose(by_label['min'].get_ydata(), x.min(axis=(0, 1, 3, 4)))
    np.testing.assert_allclose(by_label['max'].get_ydata(), x.max(axis=(0, 1, 3, 4)))
    examples = [line for line in axes[0].lines if 'example' in line.get_label()]
    assert len(examples) == 16
    times = [0, 13, 26, 39]
    for ax, t in zip(axes[1:], times):
        np.testing.assert_allclose(ax.images[0].get_array(), x[0, 0, t])
        assert ax.get_title() == 't=%d' % t
    assert fig.get_suptitle() == 'Output Tensor'
    assert fig.get_size_inches()[0] >= 1.6 * 4 + 1
    axes = convis.utils.plot_tensor(x, n_examples=2, max_lines=2, tlim=(10, 30), xlim=5, ylim=(2, 8), title='T')
    assert plt.gcf() is not fig and len(axes) == 3
    examples = [line for line in axes[0].lines if 'example' in line.get_label()]
    assert len(examples) == 2 and len(examples[0].get_ydata()) == 20
    np.testing.assert_allclose(axes[2].images[0].get_array(), x[0, 0, 29, :5, 2:8])
    with pytest.raises(ValueError):
        convis.utils.plot_tensor(x, tlim=(50, 60))


def test_plot_tensor_with_channels_content():
    x = np.concatenate([-1.0 * _rand(1, 1, 30, 6, 5), 2.0 * _rand(1, 1, 30, 6, 5)], axis=0)
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = convis.utils.plot_tensor_with_channels(x, n_examples=3, max_lines=4, fig=fig)
    assert fig.axes == axes and len(axes) == 3
    means = [line for line in axes[0].lines if line.get_label().startswith('mean')]
    assert [m.get_label() for m in means] == ['mean b0 c0', 'mean b1 c0']
    np.testing.assert_allclose(means[1].get_ydata(), x[1, 0].mean(axis=(1, 2)), rtol=1e-6)
    assert len([line for line in axes[0].lines if line.get_label() == '_example']) == 2 * 4
    assert len(axes[0].collections) == 2
    times = [0, 14, 29]
    for b in range(2):
        expected = _expected_tiles(x[b:b + 1, :, times], np.nan)
        np.testing.assert_allclose(axes[1 + b].images[0].get_array().filled(np.nan), expected)
    assert len(convis.utils.plot_tensor_with_channels(x.transpose(1, 0, 2, 3, 4))) == 3


def test_orthographic_wrapper_switches_the_projection_while_active():
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection='3d')
    ax.plot([0, 1], [0, 1], [0, 1])
    persp = ax.get_proj()
    ortho_ax = fig.add_subplot(projection='3d')
    ortho_ax.plot([0, 1], [0, 1], [0, 1])
    ortho_ax.set_proj_type('ortho')
    ortho = ortho_ax.get_proj()
    assert not np.allclose(persp, ortho)
    wrapper = convis.variable_describe.OrthographicWrapper()
    for _ in range(2):
        with wrapper:
            np.testing.assert_allclose(ax.get_proj(), ortho)
            fig.canvas.draw()
        np.testing.assert_allclose(ax.get_proj(), persp)


def test_plot_3d_tensor_as_3d_plot():
    ar = np.random.rand(4, 5, 6)
    ar[:, 2, 3] += 2
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection='3d')
    out = convis.variable_describe.plot_3d_tensor_as_3d_plot(ar, ax=ax, num_levels=7, view=(30, 40))
    assert out is ax
    assert (ax.elev, ax.azim) == (30, 40)
    assert ax.get_zlim() == (0, 3) and ax.get_xlim() == (0, 4)
    assert len(ax.collections) >= 2 * 4 + 2
    fig.canvas.draw()
    plt.subplot(1, 2, 2)
    ax = convis.variable_describe.plot_3d_tensor_as_3d_plot(torch.from_numpy(ar)[None, None], scale_ar=2 * ar)
    assert ax.name == '3d' and plt.gcf().axes == [ax]
    assert ax.get_subplotspec().colspan.start == 1
    with pytest.raises(ValueError):
        convis.variable_describe.plot_3d_tensor_as_3d_plot(ar, ax=plt.figure().add_subplot())
    assert matplotlib.get_backend().lower() == 'agg'
