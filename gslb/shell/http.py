"""The `--http` listener: liveness, metrics and the REST API (gslb.api)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gslb import dashboard
from gslb.api.routes import add_routes, errors
from gslb.core import names
from gslb.shell import metrics

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
        "zones": sorted(z.rstrip(".") for z in (names.to_text(a) for a in snapshot.zones.zones)),
    }
    return web.json_response(body, status=200)


async def prometheus(request: web.Request) -> web.Response:
    body = metrics.render(request.app[REGISTRY_KEY])
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def make_app(node: Node) -> web.Application:
    app = web.Application(
        client_max_size=node.config.api_max_body, middlewares=[errors, dashboard.security_headers]
    )
    app[NODE_KEY] = node
    app[REGISTRY_KEY] = metrics.registry_for(node)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    add_routes(app, node.api)
    dashboard.add_routes(app)
    return app
