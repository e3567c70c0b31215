# labkit: two commands set up everything on a fresh machine, `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Pytest options for the whole suite; override e.g. `make test PYTEST_ARGS="-k sim -x"`.
PYTEST_ARGS ?=

.PHONY: install browser lab figures test test-fast bench lint docs wheel-check clean

install: $(STAMP) browser

# Reinstall only when the package metadata changed (idempotent, quick on a second run).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	@touch $(STAMP)

# Debian's chromium: kaleido's PNG/SVG/PDF export and the real-browser dashboard test need a Chrome.
# Installed when missing and apt-get can run (as root, or through `sudo -n`); otherwise one line says how.
browser:
	@bash tools/install-browser.sh

# JupyterLab on the notebooks. No browser is opened on a machine without a display: the URL is printed.
# Jupyter refuses to run as root without --allow-root (containers and CI machines run as root).
LAB_ARGS ?=
lab: install
	@root=$$( [ "$$(id -u)" = 0 ] && echo --allow-root ); \
	if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
	  $(BIN)/jupyter lab --notebook-dir=notebooks $$root $(LAB_ARGS); \
	else \
	  $(BIN)/jupyter lab --notebook-dir=notebooks --no-browser --ip=127.0.0.1 $$root $(LAB_ARGS); \
	fi

# The headless twin of `make lab`: run every notebook, write every figure to figures/.
figures: install
	$(BIN)/labkit figures

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: unit and contract tests only (no live servers, notebooks or browser), under a minute.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not live and not browser and not notebook" $(PYTEST_ARGS)

bench: install
	$(BIN)/labkit bench all

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site in site/: guides, the executed notebooks, the API reference. Warnings are errors.
# The notebooks are executed first (as `make figures` does) and copied in, so the site shows real results.
DOCS_ARGS ?=
docs: install
	$(BIN)/labkit figures --formats html --no-docs --out build/figures --keep-notebooks docs/notebooks $(DOCS_ARGS)
	$(BIN)/mkdocs build --strict --site-dir site

# A wheel, installed into a fresh virtual environment outside the checkout, used as a user would.
wheel-check: install
	bash tools/wheel-check.sh

clean:
	rm -rf $(VENV) figures build site docs/notebooks .pytest_cache .mypy_cache
