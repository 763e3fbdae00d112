"""The `--http` listener's own limits: what aiohttp leaves to the application.

A client may hold at most `max_per_client` connections (IPv4 address, IPv6 /64) and the
listener `max_connections` in all, so that stalled requests cannot take the file descriptors
the DNS listeners and `/healthz` need. A request's headers must arrive within
`header_timeout` seconds of its first octet (a slow client trickling a header a second is
closed, not waited for), a body within `body_timeout` (gslb.api), and an idle keep-alive
connection is closed after `keepalive_timeout`.

aiohttp's protocol is wrapped, not changed: the wrapper counts and times the connection, a
middleware tells it when a request's headers have been read and its response written.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gslb.shell.transport import Clients, client_network


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int = 512
    max_per_client: int = 32
    header_timeout: float = 10.0  # seconds from a request's first octet to its last header
    keepalive_timeout: float = 15.0  # seconds an idle keep-alive connection is kept
    body_timeout: float = 30.0  # seconds a request body may take to arrive


@dataclass
class HttpStats:
    refused: int = 0  # connections over a cap, aborted at once
    timed_out: int = 0  # requests whose headers did not come in time


# The guard of each open connection, by its transport: how the middleware finds it.
_GUARDS: dict[object, Guarded] = {}


class Guarded(asyncio.Protocol):
    def __init__(
        self,
        inner: RequestHandler,
        limits: HttpLimits,
        clients: Clients,
        open_connections: set[Guarded],
        stats: HttpStats,
    ) -> None:
        self.inner = inner
        self.limits = limits
        self.clients = clients
        self.open = open_connections
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.network: bytes | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.state = "headers"  # headers | handling | idle
        self.early = False  # octets of a next request arrived while one was handled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        peer = stream.get_extra_info("peername") or ("", 0)
        network = client_network(str(peer[0]))
        if len(self.open) >= self.limits.max_connections or not self.clients.add(
            network, self.limits.max_per_client
        ):
            self.stats.refused += 1
            stream.abort()
            return
        self.network = network
        self.open.add(self)
        _GUARDS[stream] = self
        self.inner.connection_made(stream)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(
            self.limits.header_timeout, self._expired
        )

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        self.stats.timed_out += 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.state == "idle":
            self.state = "headers"
            self._arm()
        elif self.state == "handling":
            self.early = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def request_started(self) -> None:
        self._disarm()
        self.state = "handling"

    def request_done(self) -> None:
        if self.early:  # a next request began meanwhile: its headers are on the clock now
            self.early = False
            self.state = "headers"
            self._arm()
        else:
            self.state = "idle"

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.network is not None:
            self.clients.remove(self.network)
            self.network = None
            self.open.discard(self)
            if self.transport is not None:
                _GUARDS.pop(self.transport, None)
            self.inner.connection_lost(exc)


@web.middleware
async def watch_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tell the connection's guard that a request's headers are in, and when it is done."""
    guard = _GUARDS.get(request.transport) if request.transport is not None else None
    if guard is not None:
        guard.request_started()
    try:
        return await handler(request)
    finally:
        if guard is not None:
            guard.request_done()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections are guarded (see the module docstring)."""

    __slots__ = ("_clients", "_limits", "_open", "stats")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, limits: HttpLimits, **kwargs: Any
    ) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._limits = limits
        self._clients = Clients()
        self._open: set[Guarded] = set()
        self.stats = HttpStats()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def guarded() -> Guarded:
            assert server is not None
            return Guarded(server(), self._limits, self._clients, self._open, self.stats)

        self._server = await loop.create_server(
            guarded,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            family=socket.AF_INET6 if self._host and ":" in self._host else socket.AF_UNSPEC,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]

    @property
    def open_connections(self) -> int:
        return len(self._open)
