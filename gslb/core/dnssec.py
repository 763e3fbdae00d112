"""Online DNSSEC signing (RFC 4033-4035): every answer signed as it is made.

One key per zone signs everything: a *CSK* (combined signing key, flags 257). With online
signing the key that signs answers is on every node anyway; the KSK/ZSK split protects a key
only when one of them is kept offline, so here it would double the DNSKEY set and the steps
of every rollover and protect nothing (docs/dnssec.md).

A `Signer` belongs to one zone in one snapshot. It signs an RRset once and keeps the
signature: an RRSIG covers the RRset in canonical order (RFC 4034 §6.3), so every rotated or
interleaved order of the same pool answer shares it. Signatures are made with dnspython's
`dns.dnssec` over `cryptography` keys: nothing hand-written. Times come from the snapshot,
not the clock: inception an hour before the signer was made (clocks differ), expiration a
week after it plus up to a day of jitter per RRset (signatures of one zone do not all expire
at once); the node makes new signers, and so new signatures, long before that (gslb.shell).

Denial is "compact" (RFC 9824, black lies): a name that does not exist gets NOERROR with an
NSEC record at the name itself, whose next name is its immediate successor (`\\000.name`) and
whose types are RRSIG, NSEC and NXNAME; a name without the type asked for gets the same
NSEC listing the types it has. One NSEC, signed online, proves either, walks nothing (a
zone cannot be enumerated through it) and costs one signature per name asked for.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

with warnings.catch_warnings():
    # dnspython loads every algorithm it knows, DSA among them, which `cryptography` warns is
    # deprecated: no zone here signs with DSA, and the warning would only clutter every log.
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC
import dns.rrset
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gslb.core.records import CNAME, NS, SOA, NameRef, RRset, rdata_parts, rdata_wire
from gslb.core.zone import Lookup

ALGORITHMS = {"ECDSAP256SHA256": 13, "ED25519": 15}
DS = 43
RRSIG = 46
NSEC = 47
DNSKEY = 48
CDS = 59
CDNSKEY = 60
NXNAME = 128  # RFC 9824: "this name does not exist", in a compact denial's NSEC
CSK_FLAGS = 257  # ZONE | SEP
BACKDATE = 3600  # seconds before the signer's time that signatures start to hold
VALIDITY = 7 * 86400  # seconds after it that they hold
JITTER = 86400  # up to this much more, per RRset
MAX_SIGNATURES = 200_000  # kept per signer; when full it starts afresh
RCODE_NXDOMAIN = 3

DNSKEYRdata = dns.rdtypes.ANY.DNSKEY.DNSKEY
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _type(value: int) -> dns.rdatatype.RdataType:
    return dns.rdatatype.RdataType.make(value)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A zone's key: its algorithm and private key (PKCS #8, DER)."""

    algorithm: int
    private: bytes
    flags: int = CSK_FLAGS
    created: float = 0.0  # Unix time the key was made

    @classmethod
    def generate(cls, algorithm: str) -> SigningKey:
        number = ALGORITHMS[algorithm]
        key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if number == 13
            else ed25519.Ed25519PrivateKey.generate()
        )
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(number, der, created=int(time.time()))

    @classmethod
    def from_pem(cls, pem: bytes, created: float = 0.0) -> SigningKey:
        """A key from a PEM private key (PKCS #8 or the older forms `openssl` writes), as an
        operator keeps it in a key file: an EC P-256 key signs as ECDSAP256SHA256, an Ed25519
        key as ED25519. ValueError, with the reason, for anything else."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError:
            raise ValueError("the key is encrypted (a key file holds it unencrypted)") from None
        except (ValueError, UnsupportedAlgorithm) as e:
            raise ValueError(f"not a PEM private key ({e})") from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            number = ALGORITHMS["ECDSAP256SHA256"]
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            number = ALGORITHMS["ED25519"]
        else:
            raise ValueError("neither an EC P-256 nor an Ed25519 key")
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(number, der, created=created)

    def pem(self) -> bytes:
        """The key as a PEM file holds it (PKCS #8, unencrypted): what `from_pem` reads."""
        key = serialization.load_der_private_key(self.private, password=None)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass
class SignerStats:
    """What the signers of one zone did, across the signers a node makes for it (counters
    for /metrics): signatures made, and signatures found already made."""

    made: int = 0
    hits: int = 0


@dataclass(eq=False)
class Signer:
    """Signs the RRsets of one zone with its keys, at the time `now` stands for."""

    apex: bytes  # the zone's name, wire form
    keys: tuple[SigningKey, ...]
    now: int  # Unix time the signatures are made for
    dnskey_ttl: int = 3600
    # Going insecure: CDS and CDNSKEY say "delete the DS" (RFC 8078 §4), signing goes on.
    withdraw: bool = False
    stats: SignerStats = field(default_factory=SignerStats)
    _signatures: dict[tuple[object, ...], RRset] = field(default_factory=dict, repr=False)

    @cached_property
    def origin(self) -> dns.name.Name:
        return dns.name.from_wire(self.apex, 0)[0]

    @cached_property
    def _loaded(self) -> tuple[tuple[PrivateKey, DNSKEYRdata], ...]:
        out = []
        for key in self.keys:
            private = serialization.load_der_private_key(key.private, password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
            dnskey = dns.dnssec.make_dnskey(private.public_key(), key.algorithm, flags=key.flags)
            out.append((private, dnskey))
        return tuple(out)

    @cached_property
    def dnskey(self) -> RRset:
        """The zone's DNSKEY RRset, as the apex answers it."""
        rdatas = tuple(rdata_parts(dnskey)[0] for _, dnskey in self._loaded)
        return RRset(self.apex, DNSKEY, self.dnskey_ttl, rdatas)

    @cached_property
    def cds(self) -> RRset:
        """CDS (RFC 7344): the DS a parent that scans its children should hold; when
        withdrawing, the one record that asks it to hold none (RFC 8078 §4: 0 0 0 00)."""
        if self.withdraw:
            return RRset(self.apex, CDS, self.dnskey_ttl, ((b"\x00\x00\x00\x00\x00",),))
        rdatas = []
        for _, key in self._loaded:
            if key.flags & 1:
                ds = dns.dnssec.make_ds(self.origin, key, "SHA256")
                rdatas.append(rdata_parts(ds)[0])
        return RRset(self.apex, CDS, self.dnskey_ttl, tuple(rdatas))

    @cached_property
    def cdnskey(self) -> RRset:
        """CDNSKEY (RFC 7344): the keys a parent should make its DS of; when withdrawing,
        the delete record (RFC 8078 §4: 0 3 0 AA==)."""
        if self.withdraw:
            return RRset(self.apex, CDNSKEY, self.dnskey_ttl, ((b"\x00\x00\x03\x00\x00",),))
        return RRset(self.apex, CDNSKEY, self.dnskey_ttl, self.dnskey.rdatas)

    def apex_rrset(self, rtype: int) -> RRset | None:
        """The RRsets signing adds at the zone's apex: DNSKEY, CDS and CDNSKEY."""
        return {DNSKEY: self.dnskey, CDS: self.cds, CDNSKEY: self.cdnskey}.get(rtype)

    def dnskey_text(self) -> list[str]:
        """Each DNSKEY record, in presentation form (a trust anchor, for instance)."""
        return [f"{self.origin.to_text()} IN DNSKEY {k.to_text()}" for _, k in self._loaded]

    def ds(self, digest: str = "SHA256") -> list[str]:
        """The DS records for the parent, in presentation form."""
        return [
            f"{self.origin.to_text()} IN DS {dns.dnssec.make_ds(self.origin, k, digest).to_text()}"
            for _, k in self._loaded
            if k.flags & 1  # SEP: the keys a parent points at
        ]

    def rrsig(self, rrset: RRset) -> RRset:
        """The RRSIG RRset of `rrset` (owner and TTL as given), made once."""
        # Every order of the same records is one key: a set (an RRset has no duplicates).
        key = (rrset.owner, rrset.rtype, rrset.ttl, frozenset(rrset.rdatas))
        found = self._signatures.get(key)
        if found is not None:
            self.stats.hits += 1
            return found
        wires = sorted(rdata_wire(parts) for parts in rrset.rdatas)
        owner = dns.name.from_wire(rrset.owner, 0)[0]
        rtype = _type(rrset.rtype)
        rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, rtype, ttl=rrset.ttl)
        for wire in wires:
            rdataset.add(dns.rdata.from_wire(dns.rdataclass.IN, rtype, wire, 0, len(wire)))
        digest = hashlib.blake2b(b"%d" % rrset.rtype + rrset.owner, digest_size=4).digest()
        jitter = int.from_bytes(digest, "big") % JITTER
        signatures = []
        for private, dnskey in self._loaded:
            signature = dns.dnssec.sign(
                (owner, rdataset),
                private,
                self.origin,
                dnskey,
                inception=self.now - BACKDATE,
                expiration=self.now + VALIDITY + jitter,
            )
            signatures.append(rdata_parts(signature)[0])
        out = RRset(rrset.owner, RRSIG, rrset.ttl, tuple(signatures))
        self.stats.made += 1
        if len(self._signatures) >= MAX_SIGNATURES:
            self._signatures = {}
        self._signatures[key] = out
        return out

    @property
    def made(self) -> int:
        """Signatures this signer holds (made and kept)."""
        return len(self._signatures)

    @property
    def earliest_expiry(self) -> int:
        """Unix time the first of its signatures expires (the jitter only adds)."""
        return self.now + VALIDITY


def nsec(owner: bytes, types: set[int], ttl: int) -> RRset:
    """The compact-denial NSEC at `owner`: the next name is its immediate successor."""
    successor = b"\x01\x00" + owner
    bitmap = dns.rdtypes.ANY.NSEC.Bitmap.from_rdtypes(
        [_type(t) for t in sorted(types | {RRSIG, NSEC})]
    )
    rd = dns.rdtypes.ANY.NSEC.NSEC(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN, dns.rdatatype.NSEC, dns.name.from_wire(successor, 0)[0], bitmap
    )
    wire = rd.to_wire()
    assert wire is not None
    return RRset(owner, NSEC, ttl, ((wire,),))


TypesAt = Callable[[bytes], set[int]]
DsAt = Callable[[bytes], RRset | None]  # the DS RRset at a delegation point, if any


def sign_lookup(
    lookup: Lookup,
    qname: bytes,
    qtype: int,
    signer: Callable[[bytes], Signer | None],
    types_at: TypesAt,
    ds_at: DsAt | None = None,
) -> Lookup:
    """`lookup` signed for a query with DO set: an RRSIG after each RRset of the answer and
    authority of a signed zone, and compact denial for a name or type that is not there.
    `signer(owner)` finds the signer of the zone an owner is in (None: unsigned)."""
    answer = _signed(lookup.answer, signer)
    authority = lookup.authority
    rcode = lookup.rcode
    # The name denied: the one asked, or where a CNAME chain ends (its last target).
    denied = qname
    if lookup.answer and lookup.answer[-1][1].rtype == CNAME:
        target = lookup.answer[-1][1].rdatas[0][0]
        denied = target.wire if isinstance(target, NameRef) else target
    zone = signer(denied)
    if zone is not None and lookup.authoritative and any(r.rtype == SOA for _, r in authority):
        soa_ttl = next(r.ttl for _, r in authority if r.rtype == SOA)
        if rcode == RCODE_NXDOMAIN:
            rcode = 0  # RFC 9824 §3.2: the name "exists" as an NSEC saying it does not
            authority = (*authority, (denied, nsec(denied, {NXNAME}, soa_ttl)))
        elif rcode == 0 and (not lookup.answer or denied != qname):
            types = types_at(denied) - {qtype}
            authority = (*authority, (denied, nsec(denied, types, soa_ttl)))
    elif signer(qname) is not None and not lookup.authoritative:
        # A referral: the child's NS are the child's; the DS (or its absence) is ours.
        # The child's DS is the secure link to it (RFC 4035 §3.1.4); without one, the NSEC
        # at the cut proves the child is unsigned.
        cut = next((owner for owner, r in authority if r.rtype == NS), None)
        if cut is not None and not any(r.rtype == DS for _, r in authority):
            ds = ds_at(cut) if ds_at is not None else None
            ttl = next(r.ttl for _, r in authority if r.rtype == NS)
            authority = (*authority, (cut, ds if ds is not None else nsec(cut, {NS}, ttl)))
    return lookup._replace(
        rcode=rcode,
        answer=answer,
        authority=_signed(authority, signer, skip_ns=not lookup.authoritative),
    )


def _signed(
    section: tuple[tuple[bytes, RRset], ...],
    signer: Callable[[bytes], Signer | None],
    skip_ns: bool = False,
) -> tuple[tuple[bytes, RRset], ...]:
    out: list[tuple[bytes, RRset]] = []
    for owner, rrset in section:
        out.append((owner, rrset))
        if skip_ns and rrset.rtype == NS:
            continue  # a delegation's NS are signed by the child, not here
        zone = signer(owner)
        if zone is not None and rrset.rtype != RRSIG:
            signed = (
                rrset
                if rrset.owner == owner
                else RRset(owner, rrset.rtype, rrset.ttl, rrset.rdatas)
            )
            out.append((owner, zone.rrsig(signed)))
    return tuple(out)


def dnssec_key_tags(signer: Signer) -> list[int]:
    """The key tags of the signer's keys (RFC 4034 Appendix B), in order."""
    return [dns.dnssec.key_id(k) for _, k in signer._loaded]
