"""A fuzz target for the whole answer path: `python -m tests.fuzz [COUNT] [SEED]` (`make fuzz`).

Valid queries (names in and out of the zones, pools with location and rotation, EDNS with
Client Subnet, NSID, DO, odd sizes) are mutated at random — bytes flipped, inserted, cut,
counts and lengths rewritten, options spliced — and each result goes through `handle()` (UDP
and TCP) and the UDP front (`answer_udp`). A finding is any exception, a reply that is not a
well-formed DNS message, a SERVFAIL (the handler's mark of an internal error), or a UDP reply
larger than the query allowed (512 octets, or its EDNS size).
"""

from __future__ import annotations

import random
import struct
import sys
import tempfile
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode

from gslb.core.handler import Client, Front, ReplyCache, answer_udp, handle
from gslb.core.snapshot import Snapshot
from tests.helpers import CORE_ZONE, snapshot_of, write_zones

POOL_ZONE = """\
zone: pools.example
soa: {mname: ns1, rname: hostmaster.pools.example.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [192.0.2.0/24]
  isp-b: [198.51.100.0/24]
sites:
  lon: {lat: 51.5, lon: -0.1}
  nyc: {lat: 40.7, lon: -74.0}
pools:
  www:
    policy: [health, proximity, isp_interleave, limit]
    members:
      - {address: 192.0.2.10, site: lon}
      - {address: 198.51.100.10, site: nyc}
  rr:
    policy: [health, round_robin, sticky, limit]
    max_answers: 1
    members:
      - {address: 192.0.2.20}
      - {address: 192.0.2.21}
  v6:
    type: AAAA
    members:
      - {address: "2001:db8::1"}
"""

NAMES = [
    "www.gslb.example.com",
    "alias.gslb.example.com",
    "x.wild.gslb.example.com",
    "nothing.gslb.example.com",
    "gslb.example.com",
    "deep.a.b.gslb.example.com",
    "www.pools.example",
    "rr.pools.example",
    "v6.pools.example",
    "pools.example",
    "www.example.org",
    "child.gslb.example.com",
]
TYPES = ["A", "AAAA", "ANY", "MX", "TXT", "SOA", "NS", "CNAME", "DS", "SRV", "TYPE65280"]


def seeds(rng: random.Random) -> list[bytes]:
    out = []
    for name in NAMES:
        for rdtype in TYPES:
            message = dns.message.make_query(name, rdtype)
            out.append(message.to_wire())
            options: list[dns.edns.Option] = [dns.edns.ECSOption("81.2.69.0", 24)]
            if rng.random() < 0.5:
                options.append(dns.edns.GenericOption(dns.edns.NSID, b""))
            message.use_edns(0, payload=rng.choice([512, 1232, 4096, 65535]), options=options)
            message.want_dnssec(rng.random() < 0.5)
            out.append(message.to_wire())
    return out


def mutate(wire: bytes, rng: random.Random) -> bytes:
    data = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        if kind == 0 and data:  # flip a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # insert bytes
            at = rng.randrange(len(data) + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 2 and len(data) > 1:  # cut
            del data[rng.randrange(len(data)) :]
        elif kind == 3 and len(data) >= 12:  # rewrite a count
            struct.pack_into("!H", data, rng.choice((4, 6, 8, 10)), rng.choice((0, 1, 2, 0xFFFF)))
        elif kind == 4 and len(data) >= 4:  # flags: opcode, QR, rcode
            struct.pack_into("!H", data, 2, rng.randrange(0x10000))
        elif kind == 5:  # an option spliced in at the end
            code = rng.choice((3, 8, 10, 12, rng.randrange(0x10000)))
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
            data += struct.pack("!HH", code, rng.choice((len(body), rng.randrange(64)))) + body
        elif kind == 6 and len(data) > 13:  # a label length made wrong
            data[12] = rng.choice((0, 63, 64, 0xC0, 0xC0 | 12, 255))
        elif kind == 7:  # duplicate a slice
            a = rng.randrange(len(data) + 1)
            b = rng.randrange(a, min(len(data), a + 20) + 1)
            data[b:b] = data[a:b]
    return bytes(data)


def allowed_size(wire: bytes) -> int:
    try:
        query = dns.message.from_wire(wire)
    except Exception:
        return 512
    return max(512, query.payload) if query.edns >= 0 else 512


def check(wire: bytes, reply: bytes | None, udp: bool) -> str | None:
    if reply is None or reply == b"":
        return None
    try:
        message = dns.message.from_wire(reply)
    except Exception as e:
        return f"malformed reply ({e})"
    if message.rcode() == dns.rcode.SERVFAIL:
        return "SERVFAIL: an internal error"
    if udp and len(reply) > allowed_size(wire):
        return f"UDP reply of {len(reply)} octets, more than the query allows"
    return None


def run(count: int, seed: int = 1, snapshot: Snapshot | None = None) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    if snapshot is None:
        base = Path(tempfile.mkdtemp()) / "zones"
        snapshot = snapshot_of(write_zones(base, {"core.yaml": CORE_ZONE, "pools.yaml": POOL_ZONE}))
    base_seeds = seeds(rng)
    cache, udp_cache, front = ReplyCache(), ReplyCache(), Front()
    findings: list[tuple[bytes, str]] = []
    for i in range(count):
        wire = mutate(rng.choice(base_seeds), rng)
        client = f"198.51.100.{i % 256}" if i % 3 else f"2001:db8::{i % 65536:x}"
        try:
            problem = check(wire, handle(wire, Client(client, 53, False), snapshot, cache), True)
            problem = problem or check(
                wire, handle(wire, Client(client, 53, True), snapshot, cache), False
            )
            problem = problem or check(
                wire, answer_udp(wire, client, snapshot, udp_cache, front), True
            )
        except Exception as e:  # handle() promises never to raise
            problem = f"raised {type(e).__name__}: {e}"
        if problem:
            findings.append((wire, problem))
    return findings


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    started = time.monotonic()
    findings = run(count, seed)
    took = time.monotonic() - started
    print(
        f"{count} mutated queries (seed {seed}), each through UDP, TCP and the UDP front, "
        f"in {took:.0f} s: {len(findings)} findings"
    )
    for wire, problem in findings[:20]:
        print(f"  {problem}: {wire.hex()}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
