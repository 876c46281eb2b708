# slamon: the targets a newcomer and CI use. `make install` is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install venv debs kafka-jars helm helm-crds lock test unit integration lint stack-up stack-down demo bench chaos rules dashboards-png clean

install: venv debs kafka-jars helm helm-crds

# the exact versions (and hashes) of requirements-test.lock, then the package itself (editable, nothing resolved)
$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

debs:
	bash deploy/local/install-debs.sh

kafka-jars: venv
	$(PY) -m monitor.localstack fetch

# helm (built from the Go module helm.sh/helm/v3 with the machine's Go) and the Prometheus Operator CRDs, for
# tests/deploy/test_helm.py; cached under ~/.cache/slamon/ (a few minutes the first time, then a no-op)
helm:
	bash deploy/local/install-helm.sh helm

helm-crds:
	bash deploy/local/install-helm.sh crds

# The lock files, generated from pyproject.toml with uv (its own venv under .cache/): requirements.lock (the
# runtime dependencies, used by the Dockerfile) and requirements-test.lock (plus the test extra, used by
# `make install`; constrained to the runtime lock's versions). Pins that still fit are kept; `make lock
# LOCK_ARGS=--upgrade` takes the newest versions. Commit both files.
UV_VERSION := 0.13.9
UV := .cache/lock-tools/bin/uv
LOCK_OPTS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu
lock:
	@$(UV) --version 2>/dev/null | grep -q ' $(UV_VERSION)' || { rm -rf .cache/lock-tools && $(PYTHON) -m venv .cache/lock-tools \
		&& .cache/lock-tools/bin/pip install --quiet 'uv==$(UV_VERSION)'; }
	$(UV) pip compile pyproject.toml $(LOCK_OPTS) $(LOCK_ARGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --extra test $(LOCK_OPTS) $(LOCK_ARGS) -c requirements.lock -o requirements-test.lock

test: install
	$(PY) -m pytest -q

unit: venv helm helm-crds
	$(PY) -m pytest -q tests/unit tests/deploy

integration: install
	$(PY) -m pytest -q tests/integration

lint: venv
	$(VENV)/bin/ruff check monitor tests bench tools

# make stack-up STACK_ARGS=--fresh: throw the recorded stack's data away first (new ports)
stack-up: install
	$(PY) -m monitor.localstack up $(STACK_ARGS)

stack-down:
	@if [ -x $(PY) ]; then $(PY) -m monitor.localstack down; else echo "nothing to stop (no .venv)"; fi

# make demo DEMO_ARGS='--duration 60 --rate 3'; exec: the demo is make's own child and gets the signals
demo: install
	exec $(VENV)/bin/slamon demo $(DEMO_ARGS)

# the Quix Streams peer of the live benchmark is a bench-only extra (never a runtime dependency)
bench: venv
	$(PY) -m pip install --quiet 'quixstreams>=3.20,<4'
	$(PY) bench/run.py

# the long fault experiments at full count (make test runs each once, small): kills mid-backlog on both stores,
# ten zombie runs
chaos: install
	SLAMON_CHAOS_SCALE=full $(PY) -m pytest -q -s -p no:cacheprovider --timeout 3600 tests/integration/test_chaos.py

rules: venv
	$(VENV)/bin/slamon rules generate --policies deploy/demo/policies

dashboards-png: install
	$(PY) -m pip install --quiet -e '.[dashboards]'
	$(PY) tools/render_dashboards.py

clean: stack-down
	rm -rf $(VENV) .stack build *.egg-info
