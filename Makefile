# The two commands: `make up` starts the local stack, `make test` runs the whole test suite.
# Both create the virtual environment in .venv from requirements-dev.txt first, when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## up: start moto, the regional stacks, both apps and the demo data (Ctrl-C stops). ARGS="--no-demo-data"
up: $(STAMP)
	$(PY) -m local up $(ARGS)

## test: the whole suite: unit, integration (moto server), end-to-end (local stack), templates
test: $(STAMP)
	$(PY) -m pytest $(ARGS)

## bench: the benchmark scripts; they print figures
bench: $(STAMP)
	$(PY) tests/benchmarks/bench_api.py
	$(PY) tests/benchmarks/bench_cold_start.py
	$(PY) tests/benchmarks/bench_package.py

clean:
	rm -rf $(VENV) .local-stack .pytest_cache
