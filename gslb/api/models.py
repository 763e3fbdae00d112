"""The shapes of the API's answers that are not zone documents, for the OpenAPI document.

Zone documents use the zone file schema itself (gslb.core.zonedoc / pooldoc); these models
describe the rest. Handlers build plain dicts; a test checks them against these schemas
(and schemathesis checks every response against the published document).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gslb.core.pooldoc import MemberDoc, MonitorDoc, Network, PoolDoc, SiteDoc, TopologyRule
from gslb.core.zonedoc import ZoneDoc


class FieldError(BaseModel):
    field: str = Field(description="path in the document, e.g. pools.www.members[2].address")
    message: str


class Error(BaseModel):
    status: int
    message: str = Field(description="what was wrong, with the field path when one is at fault")
    field: str | None
    errors: list[FieldError] = Field(default=[], description="every fault found, first first")


class ZoneSummary(BaseModel):
    zone: str
    serial: int
    source: str = Field(description="who wrote it last: file:PATH or api:TOKEN-NAME")
    file: str | None = Field(description="the zone file it was loaded from, if any")
    etag: str
    pools: int


class ZoneList(BaseModel):
    zones: list[ZoneSummary]


class AuditRecord(BaseModel):
    at: float = Field(description="unix time")
    who: str = Field(description="the token's name (api:NAME) or the zone file (file:PATH)")
    action: str
    zone: str
    resource: str
    before: Any = None
    after: Any = None


class AuditList(BaseModel):
    records: list[AuditRecord]


class PathView(BaseModel):
    vote: Literal["up", "down", "unknown"]
    ok: bool
    rtt: float | None
    error: str | None
    at: float
    since: float
    fresh: bool


class MemberHealth(BaseModel):
    health: Literal["up", "down", "unknown"]
    rtt: float | None
    paths_down: list[str]
    since: float
    checkers: dict[str, PathView] = Field(description='"checker|path" -> what it sees')


class CheckerView(BaseModel):
    region: str
    paths: list[str]
    seen: float
    alive: bool
    probes: int
    assigned: int
    path_problems: list[str] = Field(
        default_factory=list, description="paths that are not their own uplink (docs/health.md)"
    )


class LeavingView(BaseModel):
    at: float = Field(description="when its agent said so (Unix time)")
    reason: str = Field(description="drain (gslb agent drain) or stop (the agent's SIGTERM)")


class HealthView(BaseModel):
    members: dict[str, MemberHealth] = Field(description="zone/pool/address -> health")
    checkers: dict[str, CheckerView]
    leaving: dict[str, LeavingView] = Field(
        default_factory=dict,
        description="member address -> its agent said it is going away: out of every answer",
    )


class CheckerList(BaseModel):
    checkers: dict[str, CheckerView]


class LoadView(BaseModel):
    sessions: float | None
    cpu: float | None
    traffic: float | None
    at: float
    fresh: bool


class LoadList(BaseModel):
    members: dict[str, LoadView] = Field(description="member address -> its agent's report")


class NodeView(BaseModel):
    id: str
    region: str
    roles: list[str]
    dns: list[str]
    queries: int = Field(description="DNS messages received since the process started")
    qps: float = Field(description="queries per second over the last heartbeat period")
    version: int
    started: float
    seen: float
    alive: bool


class NodeList(BaseModel):
    nodes: dict[str, NodeView]


class HealthChange(BaseModel):
    at: float
    member: str = Field(description="zone/pool/address")
    health: Literal["up", "down", "unknown"]
    was: Literal["up", "down", "unknown"] | None
    paths_down: list[str]
    checker: str = Field(description="the checker that decided it")


class HistoryList(BaseModel):
    changes: list[HealthChange]


class AnswerCounts(BaseModel):
    bucket_seconds: int
    buckets: dict[str, dict[str, int]] = Field(
        description="bucket start (unix time) -> member key -> answers handed out"
    )


class Explanation(BaseModel):
    """What `gslb explain` prints, as JSON."""

    model_config = {"extra": "allow"}


class PoolList(BaseModel):
    pools: dict[str, PoolDoc]


class MemberList(BaseModel):
    members: list[MemberDoc]


class MonitorList(BaseModel):
    monitors: dict[str, MonitorDoc]


class SiteList(BaseModel):
    sites: dict[str, SiteDoc]


class IspList(BaseModel):
    isps: dict[str, list[Network]]


class TopologyDoc(BaseModel):
    model_config = {"extra": "forbid"}

    topology: list[TopologyRule]


class DnssecKey(BaseModel):
    key_tag: int
    algorithm: int
    flags: int
    created: float = Field(description="when the key was made (Unix time)")
    dnskey: str = Field(description="the DNSKEY record, in presentation form")


class DnssecView(BaseModel):
    """A signed zone's keys, and the DS records its parent should hold."""

    zone: str
    algorithm: str
    rollover: str = Field(description="none, or in progress (two keys sign)")
    key_store: Literal["state", "files"] = Field(
        description="where the keys are kept: the state store (made on first use, rolled by "
        "the API), or key files on each node (dnssec: keys:)"
    )
    keys: list[DnssecKey]
    ds: list[str] = Field(description="DS records (SHA-256) for the parent zone")


class PoolPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of a pool: the fields given replace, null removes."""

    model_config = {"extra": "allow"}


class MemberPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of a member."""

    model_config = {"extra": "allow"}


SCHEMAS: tuple[type[BaseModel], ...] = (
    ZoneDoc,
    PoolDoc,
    MemberDoc,
    MonitorDoc,
    SiteDoc,
    TopologyDoc,
    DnssecView,
    Error,
    ZoneList,
    AuditList,
    HealthView,
    CheckerList,
    LoadList,
    Explanation,
    NodeList,
    HistoryList,
    AnswerCounts,
    PoolList,
    MemberList,
    MonitorList,
    SiteList,
    IspList,
    PoolPatch,
    MemberPatch,
)
