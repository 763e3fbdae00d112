"""A zone's static data, frozen, and the RFC 1034 §4.3.2 lookup over it.

`Zone.build` turns a list of records into the structures the lookup reads: a node table
(owner -> type -> RRset), the set of every existing name including empty non-terminals, and the
delegation points. `lookup` walks them and returns a `Lookup`: what goes in each section and
with which rcode. It follows CNAMEs inside the zone, synthesises from wildcards (RFC 4592),
answers referrals for delegated children, and answers ANY minimally (RFC 8482).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gslb.core import names
from gslb.core.pools import Pool
from gslb.core.records import AAAA, ANY, CNAME, DS, MX, NS, SOA, SRV, A, RRset

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

WILDCARD = b"\x01*"
MAX_CNAME_CHAIN = 8

Section = tuple[tuple[bytes, RRset], ...]  # (owner as written in the reply, RRset)

# How lookup gets a pool's records: the caller decides (health, client, slot) and answers.
PoolAnswer = Callable[[Pool], RRset]


class Lookup(NamedTuple):
    """What the reply says, before encoding."""

    rcode: int
    authoritative: bool
    answer: Section = ()
    authority: Section = ()
    additional: Section = ()
    # A referral whose glue does not fit must set TC (RFC 9471); other additional data may go.
    glue_required: bool = False


@dataclass(frozen=True, slots=True)
class Zone:
    apex: bytes
    soa: RRset
    nodes: Mapping[bytes, Mapping[int, RRset]]
    names: frozenset[bytes]  # every owner and every empty non-terminal above one
    cuts: frozenset[bytes]  # delegation points: NS below the apex
    negative_soa: RRset  # the SOA for negative answers, TTL capped by MINIMUM (RFC 2308 §3)
    pools: Mapping[bytes, Mapping[int, Pool]]  # owner -> type -> pool
    pools_by_name: Mapping[str, Pool]

    @classmethod
    def build(cls, apex: bytes, rrsets: Iterable[RRset], pools: Iterable[Pool] = ()) -> Zone:
        nodes: dict[bytes, dict[int, RRset]] = {}
        for rrset in rrsets:
            nodes.setdefault(rrset.owner, {})[rrset.rtype] = rrset
        by_owner: dict[bytes, dict[int, Pool]] = {}
        by_name: dict[str, Pool] = {}
        for pool in pools:
            by_owner.setdefault(pool.owner, {})[pool.rtype] = pool
            by_name[pool.name] = pool
        existing: set[bytes] = set()
        for owner in [*nodes, *by_owner]:
            for name in names.suffixes(owner):
                if name in existing or len(name) < len(apex):
                    break
                existing.add(name)
        cuts = frozenset(o for o, types in nodes.items() if NS in types and o != apex)
        soa = nodes[apex][SOA]
        fixed = soa.rdatas[0][-1]
        assert isinstance(fixed, bytes)
        minimum = int.from_bytes(fixed[-4:], "big")
        negative = soa.with_ttl(min(soa.ttl, minimum))
        return cls(apex, soa, nodes, frozenset(existing), cuts, negative, by_owner, by_name)

    def find_cut(self, qname: bytes) -> bytes | None:
        """The highest delegation point at or above `qname`, if any."""
        if not self.cuts:
            return None
        found = None
        for name in names.suffixes(qname):
            if len(name) <= len(self.apex):
                break
            if name in self.cuts:
                found = name
        return found


def lookup(zone: Zone, qname: bytes, qtype: int, pool_answer: PoolAnswer | None = None) -> Lookup:
    """Answer `qname`/`qtype` (canonical) from `zone`, which contains `qname`.

    A name may have pools (one per address type) beside static data; `pool_answer` turns the
    pool into records. Without it (static-only callers) pools answer with no records.
    """
    answer: list[tuple[bytes, RRset]] = []
    seen: set[bytes] = set()
    name = qname
    while True:
        cut = zone.find_cut(name)
        # DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): answer it here, not refer.
        if cut is not None and not (qtype == DS and cut == name):
            if answer:  # a CNAME led into a delegated child: the resolver takes it from here
                return Lookup(RCODE_NOERROR, True, tuple(answer))
            return _referral(zone, cut)
        node = zone.nodes.get(name)
        pools = zone.pools.get(name)
        owner = name
        if node is None and pools is None and name not in zone.names:
            node = _wildcard(zone, name)
            if node is None:
                return Lookup(
                    RCODE_NXDOMAIN, True, tuple(answer), ((zone.apex, zone.negative_soa),)
                )
        if pools:
            pool = pools.get(qtype)
            if pool is None and qtype == ANY and not node:
                pool = pools[min(pools)]
            if pool is not None:
                rrset = _pool_rrset(pool, pool_answer)
                if not rrset.rdatas:  # the pool's fallback is "none"
                    return _nodata(zone, answer)
                answer.append((owner, rrset))
                return Lookup(RCODE_NOERROR, True, tuple(answer))
        if not node:  # an empty non-terminal, or a pool name without this type
            return _nodata(zone, answer)
        if qtype == ANY:
            # RFC 8482: one RRset is a complete answer; the lowest type is a stable choice.
            answer.append((owner, node[min(node)]))
            return Lookup(RCODE_NOERROR, True, tuple(answer))
        rrset_for_type = node.get(qtype)
        if rrset_for_type is not None:
            answer.append((owner, rrset_for_type))
            return _positive(zone, answer)
        cname = node.get(CNAME)
        if cname is None:
            return _nodata(zone, answer)
        answer.append((owner, cname))
        seen.add(name)
        target = cname.targets[0]
        if (
            target in seen
            or len(seen) >= MAX_CNAME_CHAIN
            or not names.is_subdomain(target, zone.apex)
        ):
            return Lookup(RCODE_NOERROR, True, tuple(answer))
        name = target


def _pool_rrset(pool: Pool, pool_answer: PoolAnswer | None) -> RRset:
    if pool_answer is None:
        return RRset(pool.owner, pool.rtype, pool.ttl, ())
    return pool_answer(pool)


def _wildcard(zone: Zone, name: bytes) -> Mapping[int, RRset] | None:
    """The node of the wildcard that covers `name` (RFC 4592 §3.3.1), if one exists."""
    for ancestor in names.suffixes(name):
        if ancestor in zone.names:  # the closest encloser
            return zone.nodes.get(WILDCARD + ancestor)
    return None


def _nodata(zone: Zone, answer: list[tuple[bytes, RRset]]) -> Lookup:
    return Lookup(RCODE_NOERROR, True, tuple(answer), ((zone.apex, zone.negative_soa),))


def _positive(zone: Zone, answer: list[tuple[bytes, RRset]]) -> Lookup:
    last = answer[-1][1]
    additional: tuple[tuple[bytes, RRset], ...] = ()
    if last.rtype in (NS, MX, SRV):
        additional = _addresses(zone, last.targets, allow_glue=last.rtype == NS)
    return Lookup(RCODE_NOERROR, True, tuple(answer), (), additional)


def _referral(zone: Zone, cut: bytes) -> Lookup:
    ns = zone.nodes[cut][NS]
    glue = _addresses(zone, ns.targets, allow_glue=True)
    # Glue is required for name servers inside the delegated child: without it, no resolver
    # could ever reach them.
    required = any(names.is_subdomain(t, cut) for t in ns.targets)
    return Lookup(RCODE_NOERROR, False, (), ((cut, ns),), glue, glue_required=required)


def _addresses(zone: Zone, targets: Iterable[bytes], allow_glue: bool) -> Section:
    """A and AAAA of in-zone targets; glue (below a cut) only where the reply is about NS."""
    out: list[tuple[bytes, RRset]] = []
    for target in dict.fromkeys(targets):
        if not names.is_subdomain(target, zone.apex):
            continue
        if not allow_glue and zone.find_cut(target) is not None:
            continue
        node = zone.nodes.get(target)
        if node is None:
            continue
        for rtype in (A, AAAA):
            rrset = node.get(rtype)
            if rrset is not None:
                out.append((target, rrset))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ZoneSet:
    """Every zone this server is authoritative for, found by longest suffix."""

    zones: Mapping[bytes, Zone]

    def find(self, qname: bytes) -> Zone | None:
        zones = self.zones
        for name in names.suffixes(qname):
            zone = zones.get(name)
            if zone is not None:
                return zone
        return None
