"""The master-file reader (issue 13): it reads what dnspython reads, in linear time, and
refuses what would cost unbounded time before spending it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dns.name
import dns.rdataclass
import dns.tokenizer
import dns.zonefile
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.core import masterfile
from gslb.core.records import rdata_wire
from tests.helpers import write_zones

ORIGIN = dns.name.from_text("a.test.")


RRsets = dict[tuple[str, int], tuple[int, frozenset[str]]]


def rrsets(records: list[tuple[str, int, int, str]]) -> RRsets:
    """(owner, type) -> (TTL, rdata): as an RRset is served (one TTL, the smallest; duplicate
    records are one, RFC 2181 §5)."""
    out: RRsets = {}
    for owner, ttl, rtype, rdata in records:
        old_ttl, old = out.get((owner, rtype), (ttl, frozenset()))
        out[(owner, rtype)] = (min(ttl, old_ttl), old | {rdata})
    return out


def ours(text: str) -> RRsets:
    return rrsets(
        [
            (r.owner.to_text().lower(), r.ttl, r.rdtype, rdata_wire(r.parts).hex())
            for r in masterfile.parse(text, ORIGIN, 300)
        ]
    )


def dnspythons(text: str) -> RRsets:
    """dnspython's own reader of the same text (quadratic, fine at this size)."""
    out = []
    manager = dns.zonefile.RRSetsReaderManager(ORIGIN, False, dns.rdataclass.IN)
    with manager.writer(True) as txn:
        dns.zonefile.Reader(
            dns.tokenizer.Tokenizer(text, "<input>"),
            dns.rdataclass.IN,
            txn,
            allow_directives={"$ORIGIN", "$TTL"},
            default_ttl=300,
        ).read()
    for rrset in manager.rrsets:
        for rd in rrset:
            wire = rd.to_wire(origin=None)
            assert wire is not None
            out.append((rrset.name.to_text().lower(), rrset.ttl, int(rd.rdtype), wire.hex()))
    return rrsets(out)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
OWNER = st.one_of(
    st.just("@"), st.just(""), LABEL, st.builds(lambda a, b: f"{a}.{b}", LABEL, LABEL)
)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
IPV6 = st.ip_addresses(v=6).map(str)
RDATA = st.one_of(
    st.tuples(st.just("A"), IPV4),
    st.tuples(st.just("AAAA"), IPV6),
    st.tuples(st.just("MX"), st.builds(lambda p, n: f"{p} {n}", st.integers(0, 65535), LABEL)),
    st.tuples(st.just("NS"), LABEL),
    st.tuples(st.just("TXT"), LABEL),
    st.tuples(st.just("SRV"), st.builds(lambda n: f"1 2 3 {n}", LABEL)),
    st.tuples(st.just("CAA"), st.just('0 issue "ca.example"')),  # quotes: dnspython's path
)
TTL = st.one_of(st.just(""), st.integers(0, 86400).map(str), st.just("1h"))
CLASS = st.sampled_from(["", "IN", "in"])


@st.composite
def lines(draw: st.DrawFn) -> str:
    out = ["@ NS ns"]
    for _ in range(draw(st.integers(1, 12))):
        owner = draw(OWNER)
        rtype, rdata = draw(RDATA)
        ttl, cls = draw(TTL), draw(CLASS)
        middle = [ttl, cls] if draw(st.booleans()) else [cls, ttl]
        fields = [f for f in [*middle, rtype, rdata] if f]
        out.append((owner if owner else "   ") + " " + " ".join(fields))
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(["$TTL 60", "$ORIGIN sub.a.test.", "; a comment"])))
    return "\n".join(out) + "\n"


@settings(max_examples=300, deadline=None)
@given(lines())
def test_the_fast_path_reads_exactly_what_dnspython_reads(text: str) -> None:
    # CNAME-free, so dnspython's reader accepts whatever is well-formed; both must agree on
    # every record, its owner, TTL and rdata.
    assert ours(text) == dnspythons(text)


def test_records_keep_their_line_on_both_paths() -> None:
    text = "@ NS ns\nns A 192.0.2.1\nmail ( MX\n 10 mx )\nmx A 192.0.2.2\n"
    records = masterfile.parse(text, ORIGIN, 300)
    assert [(r.owner.to_text(), r.line) for r in records] == [
        ("a.test.", 1),
        ("ns.a.test.", 2),
        ("mail.a.test.", 3),
        ("mx.a.test.", 5),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("@ NS ns\nx A 192.0.2.300\n", 2, "x A 192.0.2.300"),
        ("@ NS ns\nx.other. A 192.0.2.1\n", 2, "outside the zone"),
        ("@ NS ns\nc CNAME x\nc A 192.0.2.1\n", 3, "not compatible with a CNAME node"),
        ("@ NS ns\nc A 192.0.2.1\nc CNAME x\n", 3, "CNAME rdataset is not compatible"),
        ("@ NS ns\n  (\nx A 192.0.2.1\n", 2, ""),
        ("@ NS ns\n$GENERATE 1-4294967295 h$ A 10.0.0.1\n", 2, "the limit is 65536"),
        ("@ NS ns\n$GENERATE 1-5 h$ BOGUS 10.0.0.1\n", 2, "BOGUS"),
    ],
)
def test_a_refused_line_says_where_and_why(text: str, line: int, message: str) -> None:
    with pytest.raises(masterfile.MasterFileError) as info:
        masterfile.parse(text, ORIGIN, 300)
    assert info.value.line == line
    assert message in info.value.message


def test_generate_makes_its_names_within_the_limit() -> None:
    text = "@ NS ns\n$GENERATE 1-65536 h$ A 10.0.0.1\n"
    records = masterfile.parse(text, ORIGIN, 300)
    assert len(records) == 65537
    assert records[-1].owner.to_text() == "h65536.a.test." and records[-1].line == 2


def test_the_record_limit_is_refused_naming_the_flag() -> None:
    limits = masterfile.Limits(records=10)
    text = "@ NS ns\n" + "".join(f"h{i} A 10.0.0.{i}\n" for i in range(20))
    with pytest.raises(masterfile.MasterFileError) as info:
        masterfile.parse(text, ORIGIN, 300, limits)
    assert info.value.line == 11
    assert "more than 10 records" in info.value.message
    assert "--max-zone-records" in info.value.message
    # A $GENERATE that would pass it is refused at its own line, before making anything.
    with pytest.raises(masterfile.MasterFileError, match="more than 10 records") as info:
        masterfile.parse("@ NS ns\n$GENERATE 1-50 h$ A 10.0.0.1\n", ORIGIN, 300, limits)
    assert info.value.line == 2


def test_a_generate_bomb_in_a_zone_file_is_refused_at_once(tmp_path: Path) -> None:
    zones = write_zones(
        tmp_path / "zones",
        {
            "bomb.yaml": "zone: a.test\nsoa: {mname: ns, rname: h}\nrecords: |\n"
            "  @ NS ns\n  $GENERATE 1-4294967295 h$ A 10.0.0.1\n"
        },
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gslb", "check-zones", str(zones)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "bomb.yaml:5: $GENERATE 1-4294967295 makes 4294967295 names" in result.stderr
    assert time.monotonic() - started < 30  # the interpreter's start, not the range


def _parse_seconds(records: int) -> float:
    text = "@ NS ns\n" + "".join(
        f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(records)
    )
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        masterfile.parse(text, ORIGIN, 300)
        best = min(best, time.process_time() - started)
    return best


def test_reading_grows_linearly_with_the_records() -> None:
    """Ten times the records cost about ten times the time, not a hundred (the quadratic
    reader took 21 s for 4 000). CPU time, best of three; the bound leaves room for noise."""
    small, large = _parse_seconds(2_000), _parse_seconds(20_000)
    assert large < 20 * small, (small, large)
