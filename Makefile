# Last Mile Academy. `make serve` and `make test` are all a fresh machine needs (see README).
# Every target creates or refreshes the environment first, from the lock files.

SHELL := /bin/bash
.DEFAULT_GOAL := help
export NO_MKDOCS_2_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
# jieba (Chinese search) triggers DeprecationWarnings at import that bury the build log.
export PYTHONWARNINGS := ignore::DeprecationWarning

VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := $(shell grep -o 'uv==[0-9.]*' pyproject.toml | head -1)
STAGE := $(PY) -m portal.stages run
FORCE ?=
# LANG is also the locale variable of the shell; only a LANG given on the make command line is ours.
GUIDE_LANG := $(if $(filter command line,$(origin LANG)),$(LANG),en)

.PHONY: help env serve build execute test lint unit samples site-check browser bench-site bench-scenarios offline new-guide stamp workshop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "%-16s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check $(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --locked --quiet
	@touch $@

node_modules/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

env: $(VENV)/.synced node_modules/.synced ## create or refresh the Python and npm environments from the locks

execute: env ## run the notebooks that changed (FORCE=1: all of them; LMA_MODE=full: workshop size)
	$(PY) -m portal.execute $(if $(FORCE),--force)

build: execute ## build both languages into build/site
	$(VENV)/bin/mkdocs build --strict

serve: execute ## build and serve the site at http://127.0.0.1:8000 (reloads on change)
	$(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:8000

lint: env ## ruff and the front matter of every page
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m portal.frontmatter

unit: env ## unit tests of rtclab and the portal tooling (notebooks committed without outputs, too)
	$(PY) -m pytest -q tests/rtclab tests/portal

samples: env ## run every sample and check what it prints
	$(PY) -m pytest -q tests/samples

site-check: ## links, anchors, rendered notebook cells, page weights (after build)
	$(PY) -m pytest -q tests/site

browser: ## headless Chromium: search, language switch, no third-party request, page budgets, offline bundle
	$(PY) -m pytest -q tests/browser

test: env ## everything CI checks, with a timing per stage
	@$(PY) -m portal.stages reset
	@$(STAGE) lint -- $(MAKE) --no-print-directory lint
	@$(STAGE) unit -- $(MAKE) --no-print-directory unit
	@$(STAGE) samples -- $(MAKE) --no-print-directory samples
	@$(STAGE) execute -- $(MAKE) --no-print-directory execute
	@$(STAGE) build -- $(VENV)/bin/mkdocs build --strict
	@$(STAGE) site-check -- $(MAKE) --no-print-directory site-check
	@$(STAGE) offline -- $(MAKE) --no-print-directory offline
	@$(STAGE) browser -- $(MAKE) --no-print-directory browser
	@$(PY) -m portal.weights
	@$(PY) -m portal.stages report

bench-site: build ## Lighthouse on home, tutorial, heaviest notebook (en, zh) at Slow 3G: median of RUNS (3)
	$(PY) -m portal.bench_site --runs $(or $(RUNS),3)

bench-scenarios: env ## run every scenario playbook's sample and report its headline figures vs targets (FULL=1)
	$(PY) -m portal.bench_scenarios $(if $(FULL),--full)

workshop: execute ## learner + instructor notebooks in build/workshop/, then JupyterLab (127.0.0.1) on the learner set
	$(PY) -m portal.workshop serve $(if $(PORT),--port $(PORT))

offline: execute ## one archive with the whole site (search works from file://) and the notebooks
	$(VENV)/bin/mkdocs build --strict -f mkdocs.offline.yml
	$(PY) -m portal.offline

new-guide: env ## scaffold a page: make new-guide KIND=tutorial|how-to|explanation|notebook SLUG=name [LANG=zh]
	@$(PY) -m portal.scaffold --kind "$(KIND)" --slug "$(SLUG)" --lang "$(GUIDE_LANG)"

stamp: env ## record that a translation matches its English page: make stamp FILE=docs/x.zh.md
	@$(PY) -m portal.translations stamp $(FILE)

clean: ## remove build products and caches (keeps the environments)
	rm -rf build .cache .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +
