"""The plotting and animation examples of the API reference run unchanged, and draw what they say.

Each example is the code of the original toolbox's API reference (``convis.utils`` plots, animations,
``OrthographicWrapper``), written out here.  Code from ``.. plot::`` blocks runs in the namespace Sphinx's plot
directive gives (``np`` and ``plt``); the figure is then rendered to PNG, as the directive does.
"""
import gc
import io
import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.animation import FuncAnimation

import convis


@pytest.fixture(autouse=True)
def _close_figures():
    plt.close('all')
    yield
    plt.close('all')


def run_example(code, **namespace):
    """Runs the example ``code`` and renders the figure."""
    code = textwrap.dedent(code).strip()
    ns = dict(np=np, plt=plt, **namespace)
    exec(compile(code, '<seed example>', 'exec'), ns)
    fig = plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=40)
    assert buf.getvalue()[:4] == b'\x89PNG'
    return ns, fig


def test_plot_5d_matshow_examples():
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        convis.utils.plot_5d_matshow(inp[None,None])
    """)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (50, 2000 * 51 - 1)
    np.testing.assert_allclose(image[:, 51:101], ns['inp'][1])
    plt.close('all')
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        convis.utils.plot_5d_matshow(inp[None,None,::200])
    """)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (50, 10 * 51 - 1)
    np.testing.assert_allclose(image[:, 9 * 51:], ns['inp'][1800])


def test_plot_5d_time_and_plot_examples():
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        convis.utils.plot_5d_time(inp[None,None])
    """)
    lines = fig.axes[0].lines
    assert len(lines) == 50 * 50
    np.testing.assert_allclose(lines[51].get_ydata(), ns['inp'][:, 1, 1])
    plt.close('all')
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        convis.utils.plot(inp[None,None])
    """)
    assert len(fig.axes) == 6


@pytest.mark.parametrize('call, n_axes, n_examples', [
    ('convis.utils.plot_tensor(inp[None,None])', 6, 16),
    ('convis.utils.plot_tensor(inp[None,None],n_examples=10,max_lines=42)', 11, 42),
    ('convis.utils.plot_tensor(inp[None,None],n_examples=2,max_lines=2)', 3, 2),
])
def test_plot_tensor_examples(call, n_axes, n_examples):
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        %s
    """ % call)
    assert len(fig.axes) == n_axes
    traces = fig.axes[0].lines
    assert len([line for line in traces if 'example' in line.get_label()]) == n_examples
    mean = [line for line in traces if line.get_label() == 'mean'][0]
    np.testing.assert_allclose(mean.get_ydata(), ns['inp'].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('axis, call, n_axes', [
    (0, 'convis.utils.plot_tensor_with_channels(inp)', 4),
    (0, 'convis.utils.plot_tensor_with_channels(inp,n_examples=10,max_lines=42)', 4),
    (1, 'convis.utils.plot_tensor_with_channels(inp[None,None],n_examples=2,max_lines=2)', 4),
])
def test_plot_tensor_with_channels_examples(axis, call, n_axes):
    ns, fig = run_example("""
        import convis
        inp = convis.samples.moving_grating(2000,50,50)
        inp = np.concatenate([-1.0*inp[None,None],2.0*inp[None,None],inp[None,None]],axis=%d)
        %s
    """ % (axis, call))
    assert len(fig.axes) == n_axes
    means = [line for line in fig.axes[0].lines if line.get_label().startswith('mean')]
    assert len(means) == 3
    np.testing.assert_allclose(means[1].get_ydata(), ns['inp'].reshape(3, 2000, -1)[1].mean(axis=1),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings('ignore:Animation was deleted without rendering')
def test_animation_examples():
    """The three examples (after ``%matplotlib notebook``) share their first two lines; the values they show
    at the prompt are kept in names here."""
    ns = {}
    exec(compile('import convis\ninp = convis.samples.moving_grating(5000)\nanim = convis.animate(inp)\n'
                 'video = convis.variable_describe.animate_to_video(inp)\n'
                 'js = convis.variable_describe.animate_to_html(inp)', '<seed example>', 'exec'), ns)
    n_frames = math.ceil(ns['inp'].shape[-3] / 10)
    assert isinstance(ns['anim'], FuncAnimation) and len(list(ns['anim'].new_frame_seq())) == n_frames
    assert ns['video'].data.startswith('<video') and 'data:video/mp4;base64,' in ns['video'].data
    assert ns['js'].data.count('data:image/png;base64,') == n_frames
    plt.close('all')
    ns.clear()
    gc.collect()


def test_orthographic_wrapper_examples():
    from convis.variable_describe import plot_3d_tensor_as_3d_plot
    ar = np.random.rand(5, 8, 8)
    run_example("""
        with convis.variable_describe.OrthographicWrapper():
            plot_3d_tensor_as_3d_plot(ar) # orthographic projection
        plot_3d_tensor_as_3d_plot(ar) # returns to default projection
    """, convis=convis, plot_3d_tensor_as_3d_plot=plot_3d_tensor_as_3d_plot, ar=ar)
    # the document writes "OrthographicWrapper():" here, a syntax error; the line runs without the colon
    run_example("""
        orth = convis.variable_describe.OrthographicWrapper()
        with orth:
            plot_3d_tensor_as_3d_plot(ar)
        plot_3d_tensor_as_3d_plot(ar)
    """, convis=convis, plot_3d_tensor_as_3d_plot=plot_3d_tensor_as_3d_plot, ar=ar)
