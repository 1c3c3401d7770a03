"""The impulse-response panel of the default retina in JupyterLab: readable plots, legends beside them, live maps.

A small notebook that shows ``ImpulseResponsePanel(convis.retina.Retina())`` is written next to the copied
notebooks and run; the page is then measured (where the legends and plot areas are, what the maps show)
and a screenshot is kept as tests/browser/artifacts/impulse_panel.png (and in /tmp/shots when it exists).
"""
import os
import shutil

import nbformat
import pytest

from .labpage import ConsoleLog, canvas_stats, open_notebook, run_all_cells, screenshot, widget_error_texts

pytestmark = pytest.mark.browser

CELLS = ['import convis\nfrom convis_widgets import ImpulseResponsePanel',
         'retina = convis.retina.Retina(seed=1)\n'
         'panel = ImpulseResponsePanel(retina, shape=(60, 21, 21), auto=False)\npanel']


def _overlaps(a, b):
    return not (a['x'] + a['width'] <= b['x'] or b['x'] + b['width'] <= a['x']
                or a['y'] + a['height'] <= b['y'] or b['y'] + b['height'] <= a['y'])


def test_the_retina_impulse_panel_reads_well(browser_context, lab_server, notebook_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS], metadata={
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}})
    nbformat.write(nb, os.path.join(notebook_dir, 'impulse_panel.ipynb'))
    page = browser_context.new_page()
    try:
        page.set_viewport_size({'width': 1500, 'height': 1300})
        page.console = ConsoleLog(page)
        open_notebook(page, lab_server, 'impulse_panel.ipynb')
        run_all_cells(page, timeout=120)
        panel = page.locator('.convis-impulse-panel').first
        page.wait_for_selector('.convis-impulse-panel .convis-tensorview canvas.convis-tv-canvas', timeout=60000)
        page.wait_for_selector('.convis-impulse-panel svg .plotarea_events', timeout=60000)
        page.wait_for_timeout(1500)  # the frames arrive and the plots finish their transitions
        figures = panel.locator('.bqplot')
        legends = panel.locator('.convis-impulse-legend')
        assert figures.count() == 3 and legends.count() == 3
        for i in range(3):
            plot_area = figures.nth(i).locator('.plotarea_events').first.bounding_box()
            legend = legends.nth(i).bounding_box()
            assert plot_area and legend and plot_area['width'] > 200
            assert not _overlaps(plot_area, legend), (plot_area, legend)
            assert legends.nth(i).inner_text().strip()
        assert 'firing rate OFF' in legends.nth(2).inner_text()
        # two visible rate traces (ON solid, OFF dashed) in the rate plot
        paths = figures.nth(2).locator('path.line')
        styles = [paths.nth(k).evaluate('p => [getComputedStyle(p).stroke, getComputedStyle(p).strokeDasharray,'
                                        ' p.getTotalLength()]') for k in range(paths.count())]
        drawn = [s for s in styles if s[2] > 50]
        assert len(drawn) >= 2 and len({s[0] for s in drawn}) >= 2, styles
        views = panel.locator('.convis-tensorview')
        assert views.count() == 4
        for k in range(4):
            view = views.nth(k)
            page.wait_for_function('el => el.dataset.framesLoaded === el.dataset.nFrames',
                                   arg=view.element_handle(), timeout=30000)
            stats = canvas_stats(page, view.locator('canvas.convis-tv-canvas'))
            assert stats['colours'] >= 2, stats  # not a blank map: the peak frame is shown
            assert view.locator('.convis-tv-vmax').inner_text().strip().endswith(('a.u.', 'Hz'))
        path = screenshot(page, 'impulse_panel', element=panel)
        if os.path.isdir('/tmp/shots'):
            shutil.copy(path, '/tmp/shots/impulse_panel.png')
        assert not widget_error_texts(page)
        assert not page.console.errors('convis', 'bqplot'), page.console.errors('convis', 'bqplot')
    finally:
        page.close()
