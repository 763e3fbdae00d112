"""Response rate limiting for UDP, after BIND's RRL.

A spoofed-source flood turns an authoritative server into an amplifier aimed at the spoofed
address. RRL counts, per client network (/24 for IPv4, /56 for IPv6) and per *response*,
the replies sent; past `rate` a second (with a burst of `window` seconds' worth) the reply is
dropped, except every `slip`-th one, which goes out truncated (TC=1, no records: a few octets,
no amplification) so that a real client behind that network retries over TCP, where no
spoofing is possible. A response is identified as BIND does: for an answer, the question
(name in lower case and type); for NXDOMAIN and for errors, the reply code alone, so that
random-name floods share one budget per network.

Networks listed as exempt (by default loopback) are never limited. The table is bounded: when
it fills it starts afresh, which errs towards answering.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass, field

FLAG_QR_AA_TC = 0x8000 | 0x0400 | 0x0200
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


@dataclass
class Limiter:
    config: RrlConfig
    stats: RrlStats = field(default_factory=RrlStats)

    def __post_init__(self) -> None:
        self._buckets: dict[tuple[bytes, bytes], list[float]] = {}
        self._exempt = [ipaddress.ip_network(n) for n in self.config.exempt]
        self._exempt_memo: dict[str, bool] = {}  # by client address, as the socket gives it
        self._slip = 0

    def check(
        self, wire: bytes, address: str, reply: bytes, now: float | None = None
    ) -> bytes | None:
        """The reply to send instead of `reply` (itself, a truncated one, or None: drop).

        An exempt client (the benchmark's, a monitoring host's) costs one dict lookup: no
        address parsing, no clock."""
        exempt = self._exempt_memo.get(address)
        if exempt is None:
            exempt = self._is_exempt(address)
            if len(self._exempt_memo) >= 65536:
                self._exempt_memo = {}
            self._exempt_memo[address] = exempt
        if exempt:
            return reply
        if now is None:
            now = time.monotonic()
        key = (_network(address), _identity(wire, reply))
        bucket = self._buckets.get(key)
        rate, burst = self.config.rate, self.config.rate * self.config.window
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
        self.stats.limited += 1
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


def _identity(wire: bytes, reply: bytes) -> bytes:
    code = reply[3] & 0xF if len(reply) > 3 else 0
    if code:
        return bytes((code,))  # NXDOMAIN, REFUSED, errors: one budget per network
    end = wire.find(0, 12)
    return wire[12 : end + 3].lower() if end > 0 else b""


def truncated(wire: bytes) -> bytes:
    """A TC=1 reply with the question and nothing else: about as small as the query."""
    qid, flags = struct.unpack_from("!HH", wire)
    end = wire.find(0, 12)
    question = wire[12 : end + 5] if 12 < end + 5 <= len(wire) else b""
    header = struct.pack(
        "!HHHHHH", qid, FLAG_QR_AA_TC | (flags & KEEP_FLAGS), 1 if question else 0, 0, 0, 0
    )
    return header + question
