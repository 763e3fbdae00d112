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
ZONES = PREFIX + "zones"  # hash zone -> StoredZone JSON
TARGETS = PREFIX + "targets"  # hash zone -> JSON list of Target: what checkers probe
HEALTH = PREFIX + "health"  # hash member key -> Health JSON (the decided state)
RESULTS = PREFIX + "results:"  # + member key: hash "checker|path" -> Result JSON
CHECKERS = PREFIX + "checkers"  # hash checker id -> Checker JSON (heartbeat)
LOAD = PREFIX + "load"  # hash member address -> Load JSON (agents)
PATHS_DOWN = PREFIX + "paths_down"  # set "isp|site" ("isp|*": everywhere)
ANSWERS = PREFIX + "answers:"  # + bucket: hash member key -> answers handed out
EVENTS = PREFIX + "events"  # pub/sub channel: Event JSON after every change
AUDIT = PREFIX + "audit"  # list of AuditRecord JSON, newest first, capped
HISTORY = PREFIX + "history"  # list of health changes {at, member, health, was, ...}, newest first
HISTORY_KEEP = 10000
NODES = PREFIX + "nodes"  # hash node id -> Node JSON (DNS and API processes' heartbeat)

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

    def to_json(self) -> str:
        return dumps({**asdict(self), "paths": list(self.paths)})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Checker:
        data = json.loads(raw)
        data["paths"] = tuple(data.get("paths") or ())
        return cls(**data)


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

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Load:
        data = json.loads(raw)
        return cls(
            data.get("sessions"), data.get("cpu"), data.get("traffic"), float(data.get("at", 0))
        )
