"""One configuration model for every role, validated once (docs/operations.md, "Configuration").

A role's settings come, lowest first, from their defaults here, an optional file (`--config
FILE`, YAML: flag names as keys), the environment (`GSLB_FLAG_NAME`) and the command line;
`gslb.cli` gathers them and this model checks them all at once, naming the flag at fault.
The runtime's own configuration objects (`NodeConfig`'s TCP, HTTP and RRL limits, the
checker's `CheckerConfig`, the agent's `AgentConfig`) are made from it, and a node's DNS
workers receive it serialized rather than a command line rebuilt flag by flag.

The defaults live here (or in the runtime dataclass a field names), and the flags' help
reads them from here: each is written once.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from gslb.core.masterfile import DEFAULT_MAX_RECORDS, Limits
from gslb.core.snapshot import DEFAULT_MAX_UDP, Settings
from gslb.shell.httpguard import HttpLimits
from gslb.shell.rrl import RrlConfig
from gslb.shell.transport import TcpLimits, format_endpoint, parse_endpoint
from healthchecks.agent import AgentConfig
from healthchecks.checker import CheckerConfig


def _endpoint(value: Any) -> Any:
    return parse_endpoint(value) if isinstance(value, str) else value


# HOST:PORT, kept as (host, port), written back as `HOST:PORT` (`[::1]:53`).
Endpoint = Annotated[
    tuple[str, int],
    BeforeValidator(_endpoint),
    PlainSerializer(lambda e: format_endpoint(*e), return_type=str),
]
Seconds = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
TCP, HTTP, RRL = TcpLimits(), HttpLimits(), RrlConfig()
CHECKER, AGENT = CheckerConfig(id=""), AgentConfig(member="")


def cores() -> int:
    return len(os.sched_getaffinity(0))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Logging(_Model):
    log_format: LogFormat = "console"
    log_level: LogLevel = "info"


class DnsSettings(_Model):
    """How a node answers DNS."""

    dns: list[Endpoint] = Field(default_factory=lambda: [("127.0.0.1", 5353)])
    nsid: str = ""
    workers: Count = Field(default_factory=cores)
    max_udp_size: int = Field(DEFAULT_MAX_UDP, ge=512, le=4096)
    rrl_rate: float = Field(RRL.rate, ge=0)
    rrl_window: Seconds = RRL.window
    rrl_slip: int = Field(RRL.slip, ge=0)
    rrl_exempt: list[str] | None = None
    query_log_rate: float = Field(0.0, ge=0, le=1)
    tcp_idle_timeout: Seconds = TCP.idle_timeout
    tcp_max_queries: Count = TCP.max_queries
    tcp_max_connections: Count = TCP.max_connections
    tcp_max_per_client: Count = TCP.max_per_client
    tcp_write_timeout: Seconds = TCP.write_timeout
    geoip: Path | None = None
    geoip_asn: Path | None = None

    @field_validator("rrl_exempt")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for network in value or ():
            try:
                ipaddress.ip_network(network)
            except ValueError as e:
                raise ValueError(f"{network}: {e}") from None
        return value

    def answering(self) -> Settings:
        return Settings(max_udp_size=self.max_udp_size, nsid=self.nsid.encode())

    def tcp_limits(self) -> TcpLimits:
        return TcpLimits(
            max_connections=self.tcp_max_connections,
            idle_timeout=self.tcp_idle_timeout,
            max_queries=self.tcp_max_queries,
            max_per_client=self.tcp_max_per_client,
            write_timeout=self.tcp_write_timeout,
        )

    def rrl(self) -> RrlConfig:
        """The limiter of one DNS process. The workers of a node share its ports and each
        limits on its own; the kernel spreads a client's flows (its source ports) evenly over
        them, so each allows its share of the rate and the node as a whole allows the rate
        (a client that keeps one source port reaches one worker, and gets less)."""
        exempt = tuple(self.rrl_exempt) if self.rrl_exempt else RRL.exempt
        rate = self.rrl_rate / self.workers
        return RrlConfig(rate, self.rrl_window, self.rrl_slip, exempt)


class ApiSettings(_Model):
    """How a node serves HTTP (the API, the dashboard, /healthz, /metrics)."""

    node_id: str | None = None
    region: str = "default"
    api_tokens: Path | None = None
    api_read_open: bool = False
    max_zone_records: Count = DEFAULT_MAX_RECORDS
    http_host: list[str] | None = None
    http_max_connections: Count = HTTP.max_connections
    http_max_per_client: Count = HTTP.max_per_client
    http_header_timeout: Seconds = HTTP.header_timeout
    http_keepalive_timeout: Seconds = HTTP.keepalive_timeout
    api_max_body: Count = 1 << 20

    def http_limits(self) -> HttpLimits:
        return HttpLimits(
            max_connections=self.http_max_connections,
            max_per_client=self.http_max_per_client,
            header_timeout=self.http_header_timeout,
            keepalive_timeout=self.http_keepalive_timeout,
        )

    def zone_limits(self) -> Limits:
        return Limits(records=self.max_zone_records)


Quorum = Annotated[str, Field(pattern=r"^(majority|all|any|[1-9][0-9]*)$")]


class CheckerSettings(Logging):
    """A health checker (`gslb checker`, or the one `gslb serve` runs)."""

    redis: str | None = None
    id: str = Field(default_factory=socket.gethostname)
    region: str = "default"
    path: list[tuple[str, str]] | None = None  # (name, source address)
    replicas: Count = CHECKER.replicas
    quorum: Quorum = CHECKER.quorum
    heartbeat: Seconds = CHECKER.heartbeat
    allow_targets: list[str] | None = None
    strict_paths: bool = False

    def checker_config(self) -> CheckerConfig:
        return CheckerConfig(
            id=self.id,
            region=self.region,
            paths=dict(self.path) if self.path else None,
            replicas=self.replicas,
            quorum=self.quorum,
            heartbeat=self.heartbeat,
            allow=tuple(self.allow_targets or ()),
            strict_paths=self.strict_paths,
        )


class AgentSettings(Logging):
    redis: str
    member: str
    action: Literal["run", "drain", "undrain"] = "run"
    port: list[int] = []
    interval: Seconds = AGENT.interval
    drain_on_stop: bool = False

    @field_validator("member")
    @classmethod
    def _address(cls, value: str) -> str:
        # The one text form the pools' keys use (an IPv6 address has many).
        return str(ipaddress.ip_address(value))

    def agent_config(self) -> AgentConfig:
        return AgentConfig(
            self.member, tuple(self.port), self.interval, drain_on_stop=self.drain_on_stop
        )


class NodeSettings(DnsSettings, ApiSettings, Logging):
    """`gslb serve`, `gslb dns` and `gslb api`: one model, each role using its part."""

    role: Literal["serve", "dns", "api"]
    zones: Path | None = None
    http: Endpoint | None = None
    redis: str | None = None
    data_dir: Path | None = None
    dnssec_key_dir: Path | None = None  # default: DATA-DIR/dnssec-keys
    # serve runs a checker beside the DNS, unless told not to
    checker: CheckerSettings | None = None
    # a DNS worker of a node (set by the node, never by people)
    reuse_port: bool = False
    parent_pid: int | None = None


def redacted(settings: BaseModel) -> dict[str, Any]:
    """The settings as `gslb config show` prints them: a Redis URL's password hidden."""
    out = settings.model_dump(mode="json")

    def hide(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: hide_url(v) if k == "redis" else hide(v) for k, v in value.items()}
        return value

    return hide(out)  # type: ignore[no-any-return]


def hide_url(url: Any) -> Any:
    if not isinstance(url, str) or "@" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{host}"))
