"""JupyterLab starts from this checkout's environment with our extension, and Chromium renders it."""
import os
import re
import subprocess

import pytest

from .labpage import BIN, NOTEBOOKS, open_lab, screenshot

pytestmark = pytest.mark.browser

EXTENSION = 'convis-widgets'


def test_our_extension_is_installed_and_enabled():
    out = subprocess.run([os.path.join(BIN, 'jupyter'), 'labextension', 'list'], capture_output=True, text=True,
                         timeout=60)
    text = re.sub(r'\x1b\[[0-9;]*m', '', out.stdout + out.stderr)
    lines = [line.split() for line in text.splitlines() if line.split()[:1] == [EXTENSION]]
    assert lines, 'jupyter labextension list does not show %s:\n%s' % (EXTENSION, text)
    assert 'enabled' in lines[0] and 'OK' in lines[0], lines[0]


def test_lab_opens_and_lists_the_notebooks(page, lab_server):
    open_lab(page, lab_server)
    expected = sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith('.ipynb'))
    page.wait_for_selector('.jp-DirListing-item[title*="%s"]' % expected[0], timeout=30000)
    names = page.eval_on_selector_all('.jp-DirListing-item .jp-DirListing-itemText',
                                      'els => els.map(e => e.textContent.trim())')
    assert set(expected) <= set(names)
    screenshot(page, 'lab_smoke')
    assert not page.console.errors(), page.console.errors()
