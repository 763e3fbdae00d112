"""The `--http` listener: liveness, metrics and the REST API (gslb.api)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gslb import dashboard
from gslb.api.routes import add_routes, errors
from gslb.shell import metrics
from gslb.shell.httpguard import watch_requests

if TYPE_CHECKING:
    from gslb.shell.serve import Node

NODE_KEY: web.AppKey[Node] = web.AppKey("node")
REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("registry")


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    redis_ok = await node.redis_alive()
    sync = node.sync
    snapshot = node.answerer.snapshot
    body: dict[str, Any] = {
        "status": "ok" if redis_ok else "degraded",
        "redis": "up" if redis_ok else "down",
        "snapshot_version": snapshot.version,
        "stale_seconds": None
        if sync is None or sync.staleness == float("inf")
        else round(sync.staleness, 1),
        "resyncs": sync.resyncs if sync else 0,
        "zones": sorted(zone.name for zone in snapshot.zones.zones.values()),
    }
    return web.json_response(body, status=200)


async def prometheus(request: web.Request) -> web.Response:
    body = metrics.render(request.app[REGISTRY_KEY])
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def allowed_hosts(configured: tuple[str, ...]) -> frozenset[str]:
    """The names the listener answers to: those configured, or this host's own names."""
    names = set(configured) or {socket.gethostname(), socket.getfqdn()}
    return frozenset(n.lower().rstrip(".") for n in names if n) | {"localhost"}


def host_check(allowed: frozenset[str]) -> Any:
    """Refuse (421) a request whose Host names something else than this server: a page on
    an attacker's name that resolves to us (DNS rebinding) must not read /healthz, /metrics
    or an open API. An IP address is always fine: a rebinding attack sends a name."""

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        name = (
            host.rpartition("]")[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
        )
        name = name.lower().rstrip(".")
        if name and name not in allowed and not _is_address(name):
            return web.json_response(
                {
                    "status": 421,
                    "message": f"this server does not answer for {name!r} (--http-host)",
                    "field": None,
                    "errors": [],
                },
                status=421,
            )
        return await handler(request)

    return check


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def make_app(node: Node) -> web.Application:
    app = web.Application(
        client_max_size=node.config.api_max_body,
        middlewares=[
            watch_requests,
            host_check(allowed_hosts(node.config.http_hosts)),
            errors,
            dashboard.security_headers,
        ],
    )
    app[NODE_KEY] = node
    app[REGISTRY_KEY] = metrics.registry_for(node)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    add_routes(app, node.api)
    dashboard.add_routes(app)
    return app
