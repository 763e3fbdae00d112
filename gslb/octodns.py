"""An octoDNS provider: gslb as a target (and a source) of DNS as code.

    providers:
      gslb:
        class: gslb.octodns.GslbProvider
        url: env/GSLB_URL            # http://gslb-1.example.net:8053
        token: env/GSLB_TOKEN        # a write token of the REST API

It speaks to the REST API only (docs/api.md): `populate` reads the zone document and turns it
into octoDNS records, `_apply` edits that document and PUTs it back whole, conditional on the
ETag it read (the server stores only what differs, in one transaction).

How a dynamic record maps onto a gslb pool (docs/octodns.md says it for operators):

- octoDNS pool -> a site of the zone, by the same name (an existing site keeps its
  coordinates; a new one is made without). Each value is a member at that site, with its
  weight; `status: down` is `state: disabled`, `status: up` is `monitored: false` (never
  probed, always up), `obey` follows the checkers.
- rules -> the pool's own topology rules, in octoDNS's order: `geos` as continents (EU),
  countries (EU-GB) and subdivisions (NA-US-CA), `subnets` as CIDR; each prefers its pool
  and the fallback chain behind it, and drops every other site (`others: drop`). The last,
  catch-all rule names no client, so it matches every one.
- policy [topology, health, weighted, limit]: the first site of the chain with a member up
  answers, values shared by weight; the record's own values are the pool's `fallback`, for
  when every value of the chain is down.
- `octodns.healthcheck` -> a monitor of the zone named after the pool.

A gslb pool that does not have this shape was made in gslb itself (with proximity,
isp_interleave, ...): octoDNS neither sees nor touches it. A drain done in gslb (the API,
the dashboard) outlives a sync: octoDNS has no word for it, and it is an operator's
temporary act rather than configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import dns.rdata
import dns.rdtypes.ANY.LOC
from octodns.provider import SupportsException
from octodns.provider.base import BaseProvider
from octodns.record import Create, Delete, Record, Update
from octodns.record.geo import GeoCodes
from octodns.record.rr import Rrset

from gslb.apiclient import ApiClient
from gslb.core.pooldoc import PoolDoc
from gslb.recordtext import records_text, static_rrsets

Json = Any
POLICY = ["topology", "health", "weighted", "limit"]
# Types the server answers from a zone's master-file text that octoDNS also knows.
STATIC_TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DNAME",
    "DS",
    "HTTPS",
    "LOC",
    "MX",
    "NAPTR",
    "NS",
    "OPENPGPKEY",
    "PTR",
    "SPF",
    "SRV",
    "SSHFP",
    "SVCB",
    "TLSA",
    "TXT",
    "URI",
)
MONITOR_TYPES = {"HTTP": "http", "HTTPS": "https", "TCP": "tcp", "ICMP": "icmp"}
PROTOCOLS = {v: k for k, v in MONITOR_TYPES.items()}


class GslbProvider(BaseProvider):  # type: ignore[misc]
    SUPPORTS_GEO = False  # octoDNS's old `geo` records; `dynamic` says the same and more
    SUPPORTS_DYNAMIC = True
    SUPPORTS_POOL_VALUE_STATUS = True
    SUPPORTS_DYNAMIC_SUBNETS = True
    SUPPORTS_MULTIVALUE_PTR = True
    SUPPORTS_ROOT_NS = True
    SUPPORTS = frozenset(STATIC_TYPES)

    def __init__(
        self,
        id: str,
        url: str,
        token: str,
        max_answers: int = 1,
        soa: dict[str, Any] | None = None,
        timeout: float = 30.0,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.log = logging.getLogger(f"GslbProvider[{id}]")
        super().__init__(id, *args, **kwargs)
        self.api = ApiClient(url, token, timeout)
        # One address per answer is octoDNS's meaning of weights (each value's share of the
        # answers); more give clients that try the next address somewhere to go.
        self.max_answers = max_answers
        # The SOA of a zone this provider creates (octoDNS has no SOA records); default:
        # the first name server of the zone's NS records, and hostmaster@ the zone.
        self.soa = soa

    # --- reading ---------------------------------------------------------------------------

    def populate(self, zone: Any, target: bool = False, lenient: bool = False) -> bool:
        found = self.api.zone(zone_name(zone))
        if found is None:
            return False
        doc, _ = found
        for record in records_of(zone, doc, lenient, self.log):
            zone.add_record(record, lenient=lenient)
        return True

    # --- planning --------------------------------------------------------------------------

    def _process_desired_zone(self, desired: Any) -> Any:
        for record in desired.records:
            dynamic = getattr(record, "dynamic", None)
            if not dynamic:
                continue
            seen: dict[str, str] = {}
            for pool_id, pool in dynamic.pools.items():
                for value in pool.data["values"]:
                    other = seen.setdefault(str(value["value"]), pool_id)
                    if other != pool_id:
                        raise SupportsException(
                            f"{self.id}: {record.fqdn}: {value['value']} is in pools {other} "
                            f"and {pool_id}; a gslb member (one address) is at one site"
                        )
            if record.healthcheck_protocol not in MONITOR_TYPES:
                msg = f"{record.healthcheck_protocol} health checks not supported for {record.fqdn}"
                self.supports_warn_or_except(msg, "checking TCP instead")
                record = record.copy()
                record.octodns["healthcheck"]["protocol"] = "TCP"
                desired.add_record(record, replace=True)
        return super()._process_desired_zone(desired)

    def _extra_changes(self, existing: Any, desired: Any, changes: list[Any]) -> list[Any]:
        """octoDNS compares values, TTLs and dynamic rules, not health checks: a changed
        `octodns.healthcheck` is an update too."""
        changed = {(c.record.name, c.record._type) for c in changes}
        mine = {(r.name, r._type): r for r in existing.records}
        extra = []
        for record in desired.records:
            key = (record.name, record._type)
            had = mine.get(key)
            if key in changed or had is None or not getattr(record, "dynamic", None):
                continue
            if healthcheck(record) != healthcheck(had):
                extra.append(Update(had, record))
        return extra

    # --- writing ---------------------------------------------------------------------------

    def _apply(self, plan: Any) -> None:
        name = zone_name(plan.desired)
        found = self.api.zone(name)
        doc, etag = found if found is not None else (self._new_zone(plan.desired), None)
        changed = apply_changes(doc, plan.changes, self.max_answers)
        self.log.info("_apply: %s: %d changes", name, len(plan.changes))
        self.api.put_zone(name, changed, etag)

    def _new_zone(self, desired: Any) -> dict[str, Json]:
        root = desired.root_ns
        servers = sorted(str(v) for v in root.values) if root else []
        name = zone_name(desired)
        soa = dict(self.soa or {})
        soa.setdefault("mname", servers[0] if servers else f"ns1.{name}.")
        soa.setdefault("rname", f"hostmaster.{name}.")
        return {"zone": name, "soa": soa}


# --- gslb documents -> octoDNS records -----------------------------------------------------


def zone_name(zone: Any) -> str:
    return str(zone.name).rstrip(".")


def records_of(zone: Any, doc: Json, lenient: bool, log: logging.Logger) -> list[Any]:
    rrsets = [
        Rrset(owner, rtype, ttl, texts)
        for (owner, rtype), (ttl, texts) in static_rrsets(doc, rdata_text).items()
        if rtype in STATIC_TYPES
    ]
    records = list(Record.from_rrsets(zone, rrsets, lenient=lenient))
    monitors = doc.get("monitors") or {}
    for key, raw in (doc.get("pools") or {}).items():
        pool = PoolDoc.model_validate(raw)
        if not is_octodns_pool(pool):
            log.info("pool %s was made in gslb, not by octoDNS: left alone", key)
            continue
        host = "" if (pool.name or key) == "@" else (pool.name or key)
        data = dynamic_data(pool, monitors.get(pool.monitor or ""))
        records.append(Record.new(zone, host, data, lenient=lenient))
    return records


def is_octodns_pool(pool: PoolDoc) -> bool:
    return (
        pool.policy == POLICY
        and bool(pool.topology)
        and all(rule.others == "drop" for rule in pool.topology or ())
        and isinstance(pool.fallback, list)
        and bool(pool.fallback)
    )


def dynamic_data(pool: PoolDoc, monitor: Json) -> dict[str, Json]:
    pools: dict[str, dict[str, Json]] = {}
    for m in pool.members:
        status = "down" if m.state == "disabled" else "obey" if m.monitored else "up"
        value = {"value": m.address, "weight": m.weight, "status": status}
        pools.setdefault(m.site or "", {"values": []})["values"].append(value)
    rules = []
    for rule in pool.topology or ():
        head, *chain = rule.prefer
        for here, nxt in zip(rule.prefer, chain, strict=False):
            pools.setdefault(here, {"values": []})["fallback"] = nxt
        out: dict[str, Json] = {"pool": head}
        geos = geo_codes(rule.match.continent, rule.match.country, rule.match.subdivision)
        if geos:
            out["geos"] = geos
        if rule.match.cidr:
            out["subnets"] = list(rule.match.cidr)
        rules.append(out)
    data: dict[str, Json] = {
        "type": pool.type,
        "ttl": pool.ttl,
        "values": list(pool.fallback),
        "dynamic": {"pools": pools, "rules": rules},
    }
    if monitor:
        data["octodns"] = {"healthcheck": healthcheck_of_monitor(monitor)}
        timing = {k: monitor[k] for k in TIMING if k in monitor}
        if timing:
            data["octodns"]["gslb"] = {"healthcheck": timing}
    return data


def geo_codes(
    continents: Iterable[str], countries: Iterable[str], subdivisions: Iterable[str]
) -> list[str]:
    codes = list(continents)
    codes += [GeoCodes.country_to_code(c) or c for c in countries]
    for sub in subdivisions:
        country, _, code = sub.partition("-")
        codes.append(f"{GeoCodes.country_to_code(country) or country}-{code}")
    return codes


def healthcheck_of_monitor(monitor: Json) -> dict[str, Json]:
    check: dict[str, Json] = {"protocol": PROTOCOLS.get(monitor.get("type"), "TCP")}
    if monitor.get("port") is not None:
        check["port"] = monitor["port"]
    if monitor.get("type") in ("http", "https"):
        check["path"] = monitor.get("path", "/")
        if monitor.get("host"):
            check["host"] = monitor["host"]
    return check


def healthcheck(record: Any) -> tuple[Any, ...]:
    """What of a record's health check a monitor keeps, octoDNS's defaults filled in, and
    the timing gslb adds (`octodns: {gslb: {healthcheck: {interval: 2, ...}}}`)."""
    protocol = record.healthcheck_protocol
    timing = tuple(sorted(gslb_timing(record).items()))
    return (
        protocol,
        record.healthcheck_port,
        record.healthcheck_path,
        record.healthcheck_host(),
        timing,
    )


TIMING = ("interval", "timeout", "rise", "fall")


def gslb_timing(record: Any) -> dict[str, Json]:
    given = ((record.octodns or {}).get("gslb") or {}).get("healthcheck") or {}
    return {k: given[k] for k in TIMING if k in given}


def rdata_text(rd: dns.rdata.Rdata) -> str:
    if isinstance(rd, dns.rdtypes.ANY.LOC.LOC):
        # octoDNS reads LOC only in its long form, every field written out.
        def angle(value: tuple[int, int, int, int, int], sides: str) -> str:
            degrees, minutes, seconds, millis, sign = value
            return f"{degrees} {minutes} {seconds}.{millis:03d} {sides[sign < 0]}"

        return (
            f"{angle(rd.latitude, 'NS')} {angle(rd.longitude, 'EW')} "
            f"{rd.altitude / 100:.2f}m {rd.size / 100:.2f}m "
            f"{rd.horizontal_precision / 100:.2f}m {rd.vertical_precision / 100:.2f}m"
        )
    return rd.to_text()


# --- octoDNS changes -> a gslb document ----------------------------------------------------


def pool_key(record: Any) -> str:
    return f"{record.name or 'apex'}-{record._type.lower()}"


def apply_changes(doc: Json, changes: Iterable[Any], max_answers: int) -> Json:
    """`doc` (a zone document as the API returns it) with octoDNS's changes made."""
    out = dict(doc)
    rrsets = static_rrsets(out)
    pools = dict(out.get("pools") or {})
    monitors = dict(out.get("monitors") or {})
    sites = dict(out.get("sites") or {})
    for change in changes:
        record = change.new if isinstance(change, Create | Update) else change.existing
        key = pool_key(record)
        rrsets.pop((record.fqdn, record._type), None)
        if key in pools and is_octodns_pool(PoolDoc.model_validate(pools[key])):
            del pools[key]
        if isinstance(change, Delete):
            continue
        if getattr(record, "dynamic", None):
            pools[key] = pool_doc(record, max_answers, doc.get("pools", {}).get(key))
            monitors[key] = monitor_doc(record)
            for site in record.dynamic.pools:
                sites.setdefault(site, {})
        else:
            rdatas = record.to_rrset().rdatas
            rrsets[(record.fqdn, record._type)] = (record.ttl, list(rdatas))
    # A monitor of a pool octoDNS made goes with the pool.
    used = {p.get("monitor") for p in pools.values()}
    for key in list(monitors):
        if key not in used and key in (doc.get("pools") or {}):
            del monitors[key]
    out["records"] = records_text(rrsets)
    for part, value in (("pools", pools), ("monitors", monitors), ("sites", sites)):
        if value:
            out[part] = value
        else:
            out.pop(part, None)
    return out


def pool_doc(record: Any, max_answers: int, before: Json) -> dict[str, Json]:
    dynamic = record.dynamic
    kept = {}  # a drain made in gslb outlives the sync
    for m in (before or {}).get("members") or []:
        if m.get("state") == "drained" or m.get("drain_at"):
            kept[m["address"]] = {k: m[k] for k in ("state", "drain_at") if k in m}
    members = []
    for pool_id, pool in dynamic.pools.items():
        for value in pool.data["values"]:
            address = str(value["value"])
            member: dict[str, Json] = {"address": address, "site": pool_id}
            if value["weight"] != 1:
                member["weight"] = value["weight"]
            if value["status"] == "down":
                member["state"] = "disabled"
            elif value["status"] == "up":
                member["monitored"] = False
            if value["status"] == "obey":
                member.update(kept.get(address, {}))
            members.append(member)
    rules = []
    for rule in dynamic.rules:
        match: dict[str, list[str]] = {}
        for geo in rule.data.get("geos", []):
            parts = GeoCodes.parse(geo)
            if parts["province_code"]:
                where = f"{parts['country_code']}-{parts['province_code']}"
                match.setdefault("subdivision", []).append(where)
            elif parts["country_code"]:
                match.setdefault("country", []).append(parts["country_code"])
            else:
                match.setdefault("continent", []).append(parts["continent_code"])
        if rule.data.get("subnets"):
            match["cidr"] = list(rule.data["subnets"])
        rules.append(
            {"match": match, "prefer": chain(dynamic, rule.data["pool"]), "others": "drop"}
        )
    return {
        "name": record.name or "@",
        "type": record._type,
        "ttl": record.ttl,
        "max_answers": max_answers,
        "policy": POLICY,
        "fallback": [str(v) for v in record.values],
        "monitor": pool_key(record),
        "topology": rules,
        "members": members,
    }


def chain(dynamic: Any, start: str) -> list[str]:
    """A rule's pool and the fallbacks behind it, in order (octoDNS refuses loops)."""
    out = [start]
    nxt = dynamic.pools[start].data.get("fallback")
    while nxt and nxt not in out:
        out.append(nxt)
        nxt = dynamic.pools[nxt].data.get("fallback")
    return out


def monitor_doc(record: Any) -> dict[str, Json]:
    protocol, port, path, host, timing = healthcheck(record)
    monitor: dict[str, Json] = {"type": MONITOR_TYPES.get(protocol, "tcp"), **dict(timing)}
    if port is not None:
        monitor["port"] = port
    if protocol in ("HTTP", "HTTPS"):
        monitor["path"] = path
        if host:
            monitor["host"] = host
    return monitor
