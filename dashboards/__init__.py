"""CloudWatch alarms and dashboards for DevOps Metrics, and the command that deploys them
(python -m dashboards). Thresholds and alert e-mail addresses: dashboards/stages.json."""
from __future__ import annotations

from dashboards.references import referenced_metrics

__all__ = ["referenced_metrics"]
