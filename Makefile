# slamon: the targets a newcomer and CI use. `make install` is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install venv debs kafka-jars test unit integration lint stack-up stack-down demo bench rules dashboards-png clean

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

stack-up: install
	$(PY) -m monitor.localstack up

stack-down:
	@if [ -x $(PY) ]; then $(PY) -m monitor.localstack down; else echo "nothing to stop (no .venv)"; fi

demo: install
	$(VENV)/bin/slamon demo

bench: venv
	$(PY) bench/run.py

rules: venv
	$(VENV)/bin/slamon rules generate --policies deploy/demo/policies

dashboards-png: install
	$(PY) -m pip install --quiet -e '.[dashboards]'
	$(PY) tools/render_dashboards.py

clean: stack-down
	rm -rf $(VENV) .stack build *.egg-info
