"""The GSLB part of a zone document (DESIGN.md §5): ISPs, sites, monitors, topology, pools.

Field-level rules live in the pydantic models; rules that relate fields to each other (a member
naming a site that exists, a fallback pool without a cycle) are checked by `references`, which
reports each fault with its field path so that files and API errors can point at it.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gslb.core import policy

# The step names come from the registry of step modules: a new step is one module and one
# line there, and the schema (and so the OpenAPI document) follows.
STEPS: tuple[str, ...] = tuple(policy.STEPS)
if TYPE_CHECKING:
    StepName = str
else:
    StepName = Literal[STEPS]


DEFAULT_POLICY: tuple[StepName, ...] = ("health", "round_robin", "limit")


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    return value


class _Doc(BaseModel):
    """A part of a zone document. Numbers as JSON Schema counts them: pydantic's lax mode
    would take `true` and `"80"` for a port, its strict mode refuses `80.0`, which JSON
    Schema (and so the OpenAPI document) calls an integer."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _json_numbers(cls, value: Any) -> Any:
        return _whole(value)


StrictDoc = _Doc  # the base of the zone document's models (gslb.core.zonedoc too)


def _text(value: Any) -> str:
    """A string, as the schema says: the validators below take any input (they run before
    pydantic's own check), and a number is refused as a number, not as a bad address."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


def _ip(value: Any) -> str:
    text = _text(value)
    if "." in text and ":" not in text:
        # The common case, quickly: an IPv4 address already written the one canonical way
        # (a pool of thousands of members is validated in a blink, not in seconds).
        try:
            if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
                return text
        except OSError:
            pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PydanticCustomError("ip_address", "not an IP address") from None


def _network(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(_text(value), strict=True))
    except ValueError as e:
        raise PydanticCustomError(
            "ip_network", "not a network: {reason}", {"reason": str(e)}
        ) from None


def _url_path(value: Any) -> str:
    text = _text(value)
    if not text.startswith("/") or text.startswith("//"):
        raise PydanticCustomError(
            "url_path", "an absolute path, starting with one / (e.g. /healthz), not an authority"
        )
    if len(text) > 2048 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise PydanticCustomError("url_path", "no spaces or control characters, at most 2048")
    return text


_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _http_host(value: Any) -> str:
    """A Host header / TLS name: a host name (letters, digits, hyphens, underscores), or an
    IP address, and an optional port: nothing a header could be made to say more with."""
    text = _text(value)
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise PydanticCustomError("http_host", "a host name or address, and an optional :port")
    try:
        ipaddress.ip_address(host)
        return text
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise PydanticCustomError("http_host", "a host name or address, and an optional :port")
    return text


def _instant(value: Any) -> str:
    """A moment as ISO 8601 with its zone (`2026-12-02T15:00:00Z`), kept in UTC to the second."""
    text = _text(value)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError(
            "instant", "an ISO 8601 time, e.g. 2026-12-02T15:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise PydanticCustomError("instant", "a time with its zone, e.g. 2026-12-02T15:00:00Z")
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def instant_seconds(text: str) -> float:
    """A normalized instant (see `_instant`) as Unix time."""
    return (
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=datetime.UTC)
        .timestamp()
    )


IPAddress = Annotated[str, BeforeValidator(_ip)]
Instant = Annotated[str, BeforeValidator(_instant)]
UrlPath = Annotated[str, BeforeValidator(_url_path)]
HttpHost = Annotated[str, BeforeValidator(_http_host)]
Network = Annotated[str, BeforeValidator(_network)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class SiteDoc(_Doc):
    lat: float | None = Field(
        None, ge=-90, le=90, description="latitude; without it, proximity ranks the site last"
    )
    lon: float | None = Field(None, ge=-180, le=180)
    country: str | None = Field(None, description="ISO 3166 code, for topology rules and display")
    continent: str | None = Field(None, description="two-letter continent code (EU, NA, ...)")
    capacity: float | None = Field(
        None, gt=0, description="sessions the site can take; default: its members' capacities"
    )
    description: str | None = None

    @model_validator(mode="after")
    def _both(self) -> SiteDoc:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


class MonitorDoc(_Doc):
    type: Literal["tcp", "http", "https", "dns", "icmp", "agent"]
    port: int | None = Field(None, ge=1, le=65535)
    interval: Seconds = 5.0
    timeout: Seconds = 2.0
    rise: int = Field(2, ge=1, le=100)
    fall: int = Field(2, ge=1, le=100)
    # http / https
    method: Literal["GET", "HEAD", "POST", "OPTIONS"] = "GET"
    path: UrlPath = "/"
    host: HttpHost | None = Field(None, description="Host header and TLS SNI")
    expect_status: int | list[int] = 200
    expect_body: str | None = Field(None, description="a substring the body must contain")
    tls_verify: bool = True
    watch: bool = Field(
        True,
        description="tcp, http, https: keep an idle connection open to the member over each "
        "path; when it is reset or closed, confirming probes follow at once (a dead service "
        "is noticed in tens of milliseconds, not a probe interval)",
    )
    # dns
    query_name: str | None = None
    query_type: str = "A"
    expect_rcode: str = "NOERROR"


class TopologyMatch(_Doc):
    """Clients matching any of the lists; a match with no list at all matches every client
    (a catch-all last rule)."""

    country: list[str] = []
    continent: list[str] = []
    subdivision: list[str] = Field(
        [], description="ISO 3166-2 codes, country first (US-CA, GB-SCT)"
    )
    asn: list[int] = []
    cidr: list[Network] = []


class TopologyRule(_Doc):
    match: TopologyMatch
    prefer: list[str] = Field(min_length=1, description="site names, most preferred first")
    others: Literal["after", "drop"] = Field(
        "after",
        description="members at sites the rule does not prefer: after the preferred ones, "
        "or dropped (when nothing is left, the pool's fallback answers)",
    )


class CostRule(_Doc):
    match: TopologyMatch
    sites: dict[str, Annotated[float, Field(gt=0)]] = Field(
        min_length=1,
        description="site -> routing cost from these clients (1 is the cost of being there; "
        "sites not listed: by distance)",
    )


class MemberDoc(_Doc):
    address: IPAddress
    site: str | None = None
    isp: str | None = Field(None, description="default: the zone's isps table")
    weight: int = Field(1, ge=1, le=10000)
    priority: int = Field(1, ge=1, le=1000, description="failover group; 1 is tried first")
    capacity: float | None = Field(None, gt=0, description="sessions the member can take")
    state: Literal["enabled", "drained", "disabled"] = "enabled"
    monitored: bool = Field(
        True,
        description="false: never probed and always counted up, whatever the pool's monitor "
        "(octoDNS's status: up)",
    )
    drain_at: Instant | None = Field(
        None,
        description="a planned drain: from this time the member is drained; one TTL before "
        "it the pool's answers are given a short TTL, so caches follow at once",
    )


class PoolDoc(_Doc):
    name: str | None = Field(
        None, description="the name it answers, relative to the zone; default: the pool's key"
    )
    type: Literal["A", "AAAA"] = "A"
    ttl: int = Field(30, ge=0, le=86400)
    max_answers: int = Field(4, ge=1, le=64)
    policy: list[StepName] = Field(default_factory=lambda: list(DEFAULT_POLICY))
    fallback: Literal["all", "none"] | str | list[IPAddress] = "all"
    monitor: str | None = None
    min_up: int = Field(1, ge=1, description="failover: healthy members a group needs")
    isp_down: Literal["last", "drop"] = Field(
        "last", description="isp_interleave: where addresses of an ISP with a path down go"
    )
    cold_start_wait: float | None = Field(
        None,
        ge=0,
        le=60,
        description="seconds to hold queries while no member's health is known yet "
        "(default: the monitor's timeout; 0: fail open at once)",
    )
    session_weights: dict[str, float] = Field(
        default_factory=dict,
        description="least_load: weight of a session by the member's local port (agent "
        'reports), e.g. {"21": 5, "23": 1}; ports not listed weigh 1 (RFC 2391 §5.1)',
    )
    slow_start: float = Field(
        0,
        ge=0,
        le=3600,
        description="seconds over which a member that comes back up (or is enabled again) "
        "ramps from a small share of the lead to its full share (RFC 2391 §6); 0: at once",
    )
    topology: list[TopologyRule] | None = Field(
        None,
        description="topology rules of this pool alone, instead of the zone's (the first "
        "rule matching the client decides)",
    )
    members: list[MemberDoc] = Field(min_length=1)

    @field_validator("session_weights", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        """Ports as YAML writes them (numbers) or JSON must (strings), kept as text."""
        if not isinstance(value, dict):
            return value
        out = {}
        for port, weight in value.items():
            text = str(port) if isinstance(port, int) and not isinstance(port, bool) else port
            if not (isinstance(text, str) and text.isdigit() and 0 < int(text) < 65536):
                raise PydanticCustomError(
                    "port", "a port number, 1 to 65535: {port!r}", {"port": port}
                )
            if not (
                isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0
            ):
                raise PydanticCustomError("weight", "a weight above 0: {w!r}", {"w": weight})
            out[text] = float(weight)
        return out


# A key directory is named, not given as a path: any holder of a write token can change a
# zone document, and a path would let them point every node at any file it can read. One
# component under the node's own key root, with no dot in front, cannot leave it.
_KEY_DIR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _key_dir(value: Any) -> str:
    text = _text(value)
    if not _KEY_DIR.fullmatch(text):
        raise PydanticCustomError(
            "key_dir",
            "the name of a directory under each node's --dnssec-key-dir, not a path: letters, "
            "digits, '.', '_' and '-', at most 64, not starting with '.' or '-'",
        )
    return text


KeyDir = Annotated[str, BeforeValidator(_key_dir)]


class DnssecDoc(_Doc):
    """Sign every answer of the zone online (docs/dnssec.md)."""

    algorithm: Literal["ECDSAP256SHA256", "ED25519"] = Field(
        "ECDSAP256SHA256", description="the signing key's algorithm (IANA mnemonic)"
    )
    dnskey_ttl: int = Field(
        3600,
        ge=1,
        le=86400,
        description="TTL of DNSKEY, CDS and CDNSKEY: how long a rollover step waits for caches",
    )
    withdraw: bool = Field(
        False,
        description="going insecure: still signed, but CDS and CDNSKEY ask the parent to delete "
        "its DS (RFC 8078); remove dnssec: once the parent has",
    )
    keys: KeyDir | None = Field(
        None,
        description="keep the keys in files instead of the state store: the name of a "
        "directory under each node's --dnssec-key-dir (one path component), holding PEM "
        "private keys (*.pem); gslb only reads it",
    )


class GslbDoc(_Doc):
    """The keys a zone document adds for load balancing."""

    isps: dict[str, list[Network]] = {}
    sites: dict[str, SiteDoc] = {}
    monitors: dict[str, MonitorDoc] = {}
    topology: list[TopologyRule] = []
    costs: list[CostRule] = Field(
        default_factory=list,
        description="cost: routing costs by client (RFC 2391 §5.2); the first rule matching "
        "the client decides",
    )
    pools: dict[str, PoolDoc] = {}


Fault = tuple[tuple[int | str, ...], str]


def references(doc: GslbDoc) -> list[Fault]:
    """Faults in how the parts refer to each other, each with its field path."""
    faults = head_faults(doc)
    for name, pool in doc.pools.items():
        faults.extend(pool_faults(doc, name, pool, doc.pools.get))
    for name in doc.pools:
        cycle = fallback_cycle(name, doc.pools.get)
        if cycle is not None:
            faults.append(cycle)
    return faults


def head_faults(doc: GslbDoc) -> list[Fault]:
    """Faults inside the zone's head (its topology naming sites that do not exist)."""
    faults = _topology_faults(doc, doc.topology, ("topology",))
    for i, cost in enumerate(doc.costs):
        for site in cost.sites:
            if site not in doc.sites:
                faults.append((("costs", i, "sites", site), f"unknown site {site!r}"))
    return faults


def _topology_faults(
    head: GslbDoc, rules: list[TopologyRule], where: tuple[int | str, ...]
) -> list[Fault]:
    return [
        ((*where, i, "prefer", j), f"unknown site {site!r}")
        for i, rule in enumerate(rules)
        for j, site in enumerate(rule.prefer)
        if site not in head.sites
    ]


def pool_faults(
    head: GslbDoc, name: str, pool: PoolDoc, pools: Callable[[str], PoolDoc | None]
) -> list[Fault]:
    """Faults in what one pool refers to: the head's monitors, sites and ISPs, and (through
    `pools`, which finds another pool of the zone) its fallback pool. Checking one pool costs
    that pool, whatever the size of the zone."""
    faults: list[Fault] = []
    where: tuple[int | str, ...] = ("pools", name)
    if pool.monitor is not None and pool.monitor not in head.monitors:
        faults.append(((*where, "monitor"), f"unknown monitor {pool.monitor!r}"))
    if pool.topology is not None:
        faults.extend(_topology_faults(head, pool.topology, (*where, "topology")))
    if isinstance(pool.fallback, str) and pool.fallback not in ("all", "none"):
        target_name = pool.fallback.removeprefix("pool:")
        target = pools(target_name) if target_name != name else pool
        if not pool.fallback.startswith("pool:"):
            faults.append(((*where, "fallback"), "all, none, pool:NAME or a list of addresses"))
        elif target is None:
            faults.append(((*where, "fallback"), f"unknown pool {target_name!r}"))
        elif target.type != pool.type:
            faults.append(
                ((*where, "fallback"), f"pool {target_name!r} is not of type {pool.type}")
            )
    if isinstance(pool.fallback, list):
        for j, address in enumerate(pool.fallback):
            if not _fits(address, pool.type):
                faults.append(((*where, "fallback", j), f"not an {_family(pool.type)} address"))
    seen: set[str] = set()
    for j, member in enumerate(pool.members):
        at = (*where, "members", j)
        if not _fits(member.address, pool.type):
            faults.append(((*at, "address"), f"not an {_family(pool.type)} address"))
        if member.address in seen:
            faults.append(((*at, "address"), f"{member.address} is listed twice"))
        seen.add(member.address)
        if member.site is not None and member.site not in head.sites:
            faults.append(((*at, "site"), f"unknown site {member.site!r}"))
        if member.isp is not None and member.isp not in head.isps:
            faults.append(((*at, "isp"), f"unknown ISP {member.isp!r}"))
    return faults


def fallback_target(pool: PoolDoc) -> str | None:
    """The pool `pool` falls back to, if it falls back to a pool."""
    if isinstance(pool.fallback, str) and pool.fallback.startswith("pool:"):
        return pool.fallback.removeprefix("pool:")
    return None


def fallback_cycle(start: str, pools: Callable[[str], PoolDoc | None]) -> Fault | None:
    """The fault of a chain of pool fallbacks from `start` that comes back to it."""
    seen = [start]
    current = pools(start)
    while current is not None:
        nxt = fallback_target(current)
        if nxt is None:
            return None
        if nxt in seen:
            if nxt == start:
                chain = " -> ".join([*seen, nxt])
                return (("pools", start, "fallback"), f"fallback cycle: {chain}")
            return None
        seen.append(nxt)
        current = pools(nxt)
    return None


def _family(rtype: str) -> str:
    return "IPv4" if rtype == "A" else "IPv6"


def _fits(address: str, rtype: str) -> bool:
    # Addresses are normalized by the schema: IPv6 ones, and only they, have colons.
    return (":" in address) == (rtype == "AAAA")
