# The two commands: `make up` starts the local stack, `make test` runs the whole test suite.
# Both create the virtual environment in .venv from requirements-dev.txt first, when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins an old boto3, so it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: up test bench clean vendor package

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

## up: start moto, the regional stacks, both apps and the demo data (Ctrl-C stops). ARGS="--no-demo-data"
up: $(STAMP)
	$(PY) -m local up $(ARGS)

## test: the whole suite: unit, integration (moto server), end-to-end (local stack), templates (cfn-lint, checkov)
test: $(STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest $(ARGS)

# aws-xray-sdk goes into the Lambda package through vendor/, without its botocore dependency.
VENDOR_STAMP := $(VENV)/.vendored
$(VENDOR_STAMP): requirements-tracing.txt $(STAMP)
	rm -rf vendor
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target vendor -r requirements-tracing.txt
	touch $(VENDOR_STAMP)

vendor: $(VENDOR_STAMP)

## package: the Lambda package of one stage: make package STAGE=prod OUT=build/primary (TABLE_STREAM_ARN set)
package: $(VENDOR_STAMP)
	@test -n "$(STAGE)" -a -n "$(OUT)" || { echo "usage: make package STAGE=<stage> OUT=<dir>"; exit 2; }
	@test -n "$$TABLE_STREAM_ARN" || { echo "TABLE_STREAM_ARN must name the table's stream (the regional stack's TableStreamArn output)"; exit 2; }
	$(VENV)/bin/chalice package --stage $(STAGE) --merge-template .chalice/package-merge.json $(OUT)

## bench: the benchmark scripts; they print figures
bench: $(STAMP)
	$(PY) tests/benchmarks/bench_api.py
	$(PY) tests/benchmarks/bench_cold_start.py
	$(PY) tests/benchmarks/bench_package.py
	$(PY) tests/benchmarks/bench_replication.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local-stack .pytest_cache vendor
