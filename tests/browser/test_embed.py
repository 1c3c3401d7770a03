"""A notebook that calls view.embed() and explorer.embed(), exported with nbconvert, plays from file:// offline.

The notebook is built with nbformat and executed with nbclient (this checkout's kernel), exported with
``jupyter nbconvert --to html``, and opened from a ``file://`` URL in headless Chromium with the network off
(every http(s) request aborted and recorded).  Without scripts (as GitHub shows notebooks) the poster frames
remain; with scripts the player swaps them for canvases and advances the frames, which hold exactly the
view's colours.
"""
import os
import re
import subprocess

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from convis_widgets import TensorView
from convis_widgets.embed import colormap_lut

from .labpage import BIN, ROOT, screenshot

pytestmark = pytest.mark.browser

VIEW_CELL = '''\
import numpy as np
from convis_widgets import TensorView
t, x, y = np.meshgrid(np.arange(60), np.arange(32), np.arange(32), indexing='ij')
view = TensorView(np.sin(0.3 * t + 0.4 * x) * np.cos(0.2 * y), colormap='viridis', fps=20, title='grating',
                  unit='cd/m2')
view.embed()'''

EXPLORER_CELL = '''\
import convis
from convis_widgets import ModelExplorer
ln = convis.models.LN((5, 3, 3))
ln.conv.set_weight(np.random.default_rng(0).random((5, 3, 3)) / 45.0)
explorer = ModelExplorer(ln, shape=(60, 32, 32), impulse=False, device=None)
explorer.wait()
explorer.embed()
explorer.close()'''


def expected_view():
    """The view the notebook's first cell makes (the same code, here)."""
    t, x, y = np.meshgrid(np.arange(60), np.arange(32), np.arange(32), indexing='ij')
    return TensorView(np.sin(0.3 * t + 0.4 * x) * np.cos(0.2 * y), colormap='viridis', fps=20)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """The exported HTML file of the executed notebook, and the same page with every script stripped."""
    d = tmp_path_factory.mktemp('embed')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(VIEW_CELL),
                                         nbformat.v4.new_code_cell(EXPLORER_CELL)])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    NotebookClient(nb, timeout=300, kernel_name='python3', resources={'metadata': {'path': ROOT}}).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert [o.output_type for o in outputs] == ['display_data', 'display_data'], outputs
    assert all(list(o.data) == ['text/html', 'text/plain'] or 'text/html' in o.data for o in outputs)
    path = str(d / 'embed.ipynb')
    nbformat.write(nb, path)
    subprocess.run([os.path.join(BIN, 'jupyter'), 'nbconvert', '--to', 'html', path], check=True,
                   capture_output=True, timeout=300)
    html_path = str(d / 'embed.html')
    with open(html_path) as f:
        text = f.read()
    stripped = str(d / 'embed-no-scripts.html')
    with open(stripped, 'w') as f:
        f.write(re.sub(r'<script\b.*?</script>', '', text, flags=re.S | re.I))
    return html_path, stripped


def offline(page):
    """Aborts (and records) every request that would leave the machine."""
    page.requests_blocked = []

    def block(route):
        page.requests_blocked.append(route.request.url)
        route.abort()
    page.route(re.compile(r'^(https?|wss?)://'), block)
    page.context.set_offline(True)


def canvas_levels(page, k):
    """The RGB pixels (x, y, 3) of the k-th player canvas."""
    data = page.evaluate('''k => {
        const c = document.querySelectorAll('canvas.convis-embed-canvas')[k];
        return {w: c.width, h: c.height, d: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)};
    }''', k)
    return np.array(data['d'], np.uint8).reshape(data['h'], data['w'], 4)[:, :, :3]


def test_without_scripts_the_poster_frames_remain(page, exported):
    offline(page)
    try:
        page.goto('file://' + exported[1])
        posters = page.locator('img.convis-embed-poster')
        assert posters.count() == 3                                  # the view; the explorer's input and output
        sizes = posters.evaluate_all(
            'els => els.map(e => [e.complete, e.naturalWidth, e.getBoundingClientRect().width])')
        assert all(done and natural == 32 and shown >= 200 for done, natural, shown in sizes), sizes
        assert page.locator('canvas.convis-embed-canvas').count() == 0
        captions = page.locator('.convis-embed-caption').all_text_contents()
        assert re.fullmatch(r'60 frames, 32x32 px, 20 fps, \d+ kB', captions[0]), captions
        screenshot(page, 'embed_no_scripts', element=page.locator('.convis-embed').first)
    finally:
        page.context.set_offline(False)


def test_the_exported_player_plays_offline_from_a_file(page, exported):
    offline(page)
    try:
        page.goto('file://' + exported[0])
        page.wait_for_function('() => document.querySelectorAll(".convis-embed[data-player=ready]").length == 2',
                               timeout=30000)
        player = page.locator('.convis-embed').first
        view = expected_view()
        lut = colormap_lut('viridis')
        start = int(player.get_attribute('data-frame'))
        np.testing.assert_array_equal(canvas_levels(page, 0), lut[view.frames()[start]])
        player.locator('.convis-embed-play').click()
        page.wait_for_function('s => (+document.querySelector(".convis-embed").getAttribute("data-frame") - s + 60) '
                               '% 60 >= 5', arg=start, timeout=10000)  # five frames on, wrapping at 60
        player.locator('.convis-embed-play').click()                # pause, then read a still frame
        now = int(player.get_attribute('data-frame'))
        assert now != start
        shown = canvas_levels(page, 0)
        np.testing.assert_array_equal(shown, lut[view.frames()[now]])
        assert not np.array_equal(shown, lut[view.frames()[start]])
        label = player.locator('.convis-embed-label').text_content()
        assert label == 'frame %d / 60, t = %.1f ms' % (now, now), label
        explorer = page.locator('.convis-embed').nth(1)
        titles = explorer.locator('.convis-embed-title').all_text_contents()
        assert titles == ['input', 'output'], titles
        assert explorer.locator('.convis-embed-colorbar').count() == 2
        explorer.locator('.convis-embed-play').click()
        page.wait_for_timeout(300)
        screenshot(page, 'embed_nbconvert_offline', full_page=True)
        # nbconvert's page asks CDNs for MathJax, require.js and (as the notebook holds widget state) the widget
        # manager: blocked, with a console error each; the players ask for nothing
        template = re.compile(r'https://(cdnjs\.cloudflare\.com|unpkg\.com/@jupyter-widgets)/')
        assert page.requests_blocked and all(template.match(u) for u in page.requests_blocked), page.requests_blocked
        errors = page.console.errors()
        assert errors == ['Failed to load resource: net::ERR_FAILED'] * len(page.requests_blocked), errors
    finally:
        page.context.set_offline(False)
