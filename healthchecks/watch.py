"""Connection watch: one idle TCP connection per (member, path), whose end is news.

When a member's service process dies, its kernel closes every connection the process held, at
once: a connection kept open to the member's port hears the death in a round trip, where a
probe timer would hear it an interval later (the SCTP multihoming draft's heartbeat on every
path, idle ones included). For `tcp`, `http` and `https` monitors the checker keeps such a
connection open over each of its paths; it sends nothing on it (no request, no TLS handshake:
what is watched is the process holding the port, not the protocol), and when it is reset or
closed, the probe loop runs confirming probes a few tens of milliseconds apart, which count
towards `fall` as every probe does. A close is therefore never a verdict by itself.

Members that close idle connections by design (a short keep-alive, a request header timeout)
confirm up: the watch opens again, and when a connection lived less than one probe interval it
waits instead (WATCH_BACKOFF, doubling up to WATCH_BACKOFF_MAX), so such a member is probed
plainly rather than hammered with reconnects and confirmations. TCP keep-alive is on, so a
watch whose peer vanished silently ends too (later: the probe timer is faster for that).
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time

from gslb.common import logs

WATCH_BACKOFF = 60.0  # seconds without a watch after one lived less than an interval
WATCH_BACKOFF_MAX = 600.0
WATCH_LIMIT = 50_000  # watched connections per checker at most (each a file descriptor)
CONFIRM_GAP = 0.025  # seconds between confirming probes after a watched connection ended
log = logs.get("gslb.checker")

KEEPALIVE = (10, 5, 3)  # TCP keep-alive: idle seconds, seconds between probes, probes


class _Listener(asyncio.Protocol):
    def __init__(self, watch: Watch | None) -> None:
        self.watch = watch  # None once the checker itself let the connection go

    def data_received(self, data: bytes) -> None:
        pass  # a banner (SMTP, SSH) or an error page: nothing to act on, and nothing kept

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.watch is not None:
            self.watch.heard_end()


class Watch:
    """The watched connection of one (member, path), opened and re-opened by its probe loop,
    which sleeps between probes in `pause` so that the connection's end wakes it."""

    open_count = 0  # across every watch of this process
    limit = WATCH_LIMIT  # lowered to half the open-file limit by raise_file_limit
    warned = False  # the limit was reached and said so once

    def __init__(self, address: str, port: int, source: str | None) -> None:
        self.address = address
        self.port = port
        self.source = source
        self.ended = False
        self.listener: _Listener | None = None
        self.transport: asyncio.Transport | None = None
        self.opened_at = 0.0
        self.off_until = 0.0  # monotonic time before which no watch is opened
        self.backoff = WATCH_BACKOFF
        self._waiter: asyncio.Future[bool] | None = None

    def wanted(self, now: float) -> bool:
        return self.transport is None and now >= self.off_until

    async def open(self, within: float) -> bool:
        """Open the watched connection; False when it could not be (the probes go on)."""
        if Watch.open_count >= Watch.limit:
            if not Watch.warned:
                Watch.warned = True
                log.warning(
                    "watched connections at their limit: further members are probed without "
                    "a watch (half the open-file limit, at most WATCH_LIMIT)",
                    limit=Watch.limit,
                )
            return False
        loop = asyncio.get_running_loop()
        listener = _Listener(self)
        try:
            async with asyncio.timeout(within):
                transport, _ = await loop.create_connection(
                    lambda: listener,
                    self.address,
                    self.port,
                    local_addr=(self.source, 0) if self.source else None,
                )
        except (OSError, TimeoutError):
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _keepalive(sock)
        self.ended = False
        self.listener, self.transport = listener, transport
        self.opened_at = time.monotonic()
        Watch.open_count += 1
        return True

    def heard_end(self) -> None:
        self.ended = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    async def pause(self, delay: float) -> bool:
        """Sleep `delay` seconds, or less when the watched connection ends; True if it did."""
        if not self.ended:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            # A bare future and a timer, not asyncio.timeout: this runs after every probe.
            timer = loop.call_later(delay, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if not self.ended:
            return False
        self.ended = False
        return True

    def lived(self) -> float:
        """The ended connection's lifetime; the watch is then closed."""
        lived = time.monotonic() - self.opened_at
        self.close()
        return lived

    def benign(self, lived: float, interval: float) -> None:
        """The member confirmed up after its connection ended: watch again, or when it closes
        connections faster than we probe, rest (doubling) before the next try."""
        if lived < interval:
            self.off_until = time.monotonic() + self.backoff
            self.backoff = min(WATCH_BACKOFF_MAX, self.backoff * 2)
        else:
            self.backoff = WATCH_BACKOFF

    def close(self) -> None:
        if self.listener is not None:
            self.listener.watch = None
            self.listener = None
        if self.transport is not None:
            self.transport.abort()  # reset, not close: no TIME_WAIT on the checker
            self.transport = None
            Watch.open_count -= 1


def _wake(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, gap, count = KEEPALIVE
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", gap), ("TCP_KEEPCNT", count)):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    # Half the descriptors at most for watches: probes, Redis and HTTP need the rest.
    Watch.limit = min(WATCH_LIMIT, soft // 2)
    return soft
