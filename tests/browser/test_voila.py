"""The tour's ModelExplorer renders in Voila too (the extension's views outside JupyterLab)."""
import time

import pytest

from .labpage import canvas_stats, screenshot, widget_error_texts

pytestmark = pytest.mark.browser


def test_the_explorer_renders_in_voila(page, voila_server, measurements):
    page.set_viewport_size({'width': 1400, 'height': 1800})
    t0 = time.time()
    page.goto(voila_server.url('/voila/render/00_tour.ipynb'), timeout=120000)
    page.wait_for_selector('.convis-model-explorer .convis-tensorview', timeout=150000)
    page.wait_for_function('() => /run \\d+:/.test(document.querySelector(".convis-explorer-status").textContent)',
                           timeout=60000)
    measurements['tour rendered by Voila (s)'] = round(time.time() - t0, 1)
    explorer = page.locator('.convis-model-explorer')
    explorer.scroll_into_view_if_needed()
    screenshot(page, 'voila_explorer', element=explorer)
    assert not widget_error_texts(page)
    titles = page.eval_on_selector_all('.convis-tv-title', 'els => els.map(e => e.textContent)')
    assert 'input' in titles and any('ON' in t for t in titles), titles
    view = page.locator('.convis-tensorview', has=page.locator('.convis-tv-title', has_text='input')).first
    stats = canvas_stats(page, view.locator('canvas.convis-tv-canvas'))
    assert stats['colours'] >= 4 and stats['max'] - stats['min'] > 100, stats
    assert page.locator('.convis-parameter').count() > 10
    assert not page.console.errors('convis', 'tensorview'), page.console.errors('convis', 'tensorview')
