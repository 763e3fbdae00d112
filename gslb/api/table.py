"""The shape of the API's table of operations: what aiohttp routes and OpenAPI describes.

Its own module so that the OpenAPI builder takes the table as an argument instead of
importing the routes (which serve the document it builds).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gslb.api.auth import Role

PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Json = Any


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Json]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below PREFIX
    handler: Handler
    summary: str
    tag: str
    role: Role | None = "read"  # None: open to anyone
    body: dict[str, Json] | None = None  # JSON schema of the request body
    ok: int = 200
    returns: dict[str, Json] | None = None  # JSON schema of the success body
    media: str = "application/json"
    query: tuple[Param, ...] = ()
    precondition: bool = False  # takes If-Match / If-None-Match, may answer 409
    created: bool = False  # may answer 201 for a new resource
    redis: bool = True  # needs Redis: may answer 503
    extra: dict[str, Json] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def ref(name: str) -> dict[str, Json]:
    return {"$ref": f"#/components/schemas/{name}"}
