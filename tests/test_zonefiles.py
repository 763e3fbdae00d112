"""Zone documents and master-file text: what loads, and `file:line: message` for what does not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dns.rcode
import pytest

from gslb import zonefiles
from gslb.core.snapshot import Snapshot
from gslb.core.zone import ZoneSet
from tests.helpers import ask, query, rrset_text, write_zones

PASTED = """\
zone: example.net
records: |
  ; an existing BIND zone file, pasted as it is
  $ORIGIN example.net.
  $TTL 1h
  @   IN  SOA  ns1.example.net. hostmaster.example.net. (
                2024051501 ; serial
                7200       ; refresh
                3600       ; retry
                1209600    ; expire
                300 )      ; minimum
  @       IN  NS    ns1
          IN  NS    ns2.example.org.
  ns1     IN  A     192.0.2.1
  @       IN  MX    10 mail
  mail    IN  A     192.0.2.2
  mail    IN  AAAA  2001:db8::2
  www     600 IN CNAME @
  txt     IN  TXT   "quoted; not a comment" "second \\"string\\""
  _sip._udp IN SRV  10 60 5060 sip
  sip     IN  A     192.0.2.3
  @       IN  CAA   0 issue "ca.example.org"
  $ORIGIN 2.0.192.in-addr.example.net.
  1       IN  PTR   ns1.example.net.
"""


def load(tmp_path: Path, docs: dict[str, str]) -> ZoneSet:
    return zonefiles.zone_set(zonefiles.load_directory(write_zones(tmp_path / "zones", docs)))


def refusal(tmp_path: Path, docs: dict[str, str]) -> list[str]:
    with pytest.raises(zonefiles.ZoneLoadError) as info:
        zonefiles.load_directory(write_zones(tmp_path / "zones", docs))
    return [str(e) for e in info.value.errors]


def test_example_zone_loads() -> None:
    loaded = zonefiles.load_directory(Path(__file__).parent.parent / "zones")
    assert [z["zone"] for z in zonefiles.describe(loaded)] == ["gslb.example.com."]


def test_pasted_master_file_loads_whole(tmp_path: Path) -> None:
    snapshot = Snapshot(1, load(tmp_path, {"net.yaml": PASTED}))
    soa = ask(snapshot, query("example.net", "SOA")).answer[0]
    assert soa.ttl == 3600 and soa[0].serial == 2024051501 and soa[0].minimum == 300
    assert rrset_text(ask(snapshot, query("txt.example.net", "TXT")).answer) == [
        'txt.example.net. 3600 IN TXT "quoted; not a comment" "second \\"string\\""'
    ]
    www = ask(snapshot, query("www.example.net", "A"))
    assert www.answer[0].ttl == 600 and www.answer[0][0].target.to_text() == "example.net."
    srv = ask(snapshot, query("_sip._udp.example.net", "SRV"))
    assert srv.answer[0][0].target.to_text() == "sip.example.net."
    assert rrset_text(srv.additional) == ["sip.example.net. 3600 IN A 192.0.2.3"]
    caa = ask(snapshot, query("example.net", "CAA")).answer[0]
    assert caa[0].value == b"ca.example.org"
    ptr = ask(snapshot, query("1.2.0.192.in-addr.example.net", "PTR")).answer[0]
    assert ptr[0].target.to_text() == "ns1.example.net."
    assert ask(snapshot, query("mail.example.net", "AAAA")).answer


def test_records_file_is_read_next_to_the_document(tmp_path: Path) -> None:
    zones = write_zones(
        tmp_path / "zones",
        {
            "z.yaml": "zone: example.org\nsoa: {mname: ns, rname: h}\nrecords_file: example.org.zone\n"
        },
    )
    (zones / "example.org.zone").write_text("@ NS ns\nns A 192.0.2.9\n")
    snapshot = Snapshot(1, zonefiles.zone_set(zonefiles.load_directory(zones)))
    assert rrset_text(ask(snapshot, query("ns.example.org")).answer) == [
        "ns.example.org. 300 IN A 192.0.2.9"
    ]


GOOD = "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  ns A 192.0.2.1\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  ns A 192.0.2.300\n",
            "bad.yaml:5: ",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  x.b.test. A 192.0.2.1\n",
            "bad.yaml:5: x.b.test. is outside the zone a.test.",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  c CNAME x\n  c A 192.0.2.1\n",
            "bad.yaml:6: ",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  $INCLUDE /etc/passwd\n",
            "bad.yaml:5: zone file directive '$INCLUDE' is not allowed",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h, minimum: soon}\nrecords: '@ NS ns'\n",
            "bad.yaml:2: soa.minimum: Input should be a valid integer",
        ),
        (
            "zone: a.test\nsoa:\n  mname: ns\n  rname: h\n  refresh: -1\nrecords: '@ NS ns'\n",
            "bad.yaml:5: soa.refresh: Input should be greater than or equal to 0",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: '@ NS ns'\npoolz: {}\n",
            "bad.yaml:4: poolz: Extra inputs are not permitted",
        ),
        ("zone: a.test\nrecords: '@ NS ns'\n", "bad.yaml:1: no SOA"),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: 'www A 192.0.2.1'\n",
            "bad.yaml:1: no NS records at the apex",
        ),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n  @ NS ns\n  @ SOA a b 1 2 3 4 5\n",
            "bad.yaml:5: the SOA is given twice",
        ),
        ("zone: a.test\nzone: b.test\n", "bad.yaml:2: duplicate key 'zone'"),
        ("zone: a.test\nsoa: {mname: ns, rname: h\n", "bad.yaml:3: not valid YAML"),
        ("- just\n- a list\n", "bad.yaml:1: a zone file is a mapping"),
        ("", "bad.yaml:1: the file is empty"),
        ("zone: 'a..test'\nsoa: {mname: ns, rname: h}\nrecords: '@ NS ns'\n", "bad.yaml:1: zone: "),
        (
            "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: x\nrecords_file: y\n",
            "bad.yaml:1: document: Value error, give records or records_file, not both",
        ),
    ],
)
def test_refused_with_file_line_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    errors = refusal(tmp_path, {"good.yaml": GOOD, "bad.yaml": text})
    assert len(errors) == 1
    assert Path(errors[0].split(":")[0]).name == "bad.yaml"
    assert errors[0].split("/zones/", 1)[1].startswith(expected), errors[0]


def test_error_in_records_file_names_that_file(tmp_path: Path) -> None:
    zones = write_zones(
        tmp_path / "zones",
        {"z.yaml": "zone: example.org\nsoa: {mname: ns, rname: h}\nrecords_file: db.zone\n"},
    )
    (zones / "db.zone").write_text("@ NS ns\n\n; fine so far\nns A not-an-address\n")
    with pytest.raises(zonefiles.ZoneLoadError) as info:
        zonefiles.load_directory(zones)
    assert str(info.value.errors[0]).endswith(
        "db.zone:4: Text input is malformed. in 'ns A not-an-address'"
    )


def test_same_zone_twice_is_refused(tmp_path: Path) -> None:
    errors = refusal(tmp_path, {"one.yaml": GOOD, "two.yaml": GOOD})
    assert len(errors) == 1 and "zone a.test is already defined in" in errors[0]


def test_every_bad_file_is_reported(tmp_path: Path) -> None:
    errors = refusal(tmp_path, {"x.yaml": "zone: [", "y.yaml": "", "ok.yaml": GOOD})
    assert sorted(Path(e.split(":")[0]).name for e in errors) == ["x.yaml", "y.yaml"]


def test_automatic_serial_grows_with_each_change_and_only_then(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"a.yaml": GOOD})
    first = zonefiles.load_directory(zones)
    again = zonefiles.load_directory(zones, first)
    apex = next(iter(first))
    assert again[apex].serial == first[apex].serial, "nothing changed, so neither does the serial"
    (zones / "a.yaml").write_text(GOOD + "  www A 192.0.2.80\n")
    os.utime(zones / "a.yaml", (1, 1))  # even an mtime in the past cannot lower the serial
    changed = zonefiles.load_directory(zones, again)
    assert changed[apex].serial > again[apex].serial


def test_explicit_serial_is_kept(tmp_path: Path) -> None:
    text = GOOD.replace("rname: h}", "rname: h, serial: 42}")
    loaded = zonefiles.load_directory(write_zones(tmp_path / "zones", {"a.yaml": text}))
    assert next(iter(loaded.values())).serial == 42


def test_rname_may_be_a_mail_address(tmp_path: Path) -> None:
    text = GOOD.replace("rname: h}", "rname: dns.admin@example.com}")
    snapshot = Snapshot(1, load(tmp_path, {"a.yaml": text}))
    soa = ask(snapshot, query("a.test", "SOA")).answer[0][0]
    assert soa.rname.to_text() == "dns\\.admin.example.com."


def test_nested_zone_and_its_parent_both_load(tmp_path: Path) -> None:
    parent = "zone: test\nsoa: {mname: ns, rname: h}\nrecords: '@ NS ns'\n"
    snapshot = Snapshot(1, load(tmp_path, {"a.yaml": GOOD, "p.yaml": parent}))
    assert ask(snapshot, query("ns.a.test")).answer
    assert ask(snapshot, query("other.test")).rcode() == dns.rcode.NXDOMAIN


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gslb", *args], capture_output=True, text=True, timeout=60
    )


def test_check_zones_accepts_the_example() -> None:
    result = run_cli("check-zones", str(Path(__file__).parent.parent / "zones"))
    assert result.returncode == 0, result.stderr
    assert '"pools": 2' in result.stdout and "gslb.example.com." in result.stdout
    assert result.stderr == "", "the example is what it means"


DOUBTFUL = """\
zone: doubt.test
soa: {mname: ns, rname: h}
records: "@ NS ns"
isps:
  isp-a: [192.0.2.0/25]
  isp-b: [192.0.2.128/25]
pools:
  heavy:
    policy: [health, round_robin, limit]
    members:
      - {address: 192.0.2.1, weight: 5}
      - {address: 192.0.2.200}
  lonely:
    policy: [health, isp_interleave, limit]
    members:
      - {address: 192.0.2.3}
      - {address: 192.0.2.4}
  fine:
    policy: [health, isp_interleave, limit]
    members:
      - {address: 192.0.2.5, weight: 3}
      - {address: 192.0.2.130}
"""


def test_check_zones_warns_of_what_is_valid_but_probably_not_meant(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"d.yaml": DOUBTFUL})
    result = run_cli("check-zones", str(zones))
    assert result.returncode == 0, "valid: served as it is"
    assert '"pools": 3' in result.stdout
    where = zones / "d.yaml"
    assert result.stderr.splitlines() == [
        f"{where}:9: warning: pools.heavy.policy: members have weights, but no step of the "
        "policy reads them (cost, isp_interleave, least_load, least_traffic, sticky, weighted)",
        f"{where}:16: warning: pools.lonely.members: isp_interleave has one ISP to interleave "
        "(isp-a): give members of two ISPs or more (isps: or a member's isp:)",
    ]


def test_check_zones_exits_nonzero_with_file_line_message(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"bad.yaml": textwrap.dedent(GOOD) + "  www A nope\n"})
    result = run_cli("check-zones", str(zones))
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"{zones / 'bad.yaml'}:6: Text input is malformed. in 'www A nope'"
    )
