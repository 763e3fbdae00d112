"""Shared test helpers: zones written to disk, queries through the pure core."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import dns.edns
import dns.message
import dns.rrset

from gslb import zonefiles
from gslb.core.answer import Client, handle
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Settings, Snapshot

FIGURES = Path(__file__).resolve().parent.parent / "test-output"


def record(scenario: str, name: str, value: float) -> None:
    """Keep what a test measured (test-output/SCENARIO-figures.json), for docs/reliability.md:
    the test asserts the bound, the figure says where within it things were."""
    path = FIGURES / f"{scenario}-figures.json"
    FIGURES.mkdir(exist_ok=True)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = round(value, 3)
    path.write_text(json.dumps(figures, indent=1, sort_keys=True))


CORE_ZONE = """\
zone: gslb.example.com
ttl: 300
soa: {mname: ns1, rname: hostmaster.example.com., minimum: 60, serial: 2024010101}
records: |
  @           NS     ns1
  @           NS     ns.elsewhere.example.
  ns1         A      192.0.2.53
  ns1         AAAA   2001:db8::53
  www         30 A   192.0.2.10
  www         30 A   198.51.100.10
  mail        A      192.0.2.25
  @           MX     10 mail
  @           MX     20 mx.elsewhere.example.
  alias       CNAME  www
  chain1      CNAME  chain2
  chain2      CNAME  www
  dangling    CNAME  nothing-here
  outside     CNAME  www.example.org.
  loop1       CNAME  loop2
  loop2       CNAME  loop1
  *.wild      A      192.0.2.99
  *.wild      TXT    "synthesised"
  *.wcname    CNAME  www
  deep.a.b    A      192.0.2.77
  child       NS     ns1.child
  child       NS     ns.elsewhere.example.
  ns1.child   A      192.0.2.200
  child       DS     12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  srv         SRV    0 5 443 www
  big         TXT    ( "A250" "B250" "C250" )
  big         TXT    "D250"
"""
# Four 250-octet strings: too big for 512 octets, fine in 1232.
for _letter in "ABCD":
    CORE_ZONE = CORE_ZONE.replace(f"{_letter}250", _letter.lower() * 250)

PARENT_ZONE = """\
zone: example.com
soa: {mname: ns.example.com., rname: hostmaster.example.com.}
records: |
  @     NS  ns
  ns    A   192.0.2.1
"""


def write_zones(directory: Path, docs: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def snapshot_of(directory: Path, version: int = 1, **settings: object) -> Snapshot:
    loaded = zonefiles.load_directory(directory)
    return Snapshot(version, zonefiles.zone_set(loaded), Settings(**settings))  # type: ignore[arg-type]


def ask(
    snapshot: Snapshot,
    message: dns.message.Message | bytes,
    cache: ReplyCache | None = None,
    tcp: bool = False,
) -> dns.message.Message:
    wire = message if isinstance(message, bytes) else message.to_wire()
    reply = handle(wire, Client("192.0.2.1", 5353, tcp), snapshot, cache)
    assert reply is not None
    return dns.message.from_wire(reply)


def query(name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]


def rrset_text(rrsets: list[dns.rrset.RRset]) -> list[str]:
    return sorted(rr.to_text() for rr in rrsets)


def ecs(address: str, prefix: int) -> dns.edns.ECSOption:
    return dns.edns.ECSOption(address, prefix)


def start_backend(address: str, port: int) -> subprocess.Popen[str]:
    """A tests.backend process (TCP, HTTP and HTTPS on `port`), returned once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.backend", address, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc
