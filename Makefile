# The README's two commands: `make demo` and `make test`. Everything they need is set up here.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# This machine's pip configuration names local mirrors that may be absent; say so once, not per package.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }

.PHONY: demo serve test lint bench detection clean browser

$(VENV)/.runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "eqlab needs Python 3.11 or newer"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e . $(QUIET_PIP)
	@touch $@

$(VENV)/.test: $(VENV)/.runtime node_modules/.package-lock.json
	$(PIP) -e '.[test]' $(QUIET_PIP)
	@touch $@

# The JavaScript clients of tests/interop (openid-client), exactly as package-lock.json pins them.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --silent

## demo: run the reference plan against the embedded reference implementation, then certify the
## reference client (testplans/smart-client.yaml: the lab plays the platform); prints the reports
demo: $(VENV)/.runtime
	$(BIN)/eqlab demo
	$(BIN)/eqlab run testplans/smart-client.yaml

## serve: start the reference platform with demo data (Ctrl-C to stop)
serve: $(VENV)/.runtime
	$(BIN)/eqlab serve --seed demo

## detection: prove every deliberate defect is caught (each fault against the checks of the requirements it breaks),
## the reference implementation's faults by the reference plan, the reference client's by the client plans;
## each run a process of its own, one per CPU at a time (`--jobs N`): the whole matrix (clean server, 86 faults,
## 35 client runs) took 2.6-2.8 min on 2 CPUs (benchmarks/detection_matrix.py); `make test` runs a sample of it
## (a fault of each requirement group and of each client plan: tests/support/detection.py)
detection: $(VENV)/.runtime
	$(BIN)/eqlab detection

## browser: Debian's chromium for the UI suites (installed when running as root and missing)
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian chromium for the UI suites"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "warning: chromium is missing and cannot be installed without root (apt-get install chromium)"; fi

## lint: ruff and mypy --strict
lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: lint, then every test (pytest exit 5, "no tests collected", is a failure: the tree is broken)
test: $(VENV)/.test browser lint
	@set +e; $(BIN)/python -m pytest -n auto $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test tree is broken"; exit 1; fi; exit $$rc

## bench: print the performance figures quoted in the README
bench: $(VENV)/.runtime
	$(BIN)/python benchmarks/fhir_core.py
	$(BIN)/python benchmarks/auth.py
	$(BIN)/python benchmarks/bulk_writer.py
	$(BIN)/python benchmarks/bulk_writer.py --db postgresql
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports/out
