"""The webhook sources' shared secrets, read from Secrets Manager and kept briefly.

A secret has two live versions while it is rotated: AWSCURRENT (the new value) and AWSPREVIOUS (the
one the source may still sign with), and a delivery signed with either is accepted. A function keeps
the versions for at most SECRET_CACHE_SECONDS; a signature that matches none of them makes one fresh
read (at most every SECRET_REFRESH_MIN_SECONDS), so a rotation is seen at once, not five minutes late.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws_errors
from chalicelib import constants as C
from chalicelib.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


@dataclass(frozen=True)
class _Read:
    values: tuple[str, ...]
    at: float


class SecretCache:
    def __init__(self, client: SecretsManagerClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._reads: dict[str, _Read] = {}

    def versions(self, name: str, fresh: bool = False) -> tuple[str, ...]:
        """The secret's live values, AWSCURRENT first. With `fresh`, read again unless the last read
        is younger than SECRET_REFRESH_MIN_SECONDS."""
        read = self._reads.get(name)
        age = self.clock() - read.at if read is not None else None
        limit = C.SECRET_REFRESH_MIN_SECONDS if fresh else C.SECRET_CACHE_SECONDS
        if read is not None and age is not None and age < limit:
            return read.values
        values = tuple(value for stage in C.SECRET_STAGES if (value := self._value(name, stage)) is not None)
        self._reads[name] = _Read(values, self.clock())
        return values

    def verify(self, name: str, matches: Callable[[str], bool]) -> bool:
        """Whether `matches` holds for a live version of the secret (a fresh read before saying no)."""
        if any(matches(value) for value in self.versions(name)):
            return True
        return any(matches(value) for value in self.versions(name, fresh=True))

    def _value(self, name: str, stage: str) -> str | None:
        try:
            answer = self.client.get_secret_value(SecretId=name, VersionStage=stage)
        except (ClientError, BotoCoreError) as error:
            if aws_errors.error_code(error) == "ResourceNotFoundException":
                return None  # no such version (a secret never rotated has no AWSPREVIOUS), or no secret
            raise Unavailable("The webhook secret could not be read; the source should retry.") from error
        return answer.get("SecretString") or None
