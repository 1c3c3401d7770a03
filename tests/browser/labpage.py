"""Page helpers for the browser tests: open and run notebooks in JupyterLab, read the console, take screenshots."""
import os
import re
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NOTEBOOKS = os.path.join(ROOT, 'notebooks')
BIN = os.path.dirname(sys.executable)
ARTIFACTS = os.path.join(os.path.dirname(__file__), 'artifacts')
WIDGET_ERROR = 'Error displaying widget'
_MSG_TYPE = re.compile(rb'"msg_type"\s*:\s*"([a-z_]+)"')


class ConsoleLog:
    """Console messages and uncaught page errors of one page, in order."""

    def __init__(self, page):
        self.messages = []
        page.on('console', lambda m: self.messages.append((m.type, m.text)))
        page.on('pageerror', lambda e: self.messages.append(('pageerror', str(e))))

    def errors(self, *words):
        """Error messages (console errors, uncaught exceptions) that mention any of ``words`` (all if none)."""
        errs = [text for kind, text in self.messages if kind in ('error', 'pageerror')]
        if words:
            errs = [t for t in errs if any(w.lower() in t.lower() for w in words)]
        return errs


def screenshot(page, name, element=None, **kw):
    """Saves a PNG of ``page`` (or of ``element``) as tests/browser/artifacts/<name>.png and returns its path."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name + '.png')
    (element or page).screenshot(path=path, **kw)
    return path


def open_lab(page, server, path='/lab'):
    """Opens JupyterLab at ``path`` and waits until its shell and file browser are there."""
    page.goto(server.url(path))
    page.wait_for_selector('#jp-main-dock-panel', timeout=60000)
    page.wait_for_selector('.jp-DirListing-content', timeout=60000)


def open_notebook(page, server, name):
    """Opens notebook ``name`` in JupyterLab and waits until its kernel is idle."""
    open_lab(page, server, '/lab/tree/%s?reset' % name)
    page.wait_for_selector('.jp-NotebookPanel .jp-Cell', timeout=60000)
    wait_kernel_idle(page)


def wait_kernel_idle(page, timeout=60):
    """Waits until the active notebook's kernel reports idle."""
    page.wait_for_selector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=timeout * 1000)


_PROMPTS = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'


def fail_on_dialog(page):
    """Raises with the dialog's text (and saves a screenshot) when JupyterLab shows a modal dialog."""
    dialog = page.locator('.jp-Dialog')
    if dialog.count():
        screenshot(page, 'unexpected_dialog')
        raise AssertionError('JupyterLab shows a dialog: %s' % dialog.first.inner_text())


def code_cell_prompts(page):
    """The input prompts ("[3]:", "[*]:", "[ ]:") of the code cells of the visible notebook, in order."""
    return page.eval_on_selector_all(_PROMPTS, 'els => els.map(e => e.textContent.trim())')


def run_all_cells(page, timeout=120):
    """Runs every cell of the visible notebook (Run > Run All Cells) on its fresh kernel and waits for the end.

    Done when no cell is running and the prompts count up without gaps ([1], [2], ... [n] after a
    fresh start).  When the run stalls with cells left unrun, Run All is asked for again (at most
    twice).  Returns the seconds it took.  Raises ``AssertionError`` with the first error output if a
    cell failed.
    """
    t0 = time.time()
    deadline = t0 + timeout
    attempts, idle_since = 0, None
    while time.time() < deadline:
        if attempts == 0 or (idle_since is not None and time.time() - idle_since > 10 and attempts < 3):
            fail_on_dialog(page)
            page.click('.lm-MenuBar-itemLabel:text-is("Run")')
            page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            attempts += 1
            idle_since = None
            time.sleep(0.5)
        prompts = code_cell_prompts(page)
        if cell_errors(page):
            break
        if any('*' in p for p in prompts):
            idle_since = None
        else:
            nums = [int(m.group(1)) for m in (re.match(r'^\[(\d+)\]:$', p) for p in prompts) if m]
            if len(nums) == len(prompts) and nums == list(range(nums[0], nums[0] + len(nums))):
                break
            idle_since = idle_since or time.time()
        time.sleep(0.25)
    else:
        screenshot(page, 'run_all_timeout')
        fail_on_dialog(page)
        raise AssertionError('cells did not finish within %d s: prompts %s, kernel %s' % (
            timeout, code_cell_prompts(page), page.get_attribute('.jp-NotebookPanel:not(.lm-mod-hidden) '
                                                                  '.jp-Notebook-ExecutionIndicator', 'data-status')))
    errors = cell_errors(page)
    assert not errors, 'a cell raised:\n%s' % errors[0]
    return time.time() - t0


def cell_errors(page):
    """Texts of the error outputs (tracebacks) in the visible notebook."""
    return page.eval_on_selector_all(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]',
        'els => els.map(e => e.textContent)')


def widget_error_texts(page):
    """Texts of every "Error displaying widget" placeholder on the page."""
    return page.eval_on_selector_all(
        '*', 'els => els.filter(e => e.children.length === 0 && e.textContent.includes(%r))'
             '.map(e => e.textContent.trim())' % WIDGET_ERROR)


class WebsocketMeter:
    """Counts the bytes the page receives over its websockets (attach before the page opens them)."""

    def __init__(self, page):
        self.frames = []
        page.on('websocket', self._opened)

    def _opened(self, ws):
        ws.on('framereceived', self._received)

    def _received(self, payload):
        data = payload if isinstance(payload, (bytes, bytearray)) else payload.encode()
        m = _MSG_TYPE.search(data[:2000])
        self.frames.append((time.perf_counter(), len(data), m.group(1).decode() if m else '?'))

    def mark(self):
        """A position in the stream of received frames (see :meth:`since`)."""
        return len(self.frames), time.perf_counter()

    def by_type(self, mark):
        """Bytes received since ``mark`` per Jupyter message type, largest first."""
        totals = {}
        for _, nbytes, kind in self.frames[mark[0]:]:
            totals[kind] = totals.get(kind, 0) + nbytes
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def since(self, mark):
        """(bytes, seconds, bytes per second) received since ``mark``."""
        n0, t0 = mark
        nbytes = sum(f[1] for f in self.frames[n0:])
        seconds = time.perf_counter() - t0
        return nbytes, seconds, nbytes / seconds if seconds > 0 else 0.0


def canvas_stats(page, canvas):
    """Statistics of the pixels on a canvas element: number of distinct RGB colours, min and max grey."""
    return canvas.evaluate('''c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4) {
            colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
            const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
            lo = Math.min(lo, g); hi = Math.max(hi, g);
        }
        return {width: c.width, height: c.height, colours: colours.size, min: lo, max: hi};
    }''')


def percentile(values, q):
    """The ``q``-th percentile (0..100) of ``values``, by linear interpolation."""
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    i = int(k)
    return v[i] if i + 1 >= len(v) else v[i] + (v[i + 1] - v[i]) * (k - i)
