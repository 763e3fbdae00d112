"""The `--http` listener: for now the liveness endpoint; the API and dashboard mount here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gslb import zonefiles

if TYPE_CHECKING:
    from gslb.shell.serve import Node

NODE_KEY: web.AppKey[Node] = web.AppKey("node")


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    redis_ok = await node.redis_alive()
    body: dict[str, Any] = {
        "status": "ok" if redis_ok else "degraded",
        "redis": "up" if redis_ok else "down",
        "snapshot_version": node.answerer.snapshot.version,
        "zones": zonefiles.describe(node.zones),
    }
    return web.json_response(body, status=200)


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[NODE_KEY] = node
    app.router.add_get("/healthz", healthz)
    return app
