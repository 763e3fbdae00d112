"""EDNS (RFC 6891), NSID (RFC 5001), Client Subnet (RFC 7871) and size limits, in the core."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from hypothesis import given
from hypothesis import strategies as st

from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from tests.helpers import ask, ecs, query


def test_no_edns_no_opt(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=False))
    assert reply.edns == -1


def test_opt_echoed_with_our_payload_size_and_do_bit(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=0, payload=4096, want_dnssec=True))
    assert reply.edns == 0
    assert reply.payload == 1232
    assert reply.ednsflags & dns.flags.DO
    plain = ask(snapshot, query("www.gslb.example.com", use_edns=0, payload=4096))
    assert not plain.ednsflags & dns.flags.DO


def test_badvers_for_edns_version_above_zero(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=1))
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0, "we answer with the version we speak"
    assert reply.answer == []


def test_unknown_options_are_ignored(snapshot: Snapshot) -> None:
    options = [dns.edns.GenericOption(65001, b"whatever"), dns.edns.GenericOption(10, b"12345678")]
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=0, options=options))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer
    assert all(o.otype not in (65001, 10) for o in reply.options)


def test_nsid_answered_when_asked(snapshot: Snapshot) -> None:
    options = [dns.edns.GenericOption(dns.edns.NSID, b"")]
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=0, options=options))
    nsid = [o for o in reply.options if o.otype == dns.edns.NSID]
    assert nsid and nsid[0].to_wire() == b"test-node"
    unasked = ask(snapshot, query("www.gslb.example.com", use_edns=0))
    assert not [o for o in unasked.options if o.otype == dns.edns.NSID]


def test_client_subnet_echoed_with_scope_zero_for_static_data(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=0, options=[ecs("81.2.69.0", 24)]))
    subnet = [o for o in reply.options if isinstance(o, dns.edns.ECSOption)]
    assert len(subnet) == 1
    assert subnet[0].address == "81.2.69.0"
    assert subnet[0].srclen == 24
    assert subnet[0].scopelen == 0
    v6 = ask(snapshot, query("www.gslb.example.com", use_edns=0, options=[ecs("2001:db8:1::", 48)]))
    subnet6 = next(o for o in v6.options if isinstance(o, dns.edns.ECSOption))
    assert (subnet6.address, subnet6.srclen, subnet6.scopelen) == ("2001:db8:1::", 48, 0)


def raw_query_with_option(
    code: int, data: bytes, qname: bytes = b"\x03www\x04gslb\x07example\x03com\x00"
) -> bytes:
    header = struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 1)
    option = struct.pack("!HH", code, len(data)) + data
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(option)) + option
    return header + qname + struct.pack("!HH", 1, 1) + opt


def test_malformed_client_subnet_is_formerr(snapshot: Snapshot) -> None:
    bad = {
        "unknown family": struct.pack("!HBB", 3, 24, 0) + b"\x01\x02\x03",
        "prefix too long": struct.pack("!HBB", 1, 33, 0) + b"\x01\x02\x03\x04\x05",
        "address too long for prefix": struct.pack("!HBB", 1, 8, 0) + b"\x01\x02",
        "address too short for prefix": struct.pack("!HBB", 1, 24, 0) + b"\x01\x02",
        "bits beyond the prefix": struct.pack("!HBB", 1, 23, 0) + b"\x01\x02\x03",
        "too short": b"\x00\x01",
    }
    for reason, data in bad.items():
        reply = ask(snapshot, raw_query_with_option(8, data))
        assert reply.rcode() == dns.rcode.FORMERR, reason
        assert reply.id == 0x1234


def test_valid_raw_client_subnet_is_accepted(snapshot: Snapshot) -> None:
    data = struct.pack("!HBB", 1, 23, 0) + b"\x01\x02\x02"
    assert ask(snapshot, raw_query_with_option(8, data)).rcode() == dns.rcode.NOERROR
    zero = struct.pack("!HBB", 1, 0, 0)  # source /0: the client asks us not to use its address
    assert ask(snapshot, raw_query_with_option(8, zero)).rcode() == dns.rcode.NOERROR


def test_truncated_option_is_formerr(snapshot: Snapshot) -> None:
    wire = bytearray(raw_query_with_option(65001, b"abcd"))
    struct.pack_into("!H", wire, len(wire) - 6, 10)  # option claims 10 octets, has 4
    assert ask(snapshot, bytes(wire)).rcode() == dns.rcode.FORMERR


def test_udp_without_edns_is_limited_to_512_and_truncates(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("big.gslb.example.com", "TXT", use_edns=False))
    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    assert len(reply.to_wire()) <= 512


def test_edns_payload_lets_the_answer_fit(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("big.gslb.example.com", "TXT", use_edns=0, payload=1232))
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 2


def test_payload_below_512_is_treated_as_512(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", use_edns=0, payload=100))
    assert reply.answer and not reply.flags & dns.flags.TC


def test_server_maximum_caps_the_client_payload(zones_dir: object) -> None:
    from pathlib import Path

    from tests.helpers import snapshot_of

    small = snapshot_of(Path(str(zones_dir)), max_udp_size=600)
    message = query("big.gslb.example.com", "TXT", use_edns=0, payload=4096)
    reply = ask(small, message)
    assert reply.flags & dns.flags.TC
    assert reply.payload == 600
    assert ask(small, message, tcp=True).answer, "TCP has room for it"


def test_additional_data_dropped_before_truncating(snapshot: Snapshot) -> None:
    # The NS answer with its glue is about 170 octets; squeeze so only the answer fits.
    reply = ask(snapshot, query("gslb.example.com", "NS", use_edns=False))
    assert reply.additional and not reply.flags & dns.flags.TC
    # Compare: the full reply fits 512, so nothing was dropped there.
    assert len(reply.to_wire()) <= 512


def test_tcp_reply_is_never_truncated(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("big.gslb.example.com", "TXT", use_edns=False), tcp=True)
    assert not reply.flags & dns.flags.TC
    assert reply.answer


def test_cache_keys_on_room(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    small = ask(snapshot, query("big.gslb.example.com", "TXT", use_edns=False), cache)
    large = ask(snapshot, query("big.gslb.example.com", "TXT", use_edns=0, payload=1232), cache)
    assert small.flags & dns.flags.TC
    assert not large.flags & dns.flags.TC


@given(
    st.booleans(),
    st.booleans(),
    st.integers(0, 32),
    st.binary(max_size=20),
    st.sampled_from([None, b"", b"\x01" * 16, b"\x02" * 24]),
)
def test_reply_room_accounts_for_the_opt_record_exactly(
    want_nsid: bool, with_ecs: bool, prefix: int, nsid: bytes, server_cookie: bytes | None
) -> None:
    from gslb.core import answer as handler
    from gslb.core.cookies import Secrets
    from gslb.core.query import scan
    from gslb.core.snapshot import Settings, Snapshot
    from gslb.core.zone import ZoneSet

    options: list[dns.edns.Option] = []
    if want_nsid:
        options.append(dns.edns.GenericOption(dns.edns.NSID, b""))
    if with_ecs:
        options.append(ecs("10.0.0.0", prefix))
    if server_cookie is not None:  # a client cookie, and maybe a server cookie (ours or not)
        options.append(dns.edns.GenericOption(10, b"c" * 8 + server_cookie))
    q = scan(query("x.example", use_edns=0, options=options).to_wire())
    snap = Snapshot(1, ZoneSet({}), Settings(nsid=nsid), cookies=Secrets(b"k" * 16))
    client = handler.Client("192.0.2.1", 1)
    assert handler._opt_length(q, snap) == len(handler._opt(q, client, snap, 24))
