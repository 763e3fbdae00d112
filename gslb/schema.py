"""The shared state schema: Redis key names and the JSON of every value.

This is the one module `healthchecks/` (checkers and agents) shares with `gslb` (DNS, API):
what a checker needs to know about the configuration arrives as `Target`s, and what it says
goes back as `Result`s and decided `Health`; neither side needs the other's code.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PREFIX = "gslb:"
VERSION = PREFIX + "version"  # integer, INCR'd by every change of configuration or state
# The layout of the keys below: 2 since configuration is kept per resource (layout 1 kept one
# JSON document per zone in gslb:zones); gslb.state.migrate moves older layouts forward.
LAYOUT = PREFIX + "layout"
LAYOUT_VERSION = 2
# A random token made with the state (by the first node to find Redis empty): a node that
# finds another one, or none, knows the state it read went away (Redis restarted empty, or
# was pointed at another copy), whatever the sequence numbers say.
EPOCH = PREFIX + "epoch"
LAYOUT1_ZONES = PREFIX + "zones"  # layout 1: hash zone -> whole stored document
LAYOUT1_TARGETS = PREFIX + "targets"  # layout 1: hash zone -> every target of the zone
ZONE_LIST = PREFIX + "zone-list"  # set of every zone's name (each zone's keys: zone_key)
HEALTH = PREFIX + "health"  # hash member key -> Health JSON (the decided state)
RESULTS = PREFIX + "results:"  # + member key: hash "checker|path" -> Result JSON
CHECKERS = PREFIX + "checkers"  # hash checker id -> Checker JSON (heartbeat)
LOAD = PREFIX + "load"  # hash member address -> Load JSON (agents)
# hash member address -> Leaving JSON: the agent on that host said it is going away (gslb
# agent drain, or its SIGTERM); every pool's answers drop the address until it is back.
LEAVING = PREFIX + "leaving"
PATHS_DOWN = PREFIX + "paths_down"  # set "isp|site" ("isp|*": everywhere)
ANSWERS = PREFIX + "answers:"  # + bucket: hash member key -> answers handed out
EVENTS = PREFIX + "events"  # pub/sub channel: Event JSON after every change (for people)
AUDIT = PREFIX + "audit"  # list of AuditRecord JSON, newest first, capped
HISTORY = PREFIX + "history"  # list of health changes {at, member, health, was, ...}, newest first
HISTORY_KEEP = 10000
NODES = PREFIX + "nodes"  # hash node id -> Node JSON (DNS and API processes' heartbeat)
# hash {current, previous, upcoming: 32 hex digits, since: unix time}: the DNS Cookie server
# secrets the whole cluster answers with (RFC 9018), rotated by the DNS nodes.
COOKIE_SECRETS = PREFIX + "cookie-secrets"
# hash zone -> JSON list of {algorithm, flags, private (PKCS #8 DER, base64), created}: each
# signed zone's DNSSEC keys, made by the first node that needs them (docs/dnssec.md: whoever
# reads this Redis can sign for the zone).
DNSSEC_KEYS = PREFIX + "dnssec-keys"

# The change logs (Redis Streams): every write appends what it changed, in the transaction
# that changes it, numbered without gaps by its lane's sequence. Configuration and health
# travel in lanes of their own, so a health change never waits behind a configuration one.
CONFIG_LOG = PREFIX + "log:config"
CONFIG_SEQ = PREFIX + "seq:config"
HEALTH_LOG = PREFIX + "log:health"
HEALTH_SEQ = PREFIX + "seq:health"
LOG_KEEP = 100_000  # entries kept per log (approximately: MAXLEN ~); older ones are trimmed

# Appends one entry to a log, numbered by the lane's sequence, and bumps the version: a
# script, because the entry must carry the number its own transaction draws.
# KEYS: log, sequence, version; ARGV: MAXLEN, then field, value, ...; returns {seq, version}.
APPEND_LOG = """
local seq = redis.call('INCR', KEYS[2])
local entry = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'seq', seq}
for i = 2, #ARGV do entry[#entry + 1] = ARGV[i] end
redis.call(unpack(entry))
return {seq, redis.call('INCR', KEYS[3])}
"""


def append_args(fields: dict[str, str]) -> list[str]:
    """The ARGV of APPEND_LOG for an entry with `fields`."""
    return [str(LOG_KEEP), *(x for item in fields.items() for x in item)]


def zone_key(zone: str, part: str) -> str:
    """The key of one part of a zone, e.g. `gslb:zone:gslb.example.com:pools`.

    Parts: `head` (string: the zone document without records and pools), `records` (string:
    the master-file text), `rrsets` (hash: owner -> its static RRsets), `pools` (hash: name
    -> pool document), `owners` (hash: "owner TYPE" -> the pool answering it), `targets`
    (hash: pool -> PoolTargets JSON), `monitors` (hash: name -> Monitor JSON), and
    `refs:KIND:NAME` (set: the pools that refer to a monitor, site, ISP or fallback pool).
    """
    return f"{PREFIX}zone:{zone}:{part}"


ZONE_PARTS = ("head", "records", "rrsets", "pools", "owners", "targets", "monitors")
EVERYTHING = "*"  # in a change entry: every item of that kind changed


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One entry of the configuration log: which parts of one zone a write changed.

    `pools` / `records` name the pools / owners changed, or are None when every one of them
    may have (a whole document was written); `head` says the zone's head changed (sites,
    ISPs, monitors, topology, SOA settings); `deleted` that the zone is gone.
    """

    seq: int
    zone: str
    pools: tuple[str, ...] | None = ()
    records: tuple[str, ...] | None = ()
    head: bool = False
    deleted: bool = False

    def to_fields(self) -> dict[str, str]:
        """The entry's fields but its number (APPEND_LOG adds it)."""
        return {
            "zone": self.zone,
            "change": dumps(
                {
                    "pools": EVERYTHING if self.pools is None else list(self.pools),
                    "records": EVERYTHING if self.records is None else list(self.records),
                    "head": self.head,
                    "deleted": self.deleted,
                }
            ),
        }

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> ConfigChange:
        text = {_text(k): _text(v) for k, v in fields.items()}
        change = json.loads(text["change"])
        pools, records = change.get("pools", ()), change.get("records", ())
        return cls(
            int(text["seq"]),
            text["zone"],
            None if pools == EVERYTHING else tuple(pools),
            None if records == EVERYTHING else tuple(records),
            bool(change.get("head")),
            bool(change.get("deleted")),
        )


@dataclass(frozen=True, slots=True)
class HealthChange:
    """One entry of the health log: decided states that changed, with their new value, and
    member addresses whose agent announced it is leaving (True) or back (False)."""

    seq: int
    changes: dict[str, Health]
    leaving: dict[str, bool] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        """The entry's fields but its number (APPEND_LOG adds it)."""
        fields = {
            "changes": dumps({k: json.loads(h.to_json()) for k, h in self.changes.items()}),
        }
        if self.leaving:
            fields["leaving"] = dumps(self.leaving)
        return fields

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> HealthChange:
        text = {_text(k): _text(v) for k, v in fields.items()}
        changes = json.loads(text["changes"])
        leaving = json.loads(text.get("leaving") or "{}")
        return cls(
            int(text["seq"]),
            {k: Health.from_json(dumps(v)) for k, v in changes.items()},
            {str(k): bool(v) for k, v in leaving.items()},
        )


@dataclass(frozen=True, slots=True)
class Leaving:
    """Why and since when a member's agent says the member is going away."""

    at: float
    reason: str = "drain"  # drain (gslb agent drain) | stop (the agent's SIGTERM)

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Leaving:
        raw = json.loads(text)
        return cls(float(raw["at"]), str(raw.get("reason", "drain")))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


HealthWord = Literal["up", "down", "unknown"]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Monitor:
    """How to probe (a zone document's monitor, flattened)."""

    type: str  # tcp | http | https | dns | icmp | agent
    port: int | None = None
    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 2
    method: str = "GET"
    path: str = "/"
    host: str | None = None
    expect_status: tuple[int, ...] = (200,)
    expect_body: str | None = None
    tls_verify: bool = True
    query_name: str | None = None
    query_type: str = "A"
    expect_rcode: str = "NOERROR"
    # tcp / http / https: hold an idle connection per path, whose reset means a dead service
    watch: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    """One member to probe: its key (where results and health go), address, and monitor."""

    key: str  # zone/pool/address
    address: str
    monitor: Monitor
    isp: str | None = None
    site: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # By hand, not asdict(): a zone of 10 000 pools has 40 000 targets to write.
        return {
            "key": self.key,
            "address": self.address,
            "monitor": _monitor_dict(self.monitor),
            "isp": self.isp,
            "site": self.site,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        monitor = dict(data["monitor"])
        monitor["expect_status"] = tuple(monitor.get("expect_status") or (200,))
        return cls(
            data["key"], data["address"], Monitor(**monitor), data.get("isp"), data.get("site")
        )


@dataclass(frozen=True, slots=True)
class PoolTargets:
    """What the checkers probe in one pool: its monitor's name (the monitor itself is in the
    zone's `monitors` hash, so editing a monitor rewrites one key, not every pool) and its
    probed members as (address, ISP, site)."""

    monitor: str
    members: tuple[tuple[str, str | None, str | None], ...]

    def to_json(self) -> str:
        return dumps({"monitor": self.monitor, "members": [list(m) for m in self.members]})

    @classmethod
    def from_json(cls, raw: str | bytes) -> PoolTargets:
        data = json.loads(raw)
        return cls(data["monitor"], tuple((a, i, s) for a, i, s in data["members"]))

    def targets(self, zone: str, pool: str, monitor: Monitor) -> list[Target]:
        return [
            Target(f"{zone}/{pool}/{address}", address, monitor, isp, site)
            for address, isp, site in self.members
        ]


def monitor_to_json(monitor: Monitor) -> str:
    return dumps(_monitor_dict(monitor))


def monitor_from_json(raw: str | bytes) -> Monitor:
    data = dict(json.loads(raw))
    data["expect_status"] = tuple(data.get("expect_status") or (200,))
    return Monitor(**data)


@functools.lru_cache(maxsize=1024)
def _monitor_dict(monitor: Monitor) -> dict[str, Any]:
    out = asdict(monitor)
    out["expect_status"] = list(monitor.expect_status)
    return out


@dataclass(frozen=True, slots=True)
class Result:
    """A checker's latest word on one member over one path."""

    vote: HealthWord  # after rise/fall hysteresis
    ok: bool  # the latest probe
    rtt: float | None  # seconds, the latest successful probe's
    error: str | None
    at: float  # when the latest probe finished (unix time)
    since: float  # when the vote last changed
    expires: float  # after this the vote no longer counts (a dead checker's votes vanish)

    def to_json(self) -> str:
        return json.dumps(
            {
                "vote": self.vote,
                "ok": self.ok,
                "rtt": self.rtt,
                "error": self.error,
                "at": self.at,
                "since": self.since,
                "expires": self.expires,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Result:
        return cls(**json.loads(raw))


@dataclass(frozen=True, slots=True)
class Checker:
    id: str
    region: str
    paths: tuple[str, ...]
    seen: float  # last heartbeat (unix time)
    started: float = 0.0
    probes: int = 0  # probes done since it started
    assigned: int = 0  # (member, path) pairs it probes now
    path_problems: tuple[str, ...] = ()  # paths that are not their own uplink (uplinks.py)

    def to_json(self) -> str:
        return dumps(
            {**asdict(self), "paths": list(self.paths), "path_problems": list(self.path_problems)}
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Checker:
        data = json.loads(raw)
        data["paths"] = tuple(data.get("paths") or ())
        data["path_problems"] = tuple(data.get("path_problems") or ())
        known = cls.__dataclass_fields__  # a newer checker's fields are not a dead checker
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class Health:
    """The decided state of a member, as the DNS nodes read it."""

    health: HealthWord
    rtt: float | None = None
    paths_down: tuple[str, ...] = ()
    since: float = 0.0
    votes: dict[str, str] = field(default_factory=dict)  # "checker|path" -> vote, for display

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Health:
        data = json.loads(raw)
        word = data.get("health")
        return cls(
            word if word in ("up", "down") else "unknown",
            data.get("rtt"),
            tuple(data.get("paths_down") or ()),
            float(data.get("since") or 0.0),
            dict(data.get("votes") or {}),
        )

    def same_verdict(self, other: Health) -> bool:
        return (self.health, self.paths_down) == (other.health, other.paths_down)


@dataclass(frozen=True, slots=True)
class Load:
    sessions: float | None = None
    cpu: float | None = None
    traffic: float | None = None
    at: float = 0.0
    # Sessions per local port ("80": 120), for pools that weigh session types (RFC 2391 §5.1).
    ports: dict[str, float] | None = None

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Load:
        data = json.loads(raw)
        ports = data.get("ports")
        return cls(
            data.get("sessions"),
            data.get("cpu"),
            data.get("traffic"),
            float(data.get("at", 0)),
            {str(k): float(v) for k, v in ports.items()} if isinstance(ports, dict) else None,
        )
