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
# Runs with the system's python3 before .venv exists (standard library only).
DOCTOR := python3 src/portal/doctor.py
FORCE ?=
SERVE_ADDRESS ?= 127.0.0.1:8000
# Unit-test workers: most unit tests wait on timers and short calls, so 4 pays on 2 cores.
JOBS ?= 4
# Notebooks and sample outputs run at once by `make execute`: their figures are timings, so no more than the
# cores; the scenarios and the samples that measure CPU time run alone whatever this says.
EXECUTE_JOBS ?= 2
export LMA_JOBS := $(EXECUTE_JOBS)
PYTEST := $(PY) -m pytest -q -n $(JOBS) --dist loadfile
# Runs COMMAND under strace and fails naming any process that sent a packet past 127.0.0.1 (see portal.traffic).
TRAFFIC := $(PY) -m portal.traffic
# LANG is also the locale variable of the shell; only a LANG given on the make command line is ours.
GUIDE_LANG := $(if $(filter command line,$(origin LANG)),$(LANG),en)

.PHONY: help check doctor preflight-serve preflight-build preflight-test env serve build execute test lint unit samples site-check browser bench-site bench-setup bench-scenarios bench-diagnose dumps offline new-guide stamp workshop clean

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

doctor: ## every requirement (system packages, Python, Node, ports, disk): found or missing, and the fix
	@$(DOCTOR)

# The first step of serve, build and test: install missing system packages with apt-get when no password is
# needed (root, as in CI, or passwordless sudo); otherwise stop within seconds, printing the command to run.
preflight-serve preflight-build preflight-test: preflight-%:
	@$(DOCTOR) --for $* --install --quiet --port $(lastword $(subst :, ,$(SERVE_ADDRESS)))

env: $(VENV)/.synced node_modules/.synced ## create or refresh the Python and npm environments from the locks

execute: preflight-build env ## run the notebooks that changed (FORCE=1: all of them; LMA_MODE=full: workshop size)
	$(PY) -m portal.execute $(if $(FORCE),--force)

build: preflight-build execute ## build both languages into build/site
	$(VENV)/bin/mkdocs build --strict

serve: preflight-serve env ## serve the site at http://127.0.0.1:8000 at once; what changed runs meanwhile, pages update
	$(PY) -m portal.serve --address $(SERVE_ADDRESS)

lint: env ## ruff and the front matter of every page
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m portal.frontmatter

unit: env ## unit tests of rtclab and the portal tooling (notebooks committed without outputs, too)
	$(PYTEST) tests/rtclab tests/portal

# The sample tests run traced, two at a time. The scenario tests start a server and several peers and time them
# against their own limits, which other runs beside them (or strace's stop on every send) break on 2 cores: they
# run one at a time, untraced, and tests/samples/test_traffic.py traces a small run of each instead (two at a
# time: each small run is its own strace, so it cannot sit inside the first one).
SCENARIO_TESTS := $(addprefix tests/samples/test_,$(addsuffix .py,browser_call bullet_comments live_cohost team_voice video_1v1 voice_agent voice_room))
TRAFFIC_TEST := tests/samples/test_traffic.py
OTHER_SAMPLE_TESTS := $(filter-out $(SCENARIO_TESTS) $(TRAFFIC_TEST) tests/samples/conftest.py tests/samples/sample_runner.py,$(wildcard tests/samples/*.py))

samples: preflight-test env ## run every sample and check what it prints (under strace: nothing past loopback)
	$(TRAFFIC) --name samples -- $(PY) -m pytest -q -n 2 --dist loadfile $(OTHER_SAMPLE_TESTS)
	$(PY) -m pytest -q -n 2 $(TRAFFIC_TEST)
	$(PY) -m pytest -q $(SCENARIO_TESTS)

site-check: ## links, anchors, rendered notebook cells, page weights (after build)
	$(PY) -m pytest -q tests/site

# Two workers: axe on every page is most of this stage, in two halves (en, zh); nothing here is timed.
browser: preflight-test ## headless Chromium: search, language switch, no third-party request, page budgets, offline bundle
	$(TRAFFIC) --name browser -- $(PY) -m pytest -q -n 2 --dist loadgroup tests/browser

test: preflight-test env ## everything CI checks, with a timing per stage
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

bench-setup: ## a fresh clone's first make serve to first page, make check on three pages (CI=1: .ci/run too)
	$(PY) -m portal.bench_setup $(if $(CI),--ci)

bench-scenarios: env ## run every scenario playbook's sample and report its headline figures vs targets (FULL=1)
	$(PY) -m portal.bench_scenarios $(if $(FULL),--full)

bench-diagnose: env ## time rtclab diagnose on a 3 MB dump in the CLI and in the browser page (after make build)
	$(PY) -m portal.bench_diagnose

dumps: env ## regenerate the support desk's dump fixtures (Chromium + aiortc, about 5 minutes)
	$(PY) samples/support/harness/capture_dumps.py

workshop: execute ## learner + instructor notebooks in build/workshop/, then JupyterLab (127.0.0.1) on the learner set
	$(PY) -m portal.workshop serve $(if $(PORT),--port $(PORT))

offline: execute ## one archive with the whole site (search works from file://) and the notebooks
	$(VENV)/bin/mkdocs build --strict -f mkdocs.offline.yml
	$(PY) -m portal.offline

check: preflight-build env ## check one page in seconds: make check PAGE=docs/<path>.md (or notebooks/<path>.ipynb)
	@$(PY) -m portal.check_page "$(PAGE)"

new-guide: env ## scaffold a page: make new-guide KIND=tutorial|how-to|explanation|notebook SLUG=name [LANG=zh]
	@$(PY) -m portal.scaffold --kind "$(KIND)" --slug "$(SLUG)" --lang "$(GUIDE_LANG)"

stamp: env ## record that a translation matches its English page: make stamp FILE=docs/x.zh.md
	@$(PY) -m portal.translations stamp $(FILE)

clean: ## remove build products and caches (keeps the environments)
	rm -rf build .cache .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +
