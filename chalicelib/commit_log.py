"""Each repository's pushes, so that a deployment's lead time runs from every commit it ships.

Under pk=R#<source>#<repository>:
  push            sk=P#<received at>#<delivery>   the commits of a push delivery, in the source's order
  head commit     sk=H#<received at>#<delivery>   a build's head commit, used only when no push holds a sha
  delivery        sk=D#<delivery>                 which sort key a delivery's commits were kept under, so a
                                                  retried delivery rewrites the same item, not a second one
  shipped marker  sk=S#<environment>#<deployed at>#<deployment id>   a successful deployment: the push and
                                                  the sha it shipped up to

A successful deployment of sha S ships the commits pushed since the previous successful deployment in
its environment (after that deployment's sha, in its push), up to S: pushes of every branch, so the
commits of a branch that was squash-merged count from when they were pushed, not from the squash.

Resolution is a function of what is stored, so a delivery that is retried resolves as it did the
first time (its own marker is not its previous one), and deployments that arrive out of order each
ship their own commits: a commit counts at its first deployment (chalicelib.dora).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Item, Table
from chalicelib.sources import CommitRef, Push
from chalicelib.times import format_time

HEAD_SK_PREFIX = "H#"
DELIVERY_SK_PREFIX = "D#"
_MARKER_SCAN = 25  # markers read back (newest first) to step over this deployment's own earlier ones


@dataclass(frozen=True)
class Shipped:
    commits: tuple[CommitRef, ...]  # oldest first, each sha once, at most MAX_COMMITS (the newest)

    @property
    def found(self) -> bool:
        return bool(self.commits)


@dataclass(frozen=True)
class _Bound:
    """Where the previous successful deployment stopped: a push's sort key, and the sha in it."""

    push_sk: str
    sha: str | None


def log_pk(source: str, repository: str) -> str:
    return f"{C.COMMIT_LOG_PK_PREFIX}{source}#{repository}"


def same_sha(listed: str, deployed: str) -> bool:
    """One sha, either of them possibly abbreviated (at least 7 hex digits: both are SHA_PATTERN)."""
    listed, deployed = listed.lower(), deployed.lower()
    return listed.startswith(deployed) or deployed.startswith(listed)


class CommitLog:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, source: str, push: Push, delivery: str, now: datetime, head: bool = False) -> None:
        """Keep a push's commits (or, with `head`, a build's head commit). A delivery sent again
        rewrites the item it wrote the first time."""
        pk = log_pk(source, push.repository)
        prefix = HEAD_SK_PREFIX if head else C.PUSH_SK_PREFIX
        sk = f"{prefix}{format_time(now)}#{delivery}"
        expires = {C.TTL_ATTRIBUTE: {"N": str(int((now + timedelta(days=C.COMMIT_LOOKBACK_DAYS)).timestamp()))}}
        pointer_sk = f"{DELIVERY_SK_PREFIX}{delivery}"
        pointer = {**K.key(pk, pointer_sk), "item_sk": {"S": sk}, **expires}
        if not self.table.put(pointer | K.change_stamp(pk, pointer_sk, now, self.table.region),
                              condition="attribute_not_exists(pk)"):
            kept = self.table.get(K.key(pk, pointer_sk))
            sk = kept["item_sk"]["S"] if kept is not None else sk
        commits = [[c.sha, c.timestamp] for c in push.commits[-C.MAX_COMMITS:]]
        self.table.put({**K.key(pk, sk), "commits": {"S": json.dumps(commits, separators=(",", ":"))}, **expires}
                       | K.change_stamp(pk, sk, now, self.table.region))

    def ship(self, source: str, repository: str, environment: str, deployment_id: str, sha: str,
             deployed_at: str, succeeded: bool, now: datetime) -> Shipped:
        """The commits a deployment of `sha` ships; a successful one also leaves its marker."""
        pk = log_pk(source, repository)
        marker = f"{C.SHIPPED_SK_PREFIX}{environment}#{deployed_at}#{deployment_id}"
        earliest = f"{C.PUSH_SK_PREFIX}{format_time(now - timedelta(days=C.COMMIT_LOOKBACK_DAYS))}"
        bound = self._previous(pk, environment, deployment_id, marker)
        if bound is None or bound.push_sk < earliest:
            bound = _Bound(earliest, None)
        shipped, upto = self._since(pk, bound, sha)
        if upto is None:  # S was pushed before the previous deployment (a redeploy), or only built
            again = [c for c, _ in self._items(pk, C.PUSH_SK_PREFIX, earliest) if same_sha(c.sha, sha)]
            again = again or [c for c, _ in self._items(pk, HEAD_SK_PREFIX, HEAD_SK_PREFIX) if same_sha(c.sha, sha)]
            shipped = again[:1]
        if succeeded:
            stopped_at = sha if upto is not None else bound.sha  # the last sha shipped in that push
            self.table.put({**K.key(pk, marker), "upto": {"S": upto or bound.push_sk}, "sha": {"S": sha},
                            "upto_sha": {"S": stopped_at or ""}}
                           | K.change_stamp(pk, marker, now, self.table.region))
        unique: dict[str, CommitRef] = {}
        for commit in shipped:
            unique.setdefault(commit.sha, commit)
        return Shipped(tuple(list(unique.values())[-C.MAX_COMMITS:]))

    def _previous(self, pk: str, environment: str, deployment_id: str, marker: str) -> _Bound | None:
        """Where the previous successful deployment in `environment` (another deployment than this
        one) stopped."""
        prefix = f"{C.SHIPPED_SK_PREFIX}{environment}#"
        page = self.table.query(KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                                ScanIndexForward=False, Limit=_MARKER_SCAN, ConsistentRead=True,
                                ExpressionAttributeValues={":pk": {"S": pk}, ":lo": {"S": prefix},
                                                           ":hi": {"S": marker}})
        for item in page.items:
            if item["sk"]["S"] != marker and not item["sk"]["S"].endswith(f"#{deployment_id}"):
                return _Bound(str(item["upto"]["S"]), item.get("upto_sha", {}).get("S") or None)
        return None

    def _since(self, pk: str, bound: _Bound, sha: str) -> tuple[list[CommitRef], str | None]:
        """The commits after the bound up to `sha` (in its push, by position), and the sort key of the
        push that holds it; ([], None) when no push after the bound does."""
        commits: list[CommitRef] = []
        current: str | None = None
        listed: list[CommitRef] = []

        def cut(push: list[CommitRef], push_sk: str) -> list[CommitRef]:
            if push_sk == bound.push_sk and bound.sha is not None:  # resume after the bound's sha
                index = next((i for i, c in enumerate(push) if same_sha(c.sha, bound.sha)), None)
                return push[index + 1:] if index is not None else []
            return [] if push_sk == bound.push_sk else push

        def settle(push: list[CommitRef], push_sk: str) -> str | None:
            kept = cut(push, push_sk)
            index = next((i for i, c in enumerate(kept) if same_sha(c.sha, sha)), None)
            if index is None:
                commits.extend(kept)
                return None
            commits.extend(kept[:index + 1])
            return push_sk

        for commit, push_sk in self._items(pk, C.PUSH_SK_PREFIX, bound.push_sk):
            if push_sk != current:
                if current is not None and settle(listed, current) is not None:
                    return commits, current
                current, listed = push_sk, []
            listed.append(commit)
        if current is not None and settle(listed, current) is not None:
            return commits, current
        return [], None

    def _items(self, pk: str, prefix: str, start: str) -> Iterator[tuple[CommitRef, str]]:
        """Every commit of the items from the sort key `start` (included) to the end of `prefix`,
        oldest first, read page by page as the caller goes."""
        for page in self.table.query_pages(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :start AND :end",
                ExpressionAttributeValues={":pk": {"S": pk}, ":start": {"S": start},
                                           ":end": {"S": prefix + C.KEY_UPPER_SENTINEL}},
                ConsistentRead=True, FilterExpression=K.LIVE):
            for item in page.items:
                yield from ((CommitRef(s, t), item["sk"]["S"]) for s, t in _commits(item))


def _commits(item: Item) -> list[tuple[str, str]]:
    return [(str(s), str(t)) for s, t in json.loads(item["commits"]["S"])]
