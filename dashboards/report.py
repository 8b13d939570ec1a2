"""A DORA report people look at: one self-contained HTML file (inline SVG and CSS, no script, no
font or image from the network) with each metric's current value and tier, its weekly trend, and
the events behind the latest week. Built from the API's own answers (GET /metrics/summary and
GET /metrics/trends?explain=true), so it shows what the API says and nothing else.

  python -m dashboards report (--service S | --team T) [--weeks 12] [--url URL] --out FILE.html
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ops.api import Api

# The metrics in the order DORA lists them, with the colour of each one's card (a test looks for
# these colours in a screenshot of the page).
METRICS: tuple[tuple[str, str, str], ...] = (
    ("change_lead_time", "Change lead time", "#1f6fb4"),
    ("deployment_frequency", "Deployment frequency", "#e07b10"),
    ("failed_deployment_recovery_time", "Failed deployment recovery time", "#2c9f2c"),
    ("change_fail_rate", "Change fail rate", "#c9302c"),
    ("deployment_rework_rate", "Deployment rework rate", "#8a56c2"),
    ("time_to_restore", "Time to restore (incidents)", "#7a5a44"),
)
COUNTED = {"change_lead_time": "commits", "deployment_frequency": "successful deployments",
           "failed_deployment_recovery_time": "recovered failures", "change_fail_rate": "deployments",
           "deployment_rework_rate": "deployments", "time_to_restore": "incidents"}
TIER_COLOURS = {"elite": "#0b7a3b", "high": "#3a7bd5", "medium": "#c98a00", "low": "#b3261e", None: "#777777"}


def fetch(api: Api, who: Mapping[str, str], weeks: int, environment: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary over the report's weeks and the weekly trends, with the events behind them."""
    query = {**who, "environment": environment}
    summary = api.get("/metrics/summary", {**query, "days": 7 * weeks})
    trends = api.get("/metrics/trends", {**query, "bucket": "week", "count": weeks, "explain": "true"})
    return summary, trends


def value_text(metric: Mapping[str, Any]) -> str:
    value, unit = metric.get("value"), metric.get("unit")
    if value is None:
        return "no data"
    if unit == "per_day":
        return f"{value:.2f} a day" if value >= 1 / 7 else f"{value * 7:.2f} a week"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def _chart(values: Sequence[float | None], partial_last: bool, colour: str) -> str:
    """Bars of the weekly values, scaled to the largest; a gap for a week without a value; the
    current, partial week drawn lighter."""
    width, height, gap = 300, 70, 3
    bar = (width - gap * (len(values) - 1)) / max(len(values), 1)
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    bars = []
    for i, value in enumerate(values):
        x = i * (bar + gap)
        if value is None:
            bars.append(f'<rect x="{x:.1f}" y="{height - 2}" width="{bar:.1f}" height="2" fill="#dddddd"/>')
            continue
        h = max(2.0, value / top * (height - 4))
        opacity = "0.45" if partial_last and i == len(values) - 1 else "1"
        bars.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}" '
                    f'fill-opacity="{opacity}"/>')
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
            f'preserveAspectRatio="none" role="img">'
            + "".join(bars) + "</svg>")


def _ids(metric: Mapping[str, Any]) -> str:
    listed = metric.get("matching") or metric.get("events") or {"ids": [], "truncated": False}
    if not listed["ids"]:
        return '<span class="none">none</span>'
    more = " …" if listed["truncated"] else ""
    return ", ".join(f"<code>{html.escape(i)}</code>" for i in listed["ids"][:12]) + (
        f" and {len(listed['ids']) - 12} more" if len(listed["ids"]) > 12 else "") + more


def render(summary: Mapping[str, Any], trends: Mapping[str, Any]) -> str:
    buckets = trends["buckets"]
    who = (f"team {summary['team']} ({', '.join(summary['services'])})" if summary.get("team")
           else f"service {summary['service']}")
    benchmark = summary["benchmark"]
    cards, rows = [], []
    for key, title, colour in METRICS:
        metric = summary[key]
        tier = metric.get("tier")
        series = [b[key]["value"] for b in buckets]
        cards.append(
            f'<section class="card" style="border-top-color:{colour}">'
            f'<h2>{html.escape(title)}</h2>'
            f'<p class="value">{html.escape(value_text(metric))}</p>'
            f'<p><span class="tier" style="background:{TIER_COLOURS.get(tier, "#777777")}">'
            f'{html.escape(tier or "no tier")}</span> '
            f'<span class="count">from {metric["count"]} {COUNTED[key]}</span></p>'
            f'{_chart(series, bool(buckets and buckets[-1]["partial"]), colour)}'
            f'<p class="axis">{html.escape(buckets[0]["start"][:10])} … this week</p></section>')
        rows.append(f"<tr><th>{html.escape(title)}</th><td>{html.escape(value_text(buckets[-1][key]))}</td>"
                    f"<td>{_ids(buckets[-1][key])}</td></tr>")
    window = summary["window"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>DORA report: {html.escape(who)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1d1d1f;
       background: #fafafa; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
.sub {{ color: #555; margin: 0 0 18px; font-size: 13px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 14px;
         max-width: 1060px; }}
.card {{ background: #fff; border: 1px solid #ddd; border-top: 8px solid; border-radius: 6px; padding: 10px 14px; }}
.card h2 {{ font-size: 14px; margin: 0; color: #333; }}
.value {{ font-size: 26px; margin: 6px 0 2px; font-weight: 600; }}
.tier {{ color: #fff; border-radius: 10px; padding: 1px 9px; font-size: 12px; text-transform: uppercase; }}
.count, .axis, .none {{ color: #666; font-size: 12px; }}
.chart {{ display: block; margin-top: 8px; }}
table {{ border-collapse: collapse; margin-top: 22px; background: #fff; font-size: 13px; max-width: 1020px; }}
th, td {{ border: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>DORA report: {html.escape(who)}</h1>
<p class="sub">Environment {html.escape(summary["environment"])}, {html.escape(window["start"][:10])} to
{html.escape(window["end"][:10])} ({summary["days"]} days), weekly bars (ISO weeks, UTC; the current week lighter).
Tiers by {html.escape(benchmark["report"])}, {html.escape(benchmark["where"])}.</p>
<div class="grid">{"".join(cards)}</div>
<table><caption style="text-align:left;font-weight:600;padding:4px 0">The events behind this week</caption>
<tr><th>metric</th><th>this week</th><th>events (for a rate: those it counts as failed or unplanned)</th></tr>
{"".join(rows)}
</table>
</body></html>
"""


def write_report(api: Api, who: Mapping[str, str], out: Path, weeks: int = 12,
                 environment: str = "production") -> Path:
    summary, trends = fetch(api, who, weeks, environment)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(summary, trends))
    return out
