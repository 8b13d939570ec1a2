# The two commands: `make up` starts the local stack, `make test` runs the whole test suite.
# Both create the virtual environment in .venv from requirements-dev.txt first, when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins an old boto3, so it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: up test bench clean vendor build package

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

## build: run before chalice deploy: vendor/, then the package chalice deploy reuses from .chalice/deployments/,
## with every module in it compiled ahead (pipeline/bytecode.py says how and why)
BUILD_OUT := .chalice/build-package
build: $(VENDOR_STAMP)
	rm -rf $(BUILD_OUT)
	AWS_DEFAULT_REGION=us-east-1 $(VENV)/bin/chalice package --stage dev $(BUILD_OUT) >/dev/null
	$(PY) -m pipeline.bytecode --chalice-cache $(BUILD_OUT)/deployment.zip
	rm -rf $(BUILD_OUT)

## package: the Lambda package of one stage: make package STAGE=prod OUT=build/primary (TABLE_STREAM_ARN set),
## with every module in it compiled ahead (pipeline/bytecode.py)
package: $(VENDOR_STAMP)
	@test -n "$(STAGE)" -a -n "$(OUT)" || { echo "usage: make package STAGE=<stage> OUT=<dir>"; exit 2; }
	@test -n "$$TABLE_STREAM_ARN" || { echo "TABLE_STREAM_ARN must name the table's stream (the regional stack's TableStreamArn output)"; exit 2; }
	$(VENV)/bin/chalice package --stage $(STAGE) --merge-template .chalice/package-merge.json $(OUT)
	$(PY) -m pipeline.bytecode --zip $(OUT)/deployment.zip

## bench: the benchmark scripts; they print figures
bench: $(STAMP)
	$(PY) tests/benchmarks/bench_api.py
	$(PY) tests/benchmarks/bench_cold_start.py
	$(PY) tests/benchmarks/bench_package.py
	$(PY) tests/benchmarks/bench_replication.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local-stack .pytest_cache vendor
