"""The webhook secrets in both regions: the same value, so that the standby checks a delivery as the
active region does once it takes over.

Each region's stack generates its own value; a source is given the active region's. `sync` copies
the active region's AWSCURRENT of every source's secret to the other region where they differ (the
standby's old value becomes its AWSPREVIOUS, so nothing signed with it is refused during the copy).
Run it after the first deploy of both regions and after every rotation (docs/webhooks.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import constants as C
from chalicelib import names
from ops.regions import Regions


@dataclass(frozen=True)
class SecretSync:
    source: str
    secret: str
    state: str  # "in sync", "copied" or "differs" (when only checked)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "secret": self.secret, "state": self.state}


def sync(regions: Regions, source_region: str, check_only: bool = False) -> list[SecretSync]:
    """Make the other region's webhook secrets equal to `source_region`'s (or only compare them)."""
    target = regions.peer(source_region)
    origin, replica = regions.secretsmanager(source_region), regions.secretsmanager(target)
    results = []
    for source in C.WEBHOOK_SOURCES:
        name = names.webhook_secret(regions.stage, source)
        value = origin.get_secret_value(SecretId=name)["SecretString"]
        if replica.get_secret_value(SecretId=name)["SecretString"] == value:
            results.append(SecretSync(source, name, "in sync"))
        elif check_only:
            results.append(SecretSync(source, name, "differs"))
        else:
            replica.put_secret_value(SecretId=name, SecretString=value)
            results.append(SecretSync(source, name, "copied"))
    return results
