"""How each webhook source proves a delivery is its own. Pure: given the headers, the raw body and
one candidate secret, does the delivery carry that secret's proof? Every comparison is constant time.

  github     X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>
  gitlab     X-Gitlab-Token: <the secret itself>
  pagerduty  X-PagerDuty-Signature: v1=<hex HMAC-SHA256>[,v1=<hex>...]   (any one may match)
  cdevents   X-CDEvents-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>   (GitHub's scheme)
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib import constants as C


@dataclass(frozen=True)
class Scheme:
    header: str  # where the proof travels
    check: Callable[[str, bytes, str], bool]  # (header value, raw body, secret) -> proven


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _prefixed_hmac(prefix: str) -> Callable[[str, bytes, str], bool]:
    def check(value: str, body: bytes, secret: str) -> bool:
        expected = prefix + _hmac_hex(secret, body)
        return hmac.compare_digest(value.strip().encode(), expected.encode())
    return check


def _token(value: str, body: bytes, secret: str) -> bool:
    return hmac.compare_digest(value.encode(), secret.encode())


def _pagerduty(value: str, body: bytes, secret: str) -> bool:
    expected = ("v1=" + _hmac_hex(secret, body)).encode()
    # Compare every signature, so the time taken does not say which one matched.
    results = [hmac.compare_digest(part.strip().encode(), expected) for part in value.split(",")]
    return any(results)


SCHEMES: dict[str, Scheme] = {
    "github": Scheme("X-Hub-Signature-256", _prefixed_hmac("sha256=")),
    "gitlab": Scheme("X-Gitlab-Token", _token),
    "pagerduty": Scheme("X-PagerDuty-Signature", _pagerduty),
    "cdevents": Scheme(C.CDEVENTS_SIGNATURE_HEADER, _prefixed_hmac("sha256=")),
}


def proof(source: str, headers: Mapping[str, str]) -> str | None:
    """The proof a delivery carries, or None when its header is missing or empty."""
    value = headers.get(SCHEMES[source].header.lower()) or headers.get(SCHEMES[source].header)
    return value if value else None


def proves(source: str, value: str, body: bytes, secret: str) -> bool:
    return SCHEMES[source].check(value, body, secret)


def sign(source: str, body: bytes, secret: str) -> dict[str, str]:
    """The header a source would send for `body` signed with `secret` (tests, the local helper)."""
    scheme = SCHEMES[source]
    value = {"github": "sha256=", "cdevents": "sha256=", "pagerduty": "v1="}.get(source)
    return {scheme.header: secret if value is None else value + _hmac_hex(secret, body)}
