"""Response rate limiting for UDP, after BIND's RRL.

A spoofed-source flood turns an authoritative server into an amplifier aimed at the spoofed
address. RRL counts, per client network (/24 for IPv4, /56 for IPv6) and per *response*,
the replies sent; past `rate` a second (with a burst of `window` seconds' worth) the reply is
dropped, except every `slip`-th one, which goes out truncated (TC=1, no records: a few octets,
no amplification) so that a real client behind that network retries over TCP, where no
spoofing is possible. Responses are grouped as BIND groups them (gslb.core.rrl): a wildcard's
answers by the wildcard, referrals by the delegation point, NXDOMAIN and NODATA by the zone,
so that a flood of random names shares one budget per network.

DNS Cookies (RFC 7873) tell a real client from a spoofed one: a query over the limit that
brings back a valid server cookie comes from the address it says, and is answered; one that
sends only a client cookie gets BADCOOKIE with a fresh cookie (a few octets) instead of a
truncated reply, and passes when it asks again with it.

Networks listed as exempt (by default loopback) are never limited. The table is bounded: when
it fills it starts afresh, which errs towards answering.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass, field

from gslb.core.answer import bad_cookie, cookie_status
from gslb.core.rrl import identity
from gslb.core.snapshot import Snapshot

FLAG_QR_AA_TC = 0x8000 | 0x0400 | 0x0200
MEMO_ENTRIES = 65536  # each memo's bound (client networks, reply identities); then afresh
KEEP_FLAGS = 0x7800 | 0x0100 | 0x0010  # opcode, RD, CD are echoed


@dataclass(frozen=True)
class RrlConfig:
    rate: float = 20.0  # identical responses per second per client network; 0: off
    window: float = 5.0  # seconds of burst a network may save up
    slip: int = 2  # every slip-th limited reply goes out truncated; 0: drop all
    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_entries: int = 200_000

    @property
    def enabled(self) -> bool:
        return self.rate > 0


@dataclass
class RrlStats:
    limited: int = 0
    dropped: int = 0
    slipped: int = 0
    badcookie: int = 0  # limited replies sent as BADCOOKIE (the client sent a cookie)
    cookie_passed: int = 0  # over the limit, but with a valid cookie: answered


@dataclass
class Limiter:
    config: RrlConfig
    stats: RrlStats = field(default_factory=RrlStats)

    def __post_init__(self) -> None:
        self._buckets: dict[tuple[bytes, bytes], list[float]] = {}
        self._exempt = [ipaddress.ip_network(n) for n in self.config.exempt]
        # By client address, as the socket gives it: its network's octets, or None when it
        # is exempt. Parsing an address costs more than the rest of the check.
        self._clients: dict[str, bytes | None] = {}
        # identity() of a reply, by the query's octets after its ID and the reply's header
        # fields it reads (flags, counts), for one snapshot version: a repeated question,
        # the common case, is counted without looking at the zone again.
        self._identities: dict[tuple[bytes, bytes], bytes] = {}
        self._identities_version = -1
        self._slip = 0
        self._rate, self._burst = self.config.rate, self.config.rate * self.config.window

    def check(
        self,
        wire: bytes,
        address: str,
        reply: bytes,
        snapshot: Snapshot,
        now: float | None = None,
    ) -> bytes | None:
        """The reply to send instead of `reply` (itself, a truncated one, or None: drop).

        An exempt client (the benchmark's, a monitoring host's) costs one dict lookup: no
        address parsing, no clock. Another costs two more and its bucket's arithmetic, once
        its address and the question have been seen (the memos are bounded and start afresh
        when full)."""
        network = self._clients.get(address, b"")
        if network == b"":
            network = None if self._is_exempt(address) else _network(address)
            if len(self._clients) >= MEMO_ENTRIES:
                self._clients = {}
            self._clients[address] = network
        if network is None:
            return reply
        if now is None:
            now = time.monotonic()
        if self._identities_version != snapshot.version or len(self._identities) >= MEMO_ENTRIES:
            self._identities = {}
            self._identities_version = snapshot.version
        question = (wire[2:], reply[2:8])
        who = self._identities.get(question)
        if who is None:
            who = self._identities[question] = identity(wire, reply, snapshot)
        key = (network, who)
        bucket = self._buckets.get(key)
        rate, burst = self._rate, self._burst
        if bucket is None:
            if len(self._buckets) >= self.config.max_entries:
                self._buckets = {}
            bucket = self._buckets[key] = [burst, now]
        else:
            bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return reply
        sent_cookie, valid = cookie_status(wire, address, snapshot)
        if valid:
            self.stats.cookie_passed += 1
            return reply
        self.stats.limited += 1
        if sent_cookie:
            bad = bad_cookie(wire, address, snapshot)
            if bad is not None:
                self.stats.badcookie += 1
                return bad
        slip = self.config.slip
        if slip:
            self._slip += 1
            if self._slip >= slip:
                self._slip = 0
                self.stats.slipped += 1
                return truncated(wire)
        self.stats.dropped += 1
        return None

    def _is_exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self._exempt)


def _network(address: str) -> bytes:
    """The client's /24 (IPv4) or /56 (IPv6), as octets."""
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address.partition("%")[0])[:7]
    return socket.inet_aton(address)[:3]


def truncated(wire: bytes) -> bytes:
    """A TC=1 reply with the question and nothing else: about as small as the query."""
    qid, flags = struct.unpack_from("!HH", wire)
    end = wire.find(0, 12)
    question = wire[12 : end + 5] if 12 < end + 5 <= len(wire) else b""
    header = struct.pack(
        "!HHHHHH", qid, FLAG_QR_AA_TC | (flags & KEEP_FLAGS), 1 if question else 0, 0, 0, 0
    )
    return header + question
