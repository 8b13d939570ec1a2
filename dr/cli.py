"""python -m dr: DR operations on the devops-metrics tables of one stage, in both regions.

  status                 tables, items, replication lag, last sweep, active region and epoch
  replicate [--full]     sweep the changes (or everything) from the active region to the standby
  verify [--repair]      compare both tables key by key and version by version; repair differences;
                         check each region's daily rollups
  rollups [--rebuild]    check each region's daily rollups against its events (or compute them again)
  migrate                after upgrading from release 0.1.0: give every stored event its identity record
  failover --to REGION   preflight, fence, final sweep, switch, notify, record an incident
  failback               fail over back to the primary region (us-east-1)
  resolve-incidents      resolve the incidents failovers recorded (a revision with resolved_at now)
  sync-secrets [--check] copy the active region's webhook secrets to the other region (or compare them)
  readiness              could the DR region take over? the regions compared, heartbeat, last drill
  drill                  game days on the local stack: an outage, a partition, a failover killed at each step

Exit codes: 0 done; 1 a check failed (differences found, preflight refused, a region unreachable);
2 bad usage. Against the local stack, pass --endpoint-url (or set AWS_ENDPOINT_URL) as `make up` prints.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tabulate import tabulate

from chalicelib import constants as C
from chalicelib import names
from chalicelib.aws_errors import AWS_ERRORS, first_line
from chalicelib.replication import ReplicationSweep, Replicator
from chalicelib.times import utc_now as now
from dr import failover as fo
from dr import migrate
from dr import secrets as webhook_secrets
from dr import verify as vf
from ops.regions import Regions

OK, FAILED, USAGE = 0, 1, 2
# What ends a command with exit 1 and one line: AWS failing, or another failover's newer epoch.
_STOPPED: tuple[type[Exception], ...] = (*AWS_ERRORS, fo.FailoverConflict)


def emit(args: argparse.Namespace, data: Any, table: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else table)


def region_status(regions: Regions, region: str) -> dict[str, Any]:
    control = regions.control(region)
    row: dict[str, Any] = {"region": region, "table": regions.table_name}
    try:
        described = regions.table(region).describe()
        row.update(table_status=described["TableStatus"], items=described.get("ItemCount"))
        role = fo.active_role(regions, region)
        row.update(role=role.name, active_region=role.active_region, epoch=role.epoch,
                   lease_until=role.lease_until if role.is_active else None)
        intent = fo.pending_intent(regions, region)
        if intent is not None:
            row["failover_in_progress"] = (f"to {intent['to_region']}, epoch {intent['epoch']}, after "
                                           f"'{intent['step']}'")
        heartbeat = control.get(C.HEARTBEAT_SK)
        row["replication_lag_seconds"] = heartbeat.get("lag_seconds") if heartbeat else None
        row["last_heartbeat"] = heartbeat.get("updated_at") if heartbeat else None
        checkpoint = control.get(C.SWEEP_CHECKPOINT_SK)
        row["last_sweep"] = checkpoint.get("updated_at") if checkpoint else None
    except AWS_ERRORS as error:
        row.update(table_status="UNREACHABLE", error=first_line(error)[:120])
    return row


def cmd_status(args: argparse.Namespace, regions: Regions) -> int:
    rows = [region_status(regions, region) for region in C.REGIONS]
    columns = ["region", "table_status", "items", "role", "active_region", "epoch", "lease_until",
               "replication_lag_seconds", "last_heartbeat", "last_sweep"]
    table = tabulate([[r.get(c, "") if r.get(c) is not None else "-" for c in columns] for r in rows],
                     headers=columns)
    interrupted = [f"\nA failover into {r['region']} is in progress or was interrupted ({r['failover_in_progress']}). "
                   f"If no one is running it any more, finish it:\n  python -m dr failover --to {r['region']} "
                   f"--yes --resume" for r in rows if r.get("failover_in_progress")]
    emit(args, {"stage": args.stage, "regions": rows},
         f"stage {args.stage}, table {regions.table_name}\n\n{table}" + "".join(interrupted))
    return OK if all(r["table_status"] == "ACTIVE" for r in rows) else FAILED


def _source_and_replica(regions: Regions) -> tuple[str, str]:
    active = fo.known_active(regions)
    return active, regions.peer(active)


def cmd_replicate(args: argparse.Namespace, regions: Regions) -> int:
    source, replica = _source_and_replica(regions)
    print(f"replicating {source} -> {replica} ({'full copy' if args.full else 'changes since the checkpoint'})...",
          file=sys.stderr)
    sweep = ReplicationSweep(regions.table(source), Replicator(regions.table(replica), source))
    report = sweep.run(now(), budget_seconds=args.budget, full=args.full).as_dict()
    report.update(source=source, replica=replica)
    emit(args, report, tabulate(sorted(report.items()), headers=["", ""]))
    return OK if report["complete"] else FAILED


def cmd_verify(args: argparse.Namespace, regions: Regions) -> int:
    source, replica = _source_and_replica(regions)
    print(f"comparing {source} (source) with {replica} (replica)...", file=sys.stderr)
    differences = vf.compare(regions.table(source), regions.table(replica))
    result: dict[str, Any] = {"source": source, "replica": replica, "differences": len(differences),
                              "by_problem": {}, "sample": [d.as_dict() for d in differences[:20]]}
    for d in differences:
        result["by_problem"][d.problem] = result["by_problem"].get(d.problem, 0) + 1
    if args.repair:
        deadline = time.monotonic() + args.budget
        result["repaired"] = vf.repair(differences, regions.table(source), regions.table(replica), now(), deadline,
                                       progress=lambda n: print(f"  repaired {n}...", file=sys.stderr))
        result["remaining"] = len(vf.compare(regions.table(source), regions.table(replica)))
    summary = tabulate(sorted(result["by_problem"].items()) or [["none", 0]], headers=["difference", "keys"])
    text = f"{source} -> {replica}: {len(differences)} difference(s)\n\n{summary}"
    if "repaired" in result:
        text += f"\n\nrepaired {result['repaired']}; {result['remaining']} remain"
    print("checking each region's daily rollups against its events...", file=sys.stderr)
    reports = {region: vf.check_rollups(regions.table(region)) for region in C.REGIONS}
    result["rollups"] = {region: report.as_dict() for region, report in reports.items()}
    text += "\n\n" + "\n".join(_rollup_text(region, report) for region, report in reports.items())
    emit(args, result, text)
    remaining = result.get("remaining", len(differences))
    return OK if remaining == 0 and not any(r.differing for r in reports.values()) else FAILED


def _rollup_text(region: str, report: vf.RollupReport) -> str:
    rollup = report.as_dict()
    since = {None: "nothing maintains them yet", vf.rollups.BEGINNING: "whole since a rebuild"}.get(
        report.complete_from, f"whole from {report.complete_from}")
    text = (f"rollups of {region} ({since}): {report.days} day(s), {rollup['differing_days']} differ "
            f"(missing {rollup['missing']}, stale {rollup['stale']}, extra {rollup['extra']} entries)")
    if report.not_covered:
        text += (f"; {len(report.not_covered)} day(s) before they were whole are not built yet: "
                 f"python -m dr rollups --rebuild")
    elif report.differing:
        text += "; python -m dr rollups --rebuild computes them again"
    return text


def cmd_rollups(args: argparse.Namespace, regions: Regions) -> int:
    """Each region keeps its own rollups, from its own table: both are checked, and rebuilt."""
    reports = {}
    for region in C.REGIONS:
        table = regions.table(region)
        if args.rebuild:
            print(f"rebuilding the daily rollups of {region} from its events...", file=sys.stderr)
            days, written = vf.rebuild_rollups(table, now())
            print(f"  {region}: rebuilt {days} day(s) ({written.parts} part(s) written, {written.units} write "
                  f"units); the rollups are whole", file=sys.stderr)
        reports[region] = vf.check_rollups(table)
    emit(args, {"regions": {region: report.as_dict() for region, report in reports.items()}},
         "\n".join(_rollup_text(region, report) for region, report in reports.items()))
    return OK if not any(r.differing or r.not_covered for r in reports.values()) else FAILED


def cmd_migrate(args: argparse.Namespace, regions: Regions) -> int:
    source, _ = _source_and_replica(regions)
    print(f"migrating {regions.table_name} in {source} (the active region)...", file=sys.stderr)
    report = migrate.migrate(regions.table(source), now(), say=lambda line: print(f"  {line}", file=sys.stderr))
    emit(args, {"region": source, **report.as_dict()},
         f"{source}: {report.adopted} event(s) given an identity record, {report.already} had one; "
         f"{report.legacy_removed} release 0.1.0 record(s) removed")
    return OK


def _confirm(args: argparse.Namespace, question: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("refusing without --yes: standard input is not a terminal", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _failover(args: argparse.Namespace, regions: Regions, to_region: str) -> int:
    if not _confirm(args, f"Fail {names.table(args.stage)} over to {to_region}?"):
        return FAILED
    try:
        report = fo.failover(regions, to_region, force=args.force, resume=args.resume,
                             old_region_down=args.old_region_down,
                             step=lambda line: print(f"  {line}", file=sys.stderr))
    except fo.FailoverRefused as refused:
        print(f"failover refused: {refused}", file=sys.stderr)
        return FAILED
    except fo.FailoverConflict as conflict:
        print(f"failover stopped: {conflict}", file=sys.stderr)
        return FAILED
    fenced = "is fenced" if report.fenced_old_region else (
        f"was unreachable: its lease was waited out ({report.waited_out_lease_seconds:.0f} s), and it stays fenced")
    emit(args, report.as_dict(), f"{to_region} is active (epoch {report.epoch}) after {report.seconds:.1f} s; "
         f"{report.from_region} {fenced}")
    return OK


def cmd_failover(args: argparse.Namespace, regions: Regions) -> int:
    return _failover(args, regions, args.to)


def cmd_failback(args: argparse.Namespace, regions: Regions) -> int:
    return _failover(args, regions, C.PRIMARY_REGION)


def cmd_resolve_incidents(args: argparse.Namespace, regions: Regions) -> int:
    resolved = fo.resolve_incidents(regions, now())
    emit(args, {"resolved": resolved},
         f"resolved {', '.join(resolved)}" if resolved else "no open failover incident")
    return OK


def cmd_sync_secrets(args: argparse.Namespace, regions: Regions) -> int:
    source, replica = _source_and_replica(regions)
    results = webhook_secrets.sync(regions, source, check_only=args.check)
    table = tabulate([[r.source, r.secret, r.state] for r in results], headers=["source", "secret", replica])
    emit(args, {"from": source, "to": replica, "secrets": [r.as_dict() for r in results]},
         f"webhook secrets, {source} (active) -> {replica}\n\n{table}")
    return FAILED if any(r.state == "differs" for r in results) else OK


def cmd_readiness(args: argparse.Namespace, regions: Regions) -> int:
    from chalicelib import readiness

    report = readiness.check(regions, now())
    lines = [f"stage {args.stage}: " + ("ready: the regions match, replication is current, and the last drill "
                                        "is recent" if report.ready else f"{len(report.findings)} finding(s)")]
    if report.findings:
        lines.append(tabulate([[f.check, f.message] for f in report.findings], headers=["check", "finding"]))
    lines += [f"note: {note}" for note in report.notes]
    emit(args, report.as_dict(), "\n\n".join(lines))
    return OK if report.ready else FAILED


def cmd_drill(args: argparse.Namespace, regions: Regions) -> int:
    from dr import drill

    if not regions.endpoint_url:
        print("the drill runs against the local stack: pass --endpoint-url (or set AWS_ENDPOINT_URL)",
              file=sys.stderr)
        return USAGE
    chosen = args.scenario or ["outage"]
    scenarios = list(drill.SCENARIOS) if "all" in chosen else list(dict.fromkeys(chosen))
    urls = drill.Urls(args.global_url, args.primary_url, args.standby_url, regions.endpoint_url)
    report = drill.run_drill(regions, urls, scenarios, rate=args.rate, warmup=args.warmup,
                             say=lambda line: print(line, file=sys.stderr))
    emit(args, report.as_dict(), drill.format_report(report))
    return OK if report.passed else FAILED


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m dr", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stage", default="dev", help="stage whose tables to operate on (default dev)")
    common.add_argument("--endpoint-url", help="an AWS emulator's endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("status", parents=[common], help="both regions at a glance").set_defaults(run=cmd_status)
    replicate = commands.add_parser("replicate", parents=[common], help="sweep changes to the standby")
    replicate.add_argument("--full", action="store_true", help="copy every item, not only recent changes")
    replicate.add_argument("--budget", type=float, default=600.0, help="seconds before stopping (default 600)")
    replicate.set_defaults(run=cmd_replicate)
    verify = commands.add_parser("verify", parents=[common], help="compare both tables")
    verify.add_argument("--repair", action="store_true", help="copy missing/stale items, delete extra ones")
    verify.add_argument("--budget", type=float, default=600.0, help="seconds before stopping (default 600)")
    verify.set_defaults(run=cmd_verify)
    rollup = commands.add_parser("rollups", parents=[common],
                                 help="check the daily rollups against the events; --rebuild computes them again")
    rollup.add_argument("--rebuild", action="store_true",
                        help="compute every differing day again from its events (after an upgrade, or a repair)")
    rollup.set_defaults(run=cmd_rollups)
    commands.add_parser("migrate", parents=[common], help="after upgrading from 0.1.0: identity records for old events"
                        ).set_defaults(run=cmd_migrate)
    moving = argparse.ArgumentParser(add_help=False)  # what failover and failback share
    moving.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    moving.add_argument("--force", action="store_true",
                        help="skip the replication-lag preflight; with the old region unreachable, wait out its lease")
    moving.add_argument("--resume", action="store_true", help="finish a failover that was interrupted")
    moving.add_argument("--old-region-down", action="store_true",
                        help="with --force: the old region is down, not just unreachable from here (needed when it "
                             "became active through a failover, since it then renews its lease alone)")
    over = commands.add_parser("failover", parents=[common, moving], help="make another region active")
    over.add_argument("--to", required=True, choices=C.REGIONS)
    over.set_defaults(run=cmd_failover)
    commands.add_parser("failback", parents=[common, moving], help="make the primary region active again"
                        ).set_defaults(run=cmd_failback)
    commands.add_parser("resolve-incidents", parents=[common], help="resolve the incidents failovers recorded"
                        ).set_defaults(run=cmd_resolve_incidents)
    secrets = commands.add_parser("sync-secrets", parents=[common],
                                  help="copy the active region's webhook secrets to the other region")
    secrets.add_argument("--check", action="store_true", help="only compare; exit 1 when a secret differs")
    secrets.set_defaults(run=cmd_sync_secrets)
    commands.add_parser("readiness", parents=[common], help="could the DR region take over? both regions compared"
                        ).set_defaults(run=cmd_readiness)
    game = commands.add_parser("drill", parents=[common], help="game day on the local stack: lose us-east-1")
    game.add_argument("--scenario", action="append", choices=["outage", "partition", "crash", "all"],
                      help="outage (the default), partition, crash, or all; give it more than once for several")
    game.add_argument("--global-url", default="http://127.0.0.1:8002", help="the Global API, the clients' URL")
    game.add_argument("--primary-url", default="http://127.0.0.1:8000")
    game.add_argument("--standby-url", default="http://127.0.0.1:8001")
    game.add_argument("--rate", type=float, default=10.0, help="writes per second during the drill")
    game.add_argument("--warmup", type=float, default=5.0, help="seconds of writes before the outage")
    game.set_defaults(run=cmd_drill, scenario=None)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    regions = Regions(args.stage, args.endpoint_url)
    try:
        return int(args.run(args, regions))
    except _STOPPED as error:
        print(f"error: {first_line(error)}", file=sys.stderr)
        return FAILED
