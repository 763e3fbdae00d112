"""external-dns's webhook provider protocol, mapped onto gslb zones (docs/kubernetes.md).

external-dns (Kubernetes) publishes Services and Ingresses as *endpoints*: a DNS name, a
record type, targets, a TTL, an optional set identifier, and provider-specific properties
taken from annotations (`external-dns.alpha.kubernetes.io/webhook-gslb-policy: ...` arrives as
`webhook/gslb-policy`). This module turns them into zone documents and back; the
`gslb external-dns` role (gslb.shell.webhook) serves the protocol and writes through the API.

- An A or AAAA endpoint is a **pool** answering its name and type. Its targets are members;
  with a set identifier (one per cluster, say) they are the members at the site of that name
  (made without coordinates when missing: give it some through the API for `proximity`), and
  endpoints of other set identifiers add theirs to the same pool. The annotations
  `webhook-gslb-policy` (steps, comma separated), `webhook-gslb-monitor` (a monitor of the
  zone: the members' health then follows gslb's checkers) and `webhook-gslb-max-answers` set
  the pool's; the last endpoint written wins, so annotate every cluster alike.
- CNAME, TXT (the registry's ownership records among them), MX, SRV, NS, PTR and CAA
  endpoints are static records of the zone. A TXT endpoint with a set identifier (the
  registry's record of a set-identified pool) keeps it as a first string of each of its
  records, `"external-dns/set-identifier=east" "heritage=external-dns,..."`, so that each
  cluster's ownership record reads back as its own.

`adjust` puts desired endpoints in the form `records` reads back (addresses and names in one
spelling, TXT quoted, defaults and unknown properties left out), so external-dns plans no
change for what is already there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gslb.core.pooldoc import DEFAULT_POLICY, STEPS, PoolDoc
from gslb.recordtext import RRsets, records_text, static_rrsets

MEDIA_TYPE = "application/external.dns.webhook+json;version=1"
SPECIFIC = "webhook/gslb-"  # external-dns's prefix for webhook-<name> annotations, and ours
POOL_TYPES = ("A", "AAAA")
STATIC_TYPES = ("CNAME", "TXT", "MX", "SRV", "NS", "PTR", "CAA")
# Where a type's rdata holds a name, which external-dns writes without the trailing dot.
NAME_AT = {"CNAME": 0, "NS": 0, "PTR": 0, "MX": 1, "SRV": 3}
DEFAULT_MAX_ANSWERS = PoolDoc.model_fields["max_answers"].default
Json = Any


class EndpointError(ValueError):
    """An endpoint this provider cannot keep; the message names it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # dnsName: lower case, no trailing dot
    rtype: str
    targets: tuple[str, ...]
    ttl: int = 0  # 0: not configured (the provider's default)
    set_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    specific: Mapping[str, str] = field(default_factory=dict)  # providerSpecific by name

    @classmethod
    def from_json(cls, raw: Json) -> Endpoint:
        if not isinstance(raw, dict):
            raise EndpointError("an endpoint is a JSON object")
        # Go's encoding/json, which external-dns uses, matches field names in any case.
        data = {str(k).lower(): v for k, v in raw.items()}
        name, rtype = data.get("dnsname"), data.get("recordtype")
        if not isinstance(name, str) or not name or not isinstance(rtype, str):
            raise EndpointError("an endpoint needs dnsName and recordType")
        targets = data.get("targets") or []
        specific = data.get("providerspecific") or []
        labels = data.get("labels") or {}
        ttl = data.get("recordttl") or 0
        ok = (
            isinstance(targets, list)
            and all(isinstance(t, str) for t in targets)
            and isinstance(specific, list)
            and all(isinstance(p, dict) for p in specific)
            and isinstance(labels, dict)
            and isinstance(ttl, int)
            and 0 <= ttl <= 2**31 - 1
        )
        if not ok:
            raise EndpointError(f"{name} {rtype}: malformed targets, TTL, labels or properties")
        return cls(
            name.lower().rstrip("."),
            rtype.upper(),
            tuple(targets),
            ttl,
            str(data.get("setidentifier") or ""),
            {str(k): str(v) for k, v in labels.items()},
            {str(p.get("name")): str(p.get("value", "")) for p in specific},
        )

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "dnsName": self.name,
            "targets": list(self.targets),
            "recordType": self.rtype,
        }
        if self.set_id:
            out["setIdentifier"] = self.set_id
        if self.ttl:
            out["recordTTL"] = self.ttl
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.specific:
            out["providerSpecific"] = [
                {"name": k, "value": v} for k, v in sorted(self.specific.items())
            ]
        return out

    @property
    def what(self) -> str:
        return f"{self.name} {self.rtype}" + (f" ({self.set_id})" if self.set_id else "")


@dataclass(frozen=True, slots=True)
class Changes:
    create: tuple[Endpoint, ...] = ()
    update_old: tuple[Endpoint, ...] = ()
    update_new: tuple[Endpoint, ...] = ()
    delete: tuple[Endpoint, ...] = ()

    @classmethod
    def from_json(cls, raw: Json) -> Changes:
        if not isinstance(raw, dict):
            raise EndpointError("changes are a JSON object")
        data = {str(k).lower(): v for k, v in raw.items()}

        def endpoints(key: str) -> tuple[Endpoint, ...]:
            items = data.get(key) or []
            if not isinstance(items, list):
                raise EndpointError(f"{key}: a list of endpoints")
            return tuple(Endpoint.from_json(e) for e in items)

        return cls(
            endpoints("create"),
            endpoints("updateold"),
            endpoints("updatenew"),
            endpoints("delete"),
        )

    @property
    def all(self) -> tuple[Endpoint, ...]:
        return self.create + self.update_old + self.update_new + self.delete


# --- desired endpoints in the form they are read back ----------------------------------------


def adjust(endpoint: Endpoint) -> Endpoint:
    """`endpoint` as `records` would give it back once written (raises EndpointError)."""
    if endpoint.rtype in POOL_TYPES:
        return replace(
            endpoint,
            targets=tuple(sorted({_address(endpoint, t) for t in endpoint.targets})),
            specific=_settings(endpoint),
        )
    if endpoint.rtype in STATIC_TYPES:
        if endpoint.set_id and endpoint.rtype != "TXT":
            raise EndpointError(f"{endpoint.what}: set identifiers are for pools and TXT")
        targets = tuple(sorted({_static_target(endpoint.rtype, t) for t in endpoint.targets}))
        return replace(endpoint, targets=targets, specific={})
    raise EndpointError(
        f"{endpoint.what}: record type not kept (A, AAAA, {', '.join(STATIC_TYPES)})"
    )


def _address(endpoint: Endpoint, text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise EndpointError(f"{endpoint.what}: {text!r} is not an address") from None
    if (address.version == 6) != (endpoint.rtype == "AAAA"):
        raise EndpointError(f"{endpoint.what}: {text} is not an {endpoint.rtype} address")
    return str(address)


def _settings(endpoint: Endpoint) -> dict[str, str]:
    """The pool settings an endpoint's properties give, defaults left out."""
    out: dict[str, str] = {}
    policy = endpoint.specific.get(SPECIFIC + "policy", "").strip()
    if policy:
        steps = [s.strip() for s in policy.split(",") if s.strip()]
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise EndpointError(f"{endpoint.what}: unknown policy step {unknown[0]!r}")
        if tuple(steps) != DEFAULT_POLICY:
            out[SPECIFIC + "policy"] = ",".join(steps)
    monitor = endpoint.specific.get(SPECIFIC + "monitor", "").strip()
    if monitor:
        out[SPECIFIC + "monitor"] = monitor
    answers = endpoint.specific.get(SPECIFIC + "max-answers", "").strip()
    if answers:
        if not answers.isdigit() or not 1 <= int(answers) <= 64:
            raise EndpointError(f"{endpoint.what}: gslb-max-answers is 1 to 64, not {answers!r}")
        if int(answers) != DEFAULT_MAX_ANSWERS:
            out[SPECIFIC + "max-answers"] = str(int(answers))
    return out


def _static_target(rtype: str, text: str) -> str:
    text = text.strip()
    if rtype == "TXT" and not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    at = NAME_AT.get(rtype)
    if at is None:
        return text
    parts = text.split()
    if at < len(parts):
        parts[at] = parts[at].lower().rstrip(".")
    return " ".join(parts)


# --- a zone document as endpoints ----------------------------------------------------------


def zone_of(name: str, zones: Iterable[str]) -> str | None:
    """The longest of `zones` that holds `name`."""
    holding = [z for z in zones if name == z or name.endswith("." + z)]
    return max(holding, key=len) if holding else None


def records(zone: str, doc: Json) -> list[Endpoint]:
    out: list[Endpoint] = []
    for key, raw in (doc.get("pools") or {}).items():
        pool = PoolDoc.model_validate(raw)
        owner = _owner(pool.name or key, zone)
        sites: dict[str, list[str]] = {}
        for m in pool.members:
            sites.setdefault(m.site or "", []).append(m.address)
        specific = {}
        if tuple(pool.policy) != DEFAULT_POLICY:
            specific[SPECIFIC + "policy"] = ",".join(pool.policy)
        if pool.monitor:
            specific[SPECIFIC + "monitor"] = pool.monitor
        if pool.max_answers != DEFAULT_MAX_ANSWERS:
            specific[SPECIFIC + "max-answers"] = str(pool.max_answers)
        for site, addresses in sorted(sites.items()):
            out.append(
                Endpoint(owner, pool.type, tuple(sorted(addresses)), pool.ttl, site, {}, specific)
            )
    for (owner, rtype), (ttl, texts) in static_rrsets(doc).items():
        if rtype not in STATIC_TYPES:
            continue
        by_set: dict[str, list[str]] = {}
        for text in texts:
            set_id, target = _unmark(text) if rtype == "TXT" else ("", text)
            by_set.setdefault(set_id, []).append(_static_target(rtype, target))
        for set_id, targets in sorted(by_set.items()):
            name = owner.lower().rstrip(".")
            out.append(Endpoint(name, rtype, tuple(sorted(targets)), ttl, set_id))
    return out


MARK = "external-dns/set-identifier="


def _mark(set_id: str, target: str) -> str:
    quoted = set_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{MARK}{quoted}" {target}'


def _unmark(text: str) -> tuple[str, str]:
    """(set identifier, the TXT target) of a record written by `_mark` (else "")."""
    if not text.startswith('"' + MARK):
        return "", text
    i, out = len(MARK) + 1, []
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), text[i + 1 :].lstrip()


def _owner(relative: str, zone: str) -> str:
    return zone if relative == "@" else f"{relative}.{zone}".lower()


# --- changes into a zone document ----------------------------------------------------------


def apply_changes(zone: str, doc: Json, changes: Changes) -> Json:
    """`doc` with `changes` made (the endpoints already adjusted); raises EndpointError."""
    out = dict(doc)
    pools: dict[str, Json] = {k: dict(v) for k, v in (doc.get("pools") or {}).items()}
    sites: dict[str, Json] = dict(doc.get("sites") or {})
    rrsets: RRsets = static_rrsets(doc)
    for endpoint in changes.delete + changes.update_old:
        if endpoint.rtype in POOL_TYPES:
            _remove_members(zone, pools, endpoint)
        else:
            _remove_static(rrsets, endpoint)
    for endpoint in changes.create + changes.update_new:
        if endpoint.rtype in POOL_TYPES:
            _add_members(zone, pools, endpoint)
            if endpoint.set_id:
                sites.setdefault(endpoint.set_id, {})
        else:
            # A TXT keeps the records of the other set identifiers at its name.
            ttl, kept = _remove_static(rrsets, endpoint) or (0, [])
            texts = [_wire_text(endpoint, t) for t in endpoint.targets]
            if endpoint.set_id:
                texts = [_mark(endpoint.set_id, t) for t in texts]
            ttl = endpoint.ttl or ttl or int(doc.get("ttl", 300))
            rrsets[(endpoint.name + ".", endpoint.rtype)] = (ttl, kept + texts)
    out["records"] = records_text(rrsets)
    for part, value in (("pools", pools), ("sites", sites)):
        if value:
            out[part] = value
        else:
            out.pop(part, None)
    return out


def _remove_static(rrsets: RRsets, endpoint: Endpoint) -> tuple[int, list[str]] | None:
    """Take the endpoint's records out of `rrsets` (a TXT's: only those of its set
    identifier); what stays of the RRset, if anything."""
    key = (endpoint.name + ".", endpoint.rtype)
    found = rrsets.pop(key, None)
    if found is None or endpoint.rtype != "TXT":
        return None
    ttl, texts = found
    others = [t for t in texts if _unmark(t)[0] != endpoint.set_id]
    if not others:
        return None
    rrsets[key] = (ttl, others)
    return ttl, others


def _wire_text(endpoint: Endpoint, target: str) -> str:
    """A target as master-file rdata: names made absolute."""
    at = NAME_AT.get(endpoint.rtype)
    if at is None:
        return target
    parts = target.split()
    if at < len(parts) and parts[at] != "." and not parts[at].endswith("."):
        parts[at] += "."
    return " ".join(parts)


def _pool_of(zone: str, pools: Mapping[str, Json], endpoint: Endpoint) -> str | None:
    for key, pool in pools.items():
        owner = _owner(str(pool.get("name") or key), zone)
        if owner == endpoint.name and pool.get("type", "A") == endpoint.rtype:
            return key
    return None


def _remove_members(zone: str, pools: dict[str, Json], endpoint: Endpoint) -> None:
    key = _pool_of(zone, pools, endpoint)
    if key is None:
        return
    site = endpoint.set_id or None
    kept = [m for m in pools[key].get("members") or [] if m.get("site") != site]
    if kept:
        pools[key]["members"] = kept
    else:
        del pools[key]


def _add_members(zone: str, pools: dict[str, Json], endpoint: Endpoint) -> None:
    key = _pool_of(zone, pools, endpoint)
    if key is None:
        host = endpoint.name[: -len(zone)].rstrip(".") if endpoint.name != zone else ""
        key = f"{host or 'apex'}-{endpoint.rtype.lower()}"
        pools[key] = {"name": host or "@", "type": endpoint.rtype}
    pool = pools[key]
    site = endpoint.set_id or None
    others = [m for m in pool.get("members") or [] if m.get("site") != site]
    for m in others:
        if m["address"] in endpoint.targets:
            owner = m.get("site") or "no set identifier"
            raise EndpointError(f"{endpoint.what}: {m['address']} is published by {owner} too")
    before = {m["address"]: m for m in pool.get("members") or [] if m.get("site") == site}
    mine = []
    for address in endpoint.targets:
        # A member kept keeps what an operator set on it in gslb (a drain, a weight).
        member = dict(before.get(address) or {"address": address})
        if site:
            member["site"] = site
        mine.append(member)
    pool["members"] = others + mine
    if endpoint.ttl:
        pool["ttl"] = endpoint.ttl
    specific = endpoint.specific
    policy = specific.get(SPECIFIC + "policy")
    pool["policy"] = policy.split(",") if policy else list(DEFAULT_POLICY)
    if specific.get(SPECIFIC + "monitor"):
        pool["monitor"] = specific[SPECIFIC + "monitor"]
    else:
        pool.pop("monitor", None)
    answers = specific.get(SPECIFIC + "max-answers")
    pool["max_answers"] = int(answers) if answers else DEFAULT_MAX_ANSWERS
