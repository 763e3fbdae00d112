"""The OpenAPI 3.1 document, built from the same table of operations that aiohttp routes.

Schemas come from the pydantic models (zone documents: the zone file schema itself), which
emit JSON Schema 2020-12, the dialect of OpenAPI 3.1.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from gslb import __version__
from gslb.api.models import SCHEMAS
from gslb.api.table import PREFIX, Operation, ref

ERRORS = {
    400: "The request does not match this document's schema; `field` names the place",
    401: "No token, or an unknown one",
    403: "The token may not do this (a read token on a write)",
    404: "The zone or the part named does not exist",
    408: "The body did not arrive in time",
    409: "The resource changed since it was read (If-Match), or exists already",
    413: "The body is larger than the limit",
    415: "The body is not JSON",
    422: "The request matches the schema but is refused for what a schema cannot say "
    "(a reference to nothing, an address that is not one); `field` names the place",
    503: "Redis is unreachable: nothing was read or changed",
}


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Done"}
    if op.returns is not None and op.ok != 204:
        ok["content"] = {op.media: {"schema": op.returns}}
        if op.media == "application/json" and op.path != "/openapi.json":
            ok["headers"] = (
                {"ETag": {"schema": {"type": "string"}}} if op.path.startswith("/zones/") else {}
            )
    responses = {str(op.ok): ok}
    if op.created:
        responses["201"] = {"description": "Created", "content": ok.get("content", {})}
    codes = set()
    if op.body is not None or op.query or op.method != "GET":
        codes |= {400, 422}
    if op.role is not None:
        codes |= {401, 403} if op.role == "write" or "{zone}" in op.path else {401}
    if "{" in op.path:
        codes.add(404)
    if op.precondition:
        codes.add(409)
    if op.body is not None:
        codes |= {408, 413, 415}
    if op.redis:
        codes.add(503)
    for code in sorted(codes):
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return responses


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    for param in op.query:
        parameters.append(
            {
                "name": param.name,
                "in": "query",
                "required": param.required,
                "schema": param.schema,
                "description": param.description,
            }
        )
    if op.precondition:
        for header, text in (
            ("If-Match", "the ETag read before: refuse (409) if the resource changed since"),
            ("If-None-Match", "`*`: refuse (409) if the resource exists already"),
        ):
            parameters.append(
                {
                    "name": header,
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": text,
                }
            )
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": op.method.lower() + re.sub(r"[^a-z]+", "_", op.path),
        "parameters": parameters,
        "responses": _responses(op),
        "security": [{"bearer": []}] if op.role is not None else [],
    }
    if op.body is not None:
        media = ["application/json"]
        if op.method == "PATCH":
            media.insert(0, "application/merge-patch+json")
        out["requestBody"] = {
            "required": True,
            "content": {m: {"schema": op.body} for m in media},
        }
    return out


_built: dict[int, dict[str, Any]] = {}


def document(operations: tuple[Operation, ...]) -> dict[str, Any]:
    """The OpenAPI document of `operations`, built once per table (the table never changes;
    its operations hold dicts, so it is remembered by identity, not by hash)."""
    built = _built.get(id(operations))
    if built is None:
        built = _built[id(operations)] = _document(operations)
    return built


def _document(operations: tuple[Operation, ...]) -> dict[str, Any]:
    _, defs = models_json_schema(
        [(model, "validation") for model in SCHEMAS],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gslb",
            "version": __version__,
            "description": "Zones, pools and members of a gslb cluster, and their live state. "
            "Documents have the shape of the zone files (docs/zones.md), as JSON.",
        },
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
