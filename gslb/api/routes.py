"""The REST API under `/api/v1/` (docs/api.md).

One table of operations (`OPERATIONS`) is both what aiohttp routes and what the OpenAPI
document at `/api/v1/openapi.json` describes, so the two cannot drift apart.

Every write is an edit of one zone document: the handler names the resource (`pick`) and
the change (`change`); `_write` runs them inside the store's optimistic transaction, checks
If-Match / If-None-Match against the resource as it is now, validates the whole resulting
document, and stores it with its audit record in one MULTI/EXEC — or changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gslb.api import documents
from gslb.api.auth import Principal, Role, Tokens
from gslb.api.documents import Conflict, DocumentError, Json, NotFound, etag, zone_key
from gslb.api.events import EventHub, stream
from gslb.api.openapi import document
from gslb.api.table import PREFIX, Handler, Operation, Param, ref
from gslb.common import logs
from gslb.common.redis import REDIS_ERRORS
from gslb.core.explain import explain as run_explain
from gslb.schema import LOAD
from gslb.schema import Load as LoadReport
from gslb.state.store import ANSWER_BUCKET, LOAD_FRESH, Store, StoredZone

if TYPE_CHECKING:
    from gslb.core.snapshot import Snapshot

log = logs.get("gslb.api")

JSON_TYPES = ("application/json", "application/merge-patch+json")


class Api:
    """What the handlers need from the process: the store, the snapshot, tokens, events."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        snapshot: Callable[[], Snapshot],
        tokens: Tokens,
        redis_up: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self.redis_up = redis_up
        self.snapshot = snapshot
        self.tokens = tokens
        self.hub: EventHub | None = None

    @property
    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise ApiError(503, "no connection to the shared state yet")
        return store

    def events(self) -> EventHub:
        if self.hub is None:
            self.hub = EventHub(self.store.redis, self.redis_up)
        return self.hub

    def authorize(self, request: web.Request, role: Role) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            if role == "read" and self.tokens.read_open:
                return Principal("anonymous", "read")
            raise ApiError(401, "a bearer token is required (Authorization: Bearer TOKEN)")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "give the token as Authorization: Bearer TOKEN")
        principal = self.tokens.identify(token.strip())
        if principal is None:
            raise ApiError(401, "unknown token")
        if not principal.may(role):
            raise ApiError(403, f"token {principal.name!r} may only read; this needs write")
        return principal


API_KEY: web.AppKey[Api] = web.AppKey("api")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    faults: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> web.Response:
    body = {
        "status": status,
        "message": message,
        "field": field,
        "errors": [{"field": f, "message": m} for f, m in faults],
    }
    headers = {"WWW-Authenticate": 'Bearer realm="gslb"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure under /api/ becomes a JSON error with a status, a message and a field."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.message, e.field)
    except DocumentError as e:
        field = e.faults[0][0] or None
        return error_response(e.status, str(e), field, e.faults)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = error_response(e.status, e.reason)
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except REDIS_ERRORS as e:
        log.warning("api request failed, redis unreachable", path=request.path, error=str(e))
        return error_response(503, "redis is unreachable: nothing was changed; try again")
    except Exception:
        log.exception("api request failed", path=request.path, method=request.method)
        return error_response(500, "internal error; the server log has the details")


# --- plumbing ----------------------------------------------------------------------------


def _api(request: web.Request) -> Api:
    return request.app[API_KEY]


def _zone(request: web.Request) -> str:
    return zone_key(request.match_info["zone"])


async def _stored(request: web.Request) -> StoredZone:
    name = _zone(request)
    stored = await _api(request).store.zone(name)
    if stored is None:
        raise NotFound(f"zone {name!r}")
    return stored


async def _body(request: web.Request) -> Json:
    if not request.body_exists:
        raise ApiError(400, "a JSON body is required", "body")
    if request.content_type not in JSON_TYPES:
        raise ApiError(
            415, f"send JSON (Content-Type: application/json), not {request.content_type}"
        )
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body: not JSON: {e}", "body") from None


def _json(value: Json, status: int = 200, tag: bool = True) -> web.Response:
    headers = {"ETag": etag(value)} if tag else None
    return web.json_response(value, status=status, headers=headers)


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def _preconditions(request: web.Request, current: Json) -> None:
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        tags = _tags(if_match)
        if current is None:
            raise Conflict("the resource does not exist (If-Match)")
        if "*" not in tags and etag(current) not in tags:
            raise Conflict(
                f"the resource has changed since it was read: its ETag is now {etag(current)}"
            )
    if_none = request.headers.get("If-None-Match")
    if (
        if_none is not None
        and current is not None
        and ("*" in _tags(if_none) or etag(current) in _tags(if_none))
    ):
        raise Conflict("the resource already exists (If-None-Match)")


Pick = Callable[[dict[str, Json]], Json]  # the resource in a document, None when absent
Change = Callable[[dict[str, Json] | None], dict[str, Json] | None]  # the new document


async def _write(
    request: web.Request,
    action: str,
    resource: str,
    pick: Pick,
    change: Change,
    create_zone: bool = False,
) -> web.Response:
    """Apply one edit to the request's zone (see the module docstring)."""
    api = _api(request)
    who = f"api:{request['principal'].name}"
    zone = _zone(request)
    seen: dict[str, Json] = {}

    async def edit(before: StoredZone | None) -> tuple[StoredZone | None, dict[str, Json]]:
        if before is None and not create_zone:
            raise NotFound(f"zone {zone!r}")
        old = pick(before.document) if before is not None else None
        _preconditions(request, old)
        document = change(before.document if before is not None else None)
        after = None
        if document is not None:
            after = await asyncio.to_thread(documents.check, document, before, who)
        new = pick(after.document) if after is not None else None
        seen.update(old=old, new=new)
        return after, documents.audit_record(who, action, zone, resource, old, new)

    _, changed = await api.store.change_zone(zone, edit)
    if changed:
        log.info("config changed", who=who, action=action, resource=resource)
    old, new = seen["old"], seen["new"]
    if new is None:
        return web.Response(status=204)
    return _json(new, status=201 if old is None else 200)


def _object(value: Json, field: str = "body") -> dict[str, Json]:
    if not isinstance(value, dict):
        raise ApiError(400, f"{field}: a JSON object is required", field)
    return value


def _collection_get(document: dict[str, Json] | None, collection: str, name: str) -> Json:
    return ((document or {}).get(collection) or {}).get(name)


# --- zones -------------------------------------------------------------------------------


async def list_zones(request: web.Request) -> web.Response:
    zones = await _api(request).store.zones()
    return web.json_response(
        {
            "zones": [
                {
                    "zone": z.name,
                    "serial": z.serial,
                    "source": z.source,
                    "file": z.file,
                    "etag": etag(z.document),
                    "pools": len(z.document.get("pools") or {}),
                }
                for z in sorted(zones.values(), key=lambda z: z.name)
            ]
        }
    )


async def get_zone(request: web.Request) -> web.Response:
    return _json((await _stored(request)).document)


async def put_zone(request: web.Request) -> web.Response:
    body = _object(await _body(request))
    zone = _zone(request)
    if "zone" not in body:
        body = {"zone": zone, **body}
    elif not isinstance(body["zone"], str) or zone_key(body["zone"]) != zone:
        raise ApiError(
            400, f"zone: the document is for {body['zone']!r}, the URL for {zone!r}", "zone"
        )
    return await _write(
        request, "put", f"zones/{zone}", lambda d: d, lambda _d: body, create_zone=True
    )


async def delete_zone(request: web.Request) -> web.Response:
    zone = _zone(request)
    return await _write(request, "delete", f"zones/{zone}", lambda d: d, lambda _d: None)


async def export_zone(request: web.Request) -> web.Response:
    stored = await _stored(request)
    return web.Response(
        text=documents.to_yaml(stored.document),
        content_type="application/yaml",
        headers={
            "ETag": etag(stored.document),
            "Content-Disposition": f'attachment; filename="{stored.name}.yaml"',
        },
    )


# --- named parts of a zone: pools, monitors, sites, ISPs -----------------------------------


def _collection_handlers(collection: str) -> dict[str, Handler]:
    singular = documents.COLLECTIONS[collection]
    param = {"pools": "pool", "monitors": "monitor", "sites": "site", "isps": "isp"}[collection]

    def pick_for(name: str) -> Pick:
        return lambda d: _collection_get(d, collection, name)

    async def list_all(request: web.Request) -> web.Response:
        document = (await _stored(request)).document
        return _json({collection: document.get(collection) or {}})

    async def get_one(request: web.Request) -> web.Response:
        name = request.match_info[param]
        value = _collection_get((await _stored(request)).document, collection, name)
        if value is None:
            raise NotFound(f"{singular} {name!r}", f"{collection}.{name}")
        return _json(value)

    async def put_one(request: web.Request) -> web.Response:
        name = request.match_info[param]
        body = await _body(request)
        if body is None:  # with_item() reads None as "remove": a PUT never removes
            raise ApiError(400, "body: null is not a value; to remove, use DELETE", "body")
        return await _write(
            request,
            "put",
            f"zones/{_zone(request)}/{collection}/{name}",
            pick_for(name),
            lambda d: documents.with_item(d or {}, collection, name, body),
        )

    async def patch_one(request: web.Request) -> web.Response:
        name = request.match_info[param]
        patch = _object(await _body(request))

        def change(d: dict[str, Json] | None) -> dict[str, Json]:
            current = documents.get_item(d or {}, collection, name)
            return documents.with_item(
                d or {}, collection, name, documents.merge_patch(current, patch)
            )

        return await _write(
            request, "patch", f"zones/{_zone(request)}/{collection}/{name}", pick_for(name), change
        )

    async def delete_one(request: web.Request) -> web.Response:
        name = request.match_info[param]
        return await _write(
            request,
            "delete",
            f"zones/{_zone(request)}/{collection}/{name}",
            pick_for(name),
            lambda d: documents.with_item(d or {}, collection, name, None),
        )

    return {
        "list": list_all,
        "get": get_one,
        "put": put_one,
        "patch": patch_one,
        "delete": delete_one,
    }


POOLS = _collection_handlers("pools")
MONITORS = _collection_handlers("monitors")
SITES = _collection_handlers("sites")
ISPS = _collection_handlers("isps")


# --- members -----------------------------------------------------------------------------


def _pool_of(document: dict[str, Json] | None, pool: str) -> dict[str, Json]:
    return _object(documents.get_item(document or {}, "pools", pool), f"pools.{pool}")


def _member_pick(pool: str, address: str) -> Pick:
    def pick(document: dict[str, Json]) -> Json:
        members = _pool_of(document, pool).get("members") or []
        try:
            return members[documents.member_index({"members": members}, address)]
        except NotFound:
            return None

    return pick


def _member_resource(request: web.Request) -> tuple[str, str, str]:
    pool = request.match_info["pool"]
    address = request.match_info["address"]
    return pool, address, f"zones/{_zone(request)}/pools/{pool}/members/{address}"


async def list_members(request: web.Request) -> web.Response:
    pool = _pool_of((await _stored(request)).document, request.match_info["pool"])
    return _json({"members": pool.get("members") or []})


async def add_member(request: web.Request) -> web.Response:
    pool = request.match_info["pool"]
    body = _object(await _body(request))
    address = str(body.get("address", ""))

    def change(d: dict[str, Json] | None) -> dict[str, Json]:
        current = _pool_of(d, pool)
        if _member_pick(pool, address)(d or {}) is not None:
            raise Conflict(f"member {address} is already in pool {pool!r}", f"pools.{pool}.members")
        members = [*(current.get("members") or []), body]
        return documents.with_item(d or {}, "pools", pool, {**current, "members": members})

    return await _write(
        request,
        "add",
        f"zones/{_zone(request)}/pools/{pool}/members/{address}",
        _member_pick(pool, address),
        change,
    )


async def get_member(request: web.Request) -> web.Response:
    pool, address, _ = _member_resource(request)
    member = _member_pick(pool, address)((await _stored(request)).document)
    if member is None:
        raise NotFound(f"member {address!r} of pool {pool!r}")
    return _json(member)


def _member_write(action: str, update: Callable[[Json, Json], Json | None]) -> Handler:
    """A handler that replaces one member by `update(member, body)` (None: removes it)."""

    async def handle(request: web.Request) -> web.Response:
        pool, address, resource = _member_resource(request)
        body = await _body(request) if action in ("put", "patch") else None

        def change(d: dict[str, Json] | None) -> dict[str, Json]:
            document, _, _ = documents.edit_member(
                d or {}, pool, address, lambda member: update(member, body)
            )
            return document

        return await _write(request, action, resource, _member_pick(pool, address), change)

    return handle


def _replace_member(member: Json, body: Json) -> Json:
    body = _object(body)
    if "address" in body and str(body["address"]) != str(member.get("address")):
        # A new address is a new member: its health history is not this one's.
        raise ApiError(
            400,
            "address: to change a member's address, add the new one and remove the old",
            "address",
        )
    return {**body, "address": member.get("address")}


def _patch_member(member: Json, body: Json) -> Json:
    return _replace_member(member, documents.merge_patch(member, _object(body)))


def _admin(state: str) -> Callable[[Json, Json], Json]:
    def update(member: Json, _body: Json) -> Json:
        out = {**member, "state": state}
        if state == "enabled":
            del out["state"]  # the default, left out like every default
        return out

    return update


PUT_MEMBER = _member_write("put", _replace_member)
PATCH_MEMBER = _member_write("patch", _patch_member)
DELETE_MEMBER = _member_write("delete", lambda _m, _b: None)
DRAIN = _member_write("drain", _admin("drained"))
ENABLE = _member_write("enable", _admin("enabled"))
DISABLE = _member_write("disable", _admin("disabled"))


# --- topology ----------------------------------------------------------------------------


async def get_topology(request: web.Request) -> web.Response:
    return _json({"topology": (await _stored(request)).document.get("topology") or []})


async def put_topology(request: web.Request) -> web.Response:
    body = _object(await _body(request))
    if set(body) != {"topology"}:
        raise ApiError(400, 'body: give {"topology": [rules]}', "topology")
    rules = body["topology"]

    def change(d: dict[str, Json] | None) -> dict[str, Json]:
        out = {k: v for k, v in (d or {}).items() if k != "topology"}
        if rules != []:
            out["topology"] = rules
        return out

    return await _write(
        request,
        "put",
        f"zones/{_zone(request)}/topology",
        lambda d: {"topology": d.get("topology") or []},
        change,
    )


# --- state -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.json_response(await _api(request).store.health_detail())


async def checkers(request: web.Request) -> web.Response:
    return web.json_response({"checkers": await _api(request).store.checkers()})


async def nodes(request: web.Request) -> web.Response:
    return web.json_response({"nodes": await _api(request).store.nodes()})


async def history(request: web.Request) -> web.Response:
    limit = _limit(request)
    return web.json_response({"changes": await _api(request).store.history(limit)})


async def answers(request: web.Request) -> web.Response:
    buckets = await _api(request).store.answers()
    return web.json_response({"bucket_seconds": ANSWER_BUCKET, "buckets": buckets})


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "limit: not a number", "limit") from None
    if not 1 <= limit <= 10000:
        raise ApiError(400, "limit: 1 to 10000", "limit")
    return limit


async def load(request: web.Request) -> web.Response:
    raw = await _api(request).store.redis.hgetall(LOAD)
    now = time.time()
    members = {}
    for address, value in raw.items():
        try:
            report = LoadReport.from_json(value)
        except (ValueError, TypeError, AttributeError):
            continue
        members[address.decode() if isinstance(address, bytes) else address] = {
            "sessions": report.sessions,
            "cpu": report.cpu,
            "traffic": report.traffic,
            "at": report.at,
            "fresh": now - report.at <= LOAD_FRESH,
        }
    return web.json_response({"members": members})


async def explain(request: web.Request) -> web.Response:
    query = request.query
    name, client = query.get("name"), query.get("client")
    if not name or not client:
        missing = "name" if not name else "client"
        raise ApiError(400, f"{missing}: required", missing)
    subnet = query.get("subnet")
    try:
        prefix = int(subnet) if subnet else None
    except ValueError:
        raise ApiError(400, "subnet: not a prefix length", "subnet") from None
    try:
        result = run_explain(_api(request).snapshot(), name, query.get("type", "A"), client, prefix)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return web.json_response(result)


async def audit(request: web.Request) -> web.Response:
    limit = _limit(request)
    zone = request.query.get("zone")
    records = await _api(request).store.audit(limit, zone_key(zone) if zone else None)
    return web.json_response({"records": records})


async def events(request: web.Request) -> web.StreamResponse:
    api = _api(request)
    return await stream(request, api.events(), api.snapshot().version)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(OPERATIONS))


# --- the table ---------------------------------------------------------------------------


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100})
STRING_LIST: dict[str, Json] = {"type": "array", "items": {"type": "string"}}
Z = "/zones/{zone}"
P = Z + "/pools/{pool}"
M = P + "/members/{address}"


def _writes(
    path: str,
    handlers: dict[str, Handler],
    what: str,
    schema: dict[str, Json],
    patch: dict[str, Json] | None,
    tag: str,
) -> list[Operation]:
    ops = [
        Operation("GET", path, handlers["get"], f"Read a {what}", tag, returns=schema),
        Operation(
            "PUT",
            path,
            handlers["put"],
            f"Create or replace a {what}",
            tag,
            role="write",
            body=schema,
            returns=schema,
            precondition=True,
            created=True,
        ),
        Operation(
            "DELETE",
            path,
            handlers["delete"],
            f"Remove a {what}",
            tag,
            role="write",
            ok=204,
            precondition=True,
        ),
    ]
    if patch is not None:
        ops.insert(
            2,
            Operation(
                "PATCH",
                path,
                handlers["patch"],
                f"Change some fields of a {what} (JSON merge patch)",
                tag,
                role="write",
                body=patch,
                returns=schema,
                precondition=True,
            ),
        )
    return ops


def _member_action(name: str, summary: str) -> Operation:
    handler = {"drain": DRAIN, "enable": ENABLE, "disable": DISABLE}[name]
    return Operation(
        "POST",
        f"{M}/{name}",
        handler,
        summary,
        "members",
        role="write",
        returns=ref("MemberDoc"),
        precondition=True,
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/openapi.json",
        openapi,
        "This document",
        "meta",
        role=None,
        returns={"type": "object"},
        redis=False,
    ),
    Operation("GET", "/zones", list_zones, "List the zones", "zones", returns=ref("ZoneList")),
    Operation("GET", Z, get_zone, "Read a zone document", "zones", returns=ref("ZoneDoc")),
    Operation(
        "PUT",
        Z,
        put_zone,
        "Create or replace a zone document (idempotent)",
        "zones",
        role="write",
        body=ref("ZoneDoc"),
        returns=ref("ZoneDoc"),
        precondition=True,
        created=True,
    ),
    Operation(
        "DELETE", Z, delete_zone, "Remove a zone", "zones", role="write", ok=204, precondition=True
    ),
    Operation(
        "GET",
        Z + "/export",
        export_zone,
        "The zone as the YAML file it would be in zones/",
        "zones",
        returns=ref("ZoneDoc"),
        media="application/yaml",
    ),
    Operation(
        "GET", Z + "/pools", POOLS["list"], "List a zone's pools", "pools", returns=ref("PoolList")
    ),
    *_writes(P, POOLS, "pool", ref("PoolDoc"), ref("PoolPatch"), "pools"),
    Operation(
        "GET",
        P + "/members",
        list_members,
        "List a pool's members",
        "members",
        returns=ref("MemberList"),
    ),
    Operation(
        "POST",
        P + "/members",
        add_member,
        "Add a member to a pool",
        "members",
        role="write",
        body=ref("MemberDoc"),
        ok=201,
        returns=ref("MemberDoc"),
        precondition=True,
    ),
    *_writes(
        M,
        {"get": get_member, "put": PUT_MEMBER, "patch": PATCH_MEMBER, "delete": DELETE_MEMBER},
        "member",
        ref("MemberDoc"),
        ref("MemberPatch"),
        "members",
    ),
    _member_action("drain", "Drain a member: no new answers name it; health checks go on"),
    _member_action("enable", "Put a drained or disabled member back in service"),
    _member_action("disable", "Take a member out of service"),
    Operation(
        "GET",
        Z + "/monitors",
        MONITORS["list"],
        "List a zone's monitors",
        "monitors",
        returns=ref("MonitorList"),
    ),
    *_writes(Z + "/monitors/{monitor}", MONITORS, "monitor", ref("MonitorDoc"), None, "monitors"),
    Operation(
        "GET", Z + "/sites", SITES["list"], "List a zone's sites", "sites", returns=ref("SiteList")
    ),
    *_writes(Z + "/sites/{site}", SITES, "site", ref("SiteDoc"), None, "sites"),
    Operation(
        "GET",
        Z + "/isps",
        ISPS["list"],
        "List a zone's ISPs and their CIDR blocks",
        "isps",
        returns=ref("IspList"),
    ),
    *_writes(Z + "/isps/{isp}", ISPS, "ISP's CIDR blocks", STRING_LIST, None, "isps"),
    Operation(
        "GET",
        Z + "/topology",
        get_topology,
        "Read the topology rules",
        "topology",
        returns=ref("TopologyDoc"),
    ),
    Operation(
        "PUT",
        Z + "/topology",
        put_topology,
        "Replace the topology rules",
        "topology",
        role="write",
        body=ref("TopologyDoc"),
        returns=ref("TopologyDoc"),
        precondition=True,
    ),
    Operation(
        "GET",
        "/health",
        health,
        "Health per member, checker and path",
        "state",
        returns=ref("HealthView"),
    ),
    Operation(
        "GET",
        "/checkers",
        checkers,
        "The health checkers and their heartbeats",
        "state",
        returns=ref("CheckerList"),
    ),
    Operation(
        "GET",
        "/load",
        load,
        "What the agents on the members report",
        "state",
        returns=ref("LoadList"),
    ),
    Operation(
        "GET",
        "/nodes",
        nodes,
        "DNS and API processes, from their heartbeats",
        "state",
        returns=ref("NodeList"),
    ),
    Operation(
        "GET",
        "/answers",
        answers,
        "Answers handed out per member, in 10 s buckets",
        "state",
        returns=ref("AnswerCounts"),
    ),
    Operation(
        "GET",
        "/history",
        history,
        "Decided health changes, newest first",
        "state",
        returns=ref("HistoryList"),
        query=(LIMIT,),
    ),
    Operation(
        "GET",
        "/explain",
        explain,
        "The answer a client would get, and each step's effect",
        "state",
        returns=ref("Explanation"),
        redis=False,
        query=(
            Param("name", {"type": "string", "minLength": 1}, True, "the name asked for"),
            Param("client", {"type": "string", "minLength": 1}, True, "the client's address"),
            Param("type", {"type": "string", "default": "A"}, False, "query type"),
            Param(
                "subnet",
                {"type": "integer", "minimum": 0, "maximum": 128},
                False,
                "send the client as an EDNS Client Subnet of this prefix length",
            ),
        ),
    ),
    Operation(
        "GET",
        "/events",
        events,
        "Health and configuration changes, as Server-Sent Events",
        "state",
        returns={"type": "string"},
        media="text/event-stream",
    ),
    Operation(
        "GET",
        "/audit",
        audit,
        "Who changed what, newest first",
        "state",
        returns=ref("AuditList"),
        query=(
            LIMIT,
            Param("zone", {"type": "string"}, False, "only this zone's changes"),
        ),
    ),
)


def _guarded(op: Operation) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if op.role is not None:
            request["principal"] = _api(request).authorize(request, op.role)
        return await op.handler(request)

    return handle


def add_routes(app: web.Application, api: Api) -> None:
    app[API_KEY] = api
    for op in OPERATIONS:
        path = PREFIX + op.path
        if op.method == "GET":
            app.router.add_get(path, _guarded(op), allow_head=False)
        else:
            app.router.add_route(op.method, path, _guarded(op))
