"""The `--http` listener: for now the liveness endpoint; the API and dashboard mount here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gslb.core import names
from gslb.core.explain import explain as run_explain
from gslb.shell import metrics
from gslb.shell.sync import REDIS_ERRORS

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


async def explain(request: web.Request) -> web.Response:
    """GET /api/v1/explain?name=&client=&type=&subnet=: the answer and each step's effect."""
    node = request.app[NODE_KEY]
    query = request.query
    name = query.get("name")
    client = query.get("client")
    if not name or not client:
        field = "name" if not name else "client"
        return _error(400, f"{field}: required", field)
    subnet = query.get("subnet")
    try:
        prefix = int(subnet) if subnet else None
    except ValueError:
        return _error(400, "subnet: not a prefix length", "subnet")
    try:
        result = run_explain(node.answerer.snapshot, name, query.get("type", "A"), client, prefix)
    except ValueError as e:
        return _error(400, str(e), None)
    return web.json_response(result)


async def health(request: web.Request) -> web.Response:
    """GET /api/v1/health: each member's verdict and what every checker sees over every path."""
    node = request.app[NODE_KEY]
    if node.store is None:
        return _error(503, "no connection to the shared state yet", None)
    try:
        detail = await node.store.health_detail()
    except REDIS_ERRORS:
        return _error(503, "redis is unreachable: health detail is not available", None)
    return web.json_response(detail)


def _error(status: int, message: str, field: str | None) -> web.Response:
    return web.json_response({"status": status, "message": message, "field": field}, status=status)


async def prometheus(request: web.Request) -> web.Response:
    body = metrics.render(request.app[REGISTRY_KEY])
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[NODE_KEY] = node
    app[REGISTRY_KEY] = metrics.registry_for(node)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/explain", explain)
    app.router.add_get("/api/v1/health", health)
    return app
