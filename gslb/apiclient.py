"""A small client of the REST API (docs/api.md), for the tools that drive a running server:
`gslb zones apply|export`, `gslb drain`, the octoDNS provider and the external-dns webhook.

It sends JSON with the bearer token and gives back the status, the body and the ETag; an
error status becomes `ApiFailure` carrying the server's message, which names the field at
fault. Paths are built from segments quoted by the library (`path("zones", name)`): a zone
or pool name is data, never pasted into a URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class ApiFailure(Exception):
    """A refused or failed request: `status` is the HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def path(*segments: str, query: dict[str, str] | None = None) -> str:
    """`/a/b` from segments, each quoted whole, and an optional query string."""
    out = "/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    return out + ("?" + urllib.parse.urlencode(query) if query else "")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    etag: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ApiClient:
    def __init__(self, base: str, token: str | None, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def call(
        self, method: str, where: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        """`method` on `where` (from `path`), with `body` as JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + where, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Response(response.status, response.read(), response.headers.get("ETag"))
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw)["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace")[:200]
            raise ApiFailure(f"{method} {where}: {e.code} {message}", e.code) from None
        except OSError as e:
            raise ApiFailure(f"{method} {where}: cannot reach {self.base}: {e}") from None

    def zone(self, name: str) -> tuple[dict[str, Any], str | None] | None:
        """The zone document and its ETag, or None when there is no such zone."""
        try:
            got = self.call("GET", path("zones", name))
        except ApiFailure as e:
            if e.status == 404:
                return None
            raise
        return got.json(), got.etag

    def put_zone(self, name: str, doc: dict[str, Any], etag: str | None) -> Response:
        """Replace the zone whole, only if it is still what `etag` says (None: only if it
        does not exist yet); otherwise 409 and nothing is written."""
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        return self.call("PUT", path("zones", name), doc, headers)
