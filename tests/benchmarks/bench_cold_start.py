"""Cold start of the API, as a fresh Python process each time, against a floor.

What it measures
  It runs `make package STAGE=dev` and unzips the deployment.zip into a temporary directory laid
  out as Lambda's /var/task: the app, chalicelib, chalice's own two files, pydantic, requests and
  the rest, each module with the hash-checked .pyc pipeline/bytecode.py adds. moto's server is
  started in a subprocess (local.emulator.Emulator; tests/benchmarks/stage.py) and dr/regional.yaml is
  deployed in it (stage dev) in us-east-1, the app's region, and us-west-2, the DR region, whose table
  the app also reads (the failover record) when it writes. Then, --runs times per variant (default 10, the variants
  alternating, after --warmup untimed runs of each), a fresh `python -c ...` child is spawned with
  its environment pointed at the emulator (Emulator.env plus the dev stage's variables from
  .chalice/config.json, AWS_XRAY_SDK_ENABLED=false) and its cwd in its task root, which comes first
  on sys.path as /var/task does in Lambda; boto3 and botocore come from .venv, as the Lambda runtime
  provides them. PYTHONDONTWRITEBYTECODE=1, since /var/task is read-only. The child starts
  time.perf_counter as its very first statement and handles one POST /metrics carrying one valid
  deployment event, by calling the Chalice app object as Lambda would: `app(event, context)` with a
  hand-built API Gateway proxy event and a tiny fake Lambda context (no chalice.test, no HTTP server
  in the timed part):

    ours     `import app` (the package above), then the request: validation with pydantic, the
             failover-record GetItem in both regions, BatchWriteItem.
    floor    a bare Chalice app defined in the child: `import boto3`, `from chalice import Chalice`,
             one route, a DynamoDB client, one unvalidated put_item. Its task root holds what chalice
             would package for it (chalice/__init__.py and chalice/app.py), compiled the same way.

  and, for information:
    ours, the package without .pyc: the same package with every __pycache__ removed, which is what
             chalice package writes alone (aws/chalice#868): every module compiled on each cold start.
    ours, X-Ray tracing on: with Lambda's tracing variables set (aws-xray-sdk from the package).
    floor, collector paused as app.py does: the floor with the garbage collector handled as
             chalicelib/coldstart.py handles it (paused while loading, then gc.freeze()). The budget
             is against the bare floor; this line shows how much of the gap is the app's own weight.

  Each child prints its figures as JSON: import ms (everything up to a ready app object), handle ms
  (the first request, including creating the DynamoDB clients and their calls to the emulator) and
  their sum, "cold ms". The parent also records the child's wall time (spawn to exit, which adds the
  interpreter's own start-up, the same for all).

How to read the output
  * The first table gives p50 / mean / min per variant of cold ms, and p50 of import ms, handle ms,
    the process wall time and a warm request. The line under it is the ratio ours / floor of the p50
    cold ms and the budget: ours must stay within 1.3x the floor. The lines after it compare the
    other variants.
  * The second table is for information: how long single imports take in a fresh process in ours'
    task root (median of --import-runs children), e.g. pydantic (a run-time dependency of ours),
    aws_xray_sdk.core (imported only with tracing on) and boto3 (in both).

Run from the project root:  .venv/bin/python -m tests.benchmarks.bench_cold_start [--runs N]
It takes about a minute with the defaults (longer when make package has to fetch wheels first).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from tabulate import tabulate

from local.emulator import Emulator, clean_env
from ops.templates import ROOT
from pipeline.bytecode import compile_tree
from tests.benchmarks.stage import PRIMARY_REGION as REGION
from tests.benchmarks.stage import STAGE, TABLE, emulated

BUDGET = 1.3  # ours may take at most this many times the floor

# An API Gateway (REST, proxy integration) event for POST /metrics with one deployment event, shaped
# like the ones chalice.local builds; written into the child as a Python literal.
EVENT: dict[str, Any] = {
    "resource": "/metrics",
    "path": "/metrics",
    "httpMethod": "POST",
    "headers": {"content-type": "application/json", "host": "api.example.com", "user-agent": "cold-start-bench"},
    "multiValueHeaders": None,
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/metrics", "httpMethod": "POST", "path": "/api/metrics", "stage": "api",
        "requestId": "cold-start", "identity": {"sourceIp": "127.0.0.1"},
    },
    "body": json.dumps({"kind": "deployment", "service": "cold-start", "status": "success",
                        "pipeline": "release", "commit_sha": "0123456789abcdef0123456789abcdef01234567"}),
    "isBase64Encoded": False,
}

# The child programs. The clock starts at the very first statement; the event and context are plain
# literals (no imports) so they cost microseconds.
_PRELUDE = f'''import time
T0 = time.perf_counter()
class _LambdaContext:
    function_name = "devops-metrics-{STAGE}"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:{REGION}:123456789012:function:devops-metrics-{STAGE}"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/devops-metrics-{STAGE}"
    log_stream_name = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000
CONTEXT = _LambdaContext()
EVENT = {EVENT!r}
'''

_EPILOGUE = '''
T2 = time.perf_counter()
WARM = [HANDLER(EVENT, CONTEXT) for _ in range(5)]  # after the clock: warm requests, for information
T3 = time.perf_counter()
import json
print(json.dumps({"import_ms": (T1 - T0) * 1000, "handle_ms": (T2 - T1) * 1000, "cold_ms": (T2 - T0) * 1000,
                  "warm_ms": (T3 - T2) * 1000 / 5, "status": RESPONSE["statusCode"], "body": RESPONSE.get("body")}))
'''

OURS = _PRELUDE + '''
import app
T1 = time.perf_counter()
HANDLER = app.app
RESPONSE = HANDLER(EVENT, CONTEXT)
''' + _EPILOGUE

FLOOR = _PRELUDE + '''
import os
import uuid
import boto3
from chalice import Chalice, Response

floor = Chalice(app_name="floor")
ddb = boto3.client("dynamodb")

@floor.route("/metrics", methods=["POST"])
def post_metrics():
    event_id = uuid.uuid4().hex
    ddb.put_item(TableName=os.environ["TABLE_NAME"], Item={
        "pk": {"S": "FLOOR#" + event_id}, "sk": {"S": "FLOOR"},
        "body": {"S": floor.current_request.raw_body.decode()}})
    return Response(body={"ids": [event_id], "created": 1, "duplicates": 0}, status_code=201)

T1 = time.perf_counter()
HANDLER = floor
RESPONSE = HANDLER(EVENT, CONTEXT)
''' + _EPILOGUE

# The floor with the collector handled as app.py handles it (chalicelib/coldstart.py): paused while it
# loads and makes its client, then what it made frozen. For information: it shows how much of the
# gap the collector accounts for, since the budget is against the bare floor above.
FLOOR_PAUSED = FLOOR.replace("\nimport os\n", "\nimport gc\ngc.disable()\nimport os\n", 1).replace(
    "\nT1 = time.perf_counter()", "\ngc.freeze()\ngc.enable()\nT1 = time.perf_counter()", 1)
assert FLOOR_PAUSED.count("gc.disable()") == 1 and FLOOR_PAUSED.count("gc.freeze()") == 1

IMPORT_PROBE = '''import time
T0 = time.perf_counter()
import {module}
T1 = time.perf_counter()
print((T1 - T0) * 1000)
'''

OURS_LABEL = "ours (import app + POST /metrics)"
SOURCE_LABEL = "ours, the package without .pyc"
FLOOR_LABEL = "floor (bare Chalice + boto3 put_item)"
FLOOR_PAUSED_LABEL = "floor, collector paused as app.py does"
TRACED_LABEL = "ours, X-Ray tracing on"
# What Lambda sets when the function's tracing is active (the daemon address is a UDP port nobody
# listens on here: sending segments costs what it costs, and they are dropped).
TRACING_ENV = {"XRAY_TRACING": "true", "AWS_XRAY_SDK_ENABLED": "true",
               "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
               "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
               "_X_AMZN_TRACE_ID": "Root=1-6740a4c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"}
IMPORTS = ("pydantic", "aws_xray_sdk.core", "boto3", "chalice", "chalicelib.models", "app")


def stage_env() -> dict[str, str]:
    """The environment Lambda gives the function: the stage's variables from .chalice/config.json."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {**config.get("environment_variables", {}), **config["stages"][STAGE].get("environment_variables", {})}


def child_env(emulator: Emulator, task_root: Path) -> dict[str, str]:
    return {**clean_env(), **emulator.env(REGION), **stage_env(), "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_XRAY_SDK_ENABLED": "false", "PYTHONDONTWRITEBYTECODE": "1"}


def make_task_roots(scratch: Path) -> dict[str, Path]:
    """Lambda's /var/task for each variant: the deployment.zip of `make package STAGE=dev` unzipped
    (ours), the same without any .pyc (what chalice packages alone), and the floor's: the chalice
    files chalice packages (chalice/__init__.py and chalice/app.py), compiled as make package does."""
    out = scratch / "package"
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION,
           "TABLE_STREAM_ARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/bench"}
    made = subprocess.run(["make", "package", f"STAGE={STAGE}", f"OUT={out}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if made.returncode != 0:
        raise SystemExit(f"make package failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
    roots = {"ours": scratch / "ours", "ours-source": scratch / "ours-source", "floor": scratch / "floor"}
    with zipfile.ZipFile(out / "deployment.zip") as package:
        package.extractall(roots["ours"])
    shutil.copytree(roots["ours"], roots["ours-source"], ignore=shutil.ignore_patterns("__pycache__"))
    (roots["floor"] / "chalice").mkdir(parents=True)
    for name in ("__init__.py", "app.py"):
        shutil.copy2(roots["ours"] / "chalice" / name, roots["floor"] / "chalice" / name)
    compile_tree(roots["floor"])
    return roots


def run_child(code: str, env: dict[str, str]) -> tuple[str, float, str]:
    """Run `python -c code` in the task root (env["LAMBDA_TASK_ROOT"]); the last line of its stdout,
    the wall time in ms and its stderr."""
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=env["LAMBDA_TASK_ROOT"], env=env, capture_output=True,
                            text=True, timeout=120)
    wall = (time.perf_counter() - t0) * 1000
    if result.returncode != 0:
        raise SystemExit(f"the child failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1], wall, result.stderr


def cold_start(code: str, env: dict[str, str], label: str) -> dict[str, float]:
    out, wall, stderr = run_child(code, env)
    figures: dict[str, float] = json.loads(out)  # (and "body", a string: read only on failure)
    if figures["status"] != 201:
        raise SystemExit(f"{label}: POST /metrics answered {figures['status']}: {figures['body']}\n{stderr[-3000:]}")
    figures["wall_ms"] = wall
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed cold starts per variant (default 10)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed cold starts per variant first, to warm the OS file cache (default 1)")
    parser.add_argument("--import-runs", type=int, default=3,
                        help="fresh processes per module in the import-time table (default 3)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.import_runs < 1:
        parser.error("--runs and --import-runs must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with emulated() as emulator, tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        roots = make_task_roots(Path(scratch))
        env = child_env(emulator, roots["ours"])
        source_env = child_env(emulator, roots["ours-source"])
        floor_env = child_env(emulator, roots["floor"])
        variants = {OURS_LABEL: (OURS, env), FLOOR_LABEL: (FLOOR, floor_env),
                    SOURCE_LABEL: (OURS, source_env),
                    TRACED_LABEL: (OURS, {**env, **TRACING_ENV}), FLOOR_PAUSED_LABEL: (FLOOR_PAUSED, floor_env)}
        for _ in range(args.warmup):
            for label, (code, variant_env) in variants.items():
                cold_start(code, variant_env, label)
        samples: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
        for _ in range(args.runs):
            for label, (code, variant_env) in variants.items():  # alternating, so drift hits all alike
                samples[label].append(cold_start(code, variant_env, label))

        imports = []
        for module in IMPORTS:
            times = [float(run_child(IMPORT_PROBE.format(module=module), env)[0]) for _ in range(args.import_runs)]
            # (each probe is a fresh process: nothing is cached between them but the OS file cache)
            imports.append([f"import {module}", f"{statistics.median(times):.0f}", f"{min(times):.0f}"])

    rows = []
    p50: dict[str, float] = {}
    for label, runs in samples.items():
        cold = [r["cold_ms"] for r in runs]
        p50[label] = statistics.median(cold)
        rows.append([label, len(runs), f"{p50[label]:.0f}", f"{statistics.fmean(cold):.0f}", f"{min(cold):.0f}",
                     f"{statistics.median(r['import_ms'] for r in runs):.0f}",
                     f"{statistics.median(r['handle_ms'] for r in runs):.0f}",
                     f"{statistics.median(r['wall_ms'] for r in runs):.0f}",
                     f"{statistics.median(r['warm_ms'] for r in runs):.1f}"])
    ours, floor = p50[OURS_LABEL], p50[FLOOR_LABEL]
    ratio = ours / floor
    print(f"Cold start: a fresh process handles one POST /metrics (ms; moto server at {emulator.endpoint})")
    print(tabulate(rows, headers=["variant", "runs", "cold p50", "cold mean", "cold min", "import p50",
                                  "handle p50", "process wall p50", "warm request p50"],
                   colalign=("left", "right", "right", "right", "right", "right", "right", "right", "right")))
    print(f"\nours / floor (cold p50): {ratio:.2f}x   budget: <= {BUDGET:.1f}x the floor -> "
          f"{'within budget' if ratio <= BUDGET else 'OVER budget'} "
          f"(ours - floor = {ours - floor:+.0f} ms)")
    traced = p50[TRACED_LABEL]
    print(f"X-Ray tracing on: cold p50 {traced:.0f} ms, {traced / floor:.2f}x the floor, {traced - ours:+.0f} ms "
          f"over tracing off (the budget applies with tracing off)")
    source = p50[SOURCE_LABEL]
    print(f"The package without .pyc (chalice package alone, every module compiled at each cold start): "
          f"{source:.0f} ms, {source / floor:.2f}x the floor; the bytecode saves {source - ours:.0f} ms")
    paused = p50[FLOOR_PAUSED_LABEL]
    print(f"For information, against the floor with the collector paused as app.py does: {ours / paused:.2f}x "
          f"(ours - that floor = {ours - paused:+.0f} ms)\n")
    print("For information: import time in a fresh process (ms)")
    print(tabulate(imports, headers=["statement", f"median of {args.import_runs}", "min"],
                   colalign=("left", "right", "right")))
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
