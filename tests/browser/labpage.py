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
    open_lab(page, server, '/lab/tree/%s' % name)
    page.wait_for_selector('.jp-NotebookPanel .jp-Cell', timeout=60000)
    wait_kernel_idle(page)


def wait_kernel_idle(page, timeout=60):
    """Waits until the active notebook's kernel reports idle."""
    page.wait_for_selector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=timeout * 1000)


def code_cell_prompts(page):
    """The input prompts ("[3]:", "[*]:", "[ ]:") of the code cells of the visible notebook, in order."""
    return page.eval_on_selector_all(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt',
        'els => els.map(e => e.textContent.trim())')


def run_all_cells(page, timeout=120):
    """Runs every cell of the visible notebook (Run > Run All Cells) and waits until all have executed.

    Returns the seconds it took.  Raises ``AssertionError`` with the first error output if a cell failed.
    """
    t0 = time.time()
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
    deadline = t0 + timeout
    numbered = re.compile(r'^\[\d+\]:$')
    while time.time() < deadline:
        prompts = code_cell_prompts(page)
        if prompts and all(numbered.match(p) for p in prompts):
            break
        if cell_errors(page):
            break
        time.sleep(0.25)
    else:
        raise AssertionError('cells did not finish within %d s: prompts %s' % (timeout, code_cell_prompts(page)))
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
