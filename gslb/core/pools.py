"""Pools as the answer path reads them: frozen, compiled once per configuration change."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gslb.core import names
from gslb.core.pooldoc import GslbDoc, MemberDoc, PoolDoc
from gslb.core.records import AAAA, A

Admin = Literal["enabled", "drained", "disabled"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOAD_STEPS = frozenset({"least_load", "least_traffic", "cost"})


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    lat: float
    lon: float
    country: str | None = None
    continent: str | None = None
    capacity: float | None = None


@dataclass(frozen=True, slots=True)
class Member:
    key: str  # "zone/pool/address": where its health and answer counts are kept
    address: str
    rdata: bytes  # the address in wire form
    site: Site | None = None
    isp: str | None = None
    weight: int = 1
    priority: int = 1
    capacity: float | None = None
    admin: Admin = "enabled"


@dataclass(frozen=True, slots=True)
class TopologyRule:
    countries: frozenset[str] = frozenset()
    continents: frozenset[str] = frozenset()
    asns: frozenset[int] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    prefer: tuple[str, ...] = ()


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
    cold_start_wait: float = 0.0  # seconds; 0 without a monitor

    @property
    def id(self) -> str:
        return f"{self.zone}/{self.name}"

    @property
    def uses_load(self) -> bool:
        """Whether its answers depend on reported load or answers handed out: the load
        steps, or proximity where a capacity is declared (spill-over)."""
        if LOAD_STEPS.intersection(self.steps):
            return True
        return "proximity" in self.steps and any(
            m.capacity is not None or (m.site is not None and m.site.capacity is not None)
            for m in self.members
        )


def compile_pools(
    apex: bytes,
    doc: GslbDoc,
    previous: tuple[GslbDoc, bytes, Mapping[str, Pool]] | None = None,
) -> dict[str, Pool]:
    """Every pool of a validated document, by name.

    `previous` (the document, apex and pools of the last compile of this zone) lets a large
    zone be recompiled in a blink when one pool changed: a pool whose document is the very
    same object as last time, in a zone whose sites, ISPs, monitors and topology are equal,
    is the same compiled pool.
    """
    reusable: Mapping[str, Pool] = {}
    if previous is not None:
        old_doc, old_apex, old_pools = previous
        if old_apex == apex and _context(old_doc) == _context(doc):
            reusable = old_pools
    zone = names.to_text(apex).rstrip(".")
    sites = {
        name: Site(name, s.lat, s.lon, s.country, s.continent, s.capacity)
        for name, s in doc.sites.items()
    }
    isps = isp_table(doc.isps)
    topology = tuple(
        TopologyRule(
            frozenset(c.upper() for c in rule.match.country),
            frozenset(c.upper() for c in rule.match.continent),
            frozenset(rule.match.asn),
            tuple(ipaddress.ip_network(n) for n in rule.match.cidr),
            tuple(rule.prefer),
        )
        for rule in doc.topology
    )
    pools = {}
    old_docs = previous[0].pools if previous is not None else {}
    for name, pool in doc.pools.items():
        if old_docs.get(name) is pool and name in reusable:
            pools[name] = reusable[name]
            continue
        members = tuple(_member(zone, name, m, sites, isps) for m in pool.members)
        pools[name] = Pool(
            zone=zone,
            name=name,
            owner=pool_owner(pool.name or name, apex),
            rtype=A if pool.type == "A" else AAAA,
            ttl=pool.ttl,
            max_answers=pool.max_answers,
            steps=tuple(pool.policy),
            members=members,
            fallback=_fallback(zone, name, pool, isps),
            monitor=pool.monitor,
            min_up=pool.min_up,
            isp_down=pool.isp_down,
            topology=topology,
            cold_start_wait=_cold_start_wait(pool, doc),
        )
    return pools


def _context(doc: GslbDoc) -> tuple[object, ...]:
    """What a compiled pool depends on besides its own document."""
    return (doc.sites, doc.isps, doc.monitors, doc.topology)


def _cold_start_wait(pool: PoolDoc, doc: GslbDoc) -> float:
    monitor = doc.monitors.get(pool.monitor) if pool.monitor else None
    if monitor is None:
        return 0.0
    return monitor.timeout if pool.cold_start_wait is None else pool.cold_start_wait


def pool_owner(name: str, apex: bytes) -> bytes:
    return names.relative(name, apex)


def packed(address: str) -> bytes:
    """An address (already validated and normalized) as the octets of its A/AAAA rdata."""
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


# An ISP table as (address bits, prefix length, network >> host bits, ISP), longest first.
IspTable = list[tuple[int, int, int, str]]


def isp_table(isps: Mapping[str, list[str]]) -> IspTable:
    table = []
    for isp, blocks in isps.items():
        for block in blocks:
            net = ipaddress.ip_network(block)
            host_bits = net.max_prefixlen - net.prefixlen
            table.append(
                (net.max_prefixlen, net.prefixlen, int(net.network_address) >> host_bits, isp)
            )
    return sorted(table, key=lambda entry: -entry[1])


def isp_of(address: str, table: IspTable) -> str | None:
    """The ISP whose CIDR block holds `address`: the longest matching prefix wins."""
    raw = packed(address)
    value, bits = int.from_bytes(raw, "big"), 8 * len(raw)
    for size, prefix, network, isp in table:
        if size == bits and value >> (bits - prefix) == network:
            return isp
    return None


def _member(zone: str, pool: str, doc: MemberDoc, sites: dict[str, Site], isps: IspTable) -> Member:
    return Member(
        f"{zone}/{pool}/{doc.address}",
        doc.address,
        packed(doc.address),
        sites.get(doc.site) if doc.site else None,
        doc.isp or isp_of(doc.address, isps),
        doc.weight,
        doc.priority,
        doc.capacity,
        doc.state,
    )


def _fallback(zone: str, name: str, pool: PoolDoc, isps: IspTable) -> Fallback:
    fb = pool.fallback
    if isinstance(fb, list):
        members = tuple(
            Member(
                key=f"{zone}/{name}/fallback/{a}",
                address=a,
                rdata=packed(a),
                isp=isp_of(a, isps),
            )
            for a in fb
        )
        return Fallback("addresses", members=members)
    if fb.startswith("pool:"):
        return Fallback("pool", pool=fb.removeprefix("pool:"))
    return Fallback("all" if fb == "all" else "none")
