"""SweepView and the explorer's pin as A in JupyterLab: every panel drawn, one colour scale, titles with units.

Small notebooks are written next to the copied notebooks and run; screenshots are kept as
tests/browser/artifacts/sweepview.png and pin_a.png (and in /tmp/shots when it exists).
"""
import os
import shutil

import nbformat
import pytest

from .labpage import ConsoleLog, canvas_stats, open_notebook, run_all_cells, screenshot, widget_error_texts

pytestmark = pytest.mark.browser

SWEEP_CELLS = [
    'import convis, numpy as np\n'
    'from convis.scale import parameter_sets, run_one\n'
    'from convis.scale.store import Collector\n'
    'from convis_widgets import SweepView',
    # what convis.sweep returns, computed here set by set (no cluster needed for the page)
    'retina = convis.retina.Retina(seed=0)\n'
    'stim = convis.samples.moving_grating(80, 24, 24)\n'
    "dims, coords, sets = parameter_sets(retina, {'opl.sigma_surround': [0.15, 1.0], 'bipolar.lambda_amp': [0.0, 100.0]})\n"
    'c = Collector(dims, coords, len(sets))\n'
    'for index, values in sets:\n'
    "    c.add(index, run_one(retina, stim, values, dt=80, outputs=['ganglion_spikes_ON']))\n"
    'ds = c.dataset()\n'
    "rates = (ds.ganglion_spikes_ON.rolling(time=10, min_periods=1).mean() * 100).rename('ON rate').assign_attrs(units='Hz')",
    "frames = SweepView(rates, rows='opl.sigma_surround', cols='bipolar.lambda_amp', colormap='hot', zoom=4)\n"
    'frames.panels[0][0].frame = 60    # one time cursor: every panel shows frame 60\nframes',
    "curves = SweepView(rates.mean(('y', 'x')), rows='opl.sigma_surround', cols='bipolar.lambda_amp')\ncurves",
]

PIN_CELLS = [
    'import convis, convis_widgets',
    'explorer = convis_widgets.ModelExplorer(convis.retina.Retina(seed=0), shape=(80, 32, 32), impulse=False)\n'
    'explorer.pin()\n'
    "explorer.panel.set_value('bipolar.lambda_amp', 100.0)\n"
    'assert explorer.wait(60)\n'
    'explorer.input_view.frame = 60   # the comparison views follow the input\'s time cursor\n'
    'explorer',
]


def _run(browser_context, lab_server, notebook_dir, name, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}})
    nbformat.write(nb, os.path.join(notebook_dir, name))
    page = browser_context.new_page()
    page.set_viewport_size({'width': 1500, 'height': 1400})
    page.console = ConsoleLog(page)
    open_notebook(page, lab_server, name)
    run_all_cells(page, timeout=180)
    return page


def _loaded(page, views):
    for k in range(views.count()):
        page.wait_for_function('el => el.dataset.nFrames > 0 && el.dataset.framesLoaded === el.dataset.nFrames',
                               arg=views.nth(k).element_handle(), timeout=60000)


def _keep(path, name):
    if os.path.isdir('/tmp/shots'):
        shutil.copy(path, os.path.join('/tmp/shots', name))


def test_sweep_view_draws_every_panel_on_one_colour_scale(browser_context, lab_server, notebook_dir):
    page = _run(browser_context, lab_server, notebook_dir, 'sweep_view.ipynb', SWEEP_CELLS)
    try:
        grids = page.locator('.convis-sweep-view')
        page.wait_for_selector('.convis-sweep-view .bqplot .plotarea_events', timeout=60000)
        assert grids.count() == 2
        views = grids.nth(0).locator('.convis-tensorview')
        assert views.count() == 4
        _loaded(page, views)
        page.wait_for_timeout(1000)
        _keep(screenshot(page, 'sweepview', element=grids.nth(0)), 'sweepview.png')
        tops = {views.nth(k).locator('.convis-tv-vmax').inner_text().strip() for k in range(4)}
        assert len(tops) == 1 and tops.pop().endswith('Hz')
        assert all(canvas_stats(page, views.nth(k).locator('canvas.convis-tv-canvas'))['colours'] >= 2
                   for k in range(4))
        text = grids.nth(0).inner_text()
        assert 'opl.sigma_surround = 0.15 deg, bipolar.lambda_amp = 100 Hz' in text
        figures = grids.nth(1).locator('.bqplot')
        assert figures.count() == 4
        assert 'opl.sigma_surround = 1 deg, bipolar.lambda_amp = 0 Hz' in grids.nth(1).inner_text()
        _keep(screenshot(page, 'sweepview_curves', element=grids.nth(1)), 'sweepview_curves.png')
        assert not widget_error_texts(page)
        assert not page.console.errors('convis', 'bqplot'), page.console.errors('convis', 'bqplot')
    finally:
        page.close()


def test_pin_as_a_shows_a_current_and_the_difference(browser_context, lab_server, notebook_dir):
    page = _run(browser_context, lab_server, notebook_dir, 'pin_a.ipynb', PIN_CELLS)
    try:
        box = page.locator('.convis-pin').first
        page.wait_for_selector('.convis-pin .convis-tensorview canvas.convis-tv-canvas', timeout=60000)
        views = box.locator('.convis-tensorview')
        assert views.count() == 6            # A, current, current - A for ON and OFF
        _loaded(page, views)
        page.wait_for_timeout(1000)
        assert 'bipolar.lambda_amp' in box.locator('.convis-pin-table').inner_text()
        assert 'unpin A' in box.inner_text()
        _keep(screenshot(page, 'pin_a', element=page.locator('.convis-model-explorer').first), 'pin_a.png')
        diff = canvas_stats(page, views.nth(2).locator('canvas.convis-tv-canvas'))
        assert diff['colours'] >= 2, diff
        assert not widget_error_texts(page)
        assert not page.console.errors('convis'), page.console.errors('convis')
    finally:
        page.close()
