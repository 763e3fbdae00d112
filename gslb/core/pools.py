"""Pools as the answer path reads them: frozen, compiled once per configuration change."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gslb.core import names, policy
from gslb.core.pooldoc import (
    DnssecDoc,
    GslbDoc,
    MemberDoc,
    PoolDoc,
    TopologyMatch,
    instant_seconds,
)
from gslb.core.pooldoc import TopologyRule as TopologyRuleDoc
from gslb.core.records import AAAA, A

Admin = Literal["enabled", "drained", "disabled"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    lat: float | None  # None: a site known by name only (proximity cannot place it)
    lon: float | None
    country: str | None = None
    continent: str | None = None
    capacity: float | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """One address of a pool. A million pools have four million members, so a member keeps
    only its pool's id (one string, shared by the pool's members) and its address in wire
    form; its text and its key are made from those when asked."""

    pool: str  # "zone/pool" (a fixed-address fallback: "zone/pool/fallback")
    rdata: bytes  # the address in wire form
    site: Site | None = None
    isp: str | None = None
    weight: int = 1
    priority: int = 1
    capacity: float | None = None
    admin: Admin = "enabled"
    drain_at: float | None = None  # Unix time of a planned drain

    @property
    def address(self) -> str:
        return address_text(self.rdata)

    @property
    def key(self) -> str:
        """Where its health and answer counts are kept: "zone/pool/address"."""
        return f"{self.pool}/{address_text(self.rdata)}"


@functools.lru_cache(maxsize=1 << 16)
def address_text(rdata: bytes) -> str:
    """The one text form of an address (the zone documents' and the keys'); remembered, as
    the steps ask for it per member on every decision (health, load and path lookups)."""
    if len(rdata) == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    return str(ipaddress.IPv6Address(rdata))


@dataclass(frozen=True, slots=True)
class TopologyRule:
    countries: frozenset[str] = frozenset()
    continents: frozenset[str] = frozenset()
    asns: frozenset[int] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    prefer: tuple[str, ...] = ()
    subdivisions: frozenset[str] = frozenset()  # ISO 3166-2, country first: US-CA
    drop_others: bool = False  # members at other sites are dropped, not placed after

    @property
    def everyone(self) -> bool:
        """A rule that names no clients matches them all (a catch-all)."""
        return not (
            self.countries or self.continents or self.asns or self.networks or self.subdivisions
        )


@dataclass(frozen=True, slots=True)
class CostTable:
    """A routing-cost rule: the clients it matches (a rule's match part) and their cost to
    each site it lists."""

    match: TopologyRule
    costs: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Fallback:
    kind: Literal["all", "none", "pool", "addresses"] = "all"
    pool: str | None = None  # kind "pool": the other pool's name in the same zone
    members: tuple[Member, ...] = ()  # kind "addresses"


@dataclass(frozen=True, slots=True)
class Pool:
    zone: str  # apex, presentation form without the trailing dot
    name: str
    owner: bytes
    rtype: int
    ttl: int
    max_answers: int
    steps: tuple[str, ...]
    members: tuple[Member, ...]
    fallback: Fallback = field(default_factory=Fallback)
    monitor: str | None = None
    min_up: int = 1
    isp_down: Literal["last", "drop"] = "last"
    topology: tuple[TopologyRule, ...] = ()
    costs: tuple[CostTable, ...] = ()
    cold_start_wait: float = 0.0  # seconds; 0 without a monitor
    slow_start: float = 0.0  # seconds a recovered member takes to reach its full share
    session_weights: tuple[tuple[int, float], ...] = ()  # (port, weight), for least_load
    # Members never probed and always counted up (`monitored: false`), by address in wire
    # form: kept on the pool, not the member, since nearly every pool has none.
    unmonitored: frozenset[bytes] = frozenset()

    @property
    def id(self) -> str:
        return f"{self.zone}/{self.name}"

    @property
    def uses_load(self) -> bool:
        """Whether its answers depend on reported load or answers handed out (a step says
        it reads load: the load steps, or proximity where a capacity is declared)."""
        return "load" in policy.reads(self)


@dataclass(frozen=True, slots=True)
class PoolContext:
    """What compiling a pool needs from the rest of its zone: the zone's sites, ISP table,
    topology and monitors. Pools compiled with one context share its objects (one `Site` per
    site, one topology tuple), so a pool costs its own members and little else."""

    apex: bytes
    zone: str  # apex, presentation form without the trailing dot
    sites: Mapping[str, Site]
    isps: IspTable
    topology: tuple[TopologyRule, ...]
    timeouts: Mapping[str, float]  # monitor name -> its timeout (the default cold-start wait)
    costs: tuple[CostTable, ...] = ()
    dnssec: DnssecDoc | None = None  # how the zone is signed; None: unsigned
    # One tuple per distinct policy: a million pools mostly repeat a few.
    policies: dict[tuple[str, ...], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, apex: bytes, doc: GslbDoc, dnssec: DnssecDoc | None = None) -> PoolContext:
        sites = {
            name: Site(name, s.lat, s.lon, s.country, s.continent, s.capacity)
            for name, s in doc.sites.items()
        }
        topology = topology_rules(doc.topology)
        costs = tuple(
            CostTable(_match(rule.match), tuple(rule.sites.items())) for rule in doc.costs
        )
        timeouts = {name: m.timeout for name, m in doc.monitors.items()}
        zone = names.to_text(apex).rstrip(".")
        isps = tuple(isp_table(doc.isps))
        return cls(apex, zone, sites, isps, topology, timeouts, costs, dnssec)

    def compile(self, name: str, pool: PoolDoc) -> Pool:
        """The pool as the answer path reads it (raises names.BadName for a bad name)."""
        pool_id = f"{self.zone}/{name}"
        members = tuple(self._member(pool_id, m) for m in pool.members)
        wait = 0.0
        if pool.monitor is not None and pool.monitor in self.timeouts:
            wait = (
                self.timeouts[pool.monitor]
                if pool.cold_start_wait is None
                else pool.cold_start_wait
            )
        return Pool(
            zone=self.zone,
            name=name,
            owner=pool_owner(pool.name or name, self.apex),
            rtype=A if pool.type == "A" else AAAA,
            ttl=pool.ttl,
            max_answers=pool.max_answers,
            steps=self.policies.setdefault(tuple(pool.policy), tuple(pool.policy)),
            members=members,
            fallback=self._fallback(name, pool),
            monitor=None if pool.monitor is None else sys.intern(pool.monitor),
            min_up=pool.min_up,
            isp_down=pool.isp_down,
            topology=self.topology if pool.topology is None else topology_rules(pool.topology),
            costs=self.costs,
            cold_start_wait=wait,
            slow_start=pool.slow_start,
            session_weights=tuple(sorted((int(p), w) for p, w in pool.session_weights.items())),
            unmonitored=frozenset(packed(m.address) for m in pool.members if not m.monitored)
            or NONE,
        )

    def _member(self, pool: str, doc: MemberDoc) -> Member:
        return Member(
            pool,
            packed(doc.address),
            self.sites.get(doc.site) if doc.site else None,
            sys.intern(doc.isp) if doc.isp else isp_of(doc.address, self.isps),
            doc.weight,
            doc.priority,
            doc.capacity,
            doc.state,
            None if doc.drain_at is None else instant_seconds(doc.drain_at),
        )

    def _fallback(self, name: str, pool: PoolDoc) -> Fallback:
        fb = pool.fallback
        if isinstance(fb, list):
            members = tuple(
                Member(
                    pool=f"{self.zone}/{name}/fallback",
                    rdata=packed(a),
                    isp=isp_of(a, self.isps),
                )
                for a in fb
            )
            return Fallback("addresses", members=members)
        if fb.startswith("pool:"):
            return Fallback("pool", pool=fb.removeprefix("pool:"))
        return FALLBACK_ALL if fb == "all" else FALLBACK_NONE


def topology_rules(rules: Iterable[TopologyRuleDoc]) -> tuple[TopologyRule, ...]:
    return tuple(
        dataclasses.replace(
            _match(rule.match), prefer=tuple(rule.prefer), drop_others=rule.others == "drop"
        )
        for rule in rules
    )


def _match(match: TopologyMatch) -> TopologyRule:
    return TopologyRule(
        frozenset(c.upper() for c in match.country),
        frozenset(c.upper() for c in match.continent),
        frozenset(match.asn),
        tuple(ipaddress.ip_network(n) for n in match.cidr),
        subdivisions=frozenset(c.upper() for c in match.subdivision),
    )


NONE: frozenset[bytes] = frozenset()


FALLBACK_ALL = Fallback("all")
FALLBACK_NONE = Fallback("none")


def compile_pools(apex: bytes, doc: GslbDoc) -> dict[str, Pool]:
    """Every pool of a validated document, by name."""
    context = PoolContext.of(apex, doc)
    return {name: context.compile(name, pool) for name, pool in doc.pools.items()}


def pool_owner(name: str, apex: bytes) -> bytes:
    return names.relative(name, apex)


def packed(address: str) -> bytes:
    """An address (already validated and normalized) as the octets of its A/AAAA rdata."""
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


# An ISP table as (address bits, prefix length, network >> host bits, ISP), longest first.
IspTable = tuple[tuple[int, int, int, str], ...]


def isp_table(isps: Mapping[str, list[str]]) -> IspTable:
    table: list[tuple[int, int, int, str]] = []
    for isp, blocks in isps.items():
        for block in blocks:
            net = ipaddress.ip_network(block)
            host_bits = net.max_prefixlen - net.prefixlen
            table.append(
                (net.max_prefixlen, net.prefixlen, int(net.network_address) >> host_bits, isp)
            )
    return tuple(sorted(table, key=lambda entry: -entry[1]))


def isp_of(address: str, table: IspTable) -> str | None:
    """The ISP whose CIDR block holds `address`: the longest matching prefix wins."""
    raw = packed(address)
    value, bits = int.from_bytes(raw, "big"), 8 * len(raw)
    for size, prefix, network, isp in table:
        if size == bits and value >> (bits - prefix) == network:
            return isp
    return None
