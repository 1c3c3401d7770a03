"""JupyterLab starts from this checkout's environment with our extension, and Chromium renders it."""
import os

import pytest

from labpage import NOTEBOOKS, open_lab, screenshot

pytestmark = pytest.mark.browser


def test_lab_opens_and_lists_the_notebooks(page, lab_server):
    open_lab(page, lab_server)
    expected = sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith('.ipynb'))
    page.wait_for_selector('.jp-DirListing-item[title*="%s"]' % expected[0], timeout=30000)
    names = page.eval_on_selector_all('.jp-DirListing-item .jp-DirListing-itemText',
                                      'els => els.map(e => e.textContent.trim())')
    assert set(expected) <= set(names)
    screenshot(page, 'lab_smoke')
    assert not page.console.errors(), page.console.errors()
