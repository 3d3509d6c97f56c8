# The two commands of the README: `make run` and `make test`. Both install what they need, idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .devstack/stamps
PYTEST_ARGS ?=

.PHONY: help setup run test test-stalls test-scale chaos soak fuzz lint imports typecheck pytest schemas bench clean

help:
	@echo "make run    - install what is needed, start the local stack with a simulated tenant and demo calls"
	@echo "make test   - install what is needed, run lint, type checks and the whole test suite"
	@echo "make fuzz   - fuzz every /api/v1 operation against the local stack (long run; FUZZ_EXAMPLES, FUZZ_SEED)"
	@echo "make test-stalls - the long run of tests/e2e/test_stalls.py (make test runs a short seeded one)"
	@echo "make test-scale  - 1,000 calls through notifications to Cosmos via the local host (make test sends 200)"

$(STAMPS):
	@mkdir -p $(STAMPS)

$(STAMPS)/apt: scripts/apt-packages.txt scripts/install-apt.sh | $(STAMPS)
	bash scripts/install-apt.sh
	@touch $@

$(STAMPS)/npm: package.json package-lock.json | $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/venv: requirements.txt requirements-dev.txt pyproject.toml | $(STAMPS)
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

setup: $(STAMPS)/apt $(STAMPS)/npm $(STAMPS)/venv

run: setup
	$(VENV)/bin/verbatim-dev up --demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The layering of verbatim/ (import-linter contracts in pyproject.toml).
imports: setup
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy verbatim recorder_vm devstack functions function_app.py
	# The benchmarks are scripts, not a package: checked as files, so one that falls behind the code it measures fails here.
	$(VENV)/bin/mypy --explicit-package-bases benchmarks/*.py

# The whole suite in PYTEST_WORKERS pytest-xdist processes (docs/testing.md): most of the end-to-end tests' time is
# spent waiting for calls, thresholds and settling, which another worker's tests fill. Each test file stays on one
# worker (`--dist loadfile`), so a module's stack starts once; files go out in collection order, so the long
# end-to-end files start early. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
pytest: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test: lint imports typecheck pytest

# The long run of tests/e2e/test_stalls.py (issue 14): 8 calls of 40 s, components paused 15-30 s.
test-stalls: setup
	VERBATIM_STALLS=full $(VENV)/bin/pytest tests/e2e/test_stalls.py $(PYTEST_ARGS)

# The call-record pipeline at the original scale: 1,000 calls through the simulator's notifications, the local
# Functions host and Cosmos, with duplicate, out-of-order, 429 and 503 faults. `make test` sends 200 of them.
test-scale: setup
	VERBATIM_E2E_CALLS=1000 $(VENV)/bin/pytest tests/callrecords/test_e2e_host.py -p no:cacheprovider $(PYTEST_ARGS)

# Whole-stack chaos (issue 23, docs/reliability.md): seeded traffic while processes are killed, paused and Graph
# misbehaves, then the invariants; prints the fault log and the results. `make chaos SEED=2`. A short seeded run is
# part of `make test` (tests/e2e/test_chaos.py).
SEED ?= 1
chaos: setup
	$(PY) -m devstack.chaos --seed $(SEED) --profile full

# The soak (issue 23): steady traffic, RSS/FD/thread/queue/latency series sampled and plotted, bounds checked.
MINUTES ?= 30
CONCURRENCY ?= 50
soak: setup
	$(PY) -m devstack.chaos.soak --seed $(SEED) --minutes $(MINUTES) --concurrency $(CONCURRENCY)

# The long fuzz run of every /api/v1 operation against the local Functions host (docs/security.md): 100
# examples per operation and a fresh seed each run (FUZZ_SEED=<n> to replay one); `make test` runs 3, seeded.
FUZZ_EXAMPLES ?= 100
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest tests/security/test_fuzz.py -p no:cacheprovider $(PYTEST_ARGS)

schemas: setup
	$(PY) -m verbatim.contracts

clean:
	rm -rf .devstack
