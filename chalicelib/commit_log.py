"""Each repository's pushes, so that a deployment's lead time runs from every commit it ships.

A push delivery (or a build's head commit) is kept under its repository: pk=R#<source>#<repository>,
sk=P#<received at>#<delivery>, its commits in the source's order. A successful deployment of sha S
ships the commits pushed since the previous successful deployment in its environment, up to S:
pushes of every branch, so the commits of a branch that was squash-merged count from when they were
pushed, not from the squash. Each successful deployment leaves a marker, sk=S#<environment>#<deployed
at>#<deployment id>, naming the push it shipped up to.

Resolution is a function of what is stored, so a delivery that is retried resolves as it did the
first time (its own marker sorts after the bound it reads below), and deployments that arrive out of
order each ship their own commits: a commit counts at its first deployment (chalicelib.dora).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Table
from chalicelib.sources import CommitRef, Push
from chalicelib.times import format_time


@dataclass(frozen=True)
class Shipped:
    commits: tuple[CommitRef, ...]  # oldest first, each sha once, at most MAX_COMMITS (the newest)
    found: bool  # S was among the pushes (else the commits are empty)


def log_pk(source: str, repository: str) -> str:
    return f"{C.COMMIT_LOG_PK_PREFIX}{source}#{repository}"


class CommitLog:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, source: str, push: Push, delivery: str, now: datetime) -> None:
        pk = log_pk(source, push.repository)
        sk = f"{C.PUSH_SK_PREFIX}{format_time(now)}#{delivery}"
        commits = [[c.sha, c.timestamp] for c in push.commits[-C.MAX_COMMITS:]]
        expires = now + timedelta(days=C.COMMIT_LOOKBACK_DAYS)
        self.table.put({**K.key(pk, sk), "commits": {"S": json.dumps(commits, separators=(",", ":"))},
                        C.TTL_ATTRIBUTE: {"N": str(int(expires.timestamp()))}}
                       | K.change_stamp(pk, sk, now, self.table.region))

    def ship(self, source: str, repository: str, environment: str, deployment_id: str, sha: str,
             deployed_at: str, succeeded: bool, now: datetime) -> Shipped:
        """The commits a deployment of `sha` ships; a successful one also leaves its marker."""
        pk = log_pk(source, repository)
        marker = f"{C.SHIPPED_SK_PREFIX}{environment}#{deployed_at}#{deployment_id}"
        previous = self._previous(pk, environment, marker)
        earliest = f"{C.PUSH_SK_PREFIX}{format_time(now - timedelta(days=C.COMMIT_LOOKBACK_DAYS))}"
        since = max(previous or earliest, earliest)
        shipped, upto = self._since(pk, since, sha)
        if upto is None:  # S was pushed before the previous deployment (a redeploy), or not seen at all
            again = [commit for commit, _ in self._pushes(pk, earliest) if _same(commit.sha, sha)]
            shipped = again[:1]
        if succeeded:
            self.table.put({**K.key(pk, marker), "upto": {"S": upto or previous or earliest}, "sha": {"S": sha}}
                           | K.change_stamp(pk, marker, now, self.table.region))
        unique: dict[str, CommitRef] = {}
        for commit in shipped:
            unique.setdefault(commit.sha, commit)
        ordered = sorted(unique.values(), key=lambda c: c.timestamp)[-C.MAX_COMMITS:]
        return Shipped(tuple(ordered), bool(ordered))

    def _previous(self, pk: str, environment: str, marker: str) -> str | None:
        """The push the previous successful deployment in `environment` shipped up to."""
        page = self.table.query(KeyConditionExpression="pk = :pk AND sk < :marker", ScanIndexForward=False,
                                Limit=1, ExpressionAttributeValues={":pk": {"S": pk}, ":marker": {"S": marker}})
        prefix = f"{C.SHIPPED_SK_PREFIX}{environment}#"
        if page.items and page.items[0]["sk"]["S"].startswith(prefix):
            return str(page.items[0]["upto"]["S"])
        return None

    def _since(self, pk: str, since: str, sha: str) -> tuple[list[CommitRef], str | None]:
        """The commits of the pushes after `since` up to the first that holds `sha` (and in that
        push, those no later than it), and that push's sort key; ([], None) when none holds it."""
        commits: list[CommitRef] = []
        pushes: dict[str, list[CommitRef]] = {}
        for commit, push_sk in self._pushes(pk, since):
            pushes.setdefault(push_sk, []).append(commit)
        for push_sk, listed in pushes.items():
            head = next((c for c in listed if _same(c.sha, sha)), None)
            if head is not None:
                return commits + [c for c in listed if c.timestamp <= head.timestamp], push_sk
            commits.extend(listed)
        return [], None

    def _pushes(self, pk: str, after: str) -> Iterator[tuple[CommitRef, str]]:
        """Every commit of the pushes after the sort key `after`, oldest push first."""
        for page in self.table.query_pages(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :after AND :end",
                ExpressionAttributeValues={":pk": {"S": pk}, ":after": {"S": after},
                                           ":end": {"S": C.PUSH_SK_PREFIX + C.KEY_UPPER_SENTINEL}},
                ConsistentRead=True, FilterExpression=K.LIVE):
            for item in page.items:
                if item["sk"]["S"] == after:
                    continue  # the push the previous deployment shipped up to: not this one's
                for sha, stamp in json.loads(item["commits"]["S"]):
                    yield CommitRef(sha, stamp), item["sk"]["S"]


def _same(listed: str, deployed: str) -> bool:
    """One sha, either of them possibly abbreviated (at least 7 hex digits)."""
    listed, deployed = listed.lower(), deployed.lower()
    return listed.startswith(deployed) or deployed.startswith(listed)
