"""The DORA benchmark tables a summary rates its metrics by, as the reports published them, and the
rule that turns each report's words into a tier. Pure data and one function (`rate`).

The reports describe clusters in words ("between once per week and once per month") or, for change
fail rate since 2023, by a single value per cluster. The rules:
  - a range becomes a bound on the side of the better cluster; a value the published ranges leave
    out (the reports have gaps and overlaps) is rated in the best cluster whose bound it meets, and
    below every bound it is low;
  - a cluster value ("5%") is rated by the nearest published value; a value exactly between two
    goes to the better cluster;
  - time units: a day is 24 h, a week 7 days, a month 30 days, six months 180 days; "on demand
    (multiple deploys per day)" is read as at least one successful deployment a day.
Deployment rework rate has no published clusters in these reports, so it has no tier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOUR, DAY = 1.0, 24.0  # in hours
WEEK, MONTH, SIX_MONTHS = 7 * DAY, 30 * DAY, 180 * DAY
TIERS = ("elite", "high", "medium", "low")
LOWEST = "low"

Op = Literal["<", "<=", ">="]


@dataclass(frozen=True)
class Scale:
    """How one report rates one metric: bounds, tried in order (the first met wins, else low), or
    cluster values (the nearest wins); and the words it published, per cluster."""

    published: tuple[tuple[str, str], ...]
    bounds: tuple[tuple[str, Op, float], ...] = ()
    values: tuple[tuple[str, float], ...] = ()

    def rate(self, value: float) -> str:
        if self.values:
            rank = {tier: i for i, tier in enumerate(TIERS)}
            return min(self.values, key=lambda cluster: (round(abs(value - cluster[1]), 12), rank[cluster[0]]))[0]
        for tier, op, bound in self.bounds:
            if (op == "<" and value < bound) or (op == "<=" and value <= bound) or (op == ">=" and value >= bound):
                return tier
        return LOWEST


@dataclass(frozen=True)
class Benchmark:
    name: str
    report: str
    where: str  # page or section of the report
    url: str
    scales: dict[str, Scale | None]  # metric key -> its scale (None: the report rates it not)

    def rate(self, metric: str, value: float | None) -> str | None:
        scale = self.scales.get(metric)
        return scale.rate(value) if scale is not None and value is not None else None

    def source(self) -> dict[str, str]:
        return {"name": self.name, "report": self.report, "where": self.where, "url": self.url}


_ON_DEMAND = ("elite", "On-demand (multiple deploys per day)")

BENCHMARKS: dict[str, Benchmark] = {
    "2021": Benchmark(
        "2021", "Accelerate State of DevOps 2021 (Google Cloud, DORA)",
        "p. 9, \"Software delivery and operational performance\"",
        "https://dora.dev/research/2021/dora-report/2021-dora-accelerate-state-of-devops-report.pdf",
        {
            # A frequency between daily and weekly falls in no published range: high, the best it meets.
            "deployment_frequency": Scale(
                (_ON_DEMAND, ("high", "Between once per week and once per month"),
                 ("medium", "Between once per month and once every 6 months"),
                 ("low", "Fewer than once per six months")),
                bounds=(("elite", ">=", 1.0), ("high", ">=", 1 / 30), ("medium", ">=", 1 / 180))),
            "change_lead_time": Scale(
                (("elite", "Less than one hour"), ("high", "Between one day and one week"),
                 ("medium", "Between one month and six months"), ("low", "More than six months")),
                bounds=(("elite", "<", HOUR), ("high", "<=", WEEK), ("medium", "<=", SIX_MONTHS))),
            # High, medium and low share one band: a value in it is high, one above it low.
            "change_fail_rate": Scale(
                (("elite", "0%-15%"), ("high", "16%-30%"), ("medium", "16%-30%"), ("low", "16%-30%")),
                bounds=(("elite", "<=", 0.15), ("high", "<=", 0.30))),
            "failed_deployment_recovery_time": Scale(
                (("elite", "Less than one hour"), ("high", "Less than one day"),
                 ("medium", "Between one day and one week"), ("low", "More than six months")),
                bounds=(("elite", "<", HOUR), ("high", "<", DAY), ("medium", "<=", WEEK))),
            "deployment_rework_rate": None,
        }),
    "2023": Benchmark(
        "2023", "Accelerate State of DevOps 2023 (Google Cloud, DORA)",
        "chapter 1, \"How do you compare?\" (software delivery performance clusters)",
        "https://dora.dev/research/2023/dora-report/",
        {
            # The report gives low the same frequency and lead time ranges as medium: below medium is low.
            "deployment_frequency": Scale(
                (("elite", "On demand"), ("high", "Between once per day and once per week"),
                 ("medium", "Between once per week and once per month"),
                 ("low", "Between once per week and once per month")),
                bounds=(("elite", ">=", 1.0), ("high", ">=", 1 / 7), ("medium", ">=", 1 / 30))),
            "change_lead_time": Scale(
                (("elite", "Less than one day"), ("high", "Between one day and one week"),
                 ("medium", "Between one week and one month"), ("low", "Between one week and one month")),
                bounds=(("elite", "<", DAY), ("high", "<=", WEEK), ("medium", "<=", MONTH))),
            "change_fail_rate": Scale(
                (("elite", "5%"), ("high", "10%"), ("medium", "15%"), ("low", "64%")),
                values=(("elite", 0.05), ("high", 0.10), ("medium", 0.15), ("low", 0.64))),
            "failed_deployment_recovery_time": Scale(
                (("elite", "Less than one hour"), ("high", "Less than one day"),
                 ("medium", "Between one day and one week"), ("low", "Between one month and six months")),
                bounds=(("elite", "<", HOUR), ("high", "<", DAY), ("medium", "<=", WEEK))),
            "deployment_rework_rate": None,
        }),
    "2024": Benchmark(
        "2024", "Accelerate State of DevOps 2024 (DORA)", "p. 13, software delivery performance clusters",
        "https://dora.dev/research/2024/dora-report/",
        {
            "deployment_frequency": Scale(
                (_ON_DEMAND, ("high", "Between once per day and once per week"),
                 ("medium", "Between once per week and once per month"),
                 ("low", "Between once per month and once every six months")),
                bounds=(("elite", ">=", 1.0), ("high", ">=", 1 / 7), ("medium", ">=", 1 / 30))),
            "change_lead_time": Scale(
                (("elite", "Less than one day"), ("high", "Between one day and one week"),
                 ("medium", "Between one week and one month"), ("low", "Between one month and six months")),
                bounds=(("elite", "<", DAY), ("high", "<=", WEEK), ("medium", "<=", MONTH))),
            # Not ordered as the clusters are (high 20%, medium 10%): rated by the nearest value as
            # published, so 10% reads medium and 20% high.
            "change_fail_rate": Scale(
                (("elite", "5%"), ("high", "20%"), ("medium", "10%"), ("low", "40%")),
                values=(("elite", 0.05), ("high", 0.20), ("medium", 0.10), ("low", 0.40))),
            # High and medium share "less than one day": under a day is high, more than a day low.
            "failed_deployment_recovery_time": Scale(
                (("elite", "Less than one hour"), ("high", "Less than one day"), ("medium", "Less than one day"),
                 ("low", "Between one week and one month")),
                bounds=(("elite", "<", HOUR), ("high", "<", DAY))),
            "deployment_rework_rate": None,
        }),
}
