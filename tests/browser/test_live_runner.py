"""Notebook 04 in JupyterLab: a Runner in a background thread fills a TensorView that the browser plays."""
import pytest

from .labpage import ConsoleLog, WebsocketMeter, open_notebook, run_all_cells, screenshot, widget_error_texts

pytestmark = pytest.mark.browser


def test_a_background_runner_fills_a_live_view(browser_context, lab_server, measurements):
    page = browser_context.new_page()
    try:
        page.set_viewport_size({'width': 1400, 'height': 1800})
        page.console = ConsoleLog(page)
        meter = WebsocketMeter(page)
        open_notebook(page, lab_server, '04_streams_and_runner.ipynb')
        mark = meter.mark()
        seconds = run_all_cells(page, timeout=150)
        nbytes, _, _ = meter.since(mark)
        measurements['notebook 04: run all cells in JupyterLab (s)'] = round(seconds, 1)
        measurements['notebook 04: bytes received while it ran'] = nbytes
        view = page.locator('.convis-tensorview', has=page.locator('.convis-tv-title', has_text='live')).first
        view.scroll_into_view_if_needed()
        # the runner ran far more than 300 frames; the view keeps the newest 300, all in the browser
        page.wait_for_function('el => el.dataset.framesLoaded === "300"', arg=view.element_handle(), timeout=20000)
        assert view.get_attribute('data-n-frames') == '300'
        view.locator('.convis-tv-play').click()
        frames = set()
        for _ in range(10):
            page.wait_for_timeout(100)
            frames.add(view.get_attribute('data-current-frame'))
        view.locator('.convis-tv-play').click()
        screenshot(page, 'live_runner_view', element=view)
        assert len(frames) >= 4, frames
        assert not widget_error_texts(page)
        assert not page.console.errors('convis', 'tensorview'), page.console.errors('convis', 'tensorview')
    finally:
        page.close()
