# labkit: two commands set up everything on a fresh machine, `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Pytest options for the whole suite; override e.g. `make test PYTEST_ARGS="-k sim -x"`.
PYTEST_ARGS ?=

.PHONY: install browser lab figures docs-images test test-fast bench lint docs wheel-check clean

install: $(STAMP) browser

# Reinstall only when the package metadata changed (idempotent, quick on a second run). One line per step:
# pip's own output only when it fails.
# The nbstripout git filter strips outputs and widget state from notebooks as they are committed (.gitattributes
# names the filter; this defines it in the clone's git config), so a notebook JupyterLab saved is committed clean.
EXTRAS ?= lab,sdk,dask,dev,docs
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make install: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "make install: updating pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "make install: installing labkit with its extras [$(EXTRAS)] into $(VENV) (JupyterLab, plotly, Dask, the SDKs, the test and docs tools; a few minutes on a fresh machine)"
	@$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  echo "make install: setting up the nbstripout git filter (notebooks are committed without outputs)"; \
	  git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m nbstripout --keep-id"; \
	  git config filter.nbstripout.smudge cat; \
	  git config diff.ipynb.textconv "'$(abspath $(BIN))/python' -m nbstripout -t --keep-id"; \
	fi
	@touch $(STAMP)
	@echo "make install: done; run labkit as $(BIN)/labkit, or 'source $(BIN)/activate' to have labkit on your PATH"

# Debian's chromium: kaleido's PNG/SVG/PDF export and the real-browser dashboard test need a Chrome.
# Installed when missing and apt-get can run (as root, or through `sudo -n`); otherwise one line says how.
browser:
	@bash tools/install-browser.sh

# JupyterLab on the notebooks. No browser is opened on a machine without a display: the URL is printed.
# Jupyter refuses to run as root without --allow-root (containers and CI machines run as root).
# The lab runs with .venv/bin first on its PATH, so `labkit` works in the lab's terminals; a line says how to run
# it from the shell that started make.
LAB_ARGS ?=
lab: install
	@echo "make lab: in the lab's terminals labkit is on the PATH; in your shell run $(BIN)/labkit (or 'source $(BIN)/activate')"
	@root=$$( [ "$$(id -u)" = 0 ] && echo --allow-root ); \
	export PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"; \
	if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
	  $(BIN)/jupyter lab --notebook-dir=notebooks $$root $(LAB_ARGS); \
	else \
	  $(BIN)/jupyter lab --notebook-dir=notebooks --no-browser --ip=127.0.0.1 $$root $(LAB_ARGS); \
	fi

# The headless twin of `make lab`: run every notebook, write every figure to figures/ (ignored by git).
# `make docs-images` also rewrites the committed README and tour images (docs/0*.png) and their captions.
figures: install
	$(BIN)/labkit figures

docs-images: install
	$(BIN)/labkit figures --update-docs

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: unit and contract tests only (no live servers, notebooks or browser), under a minute,
# spread over every core by pytest-xdist.
test-fast: install
	$(BIN)/python -m pytest -n auto -m "not slow and not live and not browser and not notebook" $(PYTEST_ARGS)

# Results in data/bench/runs/ (ignored); `labkit bench NAME --record` rewrites the committed records.
bench: install
	$(BIN)/labkit bench all

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site in site/: guides, the executed notebooks, the API reference. Warnings are errors.
# The notebooks are executed first (as `make figures` does) and copied in, made fit for a static page (figures
# drawn by the plotly.js the site ships, the dashboard as a snapshot), so the site shows real results offline.
DOCS_ARGS ?=
docs: install
	$(BIN)/labkit figures --formats html --no-docs --out build/figures --keep-notebooks docs/notebooks $(DOCS_ARGS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# A wheel, installed into a fresh virtual environment outside the checkout, used as a user would.
wheel-check: install
	bash tools/wheel-check.sh

clean:
	rm -rf $(VENV) figures build site docs/notebooks .pytest_cache .mypy_cache
