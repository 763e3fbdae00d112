"""DNSSEC with the keys in files, off Redis (`dnssec: {keys: NAME}`, docs/dnssec.md): a real
`gslb serve` signs with the key `gslb dnssec keygen` wrote into its key directory, Debian's
unbound trusting the DS keygen printed validates its answers, the key never reaches Redis, a
rollover is done by adding a file and then removing the old one, and a file that is not safe
is refused while the node goes on signing. Binding port 53 needs root, as CI has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
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
import redis

from tests.api_client import Http, Reply
from tests.helpers import write_zones
from tests.resolver import unbound_config
from tests.server import ServerProcess
from tests.test_redis_state import until

SERVER_ADDRESS = "127.53.0.12"
RESOLVER_ADDRESS = "127.53.0.13"
ZONE = "files.example"
ORIGIN = dns.name.from_text(ZONE)

ZONE_FILE = f"""\
zone: {ZONE}
soa: {{mname: ns1, rname: hostmaster.example.com., minimum: 30}}
dnssec: {{algorithm: ECDSAP256SHA256, keys: files-example, dnskey_ttl: 2}}
records: |
  @        NS    ns1
  ns1      A     {SERVER_ADDRESS}
  mail     A     192.0.2.25
pools:
  www:
    policy: [health, round_robin, limit]
    max_answers: 2
    members:
      - {{address: 192.0.2.10}}
      - {{address: 192.0.2.20}}
      - {{address: 192.0.2.30}}
"""


def ask(name: str, rdtype: str = "A", where: str = SERVER_ADDRESS) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    return dns.query.udp(q, where, port=53, timeout=5)


def keygen(path: Path) -> str:
    """`gslb dnssec keygen`: the new key file, and the DS line it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "gslb", "dnssec", "keygen", ZONE, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def dnskeys() -> set[str]:
    reply = ask(ZONE, "DNSKEY")
    keys = next(r for r in reply.answer if r.rdtype == dns.rdatatype.DNSKEY)
    sigs = next(r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG)
    dns.dnssec.validate(keys, sigs, {ORIGIN: keys})
    return {rd.to_text() for rd in keys}


class Bed:
    def __init__(self, base: Path) -> None:
        self.data = base / "data"
        self.keys = self.data / "dnssec-keys" / "files-example"
        self.keys.mkdir(parents=True)
        self.first_ds = keygen(self.keys / "first.pem")
        self.server = ServerProcess(
            write_zones(base / "zones", {"z.yaml": ZONE_FILE}),
            self.data,
            "--no-checker",
            dns=(f"{SERVER_ADDRESS}:53",),
        )
        host, port = self.server.http[0]
        self.http = Http(host, port, (self.data / "api-token").read_text().strip())

    def call(self, method: str, path: str) -> Reply:
        return self.http(method, f"/api/v1/{path}")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    bed = Bed(tmp_path_factory.mktemp("dnssec-files"))
    try:
        until(lambda: any(r.rdtype == dns.rdatatype.DNSKEY for r in ask(ZONE, "DNSKEY").answer))
        yield bed
    finally:
        assert bed.server.stop() == 0


@pytest.fixture(scope="module")
def unbound(bed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """unbound trusting only the DS `gslb dnssec keygen` printed for the first key."""
    base = tmp_path_factory.mktemp("unbound-files")
    conf = base / "unbound.conf"
    conf.write_text(unbound_config(RESOLVER_ADDRESS, base, ZONE, SERVER_ADDRESS, bed.first_ds))
    resolver = subprocess.Popen(
        [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]
    )
    try:
        until(lambda: _answers(RESOLVER_ADDRESS), timeout=20)
        yield RESOLVER_ADDRESS
    finally:
        resolver.terminate()
        resolver.wait(10)


def _answers(where: str) -> bool:
    try:
        ask(ZONE, "SOA", where=where)
        return True
    except (dns.exception.Timeout, ConnectionRefusedError):
        return False


def authenticated(resolver: str, name: str) -> dns.message.Message:
    reply = ask(name, where=resolver)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AD, reply
    return reply


def test_the_key_file_signs_and_stays_off_redis(bed: Bed, unbound: str) -> None:
    assert authenticated(unbound, f"mail.{ZONE}").answer
    for _ in range(10):
        assert authenticated(unbound, f"www.{ZONE}").answer
    assert not authenticated(unbound, f"nope.{ZONE}").answer
    store = redis.Redis(unix_socket_path=str(bed.data / "redis.sock"))
    assert store.hget("gslb:dnssec-keys", ZONE) is None, "the key is not in the state store"
    view = bed.call("GET", f"zones/{ZONE}/dnssec").json
    assert view["key_store"] == "files" and view["ds"] == [bed.first_ds], view
    refused = bed.call("POST", f"zones/{ZONE}/dnssec/roll")
    assert refused.status == 409 and "adding" in refused.json["message"], refused.body


def test_a_rollover_by_files_never_fails_validation(bed: Bed, unbound: str) -> None:
    (before,) = dnskeys()
    keygen(bed.keys / "second.pem")
    until(lambda: len(dnskeys()) == 2)  # both published, both sign
    for _ in range(5):
        authenticated(unbound, f"www.{ZONE}")
    (bed.keys / "first.pem").unlink()
    until(lambda: len(dnskeys()) == 1)
    assert before not in dnskeys(), "the older key went"
    view = bed.call("GET", f"zones/{ZONE}/dnssec").json
    assert len(view["keys"]) == 1 and view["rollover"] == "none", view


def test_an_unsafe_key_file_is_refused_and_signing_goes_on(bed: Bed) -> None:
    held = dnskeys()
    made = bed.data / "loose.pem"
    keygen(made)
    made.chmod(0o644)
    loose = made.rename(bed.keys / "loose.pem")  # it appears world-readable
    until(
        lambda: any(
            "loose.pem: readable or writable by others" in str(e["error"])
            for e in bed.server.events("dnssec key files refused")
        )
    )
    assert dnskeys() == held, "the node signs with the keys it held"
    assert ask(f"mail.{ZONE}").answer
    loose.chmod(0o600)
    until(lambda: len(dnskeys()) == 2)
    bed.server.wait_for_event("dnssec key files read")
