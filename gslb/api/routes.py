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
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
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
from gslb.core import names
from gslb.core.dnssec import Signer, SigningKey, dnssec_key_tags
from gslb.core.explain import ExplainError
from gslb.core.explain import explain as run_explain
from gslb.core.masterfile import Limits
from gslb.schema import LOAD
from gslb.schema import Load as LoadReport
from gslb.state.keyfiles import KeyDirError, zone_keys
from gslb.state.store import ANSWER_BUCKET, LOAD_FRESH, Edit, Store
from gslb.state.zones import (
    Outcome,
    Precondition,
    Who,
    write_document,
    write_head,
    write_pool,
    zone_etag,
)

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
        limits: Limits | None = None,
        body_timeout: float = 30.0,
        key_dir: Path | None = None,
    ) -> None:
        self._store = store
        self.key_dir = key_dir  # where zones with dnssec: {keys: NAME} keep their key files
        self.redis_up = redis_up
        self.limits = limits or Limits()
        self.body_timeout = body_timeout
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


async def _head(request: web.Request) -> dict[str, Json]:
    name = _zone(request)
    head = await _api(request).store.head(name)
    if head is None:
        raise NotFound(f"zone {name!r}")
    return head


async def _pool(request: web.Request, name: str) -> dict[str, Json]:
    zone = _zone(request)
    store = _api(request).store
    pool = await store.pool(zone, name)
    if pool is None:
        if await store.meta(zone) is None:
            raise NotFound(f"zone {zone!r}")
        raise NotFound(f"pool {name!r}", f"pools.{name}")
    return _object(pool, f"pools.{name}")


async def _body(request: web.Request) -> Json:
    if not request.body_exists:
        raise ApiError(400, "a JSON body is required", "body")
    if request.content_type not in JSON_TYPES:
        raise ApiError(
            415, f"send JSON (Content-Type: application/json), not {request.content_type}"
        )
    try:
        async with asyncio.timeout(_api(request).body_timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, "the body did not arrive in time", "body") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body: not JSON: {e}", "body") from None


def _json(value: Json, status: int = 200, tag: str | None = None) -> web.Response:
    return web.json_response(value, status=status, headers={"ETag": tag or etag(value)})


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def _precondition(request: web.Request) -> Precondition:
    """If-Match / If-None-Match of the request, checked against the resource's tag as it is
    inside the write's transaction (None: it does not exist)."""

    def check(current: str | None) -> None:
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            tags = _tags(if_match)
            if current is None:
                raise Conflict("the resource does not exist (If-Match)")
            if "*" not in tags and current not in tags:
                raise Conflict(
                    f"the resource has changed since it was read: its ETag is now {current}"
                )
        if_none = request.headers.get("If-None-Match")
        if (
            if_none is not None
            and current is not None
            and ("*" in _tags(if_none) or current in _tags(if_none))
        ):
            raise Conflict("the resource already exists (If-None-Match)")

    return check


def _who(request: web.Request, action: str, resource: str) -> Who:
    return Who(f"api:{request['principal'].name}", action, resource, _api(request).limits)


async def _write(request: web.Request, edit: Edit[Outcome], who: Who) -> Outcome:
    outcome, changed = await _api(request).store.change(_zone(request), edit)
    if changed:
        log.info("config changed", who=who.source, action=who.action, resource=who.resource)
    return outcome


def _reply(outcome: Outcome) -> web.Response:
    if outcome.after is None:
        return web.Response(status=204)
    return _json(outcome.after, status=201 if outcome.before is None else 200)


def _object(value: Json, field: str = "body") -> dict[str, Json]:
    if not isinstance(value, dict):
        raise ApiError(400, f"{field}: a JSON object is required", field)
    return value


# --- zones -------------------------------------------------------------------------------


async def list_zones(request: web.Request) -> web.Response:
    store = _api(request).store
    metas = await store.metas()
    zones = []
    for name, meta in sorted(metas.items()):
        if not _sees(request, name):
            continue
        zones.append(
            {
                "zone": name,
                "serial": meta.serial,
                "source": meta.source,
                "file": meta.file,
                "etag": zone_etag(name, meta),
                "pools": await store.pool_count(name),
            }
        )
    return web.json_response({"zones": zones})


async def _document(request: web.Request) -> tuple[dict[str, Json], str | None]:
    zone = _zone(request)
    store = _api(request).store
    meta = await store.meta(zone)
    document = await store.document(zone)
    if document is None:
        raise NotFound(f"zone {zone!r}")
    return document, zone_etag(zone, meta)


async def get_zone(request: web.Request) -> web.Response:
    document, tag = await _document(request)
    return _json(document, tag=tag)


async def put_zone(request: web.Request) -> web.Response:
    body = _object(await _body(request))
    zone = _zone(request)
    if "zone" not in body:
        body = {"zone": zone, **body}
    elif not isinstance(body["zone"], str) or zone_key(body["zone"]) != zone:
        raise ApiError(
            422, f"zone: the document is for {body['zone']!r}, the URL for {zone!r}", "zone"
        )
    await _refuse_overlap(request, zone)
    who = _who(request, "put", f"zones/{zone}")
    precondition = _precondition(request)
    outcome = await _write(
        request, lambda view: write_document(view, zone, body, who, precondition), who
    )
    meta = await _api(request).store.meta(zone)
    return _json(outcome.after, 201 if outcome.before is None else 200, zone_etag(zone, meta))


async def _refuse_overlap(request: web.Request, zone: str) -> None:
    """A new zone inside another (it would answer names the other answers) or above one
    (the other's names fall in its tree) is refused unless the request says so
    (`?overlap=allow`) with a token that may write every zone concerned: a write token of
    one customer must not shadow another's pools, or make `com`."""
    existing = await _api(request).store.zone_names()
    if zone in existing:
        return
    nested = sorted(z for z in existing if z.endswith("." + zone) or zone.endswith("." + z))
    if not nested:
        return
    principal = _principal(request)
    outside = [z for z in nested if principal is not None and not principal.covers(z)]
    if outside:
        raise ApiError(
            403,
            f"zone {zone!r} overlaps {', '.join(repr(z) for z in outside)}, which this "
            "token may not write",
            "zone",
        )
    if request.query.get("overlap") != "allow":
        raise Conflict(
            f"zone {zone!r} overlaps {', '.join(repr(z) for z in nested)}: names of one "
            "would be answered by the other; send ?overlap=allow to create it anyway",
            "zone",
        )


async def delete_zone(request: web.Request) -> web.Response:
    zone = _zone(request)
    who = _who(request, "delete", f"zones/{zone}")
    precondition = _precondition(request)
    await _write(request, lambda view: write_document(view, zone, None, who, precondition), who)
    return web.Response(status=204)


async def export_zone(request: web.Request) -> web.Response:
    document, tag = await _document(request)
    return web.Response(
        text=documents.to_yaml(document),
        content_type="application/yaml",
        headers={
            "ETag": tag or "",
            "Content-Disposition": f'attachment; filename="{_zone(request)}.yaml"',
        },
    )


# --- pools, and the named parts of a zone's head: monitors, sites, ISPs ---------------------


def _pool_handlers() -> dict[str, Handler]:
    async def list_all(request: web.Request) -> web.Response:
        await _head(request)
        return _json({"pools": await _api(request).store.pools(_zone(request))})

    async def get_one(request: web.Request) -> web.Response:
        return _json(await _pool(request, request.match_info["pool"]))

    def handler(action: str, new: Callable[[Json | None, Json, str], Json | None]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            name = request.match_info["pool"]
            zone = _zone(request)
            body = await _body(request) if action != "delete" else None
            if action == "put" and body is None:
                raise ApiError(400, "body: null is not a value; to remove, use DELETE", "body")
            if action == "patch":
                body = _object(body)
            who = _who(request, action, f"zones/{zone}/pools/{name}")
            precondition = _precondition(request)
            outcome = await _write(
                request,
                lambda view: write_pool(
                    view, zone, name, lambda old: new(old, body, name), _same, who, precondition
                ),
                who,
            )
            return _reply(outcome)

        return handle

    return {
        "list": list_all,
        "get": get_one,
        "put": handler("put", lambda _old, body, _name: body),
        "patch": handler("patch", _patch_pool),
        "delete": handler("delete", _remove_pool),
    }


def _same(value: Json) -> Json:
    return value


def _patch_pool(old: Json | None, patch: Json, name: str) -> Json:
    return documents.merge_patch(_pool_of(old, name), patch)


def _remove_pool(old: Json | None, _body: Json, name: str) -> Json | None:
    _pool_of(old, name)
    return None


def _head_handlers(collection: str) -> dict[str, Handler]:
    singular = documents.COLLECTIONS[collection]
    param = {"monitors": "monitor", "sites": "site", "isps": "isp"}[collection]

    def pick_for(name: str) -> Callable[[dict[str, Json]], Json]:
        return lambda head: (head.get(collection) or {}).get(name)

    async def list_all(request: web.Request) -> web.Response:
        return _json({collection: (await _head(request)).get(collection) or {}})

    async def get_one(request: web.Request) -> web.Response:
        name = request.match_info[param]
        value = pick_for(name)(await _head(request))
        if value is None:
            raise NotFound(f"{singular} {name!r}", f"{collection}.{name}")
        return _json(value)

    def handler(action: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            name = request.match_info[param]
            zone = _zone(request)
            body = await _body(request) if action != "delete" else None
            if action == "put" and body is None:  # null would read as "remove"
                raise ApiError(400, "body: null is not a value; to remove, use DELETE", "body")

            def change(head: dict[str, Json]) -> dict[str, Json]:
                value = body
                if action == "patch":
                    value = documents.merge_patch(
                        documents.get_item(head, collection, name), _object(body)
                    )
                return documents.with_item(head, collection, name, value)

            who = _who(request, action, f"zones/{zone}/{collection}/{name}")
            precondition = _precondition(request)
            outcome = await _write(
                request,
                lambda view: write_head(view, zone, change, pick_for(name), who, precondition),
                who,
            )
            return _reply(outcome)

        return handle

    return {
        "list": list_all,
        "get": get_one,
        "put": handler("put"),
        "patch": handler("patch"),
        "delete": handler("delete"),
    }


POOLS = _pool_handlers()
MONITORS = _head_handlers("monitors")
SITES = _head_handlers("sites")
ISPS = _head_handlers("isps")


# --- members -----------------------------------------------------------------------------


def _pool_of(pool: Json | None, name: str) -> dict[str, Json]:
    if pool is None:
        raise NotFound(f"pool {name!r}", f"pools.{name}")
    return _object(pool, f"pools.{name}")


def _member_pick(address: str) -> Callable[[Json | None], Json]:
    def pick(pool: Json | None) -> Json:
        members = (pool or {}).get("members") or []
        try:
            return members[documents.member_index({"members": members}, address)]
        except NotFound:
            return None

    return pick


async def _member_edit(
    request: web.Request, action: str, change: Callable[[dict[str, Json]], Json]
) -> web.Response:
    pool = request.match_info["pool"]
    address = request.match_info.get("address", "")
    zone = _zone(request)
    resource = f"zones/{zone}/pools/{pool}/members/{address}"
    who = _who(request, action, resource)
    precondition = _precondition(request)
    outcome = await _write(
        request,
        lambda view: write_pool(
            view,
            zone,
            pool,
            lambda old: change(_pool_of(old, pool)),
            _member_pick(address),
            who,
            precondition,
        ),
        who,
    )
    return _reply(outcome)


async def list_members(request: web.Request) -> web.Response:
    pool = await _pool(request, request.match_info["pool"])
    return _json({"members": pool.get("members") or []})


async def add_member(request: web.Request) -> web.Response:
    pool_name = request.match_info["pool"]
    body = _object(await _body(request))
    address = str(body.get("address", ""))
    request.match_info["address"] = address

    def change(pool: dict[str, Json]) -> Json:
        if _member_pick(address)(pool) is not None:
            raise Conflict(
                f"member {address} is already in pool {pool_name!r}", f"pools.{pool_name}.members"
            )
        return {**pool, "members": [*(pool.get("members") or []), body]}

    return await _member_edit(request, "add", change)


async def get_member(request: web.Request) -> web.Response:
    pool, address = request.match_info["pool"], request.match_info["address"]
    member = _member_pick(address)(await _pool(request, pool))
    if member is None:
        raise NotFound(f"member {address!r} of pool {pool!r}")
    return _json(member)


def _member_write(action: str, update: Callable[[Json, Json], Json | None]) -> Handler:
    """A handler that replaces one member by `update(member, body)` (None: removes it)."""

    async def handle(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        body = None
        if action in ("put", "patch") or (action == "drain" and request.body_exists):
            body = await _body(request)

        def change(pool: dict[str, Json]) -> Json:
            document, _, _ = documents.edit_member(
                {"pools": {"p": pool}}, "p", address, lambda member: update(member, body)
            )
            return document["pools"]["p"]

        return await _member_edit(request, action, change)

    return handle


def _replace_member(member: Json, body: Json) -> Json:
    body = _object(body)
    if "address" in body and str(body["address"]) != str(member.get("address")):
        # A new address is a new member: its health history is not this one's.
        raise ApiError(
            422,
            "address: to change a member's address, add the new one and remove the old",
            "address",
        )
    return {**body, "address": member.get("address")}


def _patch_member(member: Json, body: Json) -> Json:
    return _replace_member(member, documents.merge_patch(member, _object(body)))


def _admin(state: str) -> Callable[[Json, Json], Json]:
    def update(member: Json, _body: Json) -> Json:
        out = {**member, "state": state}
        out.pop("drain_at", None)  # whatever was planned, this is the state now
        if state == "enabled":
            del out["state"]  # the default, left out like every default
        return out

    return update


def _drain(member: Json, body: Json) -> Json:
    """Drain now, or plan it: `{"at": "2026-12-02T15:00:00Z"}` or `{"in": SECONDS}`."""
    if body is None or body == {}:
        return _admin("drained")(member, body)
    body = _object(body)
    if set(body) not in ({"at"}, {"in"}):
        raise ApiError(422, 'body: {"at": ISO 8601 time} or {"in": seconds}, or none', "body")
    if "in" in body:
        delay = body["in"]
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= 86400 * 30
        ):
            raise ApiError(422, "in: seconds from now, 0 to 2592000 (30 days)", "in")
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=float(delay))
        at: Json = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        at = body["at"]
    out = {k: v for k, v in member.items() if k != "state"}  # enabled until then
    return {**out, "drain_at": at}  # checked with the rest of the pool (MemberDoc.drain_at)


PUT_MEMBER = _member_write("put", _replace_member)
PATCH_MEMBER = _member_write("patch", _patch_member)
DELETE_MEMBER = _member_write("delete", lambda _m, _b: None)
DRAIN = _member_write("drain", _drain)
ENABLE = _member_write("enable", _admin("enabled"))
DISABLE = _member_write("disable", _admin("disabled"))


# --- topology ----------------------------------------------------------------------------


def _topology(head: dict[str, Json]) -> Json:
    return {"topology": head.get("topology") or []}


async def _signed_zone(request: web.Request) -> tuple[str, str, str | None]:
    """The zone's name, signing algorithm and key directory (None: its keys are in the
    state store); 404 for a zone that is not signed."""
    head = await _head(request)
    name = _zone(request)
    if "dnssec" not in head:
        raise NotFound(f"zone {name!r} is not signed (no dnssec: in its document)")
    dnssec = head.get("dnssec") or {}
    return name, dnssec.get("algorithm") or "ECDSAP256SHA256", dnssec.get("keys")


async def _zone_keys(
    request: web.Request, name: str, algorithm: str, key_dir: str | None
) -> tuple[SigningKey, ...]:
    """The keys the zone signs with: the cluster's, or those in its key files as this node
    reads them (what is wrong with them goes to the node's log, not to API readers)."""
    api = _api(request)
    if key_dir is not None and api.key_dir is None:
        raise ApiError(
            503, f"zone {name!r} keeps its keys in files; this node has no key directory"
        )
    try:
        return await zone_keys(api.store, api.key_dir, name, algorithm, key_dir)
    except KeyDirError as e:
        log.error("dnssec key files refused", zone=name, error=str(e))
        raise ApiError(
            503, f"the key files of zone {name!r} cannot be used here (the node's log says why)"
        ) from None


async def get_dnssec(request: web.Request) -> web.Response:
    name, algorithm, key_dir = await _signed_zone(request)
    keys = await _zone_keys(request, name, algorithm, key_dir)
    signer = Signer(names.from_text(name + "."), keys, int(time.time()))
    tags = dnssec_key_tags(signer)
    dnskeys = signer.dnskey_text()
    return _json(
        {
            "zone": name,
            "algorithm": algorithm,
            # One key: signing. Two: a rollover under way, both sign and are published;
            # the parent should hold both DS until `roll` is run again.
            "rollover": "in progress" if len(keys) > 1 else "none",
            "key_store": "files" if key_dir is not None else "state",
            "keys": [
                {
                    "key_tag": tag,
                    "algorithm": k.algorithm,
                    "flags": k.flags,
                    "created": k.created,
                    "dnskey": text,
                }
                for tag, k, text in zip(tags, keys, dnskeys, strict=True)
            ],
            "ds": signer.ds(),
        }
    )


async def roll_dnssec(request: web.Request) -> web.Response:
    name, algorithm, key_dir = await _signed_zone(request)
    if key_dir is not None:
        raise ApiError(
            409,
            f"zone {name!r} keeps its keys in files (dnssec: keys: {key_dir}): roll by adding "
            "the new key's file on every node, then removing the old one (docs/dnssec.md)",
        )
    store = _api(request).store
    step, keys = await store.dnssec_roll(name, algorithm)
    who = _who(request, "roll", f"zones/{name}/dnssec")
    await store.record_action(
        who.source, "roll", who.resource, zone=name, step=step, keys=len(keys)
    )
    log.info("dnssec rollover", zone=name, step=step, who=who.source)
    return await get_dnssec(request)


async def get_topology(request: web.Request) -> web.Response:
    return _json(_topology(await _head(request)))


async def put_topology(request: web.Request) -> web.Response:
    body = _object(await _body(request))
    if set(body) != {"topology"}:
        raise ApiError(400, 'body: give {"topology": [rules]}', "topology")
    rules = body["topology"]
    zone = _zone(request)

    def change(head: dict[str, Json]) -> dict[str, Json]:
        out = {k: v for k, v in head.items() if k != "topology"}
        if rules != []:
            out["topology"] = rules
        return out

    who = _who(request, "put", f"zones/{zone}/topology")
    precondition = _precondition(request)
    outcome = await _write(
        request, lambda view: write_head(view, zone, change, _topology, who, precondition), who
    )
    return _reply(outcome)


# --- state -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    detail = await _api(request).store.health_detail()
    detail["members"] = {
        k: v for k, v in detail["members"].items() if _sees(request, _zone_of_key(k))
    }
    return web.json_response(detail)


async def checkers(request: web.Request) -> web.Response:
    return web.json_response({"checkers": await _api(request).store.checkers()})


async def nodes(request: web.Request) -> web.Response:
    return web.json_response({"nodes": await _api(request).store.nodes()})


async def history(request: web.Request) -> web.Response:
    limit = _limit(request)
    changes = [
        c
        for c in await _api(request).store.history(limit)
        if _sees(request, _zone_of_key(str(c.get("member", ""))))
    ]
    return web.json_response({"changes": changes})


async def answers(request: web.Request) -> web.Response:
    buckets = {
        start: {k: v for k, v in counts.items() if _sees(request, _zone_of_key(k))}
        for start, counts in (await _api(request).store.answers()).items()
    }
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
    snapshot = _api(request).snapshot()
    if not _sees(request, None):
        try:
            asked = names.from_text(name if name.endswith(".") else name + ".")
        except names.BadName as e:
            raise ApiError(422, f"name: {e}", "name") from None
        found = snapshot.zones.find(asked)
        if found is None or not _sees(request, found.name):
            raise ApiError(403, "this token may not explain names outside its zones", "name")
    try:
        result = run_explain(snapshot, name, query.get("type", "A"), client, prefix)
    except ExplainError as e:
        raise ApiError(422, str(e), e.field) from None
    except ValueError as e:
        raise ApiError(422, str(e)) from None
    return web.json_response(result)


async def audit(request: web.Request) -> web.Response:
    limit = _limit(request)
    zone = request.query.get("zone")
    records = await _api(request).store.audit(
        limit if _sees(request, None) else 10_000, zone_key(zone) if zone else None
    )
    records = [r for r in records if _sees(request, r.get("zone"))][:limit]
    return web.json_response({"records": records})


async def events(request: web.Request) -> web.StreamResponse:
    api = _api(request)
    principal = _principal(request)
    visible = None if principal is None or principal.zones is None else principal.covers
    return await stream(request, api.events(), api.snapshot().version, visible)


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
        query=(
            Param(
                "overlap",
                {"type": "string", "enum": ["allow"]},
                False,
                "create a zone inside or above another one (its names would be answered "
                "by one of them only)",
            ),
        ),
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
    _member_action(
        "drain",
        "Drain a member: no new answers name it; health checks go on. With a body "
        '{"at": TIME} or {"in": SECONDS}, plan it: the pool\'s TTL drops one TTL ahead',
    ),
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
        Z + "/dnssec",
        get_dnssec,
        "A signed zone's keys and the DS records for its parent (404: not signed)",
        "dnssec",
        returns=ref("DnssecView"),
    ),
    Operation(
        "POST",
        Z + "/dnssec/roll",
        roll_dnssec,
        "One step of a key rollover: start (a second key signs and is published), or complete "
        "(the older key goes)",
        "dnssec",
        role="write",
        returns=ref("DnssecView"),
    ),
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
            principal = _api(request).authorize(request, op.role)
            request["principal"] = principal
            if "{zone}" in op.path and not principal.covers(_zone(request)):
                raise ApiError(
                    403, f"token {principal.name!r} may not use zone {_zone(request)!r}", "zone"
                )
        return await op.handler(request)

    return handle


def _principal(request: web.Request) -> Principal | None:
    found = request.get("principal")
    return found if isinstance(found, Principal) else None


def _sees(request: web.Request, zone: str | None) -> bool:
    """Whether the request's token may see data of `zone` (a scoped token: its zones only)."""
    principal = _principal(request)
    return (
        principal is None
        or principal.zones is None
        or (zone is not None and principal.covers(zone))
    )


def _zone_of_key(key: str) -> str:
    return key.partition("/")[0]


def add_routes(app: web.Application, api: Api) -> None:
    app[API_KEY] = api
    for op in OPERATIONS:
        path = PREFIX + op.path
        if op.method == "GET":
            app.router.add_get(path, _guarded(op), allow_head=False)
        else:
            app.router.add_route(op.method, path, _guarded(op))
