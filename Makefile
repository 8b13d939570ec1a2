# The two commands: `make up` starts the local stack, `make test` runs the whole test suite.
# Both create the virtual environment in .venv from requirements-dev.txt first, when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins an old boto3, so it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# CloudFormation's Serverless transform (aws-sam-translator) pins an older pydantic: its own too.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: up test smoke bench load clean vendor build deploy package openapi

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $(SAM_STAMP)

## up: start moto, the regional stacks, both apps and the demo data (Ctrl-C stops). ARGS="--no-demo-data"
up: $(STAMP)
	$(PY) -m local up $(ARGS)

# Headless Chromium screenshots the HTML report in the end-to-end tests: Debian's chromium package.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
CHROMIUM_STAMP := $(VENV)/.chromium
$(CHROMIUM_STAMP): $(STAMP)
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	touch $(CHROMIUM_STAMP)

## test: the whole suite: unit, integration (moto server), end-to-end (local stack), templates (cfn-lint, checkov)
test: $(STAMP) $(CHECKOV_STAMP) $(SAM_STAMP) $(CHROMIUM_STAMP)
	$(PY) -m pytest $(ARGS)

# aws-xray-sdk goes into the Lambda package through vendor/, without its botocore dependency.
VENDOR_STAMP := $(VENV)/.vendored
$(VENDOR_STAMP): requirements-tracing.txt $(STAMP)
	rm -rf vendor
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target vendor -r requirements-tracing.txt
	touch $(VENDOR_STAMP)

vendor: $(VENDOR_STAMP)

# chalice deploy reuses the package chalice package left in .chalice/deployments/ while the app's files
# hash alike, chalicelib/__pycache__ included: so chalice runs here after clearing that, writing none.
CHALICE_CLEAN := rm -rf chalicelib/__pycache__ && env PYTHONDONTWRITEBYTECODE=1 $(VENV)/bin/chalice
BUILD_OUT := .chalice/build-package
# What make deploy runs on the compiled package (the tests put a `package` command in its place), and
# then on the API it deployed: the stage's throttling and gateway responses (pipeline/release.json).
CHALICE_DEPLOY = deploy --stage $(STAGE)
RELEASE_APPLY = $(PY) -m pipeline.release apply --stage $(STAGE)

## build: vendor/, and in chalice's cache the package chalice deploy reuses, every module compiled ahead
# The package is the same for every stage and region; chalice package wants a region all the same.
build: export AWS_DEFAULT_REGION ?= us-east-1
build: $(VENDOR_STAMP)
	rm -rf $(BUILD_OUT)
	$(CHALICE_CLEAN) package --stage dev $(BUILD_OUT) >/dev/null
	$(PY) -m pipeline.bytecode --chalice-cache $(BUILD_OUT)/deployment.zip
	rm -rf $(BUILD_OUT)

## deploy: make build, then chalice deploy --stage $(STAGE) with that package (AWS_DEFAULT_REGION, TABLE_STREAM_ARN set),
## then the stage's throttling and gateway responses on the API it deployed (pipeline/release.py apply)
deploy:
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=<stage>"; exit 2; }
	$(MAKE) --no-print-directory build
	@log=$$(mktemp); $(CHALICE_CLEAN) $(CHALICE_DEPLOY) >$$log 2>&1; status=$$?; cat $$log; \
	reused=$$(grep -c "Reusing existing deployment package" $$log); rm -f $$log; \
	test $$status -eq 0 || exit $$status; \
	test $$reused -gt 0 || { echo "make deploy: chalice built a new package instead of reusing the compiled one" \
	  "(did the app's files change meanwhile?), so what it deployed has no .pyc files; run make deploy again"; exit 1; }
	$(RELEASE_APPLY)

## package: the Lambda package of one stage: make package STAGE=prod OUT=build/primary (TABLE_STREAM_ARN set),
## with the release settings of pipeline/release.json in its template (pipeline/release.py: the canary alias,
## its rollback alarms, throttling, gateway responses) and every module compiled ahead (pipeline/bytecode.py)
package: $(VENDOR_STAMP)
	@test -n "$(STAGE)" -a -n "$(OUT)" || { echo "usage: make package STAGE=<stage> OUT=<dir>"; exit 2; }
	@test -n "$$TABLE_STREAM_ARN" || { echo "TABLE_STREAM_ARN must name the table's stream (the regional stack's TableStreamArn output)"; exit 2; }
	$(VENV)/bin/chalice package --stage $(STAGE) --merge-template .chalice/package-merge.json $(OUT)
	$(PY) -m pipeline.release render --stage $(STAGE) $(OUT)/sam.json
	$(PY) -m pipeline.bytecode --zip $(OUT)/deployment.zip

## openapi: write docs/openapi.json from the models (a test fails while the committed copy differs)
openapi: $(STAMP)
	$(PY) -m chalicelib.openapi > docs/openapi.json

## smoke: the pipeline's smoke test of a deployed API: ARGS="--stage prod --region us-east-1" (signed, from the
## app stacks' outputs) or ARGS="--endpoint http://127.0.0.1:8000 --peer-endpoint http://127.0.0.1:8001"
smoke: $(STAMP)
	$(PY) -m pipeline.smoke $(ARGS)

## bench: the benchmarks (tests/benchmarks), each run as a module from the project root; they print figures
bench: $(STAMP)
	$(PY) -m tests.benchmarks.bench_api
	$(PY) -m tests.benchmarks.bench_cold_start
	$(PY) -m tests.benchmarks.bench_package
	$(PY) -m tests.benchmarks.bench_replication
	$(PY) -m tests.benchmarks.bench_local_stack

## load: a local stack of its own, N clients through its Global API for 60 s, then the standby's catch-up.
## ARGS="--clients 8 --seconds 60"
load: $(STAMP)
	$(PY) -m tests.benchmarks.load $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(SAM_VENV) .local-stack .pytest_cache vendor
