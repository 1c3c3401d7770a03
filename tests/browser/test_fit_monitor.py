"""The FitMonitor in JupyterLab: the loss curve and parameter plots are drawn, the buttons are there, no widget
errors; a screenshot is kept as tests/browser/artifacts/fit_monitor.png (and in /tmp/shots when it exists)."""
import os
import shutil

import nbformat
import pytest

from .labpage import ConsoleLog, open_notebook, run_all_cells, screenshot, widget_error_texts

pytestmark = pytest.mark.browser

CELLS = ['import numpy as np, torch, convis, convis.losses as losses\nfrom convis_widgets import FitMonitor\n'
         'torch.set_num_threads(1)',
         'g = convis.retina.Retina(spikes=False).double().gang_0_input\n'
         'x = np.random.RandomState(0).randn(60, 8, 8)\n'
         'with torch.no_grad():\n    y = g.run(x)[0]\n'
         'g.lambda_G.set(float(g.lambda_G) * 1.3); g.transient_tau_center.set(float(g.transient_tau_center) * 0.7)\n'
         'monitor = FitMonitor(g, x[:40], y[:, :, :40], losses.mse(), parameters=["lambda_G", "transient_tau_center"], max_iter=3, '
         'held_out=(x[40:], y[:, :, 40:]), epochs=4, interval=0.2)\nmonitor',
         'monitor.wait(120)']


def test_the_fit_monitor_draws_its_curves(browser_context, lab_server, notebook_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS], metadata={
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}})
    nbformat.write(nb, os.path.join(notebook_dir, 'fit_monitor.ipynb'))
    page = browser_context.new_page()
    try:
        page.set_viewport_size({'width': 1400, 'height': 1100})
        page.console = ConsoleLog(page)
        open_notebook(page, lab_server, 'fit_monitor.ipynb')
        run_all_cells(page, timeout=180)
        monitor = page.locator('.convis-fit-monitor').first
        page.wait_for_selector('.convis-fit-monitor svg .plotarea_events', timeout=60000)
        page.wait_for_function("() => document.querySelector('.convis-fit-status') && "
                               "document.querySelector('.convis-fit-status').innerText.startsWith('done')",
                               timeout=120000)
        page.wait_for_timeout(1500)   # transitions of the plots end
        figures = monitor.locator('.bqplot')
        assert figures.count() == 6   # loss, trace, two maps, two parameters
        lengths = figures.nth(0).locator('path.line').evaluate_all('ps => ps.map(p => p.getTotalLength())')
        assert sum(1 for n in lengths if n > 20) >= 2, lengths   # training and held-out curves drawn
        for name in ('Stop', 'Resume', 'Apply best parameters'):
            assert monitor.get_by_role('button', name=name).count() == 1
        path = screenshot(page, 'fit_monitor', element=monitor)
        if os.path.isdir('/tmp/shots'):
            shutil.copy(path, '/tmp/shots/fit_monitor.png')
        assert not widget_error_texts(page)
        assert not page.console.errors('convis', 'bqplot'), page.console.errors('convis', 'bqplot')
    finally:
        page.close()
