"""Fixtures for the browser tests: JupyterLab and Voila on a copy of the notebooks, driven by headless Chromium.

The servers run from this checkout's virtual environment on a random free port with a random token, on a
temporary copy of ``notebooks/`` (so nothing the notebooks write lands in the repository), with fresh user
settings and workspaces.  Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright with a fresh profile.
Page helpers (running notebooks, screenshots) are in ``labpage.py``.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import psutil
import pytest

from .labpage import ARTIFACTS, BIN, NOTEBOOKS, ROOT, ConsoleLog

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
VIEWPORT = {'width': 1400, 'height': 1000}

# JupyterLab user settings for a quiet, deterministic page: every cell stays in the DOM (no windowing),
# no news or update notifications.
LAB_SETTINGS = {
    '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
    '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false',
                                                                          'checkForUpdates': False},
}


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter-type server started in its own session; ``stop`` ends it and every process it started."""

    def __init__(self, name, argv, port, token, root, log_path, env, ready_path):
        self.name, self.port, self.token, self.root, self.log_path = name, port, token, root, log_path
        self.base = 'http://127.0.0.1:%d' % port
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(argv, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready(ready_path)

    def url(self, path):
        """Absolute URL of ``path`` with the token as query argument."""
        sep = '&' if '?' in path else '?'
        return '%s%s%stoken=%s' % (self.base, path, sep, self.token)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def _wait_ready(self, path, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with %s:\n%s' % (self.name, self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen(self.url(path), timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError('%s did not answer within %d s:\n%s' % (self.name, timeout, self.log()))

    def stop(self):
        """Terminates the server, then anything it started (kernels) that is still alive."""
        if self.proc.poll() is None:
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            _, alive = psutil.wait_procs(children, timeout=10)
            for p in alive:
                p.kill()
            psutil.wait_procs(alive, timeout=5)
        self._log.close()


def _server_env(tmp):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['JUPYTER_RUNTIME_DIR'] = os.path.join(tmp, 'runtime')
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env.pop('MPLBACKEND', None)
    return env


@pytest.fixture(scope='package')
def notebook_dir(tmp_path_factory):
    """A temporary copy of ``notebooks/`` that the servers work on."""
    d = tmp_path_factory.mktemp('notebooks')
    for name in sorted(os.listdir(NOTEBOOKS)):
        if name.endswith('.ipynb'):
            shutil.copy(os.path.join(NOTEBOOKS, name), d / name)
    return str(d)


@pytest.fixture(scope='package')
def lab_server(tmp_path_factory, notebook_dir):
    """JupyterLab from this checkout's environment on a random port and token; stopped after the session."""
    tmp = str(tmp_path_factory.mktemp('lab'))
    settings = os.path.join(tmp, 'settings')
    for name, value in LAB_SETTINGS.items():
        path = os.path.join(settings, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(value, f)
    port, token = free_port(), secrets.token_hex(16)
    argv = [os.path.join(BIN, 'jupyter'), 'lab', '--allow-root', '--ip=127.0.0.1', '--port=%d' % port,
            '--no-browser', '--ServerApp.token=%s' % token, '--notebook-dir=%s' % notebook_dir,
            '--ServerApp.port_retries=0', '--LabApp.user_settings_dir=%s' % settings,
            '--LabApp.workspaces_dir=%s' % os.path.join(tmp, 'workspaces'),
            '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    server = Server('JupyterLab', argv, port, token, notebook_dir, os.path.join(tmp, 'lab.log'),
                    _server_env(tmp), '/api/status')
    yield server
    server.stop()


@pytest.fixture(scope='package')
def voila_server(tmp_path_factory, notebook_dir):
    """Voila serving the notebooks folder on a random port and token; stopped after the session."""
    tmp = str(tmp_path_factory.mktemp('voila'))
    port, token = free_port(), secrets.token_hex(16)
    argv = [os.path.join(BIN, 'voila'), '--port=%d' % port, '--no-browser', '--Voila.ip=127.0.0.1',
            '--Voila.port_retries=0', '--token=%s' % token, '--show_tracebacks=True', notebook_dir]
    server = Server('Voila', argv, port, token, notebook_dir, os.path.join(tmp, 'voila.log'),
                    _server_env(tmp), '/')
    yield server
    server.stop()


@pytest.fixture(scope='package')
def browser_context(tmp_path_factory):
    """A Chromium context with a fresh profile, shared by the tests of a session."""
    from playwright.sync_api import sync_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    profile = str(tmp_path_factory.mktemp('chromium-profile'))
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                   headless=True, viewport=VIEWPORT)
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser_context):
    """A fresh tab with its console log as ``page.console``; closed after the test."""
    pg = browser_context.new_page()
    pg.console = ConsoleLog(pg)
    yield pg
    pg.close()


MEASUREMENTS = {}
"""Numbers measured in the browser (latencies, bytes per second), shown at the end of the run."""


@pytest.fixture(scope='package')
def measurements():
    """A dict to record measured numbers in; they are printed in the terminal summary and saved as JSON."""
    return MEASUREMENTS


def pytest_terminal_summary(terminalreporter):
    if not MEASUREMENTS:
        return
    terminalreporter.section('measured in the browser')
    for name, value in MEASUREMENTS.items():
        terminalreporter.write_line('%-45s %s' % (name, value))
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, 'measurements.json'), 'w') as f:
        json.dump(MEASUREMENTS, f, indent=1)
