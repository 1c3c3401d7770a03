"""Browser tests of the notebooks and widgets (JupyterLab, Voila, headless Chromium)."""
