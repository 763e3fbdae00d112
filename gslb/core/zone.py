"""A zone's static data, frozen, and the RFC 1034 §4.3.2 lookup over it.

`Zone.build` turns a list of records into the structures the lookup reads: a node table
(owner -> type -> RRset), the set of every existing name including empty non-terminals, and the
delegation points. `lookup` walks them and returns a `Lookup`: what goes in each section and
with which rcode. It follows CNAMEs inside the zone, synthesises from wildcards (RFC 4592),
answers referrals for delegated children, and answers ANY minimally (RFC 8482).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import immutables

from gslb.core import names
from gslb.core.pools import Pool, PoolContext
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


Node = Mapping[int, RRset]  # one owner's static RRsets by type


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone as the answer path reads it. Every mapping is persistent (immutables.Map): a
    changed copy shares everything unchanged with the original, so `update` costs what it
    changes, not the size of the zone, and a snapshot holding the old zone keeps it intact."""

    apex: bytes
    nodes: immutables.Map[bytes, Node]  # static data: owner -> type -> RRset (the SOA at the apex)
    # Every name strictly between the apex and an owner (the empty non-terminals among
    # them), with how many owners lie below it: a removal knows when a name stops existing.
    ents: immutables.Map[bytes, int]
    cuts: frozenset[bytes]  # delegation points: NS below the apex
    pools: immutables.Map[bytes, tuple[Pool, ...]]  # owner -> its pools, ordered by type
    pools_by_name: immutables.Map[str, Pool]
    context: PoolContext | None = None  # what new pools of this zone are compiled with
    load_pools: int = 0  # pools whose answers depend on load (Pool.uses_load)

    @property
    def name(self) -> str:
        """The zone's name as pools, keys and tokens carry it: presentation form, no trailing
        dot (not for the answer path: it is made again at each call)."""
        return names.to_text(self.apex).rstrip(".")

    @property
    def soa(self) -> RRset:
        return self.nodes[self.apex][SOA]

    @property
    def negative_soa(self) -> RRset:
        """The SOA for negative answers, its TTL capped by MINIMUM (RFC 2308 §3)."""
        soa = self.soa
        fixed = soa.rdatas[0][-1]
        assert isinstance(fixed, bytes)
        minimum = int.from_bytes(fixed[-4:], "big")
        return soa.with_ttl(min(soa.ttl, minimum)) if minimum < soa.ttl else soa

    def exists(self, name: bytes) -> bool:
        """Whether `name` is in the zone's tree: an owner, or an empty non-terminal."""
        return name in self.nodes or name in self.pools or name in self.ents or name == self.apex

    @classmethod
    def build(
        cls,
        apex: bytes,
        rrsets: Iterable[RRset],
        pools: Iterable[Pool] = (),
        context: PoolContext | None = None,
    ) -> Zone:
        nodes: dict[bytes, dict[int, RRset]] = {}
        for rrset in rrsets:
            nodes.setdefault(rrset.owner, {})[rrset.rtype] = rrset
        if SOA not in nodes.get(apex, {}):
            raise ValueError("a zone needs an SOA at its apex")
        by_name = {pool.name: pool for pool in pools}
        by_owner: dict[bytes, list[Pool]] = {}
        for pool in by_name.values():
            by_owner.setdefault(pool.owner, []).append(pool)
        ents: dict[bytes, int] = {}
        for owner in {*nodes, *by_owner}:
            for name in _between(owner, apex):
                ents[name] = ents.get(name, 0) + 1
        cuts = frozenset(o for o, types in nodes.items() if NS in types and o != apex)
        return cls(
            apex,
            immutables.Map(nodes),
            immutables.Map(ents),
            cuts,
            immutables.Map({o: _ordered(p) for o, p in by_owner.items()}),
            immutables.Map(by_name),
            context,
            sum(1 for p in by_name.values() if p.uses_load),
        )

    def update(
        self,
        nodes: Mapping[bytes, Node | None] | None = None,
        pools: Mapping[str, Pool | None] | None = None,
        context: PoolContext | None = None,
    ) -> Zone:
        """This zone with some owners' static data and some pools replaced (None: removed).

        The result is what `build` makes of the same data, in time that grows with the
        changes (the property tests hold them to that)."""
        before = self
        node_map = self.nodes.mutate()
        pool_map = self.pools.mutate()
        by_name = self.pools_by_name.mutate()
        touched: set[bytes] = set()
        cuts = set(self.cuts) if nodes else None
        load_pools = self.load_pools
        for owner, node in (nodes or {}).items():
            touched.add(owner)
            if node:
                node_map[owner] = node
            else:
                node_map.pop(owner, None)
            if cuts is not None and owner != self.apex:
                if node and NS in node:
                    cuts.add(owner)
                else:
                    cuts.discard(owner)
        for name, pool in (pools or {}).items():
            old = by_name.get(name)
            if old is not None:
                load_pools -= old.uses_load
                touched.add(old.owner)
                rest = tuple(p for p in pool_map.get(old.owner, ()) if p.name != name)
                if rest:
                    pool_map[old.owner] = rest
                else:
                    del pool_map[old.owner]
                del by_name[name]
            if pool is not None:
                load_pools += pool.uses_load
                touched.add(pool.owner)
                pool_map[pool.owner] = _ordered([*pool_map.get(pool.owner, ()), pool])
                by_name[name] = pool
        new_nodes, new_pools = node_map.finish(), pool_map.finish()
        ents = self.ents.mutate()
        for owner in touched:
            was = owner in before.nodes or owner in before.pools
            now = owner in new_nodes or owner in new_pools
            if was == now:
                continue
            for ancestor in _between(owner, self.apex):
                count = ents.get(ancestor, 0) + (1 if now else -1)
                if count:
                    ents[ancestor] = count
                else:
                    del ents[ancestor]
        if SOA not in new_nodes.get(self.apex, {}):
            raise ValueError("a zone needs an SOA at its apex")
        return Zone(
            self.apex,
            new_nodes,
            ents.finish(),
            frozenset(cuts) if cuts is not None else self.cuts,
            new_pools,
            by_name.finish(),
            context or self.context,
            load_pools,
        )

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


def _between(owner: bytes, apex: bytes) -> Iterator[bytes]:
    """The names strictly between `owner` and `apex` (its ancestors below the apex)."""
    i = 0
    while owner[i]:
        i += owner[i] + 1
        if len(owner) - i <= len(apex):
            return
        yield owner[i:]


def _ordered(pools: Iterable[Pool]) -> tuple[Pool, ...]:
    return tuple(sorted(pools, key=lambda p: (p.rtype, p.name)))


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
        if node is None and pools is None and name not in zone.ents and name != zone.apex:
            node = _wildcard(zone, name)
            if node is None:
                return Lookup(
                    RCODE_NXDOMAIN, True, tuple(answer), ((zone.apex, zone.negative_soa),)
                )
        if pools:
            pool = next((p for p in pools if p.rtype == qtype), None)
            if pool is None and qtype == ANY and not node:
                pool = pools[0]
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
        if zone.exists(ancestor):  # the closest encloser
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
