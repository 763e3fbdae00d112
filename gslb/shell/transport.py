"""UDP and TCP listeners around the pure `handle()`.

UDP: one datagram in, one datagram out, nothing kept. Each UDP socket is served by a thread of
its own in a plain blocking loop (recvfrom, `answer_udp`, sendto): no event loop between the
packet and the reply, which is what lets Python answer at C-server rates when the reply is in
the front cache. Everything else (TCP, Redis, HTTP) stays on the event loop; the interpreter
lock is released in every socket call, so neither side starves the other.

TCP (RFC 7766): two-octet length framing, any number of pipelined queries per connection,
each answered as soon as it is read; an idle timeout; a cap on concurrent connections; a
client that does not read its replies has its own reading paused (its replies pile up in its
own buffer, nobody else's) and is dropped when the pile passes a limit. TCP runs on the event
loop with no await between a query and its reply: `handle()` is synchronous and reads one
snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from gslb.core.handler import DEFER, Client, Front, ReplyCache, answer_udp, handle
from gslb.core.snapshot import Snapshot
from gslb.shell import logs

log = logs.get("gslb.dns")


@dataclass(frozen=True, slots=True)
class TcpLimits:
    max_connections: int = 1000
    idle_timeout: float = 10.0  # RFC 7766 §6.2.3: seconds, not minutes, for a busy server
    max_message: int = 65535
    max_pending_output: int = 1 << 20  # octets of replies a client may leave unread


Send = Callable[[bytes], None]
MAX_HELD = 10_000  # queries held for cold-start pools; beyond this they are answered at once


class Answerer:
    """What the listeners share: the current snapshot (swapped whole), the reply cache, and
    the queries held while a pool waits for its first health results (cold start)."""

    def __init__(self, snapshot: Snapshot, cache_entries: int = 50_000) -> None:
        self._snapshot = snapshot
        self.cache = ReplyCache(cache_entries)  # the event loop's (TCP, held queries)
        # The UDP threads' own: caches are not shared across threads.
        self.udp_cache = ReplyCache(cache_entries)
        self.front = Front(cache_entries * 2)
        self.loop_queries = 0
        self.udp_queries = 0
        self.held: list[tuple[bytes, Client, Send]] = []
        self._release: asyncio.TimerHandle | None = None

    @property
    def queries(self) -> int:
        return self.loop_queries + self.udp_queries

    def take_tally(self) -> dict[str, int]:
        tally = self.cache.take_tally()
        for key, count in self.udp_cache.take_tally().items():
            tally[key] = tally.get(key, 0) + count
        return tally

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @snapshot.setter
    def snapshot(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if self.held:  # what was waiting for news gets its answer from the news
            held, self.held = self.held, []
            for wire, client, send in held:
                self._answer(wire, client, send, fail_open=False)

    def answer(self, wire: bytes, client: Client, send: Send) -> None:
        self.loop_queries += 1
        self._answer(wire, client, send, fail_open=False)

    def hold(self, wire: bytes, client: Client, send: Send) -> None:
        """A UDP thread's query that waits for a pool's first health results (on the loop)."""
        self._answer(wire, client, send, fail_open=False)

    def _answer(self, wire: bytes, client: Client, send: Send, fail_open: bool) -> None:
        reply = handle(wire, client, self._snapshot, self.cache, fail_open)
        if reply is None:
            return
        if reply is DEFER:
            if len(self.held) >= MAX_HELD:
                self._answer(wire, client, send, fail_open=True)
                return
            self.held.append((wire, client, send))
            self._schedule_release()
            return
        send(reply)

    def _schedule_release(self) -> None:
        if self._release is not None:
            return
        delay = max(0.0, self._snapshot.state.cold_deadline - time.time())
        self._release = asyncio.get_running_loop().call_later(delay, self._fail_open)

    def _fail_open(self) -> None:
        """The cold-start wait is over without results: answer as the pool's fallback says."""
        self._release = None
        held, self.held = self.held, []
        for wire, client, send in held:
            self._answer(wire, client, send, fail_open=True)


class UdpThread:
    """One UDP socket and the thread that serves it."""

    def __init__(self, sock: socket.socket, answerer: Answerer) -> None:
        self.sock = sock
        self.answerer = answerer
        self.loop = asyncio.get_running_loop()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, name="gslb-udp", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        sock, answerer = self.sock, self.answerer
        recvfrom, sendto = sock.recvfrom, sock.sendto
        cache, front = answerer.udp_cache, answerer.front
        while True:
            try:
                wire, addr = recvfrom(65535)
            except OSError:
                if self.stopping:
                    return
                continue  # ICMP errors for earlier replies surface here: keep serving
            if self.stopping:
                return
            answerer.udp_queries += 1
            reply = answer_udp(wire, addr[0], answerer.snapshot, cache, front)
            if reply is None:
                continue
            if reply is DEFER:
                client = Client(str(addr[0]), int(addr[1]))
                self.loop.call_soon_threadsafe(
                    answerer.hold, wire, client, functools.partial(self.send, addr=addr)
                )
                continue
            try:  # noqa: SIM105 (a plain try costs less than a context manager per packet)
                sendto(reply, addr)
            except OSError:
                pass  # the kernel refused this one (buffer full, unreachable): next

    def send(self, reply: bytes, addr: tuple[object, ...]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(reply, addr)

    def close(self) -> None:
        """Stop the thread: a flag, and a datagram to wake its blocking receive."""
        self.stopping = True
        host, port = self.sock.getsockname()[:2]
        wake_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        with contextlib.suppress(OSError), socket.socket(self.sock.family, socket.SOCK_DGRAM) as s:
            s.sendto(b"", (wake_host, port))
        self.thread.join(2)
        self.sock.close()


class TcpConnection(asyncio.Protocol):
    def __init__(self, answerer: Answerer, limits: TcpLimits, registry: set[TcpConnection]) -> None:
        self.answerer = answerer
        self.limits = limits
        self.registry = registry
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.client = Client("", 0, True)
        self.idle: asyncio.TimerHandle | None = None
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from
        # asyncio.Transport, though they behave as one.
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        if len(self.registry) >= self.limits.max_connections:
            stream.abort()
            return
        self.registry.add(self)
        peer = stream.get_extra_info("peername") or ("", 0)
        self.client = Client(str(peer[0]), int(peer[1]), True)
        stream.set_write_buffer_limits(high=64 * 1024)
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.limits.idle_timeout, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        transport = self.transport
        assert transport is not None
        answered = False
        while len(self.buffer) >= 2:
            length = struct.unpack_from("!H", self.buffer)[0]
            if len(self.buffer) < 2 + length:
                break
            wire = bytes(self.buffer[2 : 2 + length])
            del self.buffer[: 2 + length]
            self.answerer.answer(wire, self.client, self._send)
            answered = True
            if transport.is_closing():
                return
        if answered:
            self._arm_idle()

    def _send(self, reply: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(struct.pack("!H", len(reply)) + reply)
        if transport.get_write_buffer_size() > self.limits.max_pending_output:
            transport.abort()  # it asks and never reads: it gets no more of our memory

    def pause_writing(self) -> None:
        # The client reads slower than it asks: stop reading its queries until it catches up.
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.registry.discard(self)


def parse_endpoint(text: str, default_port: int = 53) -> tuple[str, int]:
    """`127.0.0.1:5353`, `[::1]:5353`, `::1` or `localhost` into (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"{text!r}: no host")
    if port and not port.isdigit():
        raise ValueError(f"{text!r}: port is not a number")
    number = int(port) if port else default_port
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: port out of range")
    return host, number


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Listeners:
    udp: list[UdpThread]
    tcp: list[asyncio.Server]
    connections: set[TcpConnection]

    def addresses(self) -> list[tuple[str, int]]:
        out = []
        for server in self.tcp:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                out.append((str(host), int(port)))
        return out

    async def close(self) -> None:
        for server in self.tcp:
            server.close()
        for thread in self.udp:
            await asyncio.to_thread(thread.close)
        for conn in list(self.connections):
            conn._close()
        for server in self.tcp:
            await server.wait_closed()


async def listen(
    endpoints: list[tuple[str, int]],
    answerer: Answerer,
    limits: TcpLimits | None = None,
    reuse_port: bool = False,
) -> Listeners:
    """Bind UDP and TCP on every endpoint (the same port for both, also when asked for 0)."""
    loop = asyncio.get_running_loop()
    limits = limits or TcpLimits()
    connections: set[TcpConnection] = set()
    udp: list[UdpThread] = []
    tcp: list[asyncio.Server] = []
    factory: Callable[[], TcpConnection] = lambda: TcpConnection(answerer, limits, connections)  # noqa: E731
    try:
        for host, port in endpoints:
            server = await loop.create_server(
                factory, host, port, reuse_address=True, reuse_port=reuse_port or None, backlog=1024
            )
            tcp.append(server)
            bound_port = server.sockets[0].getsockname()[1]
            family = server.sockets[0].family
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, bound_port))
            udp.append(UdpThread(sock, answerer))
    except BaseException:
        await Listeners(udp, tcp, connections).close()
        raise
    return Listeners(udp, tcp, connections)
