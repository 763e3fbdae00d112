"""Malformed input: FORMERR or silence, never an exception (issue 2 §4)."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import dns.message
import dns.opcode
import dns.rcode
from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.core.answer import Client, handle
from gslb.core.snapshot import Snapshot
from tests.helpers import CORE_ZONE, ask, query, snapshot_of, write_zones

QNAME = b"\x03www\x04gslb\x07example\x03com\x00"


def header(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x0100) -> bytes:
    return struct.pack("!6H", 0xBEEF, flags, qd, an, ns, ar)


def rcode_of(snapshot: Snapshot, wire: bytes) -> int | None:
    reply = handle(wire, Client("192.0.2.1", 1), snapshot)
    if reply is None:
        return None
    return dns.message.from_wire(reply).rcode()


def test_short_packets_get_silence(snapshot: Snapshot) -> None:
    for length in range(12):
        assert handle(b"\x00" * length, Client("192.0.2.1", 1), snapshot) is None


def test_zero_or_two_questions_is_formerr(snapshot: Snapshot) -> None:
    assert rcode_of(snapshot, header(qd=0)) == dns.rcode.FORMERR
    two = header(qd=2) + (QNAME + b"\x00\x01\x00\x01") * 2
    assert rcode_of(snapshot, two) == dns.rcode.FORMERR


def test_truncated_question_is_formerr(snapshot: Snapshot) -> None:
    full = header() + QNAME + b"\x00\x01\x00\x01"
    for cut in range(13, len(full)):
        assert rcode_of(snapshot, full[:cut]) == dns.rcode.FORMERR, cut


def test_response_sent_as_query_is_formerr(snapshot: Snapshot) -> None:
    wire = header(flags=0x8000) + QNAME + b"\x00\x01\x00\x01"
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_error_responses_are_not_answered(snapshot: Snapshot) -> None:
    # Otherwise two servers could volley FORMERRs at each other forever.
    wire = header(flags=0x8001) + QNAME + b"\x00\x01\x00\x01"
    assert handle(wire, Client("192.0.2.1", 1), snapshot) is None


def test_trailing_garbage_is_formerr(snapshot: Snapshot) -> None:
    wire = header() + QNAME + b"\x00\x01\x00\x01" + b"junk"
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_bad_label_type_is_formerr(snapshot: Snapshot) -> None:
    wire = header() + b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01"
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_compression_loop_in_question_is_formerr(snapshot: Snapshot) -> None:
    wire = header() + b"\xc0\x0c\x00\x01\x00\x01"
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_opt_owned_by_another_name_is_formerr(snapshot: Snapshot) -> None:
    opt = b"\x01x\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    wire = header(ar=1) + QNAME + b"\x00\x01\x00\x01" + opt
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_two_opt_records_is_formerr(snapshot: Snapshot) -> None:
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    wire = header(ar=2) + QNAME + b"\x00\x01\x00\x01" + opt + opt
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_opt_with_wrong_length_is_formerr(snapshot: Snapshot) -> None:
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 5)
    wire = header(ar=1) + QNAME + b"\x00\x01\x00\x01" + opt + b"ab"
    assert rcode_of(snapshot, wire) == dns.rcode.FORMERR


def test_error_replies_to_other_opcodes_carry_no_question(snapshot: Snapshot) -> None:
    # Found by hypothesis: an UPDATE with trailing data got FORMERR echoing its zone section,
    # which UPDATE-aware clients could not parse. It is NOTIMP, as Knot answers.
    wire = header(flags=0x2800) + b"\x00\x00\x00\x00\x01\x00"
    reply = handle(wire, Client("192.0.2.1", 1), snapshot)
    assert reply is not None
    assert struct.unpack_from("!6H", reply)[2] == 0
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOTIMP


def test_an_unknown_opcode_without_a_question_is_notimp(snapshot: Snapshot) -> None:
    for opcode in (3, 6, 15):  # unassigned
        wire = struct.pack("!6H", 0x1234, opcode << 11, 0, 0, 0, 0)
        reply = handle(wire, Client("192.0.2.1", 1), snapshot)
        assert reply is not None
        qid, flags, qdcount = struct.unpack_from("!3H", reply)
        assert (qid, flags & 0xF, (flags >> 11) & 0xF, qdcount) == (0x1234, 4, opcode, 0)


def opt_of(reply: bytes | None) -> dns.message.Message:
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert message.edns == 0, "the reply carries an OPT record"
    return message


def test_error_replies_to_queries_with_opt_carry_opt(snapshot: Snapshot) -> None:
    """RFC 6891 §7: a responder that implements EDNS includes an OPT in its replies to
    queries that carry one, error replies included."""
    client = Client("192.0.2.1", 1)
    notify = query("www.gslb.example.com", use_edns=0)
    notify.set_opcode(dns.opcode.NOTIFY)
    assert opt_of(handle(notify.to_wire(), client, snapshot)).rcode() == dns.rcode.NOTIMP
    # FORMERR: a client subnet option with bits set beyond its prefix.
    bad_ecs = b"\x00\x08\x00\x07\x00\x01\x18\x00\xc0\x00\x02\x01"[4:]
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 4 + len(bad_ecs))
    opt += struct.pack("!HH", 8, len(bad_ecs)) + bad_ecs
    wire = header(ar=1) + QNAME + b"\x00\x01\x00\x01" + opt
    assert opt_of(handle(wire, client, snapshot)).rcode() == dns.rcode.FORMERR
    refused = query("www.example.org", use_edns=0)
    assert opt_of(handle(refused.to_wire(), client, snapshot)).rcode() == dns.rcode.REFUSED
    # And a query without OPT gets none back.
    plain = dns.message.from_wire(handle(query("www.example.org").to_wire(), client, snapshot))  # type: ignore[arg-type]
    assert plain.edns == -1


def test_meta_types_as_questions(snapshot: Snapshot) -> None:
    for rdtype, rcode in (("OPT", dns.rcode.FORMERR), ("TSIG", dns.rcode.FORMERR)):
        assert ask(snapshot, query("www.gslb.example.com", rdtype)).rcode() == rcode
    assert ask(snapshot, query("www.gslb.example.com", "MAILA")).rcode() == dns.rcode.NOTIMP


def test_query_with_answer_records_goes_through_the_complete_parser(snapshot: Snapshot) -> None:
    message = query("www.gslb.example.com")
    message.answer.append(dns.rrset.from_text("x.example.", 1, "IN", "A", "192.0.2.1"))
    assert ask(snapshot, message).rcode() == dns.rcode.NOERROR


_SNAPSHOT: list[Snapshot] = []


def _shared_snapshot() -> Snapshot:
    # Hypothesis runs a test body many times; one snapshot serves them all.
    if not _SNAPSHOT:
        directory = write_zones(Path(tempfile.mkdtemp()) / "zones", {"z.yaml": CORE_ZONE})
        _SNAPSHOT.append(snapshot_of(directory))
    return _SNAPSHOT[0]


def _valid_reply(reply: bytes | None) -> None:
    if reply is not None:
        message = dns.message.from_wire(reply)  # raises if we wrote something malformed
        assert message.rcode() != dns.rcode.SERVFAIL, "handle() hit an internal error"


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    _valid_reply(handle(data, Client("192.0.2.1", 1), _shared_snapshot()))


@settings(max_examples=3000, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 3),
    st.integers(0, 2),
    st.binary(max_size=80),
    st.integers(0, 0xFFFF),
    st.binary(max_size=40),
)
def test_mutated_queries_never_raise(
    qid: int, flags: int, qd: int, ar: int, name: bytes, qtype: int, tail: bytes
) -> None:
    flags &= ~0x8000
    wire = struct.pack("!6H", qid, flags, qd, 0, 0, ar) + name + struct.pack("!HH", qtype, 1) + tail
    _valid_reply(handle(wire, Client("192.0.2.1", 1), _shared_snapshot()))
