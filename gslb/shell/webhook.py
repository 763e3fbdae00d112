"""`gslb external-dns`: external-dns's webhook provider, writing through the REST API.

Run it as a sidecar of external-dns (`--provider=webhook`), listening on localhost:8888 as
external-dns expects; it reads and writes the zones given with `--zone` through a gslb API
with a write token. The mapping is gslb.externaldns; this is the HTTP side:

    GET  /                  negotiation: the zones served (external-dns's domain filter)
    GET  /records           every pool and static record of those zones, as endpoints
    POST /adjustendpoints   desired endpoints put in the form /records gives back
    POST /records           changes: each zone edited and written whole, if unchanged since
    GET  /healthz           liveness (also on --health, for the kubelet)

A refused change (a bad annotation, a clash with a record gslb has) answers 422 with the
reason, which external-dns logs and does not retry; an unreachable API answers 503, which it
retries. Connections are guarded like the API's (gslb.shell.httpguard): per-client and total
caps, header and body deadlines, a body size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gslb.apiclient import ApiClient, ApiFailure
from gslb.common import logs
from gslb.externaldns import (
    MEDIA_TYPE,
    Changes,
    Endpoint,
    EndpointError,
    adjust,
    apply_changes,
    records,
    zone_of,
)
from gslb.shell.httpguard import GuardedSite, HttpLimits, watch_requests
from gslb.shell.transport import format_endpoint

log = logs.get("gslb.external-dns")
CONFLICT_RETRIES = 3  # another writer changed the zone between our read and our write


@dataclass(frozen=True)
class WebhookConfig:
    api: str
    token: str | None
    zones: tuple[str, ...]
    listen: tuple[str, int] = ("127.0.0.1", 8888)
    health: tuple[str, int] | None = None
    max_body: int = 8 * 1024 * 1024
    limits: HttpLimits = field(default_factory=HttpLimits)


class Webhook:
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self.api = ApiClient(config.api, config.token)
        self.zones = tuple(z.lower().rstrip(".") for z in config.zones)
        # One change set at a time: external-dns sends them one by one anyway, and a second
        # writer of the same zone would only make the first retry.
        self.writing = asyncio.Lock()

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[watch_requests, self._errors], client_max_size=self.config.max_body
        )
        app.router.add_get("/", self.negotiate)
        app.router.add_get("/records", self.get_records)
        app.router.add_post("/records", self.post_records)
        app.router.add_post("/adjustendpoints", self.adjust_endpoints)
        app.router.add_get("/healthz", healthz)
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except EndpointError as e:
            log.warning("refused", path=request.path, reason=str(e))
            return _error(422, str(e))
        except ApiFailure as e:
            # The API refused (4xx: the change can never land as it is) or could not be
            # reached (retry later).
            status = 422 if e.status is not None and 400 <= e.status < 500 else 503
            log.warning("api", path=request.path, status=e.status, reason=str(e))
            return _error(status, str(e))

    async def negotiate(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if accept and not _accepts(accept):
            return _error(406, f"this webhook speaks {MEDIA_TYPE}")
        return _reply({"include": sorted(self.zones)})

    async def get_records(self, request: web.Request) -> web.Response:
        out: list[dict[str, Any]] = []
        for zone in self.zones:
            found = await asyncio.to_thread(self.api.zone, zone)
            if found is not None:
                out.extend(e.to_json() for e in records(zone, found[0]))
        return _reply(out)

    async def adjust_endpoints(self, request: web.Request) -> web.Response:
        raw = await _body(request)
        if not isinstance(raw, list):
            raise EndpointError("adjustendpoints takes a list of endpoints")
        return _reply([adjust(Endpoint.from_json(e)).to_json() for e in raw])

    async def post_records(self, request: web.Request) -> web.Response:
        changes = Changes.from_json(await _body(request))
        by_zone: dict[str, list[Endpoint]] = {}
        for endpoint in changes.all:
            zone = zone_of(endpoint.name, self.zones)
            if zone is None:
                raise EndpointError(f"{endpoint.what}: not in {', '.join(self.zones)}")
            by_zone.setdefault(zone, [])
        async with self.writing:
            for zone in by_zone:
                mine = _only(changes, zone, self.zones)
                await asyncio.to_thread(self._write, zone, mine)
        log.info(
            "applied",
            create=len(changes.create),
            update=len(changes.update_new),
            delete=len(changes.delete),
        )
        return web.Response(status=204)

    def _write(self, zone: str, changes: Changes) -> None:
        for attempt in range(CONFLICT_RETRIES + 1):
            found = self.api.zone(zone)
            if found is None:
                raise EndpointError(f"zone {zone} does not exist in gslb: create it first")
            doc, etag = found
            try:
                self.api.put_zone(zone, apply_changes(zone, doc, changes), etag)
                return
            except ApiFailure as e:
                if e.status != 409 or attempt == CONFLICT_RETRIES:
                    raise


def _only(changes: Changes, zone: str, zones: tuple[str, ...]) -> Changes:
    """The part of `changes` in `zone`, each endpoint in the form it is kept."""

    def pick(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        return tuple(adjust(e) for e in endpoints if zone_of(e.name, zones) == zone)

    return Changes(
        pick(changes.create),
        pick(changes.update_old),
        pick(changes.update_new),
        pick(changes.delete),
    )


def _accepts(accept: str) -> bool:
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(k in ("*/*", "application/*", MEDIA_TYPE.split(";")[0]) for k in kinds)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise EndpointError("the body is not JSON") from None


def _reply(body: Any) -> web.Response:
    # external-dns checks both headers before it talks to a webhook.
    return web.Response(
        body=json.dumps(body).encode(),
        headers={"Content-Type": MEDIA_TYPE, "Vary": "Content-Type"},
    )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message}, status=status)


async def run(config: WebhookConfig) -> None:
    webhook = Webhook(config)
    runners = []
    for where, app in ((config.listen, webhook.app()), (config.health, _health_app())):
        if where is None:
            continue
        runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=config.limits.keepalive_timeout
        )
        await runner.setup()
        site = GuardedSite(runner, where[0], where[1], config.limits)
        await site.start()
        runners.append(runner)
    bound = [format_endpoint(str(a[0]), int(a[1])) for r in runners for a in r.addresses[:1]]
    log.info("started", listen=bound[0], health=bound[1:], zones=list(webhook.zones))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        log.info("stopped")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _health_app() -> web.Application:
    app = web.Application(middlewares=[watch_requests], client_max_size=1024)
    app.router.add_get("/healthz", healthz)
    return app
