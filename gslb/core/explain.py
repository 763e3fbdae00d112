"""What a client would be answered, and why: the decision of every pool on the way, step by step.

`explain` runs the same lookup and policy code as the answer path, with tracing on, for a
client address (and optionally an ECS source prefix). It is what `gslb explain` prints and what
`GET /api/v1/explain` returns.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from gslb.core.answer import handle, route_of
from gslb.core.decide import Decision
from gslb.core.decide import decide as decide_pool
from gslb.core.decisionkey import Client, client_decision, client_info
from gslb.core.location import ClientInfo
from gslb.core.pools import Pool
from gslb.core.query import scan
from gslb.core.records import RRset
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from gslb.core.zone import lookup


class ExplainError(ValueError):
    """A question that cannot be asked: `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def explain(
    snapshot: Snapshot,
    name: str,
    rdtype: str = "A",
    client: str = "127.0.0.1",
    subnet_prefix: int | None = None,
    slot: int = 0,
) -> dict[str, Any]:
    """A JSON-ready account: the answer, the client's location, and each pool's steps.

    With `subnet_prefix` the client address is sent as an EDNS Client Subnet of that length
    (as a resolver would); without it, the client address is taken as the resolver's.
    """
    # What the caller gives is checked here, each fault a ValueError naming its field.
    try:
        ipaddress.ip_address(client)
    except ValueError:
        raise ExplainError("client", f"{client!r} is not an IP address") from None
    try:
        qtype = dns.rdatatype.from_text(rdtype)
    except (dns.exception.DNSException, ValueError):
        raise ExplainError(
            "type", f"{rdtype!r} is not a DNS type (A, AAAA, TXT, TYPE65...)"
        ) from None
    try:
        qname = dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError) as e:
        raise ExplainError("name", f"{name!r} is not a domain name: {e}") from None
    options: list[dns.edns.Option] = []
    if subnet_prefix is not None:
        family_bits = 128 if ":" in client else 32
        if not 0 <= subnet_prefix <= family_bits:
            raise ExplainError("subnet", f"a prefix length of 0 to {family_bits}")
        options.append(dns.edns.ECSOption(client, subnet_prefix))
    message = dns.message.make_query(qname, qtype, use_edns=0, options=options)
    wire = message.to_wire()
    query = scan(wire)
    peer = Client("127.0.0.1" if subnet_prefix is not None else client, 0)
    route = route_of(query, snapshot)
    info = client_info(query, peer)
    key = b""
    if route is not None:
        info, key, _ = client_decision(route, query, peer, snapshot)
    if info.location is None and snapshot.locator is not None:
        info = ClientInfo(info.address, info.source_prefix, snapshot.locator.locate(info.address))
    zone = snapshot.zones.find(query.key)
    pools: list[dict[str, Any]] = []

    def traced(pool: Pool) -> RRset:
        by_name = zone.pools_by_name if zone is not None else {}
        decision = decide_pool(pool, snapshot.state, by_name, info, slot, key, explain=True)
        pools.append(_pool_account(pool, decision))
        rdatas = tuple((m.rdata,) for m in decision.members)
        ttl = snapshot.state.ttl.get(pool.id, pool.ttl)
        return RRset(pool.owner, decision.pool.rtype, ttl, rdatas)

    if zone is not None:
        lookup(zone, query.key, query.qtype, traced)
    reply_wire = handle(wire, peer, snapshot, ReplyCache(64, first_slot=slot))
    reply = dns.message.from_wire(reply_wire) if isinstance(reply_wire, bytes) else None
    location = info.location
    return {
        "name": name,
        "type": rdtype.upper(),
        "client": client,
        "subnet_prefix": subnet_prefix,
        "geoip": snapshot.locator is not None,
        "location": None
        if location is None
        else {
            "network": str(location.network),
            "city": location.city,
            "country": location.country,
            "subdivision": location.subdivision,
            "continent": location.continent,
            "lat": location.lat,
            "lon": location.lon,
            "asn": location.asn,
        },
        "rcode": dns.rcode.to_text(reply.rcode()) if reply else None,
        "answer": [line for rrset in reply.answer for line in rrset.to_text().splitlines()]
        if reply
        else [],
        "ecs_scope": _scope(reply),
        "pools": pools,
    }


def _pool_account(pool: Pool, decision: Decision) -> dict[str, Any]:
    return {
        "pool": pool.id,
        "type": dns.rdatatype.to_text(dns.rdatatype.RdataType.make(pool.rtype)),
        "policy": list(pool.steps),
        "answered_by": decision.pool.id,
        "fallback": decision.fallback,
        "answer": [m.address for m in decision.members],
        "steps": [
            {
                "step": t.step,
                "kept": list(t.after),
                "dropped": [a for a in t.before if a not in t.after],
                "reordered": [a for a in t.before if a in t.after] != list(t.after),
                "notes": list(t.notes),
            }
            for t in decision.trace
        ],
    }


def _scope(reply: dns.message.Message | None) -> int | None:
    if reply is None:
        return None
    for option in reply.options:
        if isinstance(option, dns.edns.ECSOption):
            return int(option.scopelen)
    return None
