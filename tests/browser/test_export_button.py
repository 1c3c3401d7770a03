"""The Export button of a live TensorView in JupyterLab downloads its kernel-free player, which plays offline.

A notebook with one TensorView is run in JupyterLab; the player options (behind the gear of a compact view)
hold an Export button that asks the kernel for :meth:`TensorView.to_html` and saves the answer as
``<title>.html``.  The download is captured and opened from a ``file://`` URL with the network off: it starts
on the view's frame with the most contrast, and its player shows exactly the view's colours frame by frame.

The same notebook saved from JupyterLab (live view, no widget state) and exported with ``jupyter nbconvert --to
html`` shows the view's still picture (its ``text/html`` beside the widget) where the view was, offline.
"""
import json
import os
import re
import subprocess
import time

import nbformat
import numpy as np
import pytest

from convis_widgets import TensorView
from convis_widgets.embed import colormap_lut

from .labpage import BIN, open_notebook, run_all_cells, screenshot, wait_kernel_idle
from .test_embed import canvas_levels, offline

pytestmark = pytest.mark.browser

NOTEBOOK = 'export_button.ipynb'
VIEW_CELL = '''\
import numpy as np
from convis_widgets import TensorView
t, x, y = np.meshgrid(np.arange(40), np.arange(24), np.arange(30), indexing='ij')
view = TensorView(np.sin(0.3 * t + 0.4 * x) * np.cos(0.2 * y), colormap='magma', fps=20, title='moving grating',
                  unit='\u00b5W/sr')
view'''


def expected_view():
    """The view the notebook makes (the same code, here)."""
    t, x, y = np.meshgrid(np.arange(40), np.arange(24), np.arange(30), indexing='ij')
    return TensorView(np.sin(0.3 * t + 0.4 * x) * np.cos(0.2 * y), colormap='magma', fps=20, title='moving grating')


@pytest.fixture(scope='module')
def lab_view(page_module, lab_server, notebook_dir):
    """The JupyterLab page with the notebook run and its TensorView drawn."""
    page = page_module
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(VIEW_CELL)])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}
    nbformat.write(nb, os.path.join(notebook_dir, NOTEBOOK))
    open_notebook(page, lab_server, NOTEBOOK)
    dialog = page.locator('.jp-Dialog', has_text='Select Kernel')
    if dialog.count():        # the kernel list can arrive after a notebook written while Lab runs is opened
        dialog.locator('.jp-Dialog-button.jp-mod-accept').click()
        wait_kernel_idle(page)
    run_all_cells(page)
    page.wait_for_function('() => { const c = document.querySelector(".convis-tensorview canvas.convis-tv-canvas");'
                           ' return c && c.width === 30 && c.height === 24; }', timeout=30000)
    return page


@pytest.fixture(scope='module')
def page_module(browser_context):
    """One tab for the module (the notebook stays open between its tests)."""
    from .labpage import ConsoleLog
    pg = browser_context.new_page()
    pg.console = ConsoleLog(pg)
    yield pg
    pg.close()


@pytest.fixture(scope='module')
def downloaded(lab_view, tmp_path_factory):
    """Clicks Export in the player options; returns (path of the saved download, its suggested file name)."""
    page = lab_view
    view = page.locator('.convis-tensorview').first
    if view.locator('.convis-tv-more').is_visible():                 # a compact view hides its options
        view.locator('.convis-tv-more').click()
    button = view.locator('.convis-tv-options .convis-tv-export')
    button.wait_for(state='visible')
    screenshot(page, 'export_button_options', element=view)
    with page.expect_download(timeout=30000) as info:
        button.click()
    download = info.value
    assert download.failure() is None, download.failure()
    path = str(tmp_path_factory.mktemp('export') / download.suggested_filename)
    download.save_as(path)
    return path, download.suggested_filename


def test_export_downloads_the_views_player(downloaded, lab_view):
    path, name = downloaded
    assert name == 'moving_grating.html'
    with open(path, encoding='utf-8') as f:
        text = f.read()
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>moving grating</title>'
    assert text.startswith(head), text[:90]
    assert re.search(r'40 frames, 24x30 px, 20 fps, \d+ kB', text)
    assert text.count('class="convis-embed-poster"') == 1
    view = expected_view()
    assert view.to_html().count('data:image/png') == text.count('data:image/png')
    assert not re.search(r'(src|href)="(https?:)?//', text)            # nothing outside the file
    assert lab_view.locator('.convis-static').count() == 0            # JupyterLab draws the widget, not the still
    assert not lab_view.console.errors('convis', 'tensorview'), lab_view.console.errors('convis', 'tensorview')


def test_the_download_plays_offline_from_a_file(page, downloaded):
    path, _ = downloaded
    offline(page)
    try:
        page.goto('file://' + path)
        page.wait_for_selector('.convis-embed[data-player=ready]', timeout=30000)
        player = page.locator('.convis-embed')
        view = expected_view()
        lut = colormap_lut('magma')
        frames = view.frames()
        start = int(player.get_attribute('data-frame'))
        assert start == int(np.argmax(frames.reshape(40, -1).astype(float).std(axis=1)))   # the poster frame
        np.testing.assert_array_equal(canvas_levels(page, 0), lut[frames[start]])
        player.locator('.convis-embed-play').click()
        page.wait_for_function('s => +document.querySelector(".convis-embed").getAttribute("data-frame") == '
                               '(s + 5) % 40', arg=start, timeout=10000)
        player.locator('.convis-embed-play').click()
        now = int(player.get_attribute('data-frame'))
        assert now != start
        np.testing.assert_array_equal(canvas_levels(page, 0), lut[frames[now]])
        assert player.locator('.convis-embed-title').text_content() == 'moving grating'
        assert player.locator('.convis-embed-bar').text_content() == '-1 \u00b5W/sr1 \u00b5W/sr'   # read as UTF-8
        assert page.title() == 'moving grating'
        screenshot(page, 'export_button_download_offline', element=player)
        assert page.requests_blocked == []
        assert page.console.errors() == []
    finally:
        page.context.set_offline(False)


@pytest.fixture(scope='module')
def nbconverted(lab_view, notebook_dir):
    """The notebook saved from JupyterLab (File > Save Notebook) and exported with nbconvert: the HTML's path."""
    page = lab_view
    path = os.path.join(notebook_dir, NOTEBOOK)
    page.click('.lm-MenuBar-itemLabel:text-is("File")')
    page.click('.lm-Menu-itemLabel:text-is("Save Notebook")')
    deadline = time.time() + 30
    while time.time() < deadline:
        with open(path) as f:
            outputs = [o for c in json.load(f)['cells'] for o in c.get('outputs', [])]
        if outputs:
            break
        time.sleep(0.25)
    assert [sorted(o['data']) for o in outputs] == [
        ['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']], outputs
    subprocess.run([os.path.join(BIN, 'jupyter'), 'nbconvert', '--to', 'html', path], check=True,
                   capture_output=True, timeout=300)
    return path[:-len('.ipynb')] + '.html'


def test_nbconvert_of_the_saved_notebook_shows_the_still_where_the_view_was(page, nbconverted):
    offline(page)
    try:
        page.goto('file://' + nbconverted)
        poster = page.locator('.jp-OutputArea-output .convis-static img.convis-embed-poster')
        poster.wait_for(state='visible', timeout=10000)
        done, natural, shown = poster.evaluate('e => [e.complete, e.naturalWidth, e.getBoundingClientRect().width]')
        assert done and natural == 30 and shown == 270, (done, natural, shown)
        levels = np.array(page.evaluate("""e => {
            const c = document.createElement('canvas'); c.width = 30; c.height = 24;
            const g = c.getContext('2d'); g.drawImage(e, 0, 0);
            return Array.from(g.getImageData(0, 0, 30, 24).data); }""", poster.element_handle()), np.uint8)
        frames = expected_view().frames()
        k = int(np.argmax(frames.reshape(40, -1).astype(float).std(axis=1)))
        np.testing.assert_array_equal(levels.reshape(24, 30, 4)[:, :, :3], colormap_lut('magma')[frames[k]])
        caption = page.locator('.convis-static .convis-embed-caption').text_content()
        assert caption.startswith('moving grating frame %d of 40, 24x30 px' % k), caption
        screenshot(page, 'export_nbconvert_still', element=page.locator('.jp-Cell').first)
        assert page.locator('.jupyter-widgets script').count() == 0      # no widget placeholder left empty
    finally:
        page.context.set_offline(False)


def test_voila_draws_the_live_view_and_plays_its_embedded_player(page, voila_server, notebook_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(VIEW_CELL),
                                         nbformat.v4.new_code_cell('view.embed()')])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}
    nbformat.write(nb, os.path.join(notebook_dir, 'voila_embed.ipynb'))
    page.goto(voila_server.url('/voila/render/voila_embed.ipynb'), timeout=120000)
    page.wait_for_selector('.convis-embed[data-player=ready]', timeout=120000)
    page.wait_for_function('() => { const c = document.querySelector(".convis-tensorview canvas.convis-tv-canvas");'
                           ' return c && c.width === 30; }', timeout=60000)
    assert page.locator('.convis-static').count() == 0                  # the widget, not its still
    player = page.locator('.convis-embed')
    start = int(player.get_attribute('data-frame'))
    player.locator('.convis-embed-play').click()
    page.wait_for_function('s => +document.querySelector(".convis-embed").getAttribute("data-frame") == '
                           '(s + 5) % 40', arg=start, timeout=10000)
    player.locator('.convis-embed-play').click()
    now = int(player.get_attribute('data-frame'))
    np.testing.assert_array_equal(canvas_levels(page, 0), colormap_lut('magma')[expected_view().frames()[now]])
    screenshot(page, 'export_voila', full_page=True)
    assert not page.console.errors('convis', 'tensorview'), page.console.errors('convis', 'tensorview')
