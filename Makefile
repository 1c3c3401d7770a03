# The two commands: `make lab` (install everything, open JupyterLab on the tour) and
# `make test` (install everything, run the whole test suite).  Both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.convis-installed
LAB_PORT ?= 8888

.PHONY: lab demo test install chromium compiler bench clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch goes first as the local CPU build (a CUDA build of torch that is already installed is kept).
# The install builds labextension/ (npm) into convis_widgets/labextension and copies it to share/jupyter, where
# JupyterLab, Notebook 7 and Voila find it; a development link left there before is removed first (Voila does not
# serve files through it), and `jupyter labextension develop` links it only where an installer did not copy it.
$(STAMP): $(PY) pyproject.toml $(wildcard package.json package-lock.json labextension/package.json labextension/package-lock.json labextension/src/* labextension/style/*)
	$(PIP) install --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	@test ! -L $(VENV)/share/jupyter/labextensions/convis-widgets || rm $(VENV)/share/jupyter/labextensions/convis-widgets
	$(PIP) install -e ".[dev]"
	$(VENV)/bin/jupyter labextension list 2>&1 | grep -q "convis-widgets.*enabled" || \
		PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite .
	$(VENV)/bin/jupyter labextension list 2>&1 | grep -q "convis-widgets.*enabled"
	touch $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# convis compiles its time loops with the system C compiler on first use (without one it runs slower torch loops;
# the tests check both, so they need it)
compiler:
	@command -v $${CC:-cc} >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; }

test: install chromium compiler
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

lab: install
	@$(MAKE) -s compiler || echo "no C compiler could be installed: convis runs its torch loops (slower)"
	$(VENV)/bin/jupyter lab --allow-root --ip=127.0.0.1 --port=$(LAB_PORT) notebooks/00_tour.ipynb

demo: install
	@$(MAKE) -s compiler || echo "no C compiler could be installed: convis runs its torch loops (slower)"
	$(VENV)/bin/jupyter lab --allow-root --ip=127.0.0.1 --port=$(LAB_PORT) --no-browser notebooks/00_tour.ipynb

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) labextension/node_modules labextension/lib convis_widgets/labextension
