"""The online signer (gslb.core.dnssec), checked by dnspython's validator: every RRSIG it
makes validates against the zone's DNSKEY, one signature serves every order of a pool's
answer, and compact denial says what RFC 9824 says."""

from __future__ import annotations

import time

import dns.dnssec
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from gslb.core.dnssec import NXNAME, Signer, SigningKey, nsec, sign_lookup
from gslb.core.records import NS, SOA, A, RRset
from gslb.core.zone import Lookup

APEX = dns.name.from_text("signed.example.")
WIRE = APEX.to_wire()
assert WIRE is not None


def owner(text: str) -> bytes:
    wire = dns.name.from_text(text, APEX).to_wire()
    assert wire is not None
    return wire


def as_dnspython(rrset: RRset) -> dns.rrset.RRset:
    name = dns.name.from_wire(rrset.owner, 0)[0]
    out = dns.rrset.RRset(name, dns.rdataclass.IN, rrset.rtype)
    out.update_ttl(rrset.ttl)
    for parts in rrset.rdatas:
        wire = b"".join(p if isinstance(p, bytes) else p.wire for p in parts)
        out.add(dns.rdata.from_wire(dns.rdataclass.IN, rrset.rtype, wire, 0, len(wire)))
    return out


@pytest.fixture(params=["ECDSAP256SHA256", "ED25519"])
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer(WIRE, (SigningKey.generate(request.param),), int(time.time()))


def keys(signer: Signer) -> dict[dns.name.Name, dns.rrset.RRset]:
    return {APEX: as_dnspython(signer.dnskey)}


def test_a_signature_validates_and_serves_every_order_of_a_pool(signer: Signer) -> None:
    members = tuple((bytes([192, 0, 2, i]),) for i in (10, 20, 30))
    first = RRset(owner("www"), A, 20, members)
    rotated = RRset(owner("www"), A, 20, members[1:] + members[:1])
    sig = signer.rrsig(first)
    assert signer.rrsig(rotated) is sig, "one RRSIG for every order of the same set"
    assert signer.made == 1
    dns.dnssec.validate(as_dnspython(rotated), as_dnspython(sig), keys(signer))
    assert signer.rrsig(RRset(owner("www"), A, 20, members[:2])) is not sig, "another set"


def test_signatures_are_backdated_and_expire_in_a_week_or_so(signer: Signer) -> None:
    sig = as_dnspython(signer.rrsig(RRset(owner("a"), A, 60, ((b"\xc0\x00\x02\x01",),))))[0]
    assert sig.inception == signer.now - 3600
    assert 7 * 86400 <= sig.expiration - signer.now < 8 * 86400
    other = as_dnspython(signer.rrsig(RRset(owner("b"), A, 60, ((b"\xc0\x00\x02\x01",),))))[0]
    assert other.expiration != sig.expiration or other.signer == sig.signer  # jittered per RRset


def test_a_tampered_answer_fails_validation(signer: Signer) -> None:
    good = RRset(owner("www"), A, 20, ((b"\xc0\x00\x02\x0a",),))
    sig = signer.rrsig(good)
    bad = RRset(owner("www"), A, 20, ((b"\xc0\x00\x02\x0b",),))
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(as_dnspython(bad), as_dnspython(sig), keys(signer))


def test_nxdomain_becomes_a_signed_compact_denial(signer: Signer) -> None:
    soa = RRset(WIRE, SOA, 30, ((b"\x00" * 22,),))
    nx = Lookup(3, True, (), ((WIRE, soa),))
    qname = owner("nope")
    signed = sign_lookup(nx, qname, A, lambda _: signer, lambda _: set())
    assert signed.rcode == 0, "NOERROR: the name 'exists' as an NSEC saying it does not"
    kinds = [(o, r.rtype) for o, r in signed.authority]
    assert kinds == [(WIRE, SOA), (WIRE, 46), (qname, 47), (qname, 46)]
    proof = as_dnspython(signed.authority[2][1])[0]
    assert proof.next == dns.name.from_text("\\000.nope", APEX)
    assert set(
        proof.windows_to_rdtypes() if hasattr(proof, "windows_to_rdtypes") else _types(proof)
    ) == {
        dns.rdatatype.RRSIG,
        dns.rdatatype.NSEC,
        NXNAME,
    }
    dns.dnssec.validate(
        as_dnspython(signed.authority[2][1]), as_dnspython(signed.authority[3][1]), keys(signer)
    )


def _types(rd: dns.rdata.Rdata) -> set[int]:
    out = set()
    for window, bitmap in rd.windows:  # type: ignore[attr-defined]
        for i, octet in enumerate(bitmap):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    out.add(window * 256 + i * 8 + bit)
    return out


def test_nodata_lists_the_types_the_name_has_but_not_the_one_asked(signer: Signer) -> None:
    soa = RRset(WIRE, SOA, 30, ((b"\x00" * 22,),))
    qname = owner("www")
    nodata = Lookup(0, True, (), ((WIRE, soa),))
    signed = sign_lookup(nodata, qname, 28, lambda _: signer, lambda _: {A, 28})
    proof = as_dnspython(signed.authority[2][1])[0]
    assert _types(proof) == {A, dns.rdatatype.RRSIG, dns.rdatatype.NSEC}


def test_a_referral_proves_the_child_has_no_ds(signer: Signer) -> None:
    child = owner("child")
    ns = RRset(child, NS, 300, ((owner("ns.child"),),))
    referral = Lookup(0, False, (), ((child, ns),))
    signed = sign_lookup(referral, owner("www.child"), A, lambda _: signer, lambda _: set())
    kinds = [(o, r.rtype) for o, r in signed.authority]
    assert kinds == [(child, NS), (child, 47), (child, 46)], "NS unsigned, NSEC signed"
    assert _types(as_dnspython(signed.authority[1][1])[0]) == {NS, 46, 47}


def test_nsec_next_name_is_the_immediate_successor() -> None:
    proof = as_dnspython(nsec(owner("x"), set(), 30))[0]
    assert proof.next == dns.name.from_text("\\000.x", APEX)


def test_the_ds_names_the_key() -> None:
    signer = Signer(WIRE, (SigningKey.generate("ECDSAP256SHA256"),), int(time.time()))
    (ds,) = signer.ds()
    assert ds.startswith("signed.example. IN DS ")
    assert ds.split()[4] == "13" and ds.split()[5] == "2"  # ECDSAP256SHA256, SHA-256


def test_withdrawing_publishes_the_delete_records_of_rfc_8078() -> None:
    signer = Signer(WIRE, (SigningKey.generate("ED25519"),), int(time.time()), withdraw=True)
    assert as_dnspython(signer.cds)[0].to_text() == "0 0 0 00"
    assert as_dnspython(signer.cdnskey)[0].to_text() == "0 3 0 AA=="
    assert len(signer.dnskey.rdatas) == 1, "the zone stays signed meanwhile"


def test_a_cname_chain_that_ends_nowhere_proves_where_it_ends(signer: Signer) -> None:
    from gslb.core.records import CNAME, NameRef

    soa = RRset(WIRE, SOA, 30, ((b"\x00" * 22,),))
    alias, gone = owner("alias"), owner("gone")
    cname = RRset(alias, CNAME, 60, ((NameRef(gone),),))
    nx = Lookup(3, True, ((alias, cname),), ((WIRE, soa),))
    signed = sign_lookup(nx, alias, A, lambda _: signer, lambda _: set())
    assert signed.rcode == 0
    proofs = [(o, r) for o, r in signed.authority if r.rtype == 47]
    assert [o for o, _ in proofs] == [gone], "the NSEC is at the chain's end, not the alias"
    assert NXNAME in _types(as_dnspython(proofs[0][1])[0])
    assert [r.rtype for _, r in signed.answer] == [CNAME, 46], "the CNAME is signed"
