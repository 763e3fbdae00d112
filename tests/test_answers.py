"""Authoritative answers from the pure core (issue 2, rules of §4): no network involved."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype

from gslb.core.snapshot import Snapshot
from tests.helpers import ask, query, rrset_text


def answer_of(reply: dns.message.Message) -> list[str]:
    return rrset_text(reply.answer)


def test_positive_answer_is_authoritative(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.QR
    assert not reply.flags & dns.flags.RA  # never recursion
    assert answer_of(reply) == [
        "www.gslb.example.com. 30 IN A 192.0.2.10\nwww.gslb.example.com. 30 IN A 198.51.100.10"
    ]


def test_recursion_desired_is_copied_but_not_offered(snapshot: Snapshot) -> None:
    with_rd = ask(snapshot, query("www.gslb.example.com"))
    without_rd = query("www.gslb.example.com")
    without_rd.flags &= ~dns.flags.RD
    assert with_rd.flags & dns.flags.RD
    assert not ask(snapshot, without_rd).flags & dns.flags.RD


def test_soa_at_apex(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("gslb.example.com", "SOA"))
    assert answer_of(reply) == [
        "gslb.example.com. 300 IN SOA ns1.gslb.example.com. hostmaster.example.com. "
        "2024010101 3600 600 1209600 60"
    ]


def test_ns_at_apex_with_in_zone_addresses_in_additional(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("gslb.example.com", "NS"))
    assert reply.flags & dns.flags.AA
    assert len(reply.answer[0]) == 2
    additional = rrset_text(reply.additional)
    assert "ns1.gslb.example.com. 300 IN A 192.0.2.53" in additional
    assert "ns1.gslb.example.com. 300 IN AAAA 2001:db8::53" in additional
    # The out-of-zone name server's address is not ours to give.
    assert not any("elsewhere" in line for line in additional)


def test_mx_gets_in_zone_target_address(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("gslb.example.com", "MX"))
    assert rrset_text(reply.additional) == ["mail.gslb.example.com. 300 IN A 192.0.2.25"]


def test_nxdomain_carries_soa_with_negative_ttl(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("nothing.gslb.example.com"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert reply.answer == []
    soa = reply.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA
    # RFC 2308 §3: the TTL of the SOA in a negative answer is min(SOA TTL, MINIMUM).
    assert soa.ttl == 60


def test_nodata_carries_soa(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.gslb.example.com", "AAAA"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    assert reply.authority[0].ttl == 60


def test_empty_non_terminal_is_nodata_not_nxdomain(snapshot: Snapshot) -> None:
    for name in ("a.b.gslb.example.com", "b.gslb.example.com"):
        reply = ask(snapshot, query(name))
        assert reply.rcode() == dns.rcode.NOERROR, name
        assert reply.answer == []
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_followed_within_zone(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("chain1.gslb.example.com"))
    assert [rr.rdtype for rr in reply.answer] == [
        dns.rdatatype.CNAME,
        dns.rdatatype.CNAME,
        dns.rdatatype.A,
    ]
    assert reply.answer[-1].name.to_text() == "www.gslb.example.com."


def test_cname_query_returns_the_cname_only(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("alias.gslb.example.com", "CNAME"))
    assert answer_of(reply) == ["alias.gslb.example.com. 300 IN CNAME www.gslb.example.com."]


def test_cname_to_missing_name_is_nxdomain_with_the_cname(snapshot: Snapshot) -> None:
    # RFC 6604: the rcode speaks of the last name in the chain.
    reply = ask(snapshot, query("dangling.gslb.example.com"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer[0].rdtype == dns.rdatatype.CNAME
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_out_of_zone_stops(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("outside.gslb.example.com"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert answer_of(reply) == ["outside.gslb.example.com. 300 IN CNAME www.example.org."]


def test_cname_loop_terminates(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("loop1.gslb.example.com"))
    assert [rr.rdtype for rr in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.CNAME]


def test_wildcard_synthesis_uses_the_query_name(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("anything.wild.gslb.example.com"))
    assert reply.flags & dns.flags.AA
    assert answer_of(reply) == ["anything.wild.gslb.example.com. 300 IN A 192.0.2.99"]
    deeper = ask(snapshot, query("x.y.wild.gslb.example.com", "TXT"))
    assert answer_of(deeper) == ['x.y.wild.gslb.example.com. 300 IN TXT "synthesised"']


def test_wildcard_nodata_for_other_types(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("anything.wild.gslb.example.com", "AAAA"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []


def test_wildcard_does_not_cover_existing_names_or_other_branches(snapshot: Snapshot) -> None:
    # RFC 4592 §2.2.1: `*.wild` covers names below `wild` only, and not `wild` itself.
    assert ask(snapshot, query("wild.gslb.example.com")).answer == []
    assert ask(snapshot, query("wild.gslb.example.com")).rcode() == dns.rcode.NOERROR
    assert ask(snapshot, query("x.other.gslb.example.com")).rcode() == dns.rcode.NXDOMAIN


def test_wildcard_cname_is_followed(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("foo.wcname.gslb.example.com"))
    assert reply.answer[0].to_text() == (
        "foo.wcname.gslb.example.com. 300 IN CNAME www.gslb.example.com."
    )
    assert reply.answer[1].rdtype == dns.rdatatype.A


def test_referral_for_delegated_child(snapshot: Snapshot) -> None:
    for name in ("child.gslb.example.com", "host.child.gslb.example.com"):
        reply = ask(snapshot, query(name))
        assert reply.rcode() == dns.rcode.NOERROR
        assert not reply.flags & dns.flags.AA, "a referral is not authoritative"
        assert reply.answer == []
        assert reply.authority[0].rdtype == dns.rdatatype.NS
        assert reply.authority[0].name.to_text() == "child.gslb.example.com."
        assert rrset_text(reply.additional) == ["ns1.child.gslb.example.com. 300 IN A 192.0.2.200"]


def test_glue_is_not_served_as_authoritative_data(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("ns1.child.gslb.example.com"))
    assert not reply.flags & dns.flags.AA
    assert reply.authority[0].rdtype == dns.rdatatype.NS


def test_ds_at_the_cut_is_answered_by_the_parent(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("child.gslb.example.com", "DS"))
    assert reply.flags & dns.flags.AA
    assert reply.answer[0].rdtype == dns.rdatatype.DS


def test_refused_outside_every_zone(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("www.example.org"))
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert reply.answer == [] and reply.authority == []


def test_longest_zone_wins(snapshot: Snapshot) -> None:
    # Both example.com and gslb.example.com are served; the child zone answers for its names.
    assert ask(snapshot, query("www.gslb.example.com")).answer
    reply = ask(snapshot, query("ns.example.com"))
    assert answer_of(reply) == ["ns.example.com. 300 IN A 192.0.2.1"]


def test_question_echoed_with_client_case(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("WwW.GsLb.ExAmPlE.CoM"))
    assert reply.question[0].name.to_text() == "WwW.GsLb.ExAmPlE.CoM."
    assert reply.answer, "case does not change the answer"


def test_case_echo_survives_the_cache(snapshot: Snapshot) -> None:
    from gslb.core.replycache import ReplyCache

    cache = ReplyCache()
    first = ask(snapshot, query("www.gslb.example.com"), cache)
    upper = query("WWW.GSLB.EXAMPLE.COM")
    second = ask(snapshot, upper, cache)
    assert len(cache) == 1, "one body serves both spellings"
    assert second.id == upper.id
    assert second.question[0].name.to_text() == "WWW.GSLB.EXAMPLE.COM."
    assert [a.lower() for a in rrset_text(second.answer)] == [
        a.lower() for a in rrset_text(first.answer)
    ]


def test_any_is_answered_minimally(snapshot: Snapshot) -> None:
    reply = ask(snapshot, query("gslb.example.com", "ANY"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer) == 1, "RFC 8482: one RRset, not the whole node"
    assert ask(snapshot, query("nothing.gslb.example.com", "ANY")).rcode() == dns.rcode.NXDOMAIN


def test_notimp_for_other_opcodes(snapshot: Snapshot) -> None:
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.IQUERY, dns.opcode.STATUS):
        message = query("gslb.example.com", "SOA")
        message.set_opcode(opcode)
        reply = ask(snapshot, message)
        assert reply.rcode() == dns.rcode.NOTIMP
        assert reply.opcode() == opcode


def test_zone_transfers_are_refused(snapshot: Snapshot) -> None:
    for rdtype in ("AXFR", "IXFR"):
        assert ask(snapshot, query("gslb.example.com", rdtype)).rcode() == dns.rcode.REFUSED


def test_other_classes_are_refused(snapshot: Snapshot) -> None:
    message = dns.message.make_query("version.bind", "TXT", "CH")
    assert ask(snapshot, message).rcode() == dns.rcode.REFUSED
