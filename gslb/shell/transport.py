"""UDP and TCP listeners around the pure `handle()`.

UDP: one datagram in, one datagram out, nothing kept. Each UDP socket is served by a thread of
its own in a plain blocking loop (recvfrom, `answer_udp`, sendto): no event loop between the
packet and the reply. Where it could be built (gslb/shell/_udploop.c), the loop's common case,
a reply in the front cache, runs compiled on the same objects; the rest goes to `_one`.
Everything else (TCP, Redis, HTTP) stays on the event loop; the interpreter lock is released
in every socket call, so neither side starves the other.

TCP (RFC 7766): two-octet length framing, any number of pipelined queries per connection,
each answered as soon as it is read; an idle timeout; a cap on concurrent connections; a
client that does not read its replies has its own reading paused (its replies pile up in its
own buffer, nobody else's) and is dropped when the pile passes a limit. TCP runs on the event
loop with no await between a query and its reply: `handle()` is synchronous and reads one
snapshot.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from gslb.common import logs
from gslb.core import names
from gslb.core.answer import Client, Deferred, Reply, handle
from gslb.core.front import PER_CLIENT, Front, Rotation, answer_udp
from gslb.core.query import scan
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from gslb.shell.rrl import MEMO_ENTRIES, Limiter

log = logs.get("gslb.dns")

# The compiled UDP loop (gslb/shell/_udploop.c), built by `pip install` where a C compiler is;
# without it, or with GSLB_UDP_LOOP=python, the UDP threads run their Python loop.
_udploop: Any = None
if os.environ.get("GSLB_UDP_LOOP", "compiled") != "python":
    with contextlib.suppress(ImportError):
        from gslb.shell import _udploop  # type: ignore[attr-defined,no-redef]

UDP_LOOP = "compiled" if _udploop is not None else "python"


@dataclass(frozen=True, slots=True)
class TcpLimits:
    max_connections: int = 1000
    idle_timeout: float = 10.0  # RFC 7766 §6.2.3: seconds, not minutes, for a busy server
    max_message: int = 65535
    max_pending_output: int = 1 << 20  # octets of replies a client may leave unread
    max_queries: int = 10_000  # queries one connection may ask; then it is closed (RFC 7766 §6.2.1)
    max_per_client: int = 16  # connections one client (IPv4 /32, IPv6 /64) may hold at once
    write_timeout: float = 5.0  # seconds a reply may wait for the client to read it


Send = Callable[[bytes], None]
LATENCY_BUCKETS = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 1e-2, 1e-1)
SAMPLE_EVERY = 8  # answer times measured for one query in this many (two clock reads each)


def log_query(transport: str, wire: bytes, client: str, reply: Reply) -> None:
    """One line of the sampled query log: who asked what, and what came back."""
    try:
        query = scan(wire)
        name, qtype = names.to_text(query.qname), query.qtype
    except Exception:  # a malformed query is logged as such, never raised from here
        name, qtype = "(malformed)", 0
    log.info(
        "query",
        transport=transport,
        client=client,
        name=name,
        qtype=qtype,
        rcode=(reply[3] & 0xF) if isinstance(reply, bytes) and reply else None,
        answered=isinstance(reply, bytes),
    )


class QueryStats:
    """Queries by type and reply code, and a histogram of answer times, kept by one thread.

    The type is read where a plain question ends (the first zero octet after the header) and
    the code from the reply's header: no parsing beyond that on the answer path."""

    def __init__(self) -> None:
        self.counts: dict[tuple[bytes, int], int] = {}
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def count(self, wire: bytes, reply: Reply) -> None:
        end = wire.find(0, 12)
        qtype = wire[end + 1 : end + 3] if end > 0 else b""
        # -1: no reply (or held for cold start)
        code = reply[3] & 0xF if reply.__class__ is bytes else -1
        key = (qtype, code)
        self.counts[key] = self.counts.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        # gslb/shell/_udploop.c does the same updates for front hits (and count's too).
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1


DRAIN_SECONDS = 5.0  # at shutdown, how long TCP clients get to read the replies sent them
MAX_HELD = 10_000  # queries held for cold-start pools; beyond this they are answered at once


@dataclass
class AnswerCounts:
    """Answers that named each member since the process started, their sums by zone, and
    (in a worker) what its node has not been told yet: each second's tally is added in what
    it costs, whatever the number of members counted so far."""

    by_member: dict[str, int] = field(default_factory=dict)
    by_zone: dict[str, int] = field(default_factory=dict)
    unreported: dict[str, int] | None = None  # None: nobody to report to

    def add(self, tally: Mapping[str, int]) -> None:
        by_member, by_zone, unreported = self.by_member, self.by_zone, self.unreported
        for key, count in tally.items():
            by_member[key] = by_member.get(key, 0) + count
            zone = key.partition("/")[0]
            by_zone[zone] = by_zone.get(zone, 0) + count
            if unreported is not None:
                unreported[key] = unreported.get(key, 0) + count

    def take_unreported(self) -> dict[str, int]:
        out, self.unreported = self.unreported or {}, {}
        return out


class Answerer:
    """What the listeners share: the current snapshot (swapped whole), the reply cache, and
    the queries held while a pool waits for its first health results (cold start)."""

    def __init__(self, snapshot: Snapshot, cache_entries: int = 50_000) -> None:
        self._snapshot = snapshot
        self.cache = ReplyCache(cache_entries)  # the event loop's (TCP, held queries)
        # Each UDP thread has a reply cache and a front of its own (made by the thread): a
        # cache is never shared between threads, so none needs a lock. Their tallies are
        # collected from here.
        self.cache_entries = cache_entries
        self.udp_caches: list[ReplyCache] = []
        self.loop_queries = 0
        self.udp_queries = 0
        self.stats = {"udp": QueryStats(), "tcp": QueryStats()}  # each kept by one thread
        self.answers = AnswerCounts()
        self.query_log_rate = 0.0  # fraction of queries logged (--query-log-rate)
        self.rrl: Limiter | None = None  # response rate limiting, UDP only (set by the node)
        self.held: list[tuple[bytes, Client, Send]] = []
        self._release: asyncio.TimerHandle | None = None

    @property
    def queries(self) -> int:
        return self.loop_queries + self.udp_queries

    def take_tally(self) -> dict[str, int]:
        tally = self.cache.take_tally()
        for cache in list(self.udp_caches):
            for key, count in cache.take_tally().items():
                tally[key] = tally.get(key, 0) + count
        self.answers.add(tally)
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
        started = time.perf_counter()
        reply = self._answer(wire, client, send, fail_open=False)
        stats = self.stats["tcp"]
        stats.observe(time.perf_counter() - started)
        stats.count(wire, reply)
        if self.query_log_rate and random.random() < self.query_log_rate:
            log_query("tcp", wire, client.address, reply)

    def hold(self, wire: bytes, client: Client, send: Send) -> None:
        """A UDP thread's query that waits for a pool's first health results (on the loop)."""
        self._answer(wire, client, send, fail_open=False)

    def _answer(self, wire: bytes, client: Client, send: Send, fail_open: bool) -> Reply:
        reply = handle(wire, client, self._snapshot, self.cache, fail_open)
        if reply is None:
            return None
        if isinstance(reply, Deferred):
            if len(self.held) >= MAX_HELD:
                return self._answer(wire, client, send, fail_open=True)
            self.held.append((wire, client, send))
            self._schedule_release()
            return reply
        send(reply)
        return reply

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
        # This thread's own: see Answerer.
        self.cache = ReplyCache(answerer.cache_entries)
        self.front = Front(answerer.cache_entries * 2)
        answerer.udp_caches.append(self.cache)
        self.thread = threading.Thread(target=self._serve, name="gslb-udp", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        if _udploop is not None and self.sock.gettimeout() is None:
            # The compiled loop answers front hits itself and hands the rest to `_one`.
            _udploop.serve(
                self.sock.fileno(),
                self,
                self.answerer,
                self.cache,
                self.front,
                self.answerer.stats["udp"],
                self._one,
                Rotation,
                PER_CLIENT,
                SAMPLE_EVERY,
                MEMO_ENTRIES,
                LATENCY_BUCKETS,
            )
            return
        recvfrom, one = self.sock.recvfrom, self._one
        while True:
            try:
                wire, addr = recvfrom(65535)
            except OSError:
                if self.stopping:
                    return
                continue  # ICMP errors for earlier replies surface here: keep serving
            if self.stopping:
                return
            one(wire, addr)

    def _one(self, wire: bytes, addr: tuple[Any, ...]) -> None:
        """One datagram, the whole way: answer, count, log, hold or rate-limit, send."""
        answerer = self.answerer
        stats = answerer.stats["udp"]
        answerer.udp_queries += 1
        if answerer.udp_queries % SAMPLE_EVERY:
            reply = answer_udp(wire, addr[0], answerer.snapshot, self.cache, self.front)
        else:
            started = time.perf_counter()
            reply = answer_udp(wire, addr[0], answerer.snapshot, self.cache, self.front)
            stats.observe(time.perf_counter() - started)
        stats.count(wire, reply)
        if answerer.query_log_rate and random.random() < answerer.query_log_rate:
            log_query("udp", wire, str(addr[0]), reply)
        if reply is None:
            return
        if reply.__class__ is not bytes:  # DEFER: wait for the pool's first health
            client = Client(str(addr[0]), int(addr[1]))
            self.loop.call_soon_threadsafe(
                answerer.hold, wire, client, functools.partial(self.send, addr=addr, wire=wire)
            )
            return
        limiter = answerer.rrl
        if limiter is not None:
            reply = limiter.check(wire, addr[0], reply, answerer.snapshot)
            if reply is None:
                return
        try:  # noqa: SIM105 (a plain try costs less than a context manager per packet)
            self.sock.sendto(reply, addr)
        except OSError:
            pass  # the kernel refused this one (buffer full, unreachable): next

    def send(self, reply: bytes, addr: tuple[object, ...], wire: bytes = b"") -> None:
        """A held query's reply, once its pool's health is known: rate limited like any
        (a cold start must not be a window for an unlimited flood)."""
        limiter = self.answerer.rrl
        if limiter is not None and wire:
            limited = limiter.check(wire, str(addr[0]), reply, self.answerer.snapshot)
            if limited is None:
                return
            reply = limited
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


def client_network(address: str) -> bytes:
    """What one client is, for connection caps: its IPv4 address, or its IPv6 /64 (a host
    is given a /64, and can use any address in it)."""
    try:
        if ":" in address:
            return socket.inet_pton(socket.AF_INET6, address.partition("%")[0])[:8]
        return socket.inet_aton(address)
    except OSError:
        return address.encode()


class Clients:
    """Connections by client network, for a per-client cap on a listener."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}

    def add(self, network: bytes, cap: int) -> bool:
        count = self.counts.get(network, 0)
        if count >= cap:
            return False
        self.counts[network] = count + 1
        return True

    def remove(self, network: bytes) -> None:
        count = self.counts.get(network, 0) - 1
        if count > 0:
            self.counts[network] = count
        else:
            self.counts.pop(network, None)


class TcpConnection(asyncio.Protocol):
    """One TCP client (RFC 7766). Its limits: a cap on connections per client network and in
    all; an idle timeout; replies it leaves unread stop the reading of its queries, and if
    they stay unread `write_timeout` seconds (or pile past `max_pending_output`) the
    connection is aborted: a client that never reads must not hold a slot for minutes."""

    def __init__(
        self,
        answerer: Answerer,
        limits: TcpLimits,
        registry: set[TcpConnection],
        clients: Clients | None = None,
    ) -> None:
        self.answerer = answerer
        self.limits = limits
        self.registry = registry
        self.clients = clients if clients is not None else Clients()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.client = Client("", 0, True)
        self.network: bytes | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.stalled: asyncio.TimerHandle | None = None
        self.writing_paused = False
        self.asked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from
        # asyncio.Transport, though they behave as one.
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        peer = stream.get_extra_info("peername") or ("", 0)
        network = client_network(str(peer[0]))
        if len(self.registry) >= self.limits.max_connections or not self.clients.add(
            network, self.limits.max_per_client
        ):
            stream.abort()
            return
        self.network = network
        self.registry.add(self)
        self.client = Client(str(peer[0]), int(peer[1]), True)
        stream.set_write_buffer_limits(high=64 * 1024)
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.limits.idle_timeout, self._close)

    def _close(self) -> None:
        """Close after what is written has gone out, or at once if it cannot go (the client
        is not reading): a close that waits to flush would wait forever."""
        transport = self.transport
        if transport is None:
            return
        if self.writing_paused or transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

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
            self.asked += 1
            if self.asked >= self.limits.max_queries:
                transport.close()  # after the replies written so far: it may reconnect
                return
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
        # The client reads slower than it asks: stop reading its queries until it catches
        # up, and give it `write_timeout` seconds to do so.
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()
        if self.stalled is None:
            loop = asyncio.get_running_loop()
            self.stalled = loop.call_later(self.limits.write_timeout, self._abort)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.stalled is not None:
            self.stalled.cancel()
            self.stalled = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.idle, self.stalled):
            if timer is not None:
                timer.cancel()
        if self.network is not None:
            self.clients.remove(self.network)
            self.network = None
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
            conn._close()  # replies already written still go out: close() flushes first
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.connections and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()  # a client that does not read: no longer our problem
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
    clients = Clients()
    udp: list[UdpThread] = []
    tcp: list[asyncio.Server] = []

    def factory() -> TcpConnection:
        return TcpConnection(answerer, limits, connections, clients)

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
