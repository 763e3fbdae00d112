"""A real resolver follows a real delegation to us (issue 2 §7).

Two `gslb serve` processes on port 53 of their own loopback addresses: the parent serves
`example.com` and delegates `gslb.example.com` with NS and glue; the child serves the delegated
zone. Debian's unbound, whose only configuration is a stub for `example.com`, must resolve
`www.gslb.example.com` by taking the referral. Binding port 53 needs root, as CI has.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.helpers import query, rrset_text, write_zones
from tests.resolver import unbound_config
from tests.server import ServerProcess

PARENT_ADDRESS = "127.53.0.1"
CHILD_ADDRESS = "127.53.0.2"
RESOLVER_ADDRESS = "127.53.0.3"

PARENT = f"""\
zone: example.com
soa: {{mname: ns.example.com., rname: hostmaster.example.com.}}
records: |
  @          NS   ns
  ns         A    {PARENT_ADDRESS}
  ; the delegation: NS at the parent, and glue because ns1 lives inside the child
  gslb       NS   ns1.gslb
  ns1.gslb   A    {CHILD_ADDRESS}
"""

CHILD = f"""\
zone: gslb.example.com
soa: {{mname: ns1.gslb.example.com., rname: hostmaster.example.com., minimum: 30}}
records: |
  @     NS    ns1
  ns1   A     {CHILD_ADDRESS}
  www   30 A  192.0.2.10
  www   30 A  198.51.100.10
"""


@pytest.fixture
def unbound(tmp_path: Path) -> Iterator[tuple[str, int]]:
    parent = ServerProcess(
        write_zones(tmp_path / "parent", {"p.yaml": PARENT}),
        tmp_path / "pdata",
        dns=(f"{PARENT_ADDRESS}:53",),
    )
    child = ServerProcess(
        write_zones(tmp_path / "child", {"c.yaml": CHILD}),
        tmp_path / "cdata",
        dns=(f"{CHILD_ADDRESS}:53",),
    )
    conf = tmp_path / "unbound.conf"
    conf.write_text(unbound_config(RESOLVER_ADDRESS, tmp_path, "example.com", PARENT_ADDRESS))
    binary = shutil.which("unbound") or "/usr/sbin/unbound"
    subprocess.run(
        [shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf", str(conf)], check=True
    )
    resolver = subprocess.Popen([binary, "-d", "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                dns.query.udp(query("example.com", "SOA"), RESOLVER_ADDRESS, port=53, timeout=0.5)
                break
            except (dns.exception.Timeout, ConnectionRefusedError):
                if time.monotonic() > deadline or resolver.poll() is not None:
                    raise RuntimeError("unbound did not start") from None
        yield RESOLVER_ADDRESS, 53
    finally:
        resolver.terminate()
        resolver.wait(10)
        parent.stop()
        child.stop()


def test_resolver_follows_the_referral(unbound: tuple[str, int]) -> None:
    host, port = unbound
    # Directly: the parent gives a referral, without AA, with glue.
    referral = dns.query.udp(query("www.gslb.example.com"), PARENT_ADDRESS, port=53, timeout=5)
    assert not referral.flags & dns.flags.AA
    assert rrset_text(referral.authority) == ["gslb.example.com. 300 IN NS ns1.gslb.example.com."]
    assert rrset_text(referral.additional) == [f"ns1.gslb.example.com. 300 IN A {CHILD_ADDRESS}"]

    reply = dns.query.udp(query("www.gslb.example.com"), host, port=port, timeout=10)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.RA, "this answer came from the resolver"
    assert sorted(rr.to_text() for rr in reply.answer[0]) == ["192.0.2.10", "198.51.100.10"]

    negative = dns.query.udp(query("nothing.gslb.example.com"), host, port=port, timeout=10)
    assert negative.rcode() == dns.rcode.NXDOMAIN
    assert negative.authority[0].name.to_text() == "gslb.example.com.", (
        "the child's SOA, not the parent's"
    )
