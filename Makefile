# slamon: the targets a newcomer and CI use. `make install` is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install venv debs kafka-jars test unit integration lint stack-up stack-down demo bench chaos rules dashboards-png clean

install: venv debs kafka-jars

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

debs:
	bash deploy/local/install-debs.sh

kafka-jars: venv
	$(PY) -m monitor.localstack fetch

test: install
	$(PY) -m pytest -q

unit: venv
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

bench: venv
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
