"""The `gslb` command (DESIGN.md §8)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from pydantic import BaseModel

from gslb import __version__, zonefiles, zonesync
from gslb.api import auth
from gslb.common import logs
from gslb.core.masterfile import Limits
from gslb.settings import (
    AgentSettings,
    ApiSettings,
    CheckerSettings,
    DnsSettings,
    Logging,
    NodeSettings,
    redacted,
)
from gslb.shell import loop
from gslb.shell.geoip import GeoIpError, GeoIpLocator
from gslb.shell.rrl import RrlConfig
from gslb.shell.transport import format_endpoint, parse_endpoint
from gslb.zonesync import TOKEN_ENV

M = TypeVar("M", bound=BaseModel)
# A node's DNS workers find its settings here, serialized (never on a command line).
WORKER_SETTINGS = "GSLB_WORKER_SETTINGS"


def _endpoint(default_port: int) -> type:
    def parse(text: str) -> tuple[str, int]:
        try:
            return parse_endpoint(text, default_port)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse  # type: ignore[return-value]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gslb",
        description="GSLB authoritative DNS server",
        epilog="Every flag can also come from the environment: --redis from GSLB_REDIS, "
        "--api-read-open from GSLB_API_READ_OPEN=1, repeatable flags as comma-separated "
        "lists (GSLB_DNS=127.0.0.1:53,[::1]:53). The command line wins.",
    )
    parser.add_argument("--version", action="version", version=f"gslb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="every role in one process tree, for one machine")
    serve.add_argument("--zones", type=Path, default=Path("zones"), help="zone directory")
    serve.add_argument(
        "--http",
        type=_endpoint(8053),
        default=("127.0.0.1", 8053),
        metavar="HOST:PORT",
        help="HTTP listen address (default 127.0.0.1:8053)",
    )
    serve.add_argument("--redis", metavar="URL", help="external Redis; default: embedded")
    serve.add_argument("--data-dir", type=Path, default=Path("data"), help="embedded Redis data")
    serve.add_argument(
        "--checker-id",
        default=socket.gethostname(),
        metavar="NAME",
        help="id of the health checker this node runs (default: the host name)",
    )
    serve.add_argument(
        "--no-checker", action="store_true", help="run no health checker here (they run elsewhere)"
    )
    _path_flag(serve)
    _api_flags(serve)
    _dns_flags(serve)
    _dnssec_flag(serve)

    dns_role = sub.add_parser("dns", help="the DNS role alone, answering from a shared Redis")
    dns_role.add_argument(
        "--redis",
        metavar="URL",
        required=True,
        help="redis://, rediss:// (TLS), unix:// or redis+sentinel://HOST:PORT,.../SERVICE",
    )
    dns_role.add_argument(
        "--http",
        type=_endpoint(8053),
        metavar="HOST:PORT",
        help="serve /healthz, /metrics and the API here (default: no HTTP)",
    )
    dns_role.add_argument(
        "--data-dir",
        type=Path,
        help="keep the last snapshot read from Redis here, to answer from after a restart "
        "while Redis is down (default: none)",
    )
    _api_flags(dns_role)
    _dns_flags(dns_role)
    _dnssec_flag(dns_role)
    # How `serve --workers N` starts its workers (not for people): the node's settings come
    # in $GSLB_WORKER_SETTINGS, what the worker counts goes back on a pipe.
    dns_role.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    dns_role.add_argument("--stats-fd", type=int, help=argparse.SUPPRESS)

    api_role = sub.add_parser("api", help="the REST API (and dashboard) alone, on a shared Redis")
    api_role.add_argument("--redis", metavar="URL", required=True, help="the shared Redis")
    api_role.add_argument(
        "--http",
        type=_endpoint(8053),
        default=("127.0.0.1", 8053),
        metavar="HOST:PORT",
        help="HTTP listen address (default 127.0.0.1:8053)",
    )
    api_role.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="where the local API token is kept"
    )
    _api_flags(api_role)
    _dnssec_flag(api_role)
    _geoip_flags(api_role)
    _log_flags(api_role)
    _config_flag(api_role)

    zones_cmd = sub.add_parser("zones", help="apply zone files to a running API, or export them")
    zones_sub = zones_cmd.add_subparsers(dest="zones_command", required=True)
    apply_cmd = zones_sub.add_parser("apply", help="PUT every zone file of DIR through the API")
    apply_cmd.add_argument("directory", type=Path)
    apply_cmd.add_argument(
        "--prune", action="store_true", help="also delete the API's zones that DIR does not have"
    )
    export_cmd = zones_sub.add_parser("export", help="write the API's zones as zone files")
    export_cmd.add_argument("--out", type=Path, help="directory to write NAME.yaml into")
    export_cmd.add_argument("--zone", action="append", help="only this zone (repeatable)")
    drain_cmd = sub.add_parser(
        "drain", help="drain a member through the API, now or planned (--at / --in)"
    )
    drain_cmd.add_argument("zone")
    drain_cmd.add_argument("pool")
    drain_cmd.add_argument("address")
    when = drain_cmd.add_mutually_exclusive_group()
    when.add_argument("--at", help="when, ISO 8601 with a zone (2026-12-02T15:00:00Z)")
    when.add_argument("--in", dest="delay", type=float, metavar="SECONDS", help="in how long")
    webhook = sub.add_parser(
        "external-dns",
        help="external-dns's webhook provider (a sidecar): Kubernetes publishes into pools",
    )
    webhook.add_argument(
        "--zone",
        action="append",
        required=True,
        help="a gslb zone external-dns may publish into (repeatable)",
    )
    webhook.add_argument(
        "--listen",
        default="127.0.0.1:8888",
        help="where external-dns reaches the webhook (%(default)s: its default)",
    )
    webhook.add_argument(
        "--health", metavar="HOST:PORT", help="also serve /healthz here (for the kubelet)"
    )
    webhook.add_argument(
        "--max-body",
        type=int,
        default=8 * 1024 * 1024,
        help="largest change set, in bytes (default 8 MiB)",
    )
    _log_flags(webhook)
    _config_flag(webhook)

    dnssec_cmd = sub.add_parser("dnssec", help="a signed zone's keys (docs/dnssec.md)")
    dnssec_sub = dnssec_cmd.add_subparsers(dest="dnssec_command", required=True)
    ds_cmd = dnssec_sub.add_parser("ds", help="print the DS records to give the parent zone")
    ds_cmd.add_argument("zone")
    ds_cmd.add_argument("--dnskey", action="store_true", help="print the DNSKEY records too")
    roll_cmd = dnssec_sub.add_parser(
        "roll",
        help="one step of a key rollover: the first starts it (a second key signs too; give "
        "the parent both DS), the next completes it (the older key goes)",
    )
    roll_cmd.add_argument("zone")
    keygen_cmd = dnssec_sub.add_parser(
        "keygen",
        help="make a key file for a zone that keeps its keys in files (dnssec: {keys: NAME}), "
        "and print its DS",
    )
    keygen_cmd.add_argument("zone")
    keygen_cmd.add_argument("file", type=Path, help="the new key file (NAME.pem; never replaced)")
    keygen_cmd.add_argument(
        "--algorithm", choices=("ECDSAP256SHA256", "ED25519"), default="ECDSAP256SHA256"
    )

    # Every tool that drives a running API: its URL and a token.
    for cmd in (apply_cmd, export_cmd, drain_cmd, webhook, ds_cmd, roll_cmd):
        cmd.add_argument(
            "--api", default="http://127.0.0.1:8053", help="the API's base URL (%(default)s)"
        )
        cmd.add_argument(
            "--token-file",
            type=Path,
            help=f"file holding the bearer token (default: ${TOKEN_ENV}, else data/api-token)",
        )

    checker = sub.add_parser("checker", help="probe the members and agree on their health")
    checker.add_argument("--redis", metavar="URL", required=True, help="the shared Redis")
    checker.add_argument(
        "--id", default=_default(CheckerSettings, "id"), help="unique checker id (the host name)"
    )
    checker.add_argument(
        "--region",
        default=_default(CheckerSettings, "region"),
        help="where this checker probes from",
    )
    _path_flag(checker)
    checker.add_argument(
        "--replicas",
        type=int,
        default=_default(CheckerSettings, "replicas"),
        help="checkers that probe each member (default %(default)s)",
    )
    checker.add_argument(
        "--quorum",
        default=_default(CheckerSettings, "quorum"),
        help="down votes needed: majority (default), all, any, or a number",
    )
    checker.add_argument(
        "--heartbeat",
        type=float,
        default=_default(CheckerSettings, "heartbeat"),
        help="seconds (default %(default)s)",
    )
    checker.add_argument(
        "--strict-paths",
        action="store_true",
        help="refuse to probe when two --paths leave by the same route or a source has no "
        "policy rule (default: warn, and show it in the checkers' view)",
    )
    _log_flags(checker)
    _config_flag(checker)

    demo = sub.add_parser(
        "demo-backends", help="stand-in HTTP servers for the loopback members of the zones"
    )
    demo.add_argument("--zones", type=Path, default=Path("zones"), help="zone directory")
    demo.add_argument(
        "--while-pid",
        type=int,
        metavar="PID",
        help="stop when this process exits (make run: the server)",
    )

    agent = sub.add_parser(
        "agent",
        help="report this member's load (on the member), or say it is leaving / back",
    )
    agent.add_argument(
        "action",
        nargs="?",
        choices=("run", "drain", "undrain"),
        default="run",
        help="run: report load until stopped (default); drain: every DNS node stops handing "
        "the member out now; undrain: it is back (slow start ramps it in)",
    )
    agent.add_argument("--redis", metavar="URL", required=True, help="the shared Redis")
    agent.add_argument("--member", required=True, help="the member address this host serves")
    agent.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        help="count sessions on this local port only (repeatable; default: every port)",
    )
    agent.add_argument(
        "--interval",
        type=float,
        default=_default(AgentSettings, "interval"),
        help="seconds between reports (default %(default)s)",
    )
    agent.add_argument(
        "--drain-on-stop",
        action="store_true",
        help="on SIGTERM, announce the member is leaving before exiting (systemd's stop, a "
        "shutdown): the DNS nodes drop it at once",
    )
    _log_flags(agent)
    _config_flag(agent)

    config = sub.add_parser("config", help="the effective settings of a role")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser(
        "show",
        help="print a role's settings as it would run with them (flags, $GSLB_*, --config "
        "file and defaults), secrets hidden: gslb config show serve --workers 2",
    )
    show.add_argument("role", choices=("serve", "dns", "api", "checker", "agent"))
    show.add_argument("flags", nargs=argparse.REMAINDER, help="the role's flags")

    check = sub.add_parser("check-zones", help="validate a zone directory")
    check.add_argument("directory", type=Path)
    _limit_flags(check)

    explain = sub.add_parser("explain", help="show the answer a client would get, and why")
    explain.add_argument("name", help="the name to ask for, e.g. www.gslb.example.com")
    explain.add_argument("--client", required=True, help="the client's (or resolver's) address")
    explain.add_argument("--type", default="A", help="query type (default A)")
    explain.add_argument(
        "--subnet",
        type=int,
        metavar="PREFIX",
        help="send the client as an EDNS Client Subnet of this length (default: as a resolver)",
    )
    explain.add_argument("--zones", type=Path, default=Path("zones"), help="zone directory")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.add_argument(
        "--server",
        metavar="URL",
        help="ask a running server's API (http://127.0.0.1:8053): its live health, load and "
        "GeoIP, instead of the zone files with every member up",
    )
    explain.add_argument(
        "--token-file",
        type=Path,
        help=f"with --server: file holding a token (default: ${TOKEN_ENV}, else data/api-token)",
    )
    _geoip_flags(explain)
    return parser


ENV_PREFIX = "GSLB_"


def _default(model: type[BaseModel], name: str) -> Any:
    """A setting's default, as gslb.settings defines it (the one place it is written)."""
    return model.model_fields[name].get_default(call_default_factory=True)


def from_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Every flag also from the environment: `--redis` from GSLB_REDIS, `--api-read-open`
    from GSLB_API_READ_OPEN=1, a repeatable flag (`--dns`) from a comma-separated list. A flag
    on the command line wins; an environment variable stands in for a required flag. For
    containers and systemd units (deploy/), where the environment is the natural place."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                from_environment(sub, environ)
            continue
        flag = _long(action)
        if flag is None:
            continue
        name = ENV_PREFIX + flag[2:].replace("-", "_").upper()
        if name in environ:
            _set_default(parser, action, environ[name], f"${name}")
            action.help = (action.help or "") + f" [${name}]"


def from_file(parser: argparse.ArgumentParser, argv: list[str], environ: Mapping[str, str]) -> None:
    """The settings of a file (`--config FILE`, else $GSLB_CONFIG): a YAML mapping of flag
    names (`max-udp-size: 1400`, lists for repeatable flags) to values, below the
    environment and the command line. A key that is no flag of the role is refused."""
    if argv[:2] == ["config", "show"]:
        argv = argv[2:]  # the settings of the role shown
    role = argv[0] if argv and not argv[0].startswith("-") else None
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = subparsers[0].choices.get(role) if subparsers and role else None
    if sub is None or not any(_long(a) == "--config" for a in sub._actions):
        return
    path = environ.get(ENV_PREFIX + "CONFIG")
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
    if not path:
        return
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        sub.error(f"--config {path}: {e}")
    if not isinstance(data, dict):
        sub.error(f"--config {path}: a mapping of flag names to values")
    actions = {_long(a): a for a in sub._actions if _long(a) not in (None, "--config")}
    for key, value in data.items():
        flag = "--" + str(key).replace("_", "-")
        if flag not in actions:
            sub.error(f"--config {path}: {key}: not a setting of gslb {role}")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "1" if value else "0"
        _set_default(sub, actions[flag], str(value), f"{path}: {key}")


def _long(action: argparse.Action) -> str | None:
    """The flag's long name, if it is one people set (not --help, --version, hidden ones)."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    if not longs or action.dest in ("help", "version") or action.help == argparse.SUPPRESS:
        return None
    return longs[0]


def _set_default(
    parser: argparse.ArgumentParser, action: argparse.Action, text: str, source: str
) -> None:
    """`text` as the flag's value when the command line does not give one."""
    convert = action.type or str
    try:
        if isinstance(action, argparse._StoreTrueAction):
            action.default = text.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(action, argparse._AppendAction):
            parts = [part.strip() for part in text.split(",") if part.strip()]
            action.default = [convert(part) for part in parts]  # type: ignore[operator]
        else:
            action.default = convert(text)  # type: ignore[operator]
    except (ValueError, argparse.ArgumentTypeError) as e:
        parser.error(f"{source}: {e}")
    if action.required:
        action.required = False  # the value is there: the flag may be left out


def _dns_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dns",
        type=_endpoint(53),
        action="append",
        metavar="HOST:PORT",
        help="DNS listen address, UDP and TCP (repeatable; default 127.0.0.1:5353)",
    )
    _geoip_flags(parser)
    parser.add_argument(
        "--nsid",
        default=_default(DnsSettings, "nsid"),
        help="NSID (RFC 5001) this node answers with",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_default(DnsSettings, "workers"),
        metavar="N",
        help="DNS processes sharing the ports (SO_REUSEPORT), each with its own snapshot "
        "(default: one per core)",
    )
    parser.add_argument(
        "--max-udp-size",
        type=int,
        default=_default(DnsSettings, "max_udp_size"),
        help=f"largest UDP reply, 512..4096 (default {_default(DnsSettings, 'max_udp_size')})",
    )
    parser.add_argument(
        "--rrl-rate",
        type=float,
        default=_default(DnsSettings, "rrl_rate"),
        metavar="PER_SECOND",
        help="response rate limit: identical UDP responses per second per client /24 (/56); "
        f"0 turns it off (default {_default(DnsSettings, 'rrl_rate'):g})",
    )
    parser.add_argument(
        "--rrl-window",
        type=float,
        default=_default(DnsSettings, "rrl_window"),
        help="RRL burst, in seconds",
    )
    parser.add_argument(
        "--rrl-slip",
        type=int,
        default=_default(DnsSettings, "rrl_slip"),
        help="every Nth limited response goes out truncated, 0: none (default 2)",
    )
    parser.add_argument(
        "--rrl-exempt",
        action="append",
        metavar="CIDR",
        help="networks never rate limited (repeatable; default loopback)",
    )
    parser.add_argument(
        "--query-log-rate",
        type=float,
        default=_default(DnsSettings, "query_log_rate"),
        metavar="FRACTION",
        help="log this fraction of queries, e.g. 0.001 (default 0: none)",
    )
    parser.add_argument(
        "--tcp-idle-timeout",
        type=float,
        default=_default(DnsSettings, "tcp_idle_timeout"),
        metavar="SECONDS",
        help="close a TCP connection idle this long "
        f"(default {_default(DnsSettings, 'tcp_idle_timeout'):g})",
    )
    parser.add_argument(
        "--tcp-max-queries",
        type=int,
        default=_default(DnsSettings, "tcp_max_queries"),
        metavar="N",
        help="queries one TCP connection may ask before it is closed "
        f"(default {_default(DnsSettings, 'tcp_max_queries')})",
    )
    parser.add_argument(
        "--tcp-max-connections",
        type=int,
        default=_default(DnsSettings, "tcp_max_connections"),
        metavar="N",
        help="concurrent TCP connections accepted "
        f"(default {_default(DnsSettings, 'tcp_max_connections')})",
    )
    parser.add_argument(
        "--tcp-max-per-client",
        type=int,
        default=_default(DnsSettings, "tcp_max_per_client"),
        metavar="N",
        help="concurrent TCP connections from one client, IPv4 address or IPv6 /64 "
        f"(default {_default(DnsSettings, 'tcp_max_per_client')})",
    )
    parser.add_argument(
        "--tcp-write-timeout",
        type=float,
        default=_default(DnsSettings, "tcp_write_timeout"),
        metavar="SECONDS",
        help="abort a TCP connection whose client leaves a reply unread this long "
        f"(default {_default(DnsSettings, 'tcp_write_timeout'):g})",
    )
    _log_flags(parser)
    _config_flag(parser)


def _api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node-id", help="this node's name on the dashboard (default: HOST/first listener)"
    )
    parser.add_argument(
        "--region",
        default=_default(ApiSettings, "region"),
        help="where this node runs, for the dashboard",
    )
    parser.add_argument(
        "--api-tokens",
        type=Path,
        metavar="FILE",
        help="API bearer tokens: YAML list of {name, role: read|write, token|sha256} "
        "(also $GSLB_API_TOKENS=name:role:token,...; default: a write token in DATA_DIR/api-token)",
    )
    parser.add_argument(
        "--api-read-open", action="store_true", help="let anyone read the API without a token"
    )
    _limit_flags(parser)
    parser.add_argument(
        "--http-host",
        action="append",
        metavar="NAME",
        help="a host name the HTTP listener answers to, besides IP addresses and localhost "
        "(repeatable; default: this host's name)",
    )
    parser.add_argument(
        "--http-max-connections",
        type=int,
        default=_default(ApiSettings, "http_max_connections"),
        metavar="N",
        help="concurrent HTTP connections "
        f"(default {_default(ApiSettings, 'http_max_connections')})",
    )
    parser.add_argument(
        "--http-max-per-client",
        type=int,
        default=_default(ApiSettings, "http_max_per_client"),
        metavar="N",
        help="concurrent HTTP connections from one client, IPv4 address or IPv6 /64 "
        f"(default {_default(ApiSettings, 'http_max_per_client')})",
    )
    parser.add_argument(
        "--http-header-timeout",
        type=float,
        default=_default(ApiSettings, "http_header_timeout"),
        metavar="SECONDS",
        help="close a connection whose request headers take longer "
        f"(default {_default(ApiSettings, 'http_header_timeout'):g})",
    )
    parser.add_argument(
        "--http-keepalive-timeout",
        type=float,
        default=_default(ApiSettings, "http_keepalive_timeout"),
        metavar="SECONDS",
        help="close an idle keep-alive connection "
        f"(default {_default(ApiSettings, 'http_keepalive_timeout'):g})",
    )
    parser.add_argument(
        "--api-max-body",
        type=int,
        default=_default(ApiSettings, "api_max_body"),
        metavar="BYTES",
        help="largest request body the API accepts (default 1 MiB)",
    )


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-zone-records",
        type=int,
        default=_default(ApiSettings, "max_zone_records"),
        metavar="N",
        help="records one zone may hold; more is refused "
        f"(default {_default(ApiSettings, 'max_zone_records')})",
    )


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(records=max(1, args.max_zone_records))


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a YAML file of settings, flag names as keys (`max-udp-size: 1400`); the "
        "environment and the command line win (also $GSLB_CONFIG)",
    )


def _log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format", choices=["console", "json"], default=_default(Logging, "log_format")
    )
    parser.add_argument(
        "--log-level",
        default=_default(Logging, "log_level"),
        choices=["debug", "info", "warning", "error"],
    )


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _path(text: str) -> tuple[str, str]:
    name, sep, source = text.partition("=")
    if not sep or not name or not source:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=SOURCE_ADDRESS")
    try:
        ipaddress.ip_address(source)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {source} is not an IP address") from None
    return name, source


def _path_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-targets",
        action="append",
        type=_network,
        metavar="CIDR",
        help="probe only members inside these networks (repeatable; default: any)",
    )
    parser.add_argument(
        "--path",
        type=_path,
        action="append",
        metavar="NAME=SOURCE_ADDRESS",
        help="an uplink to probe over, named after its ISP (repeatable; default: the system's)",
    )


def _dnssec_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dnssec-key-dir",
        type=Path,
        metavar="DIR",
        help="where zones with dnssec: {keys: NAME} find their key files, DIR/NAME/*.pem "
        "(default: DATA-DIR/dnssec-keys)",
    )


def _geoip_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--geoip", type=Path, metavar="CITY.mmdb", help="GeoIP2 City database")
    parser.add_argument("--geoip-asn", type=Path, metavar="ASN.mmdb", help="GeoIP2 ASN database")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    # Lowest first: the settings' defaults, a --config file, the environment, the flags.
    from_file(parser, argv, os.environ)
    from_environment(parser, os.environ)
    args = parser.parse_args(argv)
    if args.command == "dnssec" and args.dnssec_command == "keygen":
        return dnssec_keygen(args)
    if args.command == "dnssec":
        return dnssec_ds(args)
    if args.command == "config":
        return show_config(parser, [args.role, *args.flags])
    if args.command == "check-zones":
        return check_zones(args.directory, _limits(args))
    if args.command in ("serve", "dns", "api"):
        return serve(args)
    if args.command == "zones":
        return zonesync.main(args)
    if args.command == "drain":
        return zonesync.drain(args)
    if args.command == "explain":
        return explain(args)
    if args.command == "checker":
        return checker(args)
    if args.command == "agent":
        from healthchecks.agent import run_agent, run_announce

        try:
            agent = agent_settings(args)
        except SettingsError as e:
            print(f"gslb agent: {e}", file=sys.stderr)
            return 2
        logs.configure(agent.log_format, agent.log_level)
        if agent.action != "run":
            loop.run(run_announce(agent.redis, agent.member, agent.action == "drain"))
            return 0
        loop.run(run_agent(agent.redis, agent.agent_config()))
        return 0
    if args.command == "external-dns":
        from gslb.shell.webhook import WebhookConfig
        from gslb.shell.webhook import run as run_webhook

        logs.configure(args.log_format, args.log_level)
        webhook = WebhookConfig(
            api=args.api,
            token=zonesync.token_of(args),
            zones=tuple(args.zone),
            listen=parse_endpoint(args.listen, 8888),
            health=parse_endpoint(args.health, 8080) if args.health else None,
            max_body=args.max_body,
        )
        loop.run(run_webhook(webhook))
        return 0
    if args.command == "demo-backends":
        from gslb import demo

        logs.configure("console", "info")
        asyncio.run(demo.serve(args.zones, args.while_pid))
        return 0
    return 2


def checker_settings(args: argparse.Namespace) -> CheckerSettings:
    fields = CheckerSettings.model_fields
    return _validated(
        CheckerSettings, {k: v for k, v in vars(args).items() if k in fields and v is not None}
    )


def agent_settings(args: argparse.Namespace) -> AgentSettings:
    fields = AgentSettings.model_fields
    return _validated(
        AgentSettings, {k: v for k, v in vars(args).items() if k in fields and v is not None}
    )


def dnssec_keygen(args: argparse.Namespace) -> int:
    """`gslb dnssec keygen ZONE FILE`: a new key, in a file only its owner may read (copy it
    to every node's key directory), and the DS the parent needs for it."""
    import time

    from gslb.core import names
    from gslb.core.dnssec import Signer, SigningKey
    from gslb.state.keyfiles import write_key_file

    if args.file.suffix != ".pem":
        print(f"gslb dnssec keygen: {args.file}: a key file's name ends in .pem", file=sys.stderr)
        return 1
    key = SigningKey.generate(args.algorithm)
    try:
        write_key_file(args.file, key)
    except OSError as e:
        print(f"gslb dnssec keygen: {args.file}: {e.strerror}", file=sys.stderr)
        return 1
    signer = Signer(names.from_text(args.zone.rstrip(".") + "."), (key,), int(time.time()))
    for line in signer.ds():
        print(line)
    return 0


def dnssec_ds(args: argparse.Namespace) -> int:
    """`gslb dnssec ds ZONE`: the DS records for the parent, from the running API."""
    from gslb.apiclient import ApiClient, ApiFailure, path

    client = ApiClient(args.api, zonesync.token_of(args), timeout=10)
    zone = args.zone.rstrip(".")
    try:
        if args.dnssec_command == "roll":
            view = client.call("POST", path("zones", zone, "dnssec", "roll")).json()
        else:
            view = client.call("GET", path("zones", zone, "dnssec")).json()
    except ApiFailure as e:
        print(f"gslb dnssec {args.dnssec_command}: {e}", file=sys.stderr)
        return 1
    if args.dnssec_command == "roll":
        if view["rollover"] == "none":
            print(f"{zone}: rollover completed; the parent should hold only this DS:")
        else:
            print(f"{zone}: rollover started, both keys sign; give the parent both DS, then")
            print(f"run `gslb dnssec roll {zone}` again once its old DS has expired everywhere:")
        for line in view["ds"]:
            print(line)
        return 0
    for line in view["ds"]:
        print(line)
    if args.dnskey:
        for key in view["keys"]:
            print(key["dnskey"])
    return 0


def show_config(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """`gslb config show ROLE [FLAGS]`: the settings ROLE would run with, validated as it
    would validate them, as JSON (a Redis URL's password hidden)."""
    args = parser.parse_args(argv)
    try:
        if args.command in ("serve", "dns", "api"):
            settings: BaseModel = node_settings(args)
        elif args.command == "checker":
            settings = checker_settings(args)
        else:
            settings = agent_settings(args)
    except SettingsError as e:
        print(f"gslb {args.command}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(redacted(settings), indent=2))
    return 0


def checker(args: argparse.Namespace) -> int:
    from healthchecks.run import run_checker

    try:
        settings = checker_settings(args)
    except SettingsError as e:
        print(f"gslb checker: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    config = settings.checker_config()
    from healthchecks.checker import PathsRefused

    try:
        loop.run(run_checker(settings.redis or "", config))
    except PathsRefused as e:
        for problem in e.problems:
            print(f"gslb checker: {problem}", file=sys.stderr)
        print(
            "gslb checker: --strict-paths: refusing to probe over paths that are not each "
            "their own uplink (docs/health.md, Paths)",
            file=sys.stderr,
        )
        return 3
    return 0


def _locator(args: argparse.Namespace) -> GeoIpLocator | None:
    return _open_locator(args.geoip, args.geoip_asn)


def _open_locator(city: Path | None, asn: Path | None) -> GeoIpLocator | None:
    if city is None:
        if asn is not None:
            raise GeoIpError("--geoip-asn needs --geoip (the City database) as well")
        return None
    return GeoIpLocator(city, asn)


def explain(args: argparse.Namespace) -> int:
    from gslb.core.explain import explain as run_explain
    from gslb.core.snapshot import Snapshot

    if args.server:
        return explain_live(args)
    try:
        locator = _locator(args)
        loaded = zonefiles.load_directory(args.zones)
        snapshot = Snapshot(1, zonefiles.zone_set(loaded), locator=locator)
        result = run_explain(snapshot, args.name, args.type, args.client, args.subnet)
    except zonefiles.ZoneLoadError as e:
        print(e, file=sys.stderr)
        return 1
    except (GeoIpError, ValueError) as e:
        print(f"gslb explain: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_explanation(result))
    return 0


def explain_live(args: argparse.Namespace) -> int:
    """`gslb explain --server URL`: the running server's own explanation, from its live
    snapshot (health, load, drains, its GeoIP), through the API."""
    from gslb.apiclient import ApiClient, ApiFailure, path

    query = {"name": args.name, "client": args.client, "type": args.type}
    if args.subnet is not None:
        query["subnet"] = str(args.subnet)
    client = ApiClient(args.server, zonesync.token_of(args), timeout=10)
    try:
        result = client.call("GET", path("explain", query=query)).json()
    except ApiFailure as e:
        print(f"gslb explain: could not ask {args.server}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"(live, from {args.server})")
        print(render_explanation(result))
    return 0


def render_explanation(result: dict[str, Any]) -> str:
    lines = [f"{result['name']} {result['type']} for client {result['client']}"]
    loc = result["location"]
    if not result["geoip"]:
        lines.append("  location: no GeoIP database")
    elif loc is None or loc["lat"] is None:
        lines.append(f"  location: unknown (GeoIP block {loc['network'] if loc else '?'})")
    else:
        where = ", ".join(str(x) for x in (loc["city"], loc["country"], loc["continent"]) if x)
        lines.append(
            f"  location: {where} ({loc['lat']}, {loc['lon']}), GeoIP block {loc['network']}"
            + (f", AS{loc['asn']}" if loc["asn"] else "")
        )
    for pool in result["pools"]:
        lines.append(f"  pool {pool['pool']} ({pool['type']}): {' -> '.join(pool['policy'])}")
        for step in pool["steps"]:
            dropped = f", dropped {', '.join(step['dropped'])}" if step["dropped"] else ""
            lines.append(f"    {step['step']:<15} {' '.join(step['kept']) or '(none)'}{dropped}")
            for note in step["notes"]:
                lines.append(f"    {'':<15} - {note}")
        if pool["fallback"]:
            lines.append(
                f"    fallback used: {pool['fallback']} (answered by {pool['answered_by']})"
            )
    lines.append(f"  answer ({result['rcode']}, ECS scope {result['ecs_scope']}):")
    lines.extend(f"    {line}" for line in result["answer"] or ["(no records)"])
    return "\n".join(lines)


def check_zones(directory: Path, limits: Limits) -> int:
    loaded = zonefiles.load_or_report(directory, limits)
    if loaded is None:
        return 1
    for zone in zonefiles.describe(loaded):
        print(json.dumps(zone))
    for one in sorted(loaded.values(), key=lambda z: z.path):
        for warning in one.warnings:
            print(warning, file=sys.stderr)
    return 0


NODE_FIELDS = frozenset(NodeSettings.model_fields)


def node_settings(args: argparse.Namespace) -> NodeSettings:
    """The node's settings from its parsed flags (the file's and the environment's already
    in them), validated at once; raises SettingsError naming the flag at fault."""
    if getattr(args, "worker", False):
        # A DNS worker of a node: its node's settings, serialized (gslb.settings).
        return NodeSettings.model_validate_json(os.environ[WORKER_SETTINGS])
    values: dict[str, Any] = {
        k: v for k, v in vars(args).items() if k in NODE_FIELDS and v is not None
    }
    values["role"] = args.command
    if args.command == "api":
        values["dns"] = []  # the API role answers no DNS
    if args.command == "serve" and not args.no_checker:
        values["checker"] = {
            "id": args.checker_id,
            "region": "local",
            "path": args.path,
            "allow_targets": args.allow_targets,
        }
    return _validated(NodeSettings, values)


class SettingsError(ValueError):
    pass


def _validated(model: type[M], values: dict[str, Any]) -> M:
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = [str(part) for part in first["loc"] if isinstance(part, str)]
        flag = "--" + where[-1].replace("_", "-") if where else "settings"
        raise SettingsError(f"{flag}: {first['msg']}") from None


def _worker_command(
    settings: NodeSettings,
) -> Callable[[str, list[tuple[str, int]], int], tuple[list[str], dict[str, str]]]:
    """How a node with `workers` > 1 starts worker `index`: `gslb dns --worker`, given the
    node's settings serialized in its environment (not on its command line: `ps` shows
    that), on the ports the node bound."""

    def command(
        url: str, endpoints: list[tuple[str, int]], index: int
    ) -> tuple[list[str], dict[str, str]]:
        first = format_endpoint(*endpoints[0]) if endpoints else "-"
        node = settings.node_id or f"{socket.gethostname()}/{first}"
        worker = settings.model_copy(
            update={
                "role": "dns",
                "workers": 1,
                "reuse_port": True,
                "parent_pid": os.getpid(),
                "node_id": f"{node}/w{index}",
                "dns": endpoints,
                "redis": url,
                "http": None,
                "zones": None,
                "checker": None,
            }
        )
        argv = [sys.executable, "-m", "gslb", "dns", "--worker"]
        return argv, {WORKER_SETTINGS: worker.model_dump_json()}

    return command


def serve(args: argparse.Namespace) -> int:
    from gslb.shell.private import keep_private, private_dir
    from gslb.shell.serve import Node, NodeConfig
    from gslb.shell.sync import mirror_path

    try:
        settings = node_settings(args)
    except SettingsError as e:
        print(f"gslb {args.command}: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    log = logs.get("gslb")
    zones = None
    if settings.zones is not None:
        try:
            zones = zonefiles.load_directory(settings.zones, limits=settings.zone_limits())
        except zonefiles.ZoneLoadError as e:
            for error in e.errors:
                log.error("zone refused", error=str(error))
            return 1
        for zone in zones.values():
            for warning in zone.warnings:
                log.warning("zone warning", warning=warning)
    try:
        locator = _open_locator(settings.geoip, settings.geoip_asn)
    except GeoIpError as e:
        log.error("cannot open the GeoIP database", error=str(e))
        return 1
    if locator is None:
        log.warning("no GeoIP database: proximity and topology keep the configured order")
    else:
        log.info("geoip", **locator.describe())
    data_dir = settings.data_dir
    keep_private()
    if data_dir is not None:
        private_dir(data_dir)
    try:
        tokens = auth.load(settings.api_tokens, os.environ, settings.api_read_open)
    except auth.TokenConfigError as e:
        log.error("cannot read the API tokens", error=str(e))
        return 1
    if len(tokens) == 0 and data_dir is not None and settings.http is not None:
        token, path = auth.local_token(data_dir)
        tokens = auth.with_local(tokens, token)
        log.info("no API tokens configured: made a local write token", file=str(path))
    worker = settings.parent_pid is not None
    config = NodeConfig(
        zones_dir=settings.zones,
        dns=list(settings.dns),
        http=settings.http,
        redis_url=settings.redis,
        data_dir=data_dir or Path("data"),
        dnssec_key_dir=settings.dnssec_key_dir
        or (data_dir / "dnssec-keys" if data_dir is not None else None),
        locator=locator,
        checker=settings.checker.checker_config() if settings.checker else None,
        settings=settings.answering(),
        tcp=settings.tcp_limits(),
        tokens=tokens,
        api_max_body=settings.api_max_body,
        limits=settings.zone_limits(),
        http_limits=settings.http_limits(),
        http_hosts=tuple(settings.http_host or ()),
        query_log_rate=settings.query_log_rate,
        # With an external Redis a node keeps what it last read on disk (the embedded one
        # persists itself, beside it).
        snapshot_file=mirror_path(data_dir)
        if data_dir is not None and settings.redis is not None and settings.role != "api"
        else None,
        rrl=settings.rrl() if settings.role != "api" else RrlConfig(rate=0),
        node_id=settings.node_id,
        region=settings.region,
        workers=settings.workers if settings.role != "api" else 1,
        worker_command=_worker_command(settings),
        reuse_port=settings.reuse_port,
        wait_for_sync=10.0 if worker else 0.0,
        parent_pid=settings.parent_pid,
        stats_fd=getattr(args, "stats_fd", None),
    )
    node = Node(config, zones)
    try:
        loop.run(node.run())
    except OSError as e:
        log.error("cannot start", error=str(e))
        return 1
    return node.exit_code


if __name__ == "__main__":
    sys.exit(main())
