"""DNSSEC over the wire (issue 16): a real `gslb serve` signs a zone online with a key it makes
and keeps in Redis, dnspython validates what it answers, and Debian's unbound, validating with
the zone's own key as its trust anchor, resolves static names, a pool name (many times, so the
rotating orders are covered), a name that does not exist, a type a name lacks and a wildcard
with AD=1. Answers without DO stay unsigned. Binding port 53 needs root, as CI has."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.helpers import write_zones
from tests.resolver import unbound_config
from tests.server import ServerProcess
from tests.test_redis_state import until

SERVER_ADDRESS = "127.53.0.5"
RESOLVER_ADDRESS = "127.53.0.6"
ZONE = "signed.example"
# Short TTLs for the keys here and the DS at the parent, so that a rollover's steps (each
# waits for caches to let the previous one go, docs/dnssec.md) take seconds, not hours.
KEY_TTL = 2
ORIGIN = dns.name.from_text(ZONE)

ZONE_FILE = f"""\
zone: {ZONE}
soa: {{mname: ns1, rname: hostmaster.example.com., minimum: 30}}
dnssec: {{algorithm: ECDSAP256SHA256, dnskey_ttl: {KEY_TTL}}}
records: |
  @        NS    ns1
  ns1      A     {SERVER_ADDRESS}
  @        MX    10 mail
  mail     A     192.0.2.25
  @        TXT   "v=spf1 -all"
  *.wild   A     192.0.2.99
pools:
  www:
    policy: [health, round_robin, limit]
    max_answers: 2
    members:
      - {{address: 192.0.2.10}}
      - {{address: 192.0.2.20}}
      - {{address: 192.0.2.30}}
"""


def ask(
    name: str, rdtype: str = "A", do: bool = True, where: str = SERVER_ADDRESS
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=do)
    return dns.query.udp(q, where, port=53, timeout=5)


TOKEN_FILE: list[Path] = [Path()]
ZONES_DIR: list[Path] = [Path()]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("dnssec")
    TOKEN_FILE[0] = base / "data" / "api-token"
    ZONES_DIR[0] = base / "zones"
    server = ServerProcess(
        write_zones(base / "zones", {"z.yaml": ZONE_FILE}),
        base / "data",
        "--no-checker",
        dns=(f"{SERVER_ADDRESS}:53",),
    )
    try:
        until(lambda: any(r.rdtype == dns.rdatatype.DNSKEY for r in ask(ZONE, "DNSKEY").answer))
        yield server
    finally:
        assert server.stop() == 0


def dnskey(reply: dns.message.Message | None = None) -> dns.rrset.RRset:
    reply = reply or ask(ZONE, "DNSKEY")
    return next(r for r in reply.answer if r.rdtype == dns.rdatatype.DNSKEY)


def validated(reply: dns.message.Message, section: str = "answer") -> list[dns.rrset.RRset]:
    """Every RRset of `section` validated against the zone's DNSKEY; the RRsets."""
    keys = {ORIGIN: dnskey()}
    rrsets = getattr(reply, section)
    signatures = {(r.name, r.covers): r for r in rrsets if r.rdtype == dns.rdatatype.RRSIG}
    data = [r for r in rrsets if r.rdtype != dns.rdatatype.RRSIG]
    for rrset in data:
        dns.dnssec.validate(rrset, signatures[(rrset.name, rrset.rdtype)], keys)
    return data


def test_answers_are_signed_and_validate_and_without_do_stay_small(served: ServerProcess) -> None:
    keys = ask(ZONE, "DNSKEY")
    dns.dnssec.validate(
        dnskey(keys),
        next(r for r in keys.answer if r.rdtype == dns.rdatatype.RRSIG),
        {ORIGIN: dnskey(keys)},
    )
    assert [r.rdtype for r in validated(ask(f"mail.{ZONE}"))] == [dns.rdatatype.A]
    orders = set()
    for _ in range(12):
        (www,) = validated(ask(f"www.{ZONE}"))
        orders.add(tuple(str(rd) for rd in www))
    assert len(orders) >= 2, "rotating orders, each validating"
    plain = ask(f"www.{ZONE}", do=False)
    assert not any(r.rdtype == dns.rdatatype.RRSIG for r in plain.answer + plain.authority)
    assert len(plain.to_wire()) < len(ask(f"www.{ZONE}").to_wire())


def test_denial_is_compact_and_signed(served: ServerProcess) -> None:
    nx = ask(f"nope.{ZONE}")
    assert nx.rcode() == dns.rcode.NOERROR and not nx.answer
    proof = [r for r in validated(nx, "authority") if r.rdtype == dns.rdatatype.NSEC]
    assert proof and proof[0].name == dns.name.from_text(f"nope.{ZONE}")
    assert "NXNAME" in proof[0][0].to_text()
    nodata = ask(f"mail.{ZONE}", "AAAA")
    (nsec,) = [r for r in validated(nodata, "authority") if r.rdtype == dns.rdatatype.NSEC]
    assert "A RRSIG NSEC" in nsec[0].to_text() and "AAAA" not in nsec[0].to_text()


def test_a_changed_answer_does_not_validate(served: ServerProcess) -> None:
    reply = ask(f"mail.{ZONE}")
    a = next(r for r in reply.answer if r.rdtype == dns.rdatatype.A)
    sig = next(r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG)
    forged = dns.rrset.from_text(a.name, a.ttl, "IN", "A", "203.0.113.66")
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(forged, sig, {ORIGIN: dnskey()})


@pytest.fixture(scope="module")
def unbound(served: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("unbound")
    anchor = dnskey().to_text().splitlines()[0]
    conf = base / "unbound.conf"
    conf.write_text(unbound_config(RESOLVER_ADDRESS, base, ZONE, SERVER_ADDRESS, anchor))
    subprocess.run(
        [shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf", str(conf)], check=True
    )
    resolver = subprocess.Popen(
        [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ask(ZONE, "SOA", where=RESOLVER_ADDRESS)
                break
            except (dns.exception.Timeout, ConnectionRefusedError):
                if time.monotonic() > deadline or resolver.poll() is not None:
                    raise RuntimeError("unbound did not start") from None
        yield RESOLVER_ADDRESS
    finally:
        resolver.terminate()
        resolver.wait(10)


def resolve(resolver: str, name: str, rdtype: str = "A") -> dns.message.Message:
    return ask(name, rdtype, where=resolver)


@pytest.mark.parametrize(
    ("name", "rdtype", "answered"),
    [
        (f"mail.{ZONE}", "A", True),
        (ZONE, "MX", True),
        (ZONE, "TXT", True),
        (f"host.wild.{ZONE}", "A", True),  # a wildcard
        (f"nope.{ZONE}", "A", False),  # a name that does not exist
        (f"mail.{ZONE}", "AAAA", False),  # a type the name lacks
    ],
)
def test_a_validating_resolver_says_authenticated(
    unbound: str, name: str, rdtype: str, answered: bool
) -> None:
    reply = resolve(unbound, name, rdtype)
    assert reply.rcode() == dns.rcode.NOERROR, reply
    assert reply.flags & dns.flags.AD, reply
    assert bool(reply.answer) == answered, reply


def test_a_pool_name_validates_in_every_order(unbound: str) -> None:
    seen = set()
    for _ in range(20):
        reply = resolve(unbound, f"www.{ZONE}")
        assert reply.flags & dns.flags.AD and reply.answer, reply
        seen.add(tuple(str(rd) for rr in reply.answer for rd in rr))
    assert seen, seen


def test_gslb_dnssec_ds_prints_what_the_parent_needs(served: ServerProcess) -> None:
    host, port = served.http[0]
    data = TOKEN_FILE[0]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gslb",
            "dnssec",
            "ds",
            ZONE,
            "--dnskey",
            "--api",
            f"http://{host}:{port}",
            "--token-file",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    ds_line, key_line = done.stdout.splitlines()
    ds = dns.rrset.from_text(ORIGIN, 3600, "IN", "DS", ds_line.split(" DS ", 1)[1])
    assert ds[0] == dns.dnssec.make_ds(ORIGIN, dnskey()[0], "SHA256"), (
        "the DS of the key it signs with"
    )
    assert key_line.split(" DNSKEY ", 1)[1] == dnskey()[0].to_text()


PROXY_ADDRESS = "127.53.0.7"


class Tamperer:
    """A UDP hop between the resolver and the server that changes the last octet of every
    A record for mail.signed.example: an answer changed on the wire."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((PROXY_ADDRESS, 53))
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.settimeout(2)
        while not self.stopping:
            try:
                wire, client = self.sock.recvfrom(65535)
                upstream.sendto(wire, (SERVER_ADDRESS, 53))
                reply = dns.message.from_wire(upstream.recv(65535))
            except (OSError, dns.exception.DNSException):
                continue
            for rrset in reply.answer:
                if rrset.rdtype == dns.rdatatype.A and rrset.name.to_text().startswith("mail."):
                    forged = dns.rrset.from_text(rrset.name, rrset.ttl, "IN", "A", "203.0.113.66")
                    rrset.clear()
                    rrset.update(forged)
            self.sock.sendto(reply.to_wire(), client)

    def close(self) -> None:
        self.stopping = True
        self.sock.close()


def test_an_answer_changed_on_the_wire_is_servfail_at_the_validator(
    served: ServerProcess, tmp_path: Path
) -> None:
    proxy = Tamperer()
    conf = tmp_path / "unbound.conf"
    conf.write_text(
        unbound_config(
            "127.53.0.8", tmp_path, ZONE, PROXY_ADDRESS, dnskey().to_text().splitlines()[0]
        )
    )
    resolver = subprocess.Popen(
        [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]
    )
    try:
        until(lambda: _answers(lambda: ask(f"ns1.{ZONE}", where="127.53.0.8")))
        forged = ask(f"mail.{ZONE}", where="127.53.0.8")
        assert forged.rcode() == dns.rcode.SERVFAIL, forged
        assert not forged.answer
    finally:
        resolver.terminate()
        resolver.wait(10)
        proxy.close()


def _answers(attempt: Callable[[], dns.message.Message]) -> bool:
    try:
        return attempt().rcode() == dns.rcode.NOERROR
    except (dns.exception.Timeout, ConnectionRefusedError):
        return False


PARENT_ADDRESS = "127.53.0.9"
PARENT_RESOLVER = "127.53.0.10"


def test_a_signed_gslb_parent_holding_the_ds_links_the_chain(
    served: ServerProcess, tmp_path: Path
) -> None:
    """The other way in: the resolver trusts only the parent's key; the parent (gslb too,
    signed) delegates with the child's DS; the child's answers validate through it."""
    ds = dns.dnssec.make_ds(ORIGIN, dnskey()[0], "SHA256").to_text()
    parent_zone = f"""\
zone: example
soa: {{mname: ns, rname: hostmaster.example.com.}}
dnssec: {{algorithm: ED25519}}
records: |
  @            NS   ns
  ns           A    {PARENT_ADDRESS}
  signed       NS   ns1.signed
  ns1.signed   A    {SERVER_ADDRESS}
  signed       DS   {ds}
  unsigned     NS   ns1.unsigned
  ns1.unsigned A    {SERVER_ADDRESS}
"""
    parent = ServerProcess(
        write_zones(tmp_path / "parent", {"p.yaml": parent_zone}),
        tmp_path / "pdata",
        "--no-checker",
        dns=(f"{PARENT_ADDRESS}:53",),
    )
    resolver = None
    try:
        until(
            lambda: any(
                r.rdtype == dns.rdatatype.DNSKEY
                for r in ask("example", "DNSKEY", where=PARENT_ADDRESS).answer
            )
        )
        referral = ask(f"www.{ZONE}", where=PARENT_ADDRESS)
        assert [r.rdtype for r in referral.authority] == [
            dns.rdatatype.NS,
            dns.rdatatype.DS,
            dns.rdatatype.RRSIG,
        ]
        no_ds = ask("www.unsigned.example", where=PARENT_ADDRESS)
        assert [r.rdtype for r in no_ds.authority] == [
            dns.rdatatype.NS,
            dns.rdatatype.NSEC,
            dns.rdatatype.RRSIG,
        ]
        anchor = next(
            r
            for r in ask("example", "DNSKEY", where=PARENT_ADDRESS).answer
            if r.rdtype == dns.rdatatype.DNSKEY
        )
        conf = tmp_path / "unbound.conf"
        conf.write_text(
            unbound_config(
                PARENT_RESOLVER,
                tmp_path,
                "example",
                PARENT_ADDRESS,
                anchor.to_text().splitlines()[0],
            )
        )
        resolver = subprocess.Popen(
            [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]
        )
        until(lambda: _answers(lambda: ask("example", "SOA", where=PARENT_RESOLVER)))
        for name, answered in (
            (f"www.{ZONE}", True),
            (f"mail.{ZONE}", True),
            (f"nope.{ZONE}", False),
        ):
            reply = ask(name, where=PARENT_RESOLVER)
            assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AD, reply
            assert bool(reply.answer) == answered, reply
    finally:
        if resolver is not None:
            resolver.terminate()
            resolver.wait(10)
        parent.stop()


def test_metrics_say_what_the_signer_did_and_when_signatures_expire(served: ServerProcess) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        ask(f"www.{ZONE}")
    host, port = served.http[0]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (s.name, s.labels.get("zone")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("gslb_dnssec_signatures_made_total", ZONE)] >= 1
    assert samples[("gslb_dnssec_signature_cache_hits_total", ZONE)] >= 0
    expiry = samples[("gslb_dnssec_signature_expiry_seconds", ZONE)]
    assert 6.9 * 86400 < expiry <= 7 * 86400, expiry
    ages = [
        v
        for (name, zone), v in samples.items()
        if name == "gslb_dnssec_key_age_seconds" and zone == ZONE
    ]
    assert ages and all(0 <= age < 3600 for age in ages), ages


@pytest.mark.parametrize(
    ("name", "rdtype", "verdict"),
    [
        (f"mail.{ZONE}", "A", "; fully validated"),
        (f"www.{ZONE}", "A", "; fully validated"),
        (f"host.wild.{ZONE}", "A", "; fully validated"),
        (f"nope.{ZONE}", "A", "; negative response, fully validated"),
        (f"mail.{ZONE}", "AAAA", "; negative response, fully validated"),
    ],
)
def test_delv_with_the_same_anchor_agrees(
    served: ServerProcess, tmp_path: Path, name: str, rdtype: str, verdict: str
) -> None:
    key = dnskey()[0]
    anchors = tmp_path / "anchors.conf"
    public = key.to_text().split(" ", 3)[3].replace(" ", "")
    anchors.write_text(
        f'trust-anchors {{ {ZONE}. static-key {key.flags} {key.protocol} {key.algorithm} "{public}"; }};\n'
    )
    done = subprocess.run(
        [
            shutil.which("delv") or "/usr/bin/delv",
            f"@{SERVER_ADDRESS}",
            "-a",
            str(anchors),
            f"+root={ZONE}",
            name,
            rdtype,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert verdict in (done.stdout + done.stderr).splitlines(), done.stdout + done.stderr


def test_client_subnet_answers_are_signed_each_for_its_network(tmp_path: Path) -> None:
    from tests.geoip_fixtures import LONDON, NEW_YORK, write_city

    zone = """\
zone: geo.example
soa: {mname: ns1, rname: hostmaster.example.com.}
dnssec: {algorithm: ED25519}
records: "@ NS ns1"
sites:
  lon: {lat: 51.5, lon: -0.1}
  nyc: {lat: 40.7, lon: -74.0}
pools:
  www:
    policy: [health, proximity, limit]
    max_answers: 1
    members:
      - {address: 192.0.2.10, site: lon}
      - {address: 192.0.2.20, site: nyc}
"""
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": zone}),
        tmp_path / "data",
        "--no-checker",
        "--geoip",
        str(write_city(tmp_path / "city.mmdb")),
    )
    try:

        def at(client: str | None, rdtype: str = "A") -> dns.message.Message:
            options = [dns.edns.ECSOption(client, 24)] if client else []
            q = dns.message.make_query(
                "www.geo.example" if rdtype == "A" else "geo.example",
                rdtype,
                want_dnssec=True,
                options=options,
            )
            return dns.query.udp(q, server.host, port=server.port, timeout=5)

        until(lambda: any(r.rdtype == dns.rdatatype.DNSKEY for r in at(None, "DNSKEY").answer))
        keys = {
            dns.name.from_text("geo.example"): next(
                r for r in at(None, "DNSKEY").answer if r.rdtype == dns.rdatatype.DNSKEY
            )
        }
        for client, expected in ((LONDON, "192.0.2.10"), (NEW_YORK, "192.0.2.20")):
            reply = at(client)
            a = next(r for r in reply.answer if r.rdtype == dns.rdatatype.A)
            sig = next(r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG)
            dns.dnssec.validate(a, sig, keys)
            assert [str(rd) for rd in a] == [expected], client
            (ecs,) = [o for o in reply.options if isinstance(o, dns.edns.ECSOption)]
            assert ecs.scopelen == 24, "the scope says the answer depends on the client's network"
    finally:
        assert server.stop() == 0


def test_a_key_rollover_never_makes_the_validator_fail(
    served: ServerProcess, tmp_path: Path
) -> None:
    """Double signature, driven by `gslb dnssec roll` and the parent's DS, with one validating
    resolver asking throughout (and a fresh one at the end): AD=1 at every step."""
    host, port = served.http[0]
    api = f"http://{host}:{port}"

    def roll() -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gslb",
                "dnssec",
                "roll",
                ZONE,
                "--api",
                api,
                "--token-file",
                str(TOKEN_FILE[0]),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def parent_zone(keys: list[dns.rdata.Rdata]) -> str:
        lines = "".join(
            f"  signed DS {dns.dnssec.make_ds(ORIGIN, k, 'SHA256').to_text()}\n" for k in keys
        )
        return (
            f"zone: example\nttl: {KEY_TTL}\nsoa: {{mname: ns, rname: hostmaster.example.com.}}\n"
            "dnssec: {algorithm: ED25519}\nrecords: |\n"
            f"  @ NS ns\n  ns A {PARENT_ADDRESS}\n  signed NS ns1.signed\n  ns1.signed A {SERVER_ADDRESS}\n"
            + lines
        )

    zones = write_zones(tmp_path / "parent", {"p.yaml": parent_zone(list(dnskey()))})
    parent = ServerProcess(zones, tmp_path / "pdata", "--no-checker", dns=(f"{PARENT_ADDRESS}:53",))
    resolvers: list[subprocess.Popen[bytes]] = []

    def start_resolver(address: str) -> None:
        anchor = next(
            r
            for r in ask("example", "DNSKEY", where=PARENT_ADDRESS).answer
            if r.rdtype == dns.rdatatype.DNSKEY
        )
        directory = tmp_path / address
        directory.mkdir()
        conf = directory / "unbound.conf"
        conf.write_text(
            unbound_config(
                address, directory, "example", PARENT_ADDRESS, anchor.to_text().splitlines()[0]
            )
        )
        resolvers.append(
            subprocess.Popen(
                [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]
            )
        )
        until(lambda: _answers(lambda: ask("example", "SOA", where=address)))

    def parent_ds() -> int:
        reply = ask(ZONE, "DS", where=PARENT_ADDRESS)
        return sum(len(r) for r in reply.answer if r.rdtype == dns.rdatatype.DS)

    checked = [0]

    def secure(resolver: str) -> None:
        checked[0] += 1
        for name in (f"www.{ZONE}", f"step{checked[0]}.wild.{ZONE}", f"nope{checked[0]}.{ZONE}"):
            reply = ask(name, where=resolver)
            assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AD, (name, reply)

    try:
        until(
            lambda: any(
                r.rdtype == dns.rdatatype.DNSKEY
                for r in ask("example", "DNSKEY", where=PARENT_ADDRESS).answer
            )
        )
        start_resolver(PARENT_RESOLVER)
        secure(PARENT_RESOLVER)
        old = list(dnskey())
        # 1. Start: a second key signs too and is published; CDS names both.
        assert "rollover started" in roll()
        until(lambda: len(dnskey()) == 2, timeout=20)
        cds = [r for r in ask(ZONE, "CDS").answer if r.rdtype == dns.rdatatype.CDS]
        assert sum(len(r) for r in cds) == 2
        time.sleep(KEY_TTL + 1)  # the rollover's own rule: caches let the old DNSKEY set go
        secure(PARENT_RESOLVER)
        # 2. The parent takes both DS (double DS).
        both = list(dnskey())
        (zones / "p.yaml").write_text(parent_zone(both))
        parent.signal(signal.SIGHUP)
        until(lambda: parent_ds() == 2)
        time.sleep(KEY_TTL + 1)  # and the old DS
        secure(PARENT_RESOLVER)
        # 3. Complete: the older key goes.
        assert "rollover completed" in roll()
        until(lambda: len(dnskey()) == 1, timeout=20)
        assert dnskey()[0] not in old
        time.sleep(KEY_TTL + 1)
        secure(PARENT_RESOLVER)
        # 4. The parent drops the old DS; a resolver that never saw the old key validates too.
        (zones / "p.yaml").write_text(parent_zone(list(dnskey())))
        parent.signal(signal.SIGHUP)
        until(lambda: parent_ds() == 1)
        time.sleep(KEY_TTL + 1)
        secure(PARENT_RESOLVER)
        start_resolver("127.53.0.11")
        secure("127.53.0.11")
    finally:
        for resolver in resolvers:
            resolver.terminate()
            resolver.wait(10)
        parent.stop()


def test_going_insecure_asks_the_parent_to_delete_the_ds_first_then_stops_signing(
    served: ServerProcess,
) -> None:
    """Last in this file: it leaves the zone unsigned."""
    zone_file = ZONES_DIR[0] / "z.yaml"
    signed = zone_file.read_text()
    # 1. withdraw: still signed, and CDS / CDNSKEY say "delete the DS" (RFC 8078).
    zone_file.write_text(
        signed.replace(f"dnskey_ttl: {KEY_TTL}}}", f"dnskey_ttl: {KEY_TTL}, withdraw: true}}")
    )
    served.signal(signal.SIGHUP)

    def cds() -> list[str]:
        return [
            rd.to_text()
            for r in ask(ZONE, "CDS").answer
            if r.rdtype == dns.rdatatype.CDS
            for rd in r
        ]

    until(lambda: cds() == ["0 0 0 00"], timeout=20)
    assert [r.rdtype for r in validated(ask(f"mail.{ZONE}"))] == [dns.rdatatype.A], "still signed"
    cdnskey = [
        rd.to_text()
        for r in ask(ZONE, "CDNSKEY").answer
        if r.rdtype == dns.rdatatype.CDNSKEY
        for rd in r
    ]
    assert cdnskey == ["0 3 0 AA=="]
    # 2. Once the parent has no DS: dnssec: goes, and so do the signatures.
    zone_file.write_text(
        "".join(line + "\n" for line in signed.splitlines() if not line.startswith("dnssec:"))
    )
    served.signal(signal.SIGHUP)
    until(
        lambda: not any(r.rdtype == dns.rdatatype.RRSIG for r in ask(f"mail.{ZONE}").answer),
        timeout=20,
    )
    assert not ask(ZONE, "DNSKEY").answer
