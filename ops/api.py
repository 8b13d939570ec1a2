"""The service's own HTTP API, as an operator command reads it: the local stack's, unsigned, or a
deployed stage's, signed with SigV4 (botocore's signer and the caller's credentials), since the
deployed /metrics routes take IAM auth."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

TIMEOUT_SECONDS = 30.0


class ApiError(RuntimeError):
    """The API answered with an error: its status and the service's error shape's message."""


class Api:
    def __init__(self, base_url: str, region: str | None = None, sign: bool | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        host = urlsplit(self.base_url).hostname or ""
        # A deployed stage's URL is https://<id>.execute-api.<region>.amazonaws.com/<stage>.
        self.sign = sign if sign is not None else host.endswith(".amazonaws.com")
        self.region = region or (host.split(".")[2] if self.sign and host.count(".") >= 4 else None)

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        url = f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        headers: dict[str, str] = {}
        if self.sign:
            credentials = boto3.Session().get_credentials()
            if credentials is None:
                raise ApiError("no AWS credentials to sign the request with")
            request = AWSRequest(method="GET", url=url)
            SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region or "us-east-1").add_auth(request)
            headers = dict(request.headers.items())
        response = requests.get(url, headers=headers, timeout=TIMEOUT_SECONDS)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise ApiError(f"GET {path} answered {response.status_code}: {message}")
        return response.json()
