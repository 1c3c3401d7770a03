"""The tour notebook in JupyterLab: every widget renders, the canvas player plays, sliders re-run the model.

The notebook runs once (a module fixture); the tests then work on the live page.  Latencies and the
bytes received over the kernel's websocket are measured and reported (not asserted: the machine decides).
"""
import re

import pytest

from .labpage import (ConsoleLog, WebsocketMeter, canvas_stats, open_notebook, percentile, run_all_cells,
                      screenshot, widget_error_texts)

pytestmark = pytest.mark.browser

MOVES = 20
OUR_WORDS = ('convis', 'tensorview', 'TensorView')


class Tour:
    def __init__(self, page, meter, seconds):
        self.page, self.meter, self.seconds = page, meter, seconds

    def view(self, title):
        """The TensorView element with this title."""
        return self.page.locator('.convis-tensorview', has=self.page.locator('.convis-tv-title', has_text=title)).first

    def runs(self):
        """The number of completed explorer runs, from its status line."""
        m = re.search(r'run (\d+):', self.page.inner_text('.convis-explorer-status'))
        return int(m.group(1)) if m else 0

    def wait_runs(self, n, timeout=60):
        self.page.wait_for_function(
            'n => { const m = /run (\\d+):/.exec(document.querySelector(".convis-explorer-status").textContent);'
            ' return m && parseInt(m[1]) >= n; }', arg=n, timeout=timeout * 1000)


def show_frame(view, k):
    """Moves a view's time scrubber to frame ``k``, as a user dragging it would."""
    view.locator('.convis-tv-scrub').evaluate(
        '(el, k) => { el.value = String(k); el.dispatchEvent(new Event("input", {bubbles: true})); }', k)


@pytest.fixture(scope='module')
def tour(browser_context, lab_server, measurements):
    page = browser_context.new_page()
    page.set_viewport_size({'width': 1800, 'height': 1800})
    page.console = ConsoleLog(page)
    meter = WebsocketMeter(page)
    open_notebook(page, lab_server, '00_tour.ipynb')
    seconds = run_all_cells(page, timeout=150)
    measurements['tour: run all cells in JupyterLab (s)'] = round(seconds, 1)
    t = Tour(page, meter, seconds)
    page.wait_for_selector('.convis-model-explorer .convis-tensorview', timeout=60000)
    t.wait_runs(1)
    yield t
    page.close()


def test_every_widget_renders_without_errors(tour):
    page = tour.page
    explorer = page.locator('.convis-model-explorer')
    explorer.scroll_into_view_if_needed()
    screenshot(page, 'tour_explorer', element=explorer)
    assert not widget_error_texts(page)
    titles = page.eval_on_selector_all('.convis-model-explorer .convis-tv-title', 'els => els.map(e => e.textContent)')
    assert titles[:1] == ['input'] and any('ON' in t for t in titles) and any('OFF' in t for t in titles), titles
    assert page.locator('.convis-model-explorer .convis-parameter').count() > 10
    assert not page.console.errors(*OUR_WORDS), page.console.errors(*OUR_WORDS)


def test_canvas_shows_the_input_and_advances_while_playing(tour, measurements):
    page = tour.page
    view = tour.view('input')
    view.scroll_into_view_if_needed()
    stats = canvas_stats(page, view.locator('canvas.convis-tv-canvas'))
    assert stats['colours'] >= 4 and stats['max'] - stats['min'] > 100, stats
    start = int(view.get_attribute('data-current-frame'))
    idle = tour.meter.mark()
    page.wait_for_timeout(1500)
    measurements['websocket while idle (bytes/s)'] = round(tour.meter.since(idle)[2])
    mark = tour.meter.mark()
    view.locator('.convis-tv-play').click()
    seen_frames, seen_sums = set(), set()
    for _ in range(15):
        page.wait_for_timeout(100)
        seen_frames.add(view.get_attribute('data-current-frame'))
        seen_sums.add(view.get_attribute('data-frame-checksum'))
    assert view.get_attribute('data-playing') == 'true'
    screenshot(page, 'tour_input_playing', element=view)
    view.locator('.convis-tv-play').click()
    nbytes, seconds, rate = tour.meter.since(mark)
    measurements['websocket while playing (bytes/s)'] = round(rate)
    measurements['websocket while playing, by message type (bytes)'] = tour.meter.by_type(mark)
    assert len(seen_frames - {str(start)}) >= 5, seen_frames
    assert len(seen_sums) >= 5, seen_sums
    assert stats['width'] > 0


def test_slider_keyboard_moves_rerun_the_model(tour, measurements):
    page = tour.page
    out = tour.view('ON')
    section = page.locator('.convis-model-explorer .convis-section-header', has_text='opl').first
    if 'mod-active' not in (section.get_attribute('class') or ''):   # sections open independently
        section.click()
    row = page.locator('.convis-parameter.convis-p-opl-sigma_center').first
    handle = row.locator('.noUi-handle').first
    handle.scroll_into_view_if_needed()
    page.evaluate('''el => {
        window.__convisTimes = {keys: [], frames: []};
        document.addEventListener('keydown', () => window.__convisTimes.keys.push(performance.now()), true);
        new MutationObserver(() => window.__convisTimes.frames.push([performance.now(), el.dataset.frameVersion,
                                                                     el.dataset.frameChecksum]))
            .observe(el, {attributes: true, attributeFilter: ['data-frame-version']});
    }''', out.element_handle())
    show_frame(tour.view('input'), 30)     # the views are linked: all show frame 30, in the onset burst
    page.wait_for_function('el => el.dataset.currentFrame === "30"', arg=out.element_handle())
    screenshot(page, 'tour_explorer_opl_open', element=page.locator('.convis-model-explorer'))
    handle.focus()

    def move(key):
        """Presses ``key`` on the slider; waits for new frames and the end of the run; returns the latency."""
        runs = tour.runs()
        n = page.evaluate('window.__convisTimes.frames.length')
        page.keyboard.press(key)
        page.wait_for_function('n => window.__convisTimes.frames.length > n', arg=n, timeout=30000)
        tour.wait_runs(runs + 1, timeout=30)
        page.wait_for_timeout(50)
        key_t = page.evaluate('window.__convisTimes.keys[window.__convisTimes.keys.length - 1]')
        return page.evaluate('n => window.__convisTimes.frames[n][0]', n) - key_t

    checksums = {out.get_attribute('data-frame-checksum')}
    mark = tour.meter.mark()
    latencies = [move('ArrowRight' if i % 2 == 0 else 'ArrowLeft') for i in range(MOVES)]
    nbytes, seconds, rate = tour.meter.since(mark)
    # one step is a thousandth of the range; a move to the end of the slider changes the spikes for sure
    for key in ('End', 'Home'):
        move(key)
        checksums.add(out.get_attribute('data-frame-checksum'))
    screenshot(page, 'tour_after_slider_moves', element=page.locator('.convis-model-explorer'))
    measurements['slider -> first new frame, p50 (ms)'] = round(percentile(latencies, 50))
    measurements['slider -> first new frame, p95 (ms)'] = round(percentile(latencies, 95))
    measurements['websocket during %d slider moves (bytes/s)' % MOVES] = round(rate)
    assert len(latencies) == MOVES and all(v > 0 for v in latencies)
    assert len(checksums) > 1
    assert not widget_error_texts(page)
    assert not page.console.errors(*OUR_WORDS), page.console.errors(*OUR_WORDS)
