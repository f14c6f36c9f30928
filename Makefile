# The studio's commands (README): `make run`, `make test`, `make bench`.
#
# Everything runs from the project's virtual environment, .venv, which `make install` creates and keeps in step
# with requirements.txt (a stamp file records the last successful install).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_FOR_VENV ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALL_STAMP := $(VENV)/.requirements-installed
# The scaling extras (Ray Data, Milvus Lite): `make test` and `make bench` install them, `make run` never needs them.
SCALE_STAMP := $(VENV)/.requirements-scale-installed

# The catalog `make run` shows: RECSYS_CATALOG when set, otherwise the built-in world under RECSYS_DATA_DIR (or data/).
DEMO_CATALOG := $(or $(RECSYS_DATA_DIR),data)/demo
DEMO_PRESET ?= demo
DEMO_SEED ?= 0
CATALOG := $(or $(RECSYS_CATALOG),$(DEMO_CATALOG))
CATALOG_MANIFEST := $(CATALOG)/artifacts/manifest.json
PRECOMPUTE_SCRIPT := scripts/precompute.py

STREAMLIT_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?= --json data/bench.json

# Debian packages the browser tests drive (Playwright uses the system Chromium; it never downloads a browser).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install scale-deps run setup demo-catalog demo-artifacts train evaluate test browser-deps bench clean-venv

help:
	@echo "make run     install, set up the catalog (world, embeddings, page models, quick report), start the app"
	@echo "make setup   only the set-up: every page ready (scripts/setup.py)"
	@echo "make test    install (plus Chromium for the browser tests) and run the whole test suite"
	@echo "make bench   install and print the performance figures (BENCH_ARGS='--quick --json OUT')"
	@echo "make train   train every task's models on the catalog (a few minutes each on the demo world)"
	@echo "make evaluate run every protocol and write the report the Model report page shows"
	@echo "make install create .venv and install requirements.txt (a no-op when nothing changed)"
	@echo "make scale-deps install the scaling extras, requirements-scale.txt (Ray Data, Milvus Lite)"

install: $(INSTALL_STAMP)

# Re-runs only when requirements.txt is newer than the stamp (or the stamp, with .venv, is gone).
$(INSTALL_STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	@touch $@

scale-deps: $(SCALE_STAMP)

$(SCALE_STAMP): requirements-scale.txt $(INSTALL_STAMP)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt -r requirements-scale.txt
	@touch $@

run: install setup
	$(PY) -m streamlit run streamlit_app.py $(STREAMLIT_ARGS)

# Every page ready before the app starts: the built-in world (when RECSYS_CATALOG is unset), its embeddings, the
# models each page's main result needs and a quick evaluation report; steps already done are skipped in seconds.
setup: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) scripts/setup.py --catalog "$(CATALOG)" \
		$(if $(RECSYS_CATALOG),,--builtin --preset $(DEMO_PRESET) --seed $(DEMO_SEED))

# The built-in world; skipped when RECSYS_CATALOG names another catalog or the world is already there.
demo-catalog: install
	@if [ -n "$(RECSYS_CATALOG)" ]; then \
		echo "Showing RECSYS_CATALOG=$(RECSYS_CATALOG); the built-in world is not needed."; \
	elif [ -f "$(DEMO_CATALOG)/items.parquet" ]; then \
		echo "The built-in world is ready in $(DEMO_CATALOG)."; \
	else \
		$(PY) scripts/build_demo.py --preset $(DEMO_PRESET) --seed $(DEMO_SEED) --out "$(DEMO_CATALOG)"; \
	fi

# Hook for the precomputed embeddings (DESIGN section 6): runs once, and only when the precompute script exists.
demo-artifacts: install demo-catalog
	@if [ -f "$(CATALOG_MANIFEST)" ]; then \
		echo "Embeddings are ready in $(CATALOG)/artifacts."; \
	elif [ ! -f "$(PRECOMPUTE_SCRIPT)" ]; then \
		echo "$(PRECOMPUTE_SCRIPT) does not exist yet; the app starts without precomputed embeddings."; \
	else \
		$(PY) $(PRECOMPUTE_SCRIPT) --catalog "$(CATALOG)"; \
	fi

# Pages train small models in place; on the demo world some take minutes, so they can be trained ahead once.
train: install demo-catalog demo-artifacts
	$(PY) scripts/train.py --catalog "$(CATALOG)" --task all

evaluate: install demo-catalog demo-artifacts
	$(PY) scripts/evaluate.py --catalog "$(CATALOG)" --task all --json "$(CATALOG)/artifacts/report.json"

test: install scale-deps browser-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

browser-deps:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "Installing Debian chromium and chromium-driver for the browser tests ..."; \
		$(SUDO) apt-get update; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

bench: install scale-deps
	@mkdir -p data
	$(PY) scripts/bench.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
