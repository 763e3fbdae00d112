"""The health dashboard at `/` of the `--http` listener: static files, no build step.

Everything the page shows comes from the REST API with the operator's token, which the page
keeps in the tab's sessionStorage and sends in the Authorization header (never a cookie, so a
page elsewhere cannot make the browser act: CSRF has nothing to ride on). The strict Content
Security Policy allows only this server's own scripts, styles and connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if not request.path.startswith("/api/"):
        response.headers.update(SECURITY_HEADERS)
    return response


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_static("/static/", STATIC, append_version=False)
