"""The default ModelExplorer (64x64x500 retina) in JupyterLab at 1440x900 with the file browser open.

Checks the layout for tuning (views and sliders visible together), the rate views, the raster and PSTH of a
clicked cell, inner stages, the playback speed label, and measures the latency from a slider key press to the
change of the frame shown at the time cursor (frame 400), reported as p50/p95 (not asserted).
Screenshots go to tests/browser/artifacts/explorer_*.png (and /tmp/shots when that folder exists).
"""
import os
import shutil

import nbformat
import pytest

from .labpage import (ConsoleLog, open_notebook, percentile, run_all_cells, screenshot, wait_kernel_idle,
                      widget_error_texts)

pytestmark = pytest.mark.browser

CURSOR = 400
MOVES = 12
SHOTS = '/tmp/shots'


def shot(page, name, **kw):
    path = screenshot(page, name, **kw)
    if os.path.isdir(SHOTS):
        shutil.copy(path, os.path.join(SHOTS, name + '.png'))
    return path


@pytest.fixture(scope='module')
def lab(browser_context, lab_server, notebook_dir):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('import convis\nfrom convis_widgets import ModelExplorer\n'
                                          'explorer = ModelExplorer(convis.retina.Retina(seed=1))\nexplorer')]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}
    nbformat.write(nb, os.path.join(notebook_dir, 'explorer_default.ipynb'))
    page = browser_context.new_page()
    page.set_viewport_size({'width': 1440, 'height': 900})
    page.console = ConsoleLog(page)
    open_notebook(page, lab_server, 'explorer_default.ipynb')
    if page.locator('.jp-Dialog').count():       # a notebook new to the server may ask for its kernel
        page.click('.jp-Dialog .jp-mod-accept')
        wait_kernel_idle(page)
    run_all_cells(page, timeout=150)
    page.wait_for_function('() => /run \\d+:/.test((document.querySelector(".convis-explorer-status") || '
                           '{}).textContent || "")', timeout=90000)
    yield page
    page.close()


def view(page, title):
    return page.locator('.convis-tensorview', has=page.locator('.convis-tv-title', has_text=title)).first


def scroll_explorer_to_top(page):
    page.locator('.convis-model-explorer').evaluate('el => el.scrollIntoView({block: "start"})')
    page.wait_for_timeout(300)


def test_views_and_sliders_are_visible_together(lab):
    page = lab
    assert page.locator('.jp-FileBrowser').first.is_visible()
    scroll_explorer_to_top(page)
    shot(page, 'explorer_layout')
    height = page.viewport_size['height']
    for title in ('input', 'ON rate', 'OFF rate'):
        box = view(page, title).locator('canvas.convis-tv-canvas').bounding_box()
        assert box is not None and 0 <= box['y'] and box['y'] + box['height'] <= height, (title, box)
    sliders = page.locator('.convis-model-explorer .convis-parameter .noUi-handle, '
                           '.convis-model-explorer .convis-parameter input')
    visible = [b for b in (sliders.nth(i).bounding_box() for i in range(min(sliders.count(), 40))) if b]
    assert sum(1 for b in visible if 0 <= b['y'] and b['y'] + b['height'] <= height) >= 5
    assert 'Hz' in view(page, 'ON rate').locator('.convis-tv-colorbar').inner_text()
    assert '1/4 real time' in view(page, 'input').locator('.convis-tv-speed').inner_text()
    # the stimulus parameters' names are whole (not cut to 'spatial freque...')
    labels = page.locator('.convis-model-explorer [class*="convis-stimulus-"] .widget-label')
    assert labels.count() >= 5
    cut = labels.evaluate_all('els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)')
    assert not cut, cut
    assert not widget_error_texts(page)


def test_latency_to_the_frame_shown_at_the_cursor(lab, measurements):
    page = lab
    scroll_explorer_to_top(page)
    out = view(page, 'ON rate')
    scrub = view(page, 'input').locator('.convis-tv-scrub')
    scrub.evaluate('(el, k) => { el.value = String(k); el.dispatchEvent(new Event("input", {bubbles: true})); }',
                   CURSOR)
    page.wait_for_function('([el, k]) => el.dataset.currentFrame === String(k)', arg=[out.element_handle(), CURSOR])
    page.wait_for_timeout(1500)
    page.evaluate('''el => {
        window.__shown = [];
        window.__keys = [];
        document.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
        new MutationObserver(() => window.__shown.push([performance.now(), el.dataset.frameChecksum]))
            .observe(el, {attributes: true, attributeFilter: ['data-frame-checksum']});
    }''', out.element_handle())
    row = page.locator('.convis-parameter.convis-p-opl-sigma_center').first
    handle = row.locator('.noUi-handle').first
    handle.focus()
    latencies = []
    for i in range(MOVES):
        before = out.get_attribute('data-frame-checksum')
        n = page.evaluate('window.__shown.length')
        page.keyboard.press('End' if i % 2 == 0 else 'Home')
        page.wait_for_function('([n, c]) => window.__shown.slice(n).some(s => s[1] !== c)', arg=[n, before],
                               timeout=30000)
        t_key = page.evaluate('window.__keys[window.__keys.length - 1]')
        t_shown = page.evaluate('([n, c]) => window.__shown.slice(n).find(s => s[1] !== c)[0]', [n, before])
        latencies.append(t_shown - t_key)
        page.wait_for_function('() => !/\\*/.test(document.title)', timeout=30000)
        page.wait_for_timeout(1200)     # the preview, its impulse response and the sending end
        assert out.get_attribute('data-current-frame') == str(CURSOR)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    measurements['explorer 64x64x500: key -> frame shown at frame %d, p50 (ms)' % CURSOR] = round(p50)
    measurements['explorer 64x64x500: key -> frame shown at frame %d, p95 (ms)' % CURSOR] = round(p95)
    print('key -> displayed frame %d: p50 %.0f ms, p95 %.0f ms (%s)' % (CURSOR, p50, p95,
                                                                      [round(v) for v in latencies]))
    assert all(v > 0 for v in latencies)


def test_clicked_cell_shows_raster_psth_and_trace_with_axes(lab):
    page = lab
    scroll_explorer_to_top(page)
    canvas = view(page, 'ON rate').locator('canvas.convis-tv-canvas')
    box = canvas.bounding_box()
    canvas.click(position={'x': box['width'] / 2, 'y': box['height'] / 2})
    page.wait_for_selector('.convis-cell-panel .bqplot', timeout=20000)
    page.wait_for_timeout(1000)
    assert 'click a pixel' not in view(page, 'ON rate').locator('.convis-tv-trace-label').inner_text()
    assert view(page, 'ON rate').locator('canvas.convis-tv-trace').is_visible()
    texts = page.locator('.convis-cell-panel').inner_text()
    assert 'time (s)' in texts and 'rate (Hz)' in texts, texts
    page.locator('.convis-cell-panel').scroll_into_view_if_needed()
    shot(page, 'explorer_cell', element=page.locator('.convis-model-explorer'))


def test_inner_stages_become_views(lab):
    page = lab
    scroll_explorer_to_top(page)
    page.locator('.convis-view-toggle', has_text='OPL').first.click()
    page.wait_for_selector('.convis-tensorview .convis-tv-title:text-is("opl")', timeout=30000)
    page.wait_for_function('() => { const v = [...document.querySelectorAll(".convis-tensorview")].find('
                           'e => e.querySelector(".convis-tv-title").textContent === "opl");'
                           ' return v && parseInt(v.dataset.framesLoaded) > 0; }', timeout=60000)
    page.locator('.convis-section-header', has_text='impulse').first.click()
    page.wait_for_timeout(3000)
    scroll_explorer_to_top(page)
    shot(page, 'explorer_stages')
    assert not page.console.errors('negative'), page.console.errors('negative')
    assert not widget_error_texts(page)
    assert not page.console.errors('convis', 'tensorview'), page.console.errors('convis', 'tensorview')
