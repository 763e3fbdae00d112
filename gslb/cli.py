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
from typing import Any

from gslb import __version__, zonefiles, zonesync
from gslb.api import auth
from gslb.common import logs
from gslb.core.masterfile import DEFAULT_MAX_RECORDS, Limits
from gslb.core.snapshot import DEFAULT_MAX_UDP, Settings
from gslb.shell import loop
from gslb.shell.geoip import GeoIpError, GeoIpLocator
from gslb.shell.httpguard import HttpLimits
from gslb.shell.rrl import RrlConfig
from gslb.shell.transport import TcpLimits, format_endpoint, parse_endpoint
from gslb.zonesync import TOKEN_ENV
from healthchecks.checker import CheckerConfig


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
    # How `serve --workers N` starts its workers (not for people).
    dns_role.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    dns_role.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
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
    _geoip_flags(api_role)
    _log_flags(api_role)

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

    # Every tool that drives a running API: its URL and a token.
    for cmd in (apply_cmd, export_cmd, drain_cmd, webhook):
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
    checker.add_argument("--id", default=socket.gethostname(), help="unique checker id")
    checker.add_argument("--region", default="default", help="where this checker probes from")
    _path_flag(checker)
    checker.add_argument(
        "--replicas", type=int, default=3, help="checkers that probe each member (default 3)"
    )
    checker.add_argument(
        "--quorum",
        default="majority",
        help="down votes needed: majority (default), all, any, or a number",
    )
    checker.add_argument("--heartbeat", type=float, default=1.0, help="seconds (default 1)")
    checker.add_argument(
        "--strict-paths",
        action="store_true",
        help="refuse to probe when two --paths leave by the same route or a source has no "
        "policy rule (default: warn, and show it in the checkers' view)",
    )
    _log_flags(checker)

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
    agent.add_argument("--interval", type=float, default=5.0, help="seconds between reports")
    agent.add_argument(
        "--drain-on-stop",
        action="store_true",
        help="on SIGTERM, announce the member is leaving before exiting (systemd's stop, a "
        "shutdown): the DNS nodes drop it at once",
    )
    _log_flags(agent)

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
    from_environment(parser, os.environ)
    return parser


ENV_PREFIX = "GSLB_"
TCP_DEFAULTS = TcpLimits()
HTTP_DEFAULTS = HttpLimits()


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
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.dest in ("help", "version") or action.help == argparse.SUPPRESS:
            continue
        name = ENV_PREFIX + longs[0][2:].replace("-", "_").upper()
        if name not in environ:
            continue
        text = environ[name]
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
            parser.error(f"${name}: {e}")
        action.required = False
        action.help = (action.help or "") + f" [${name}]"


def _dns_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dns",
        type=_endpoint(53),
        action="append",
        metavar="HOST:PORT",
        help="DNS listen address, UDP and TCP (repeatable; default 127.0.0.1:5353)",
    )
    _geoip_flags(parser)
    parser.add_argument("--nsid", default="", help="NSID (RFC 5001) this node answers with")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="DNS processes sharing the ports (SO_REUSEPORT), each with its own snapshot "
        "(default: one per core)",
    )
    parser.add_argument(
        "--max-udp-size",
        type=int,
        default=DEFAULT_MAX_UDP,
        help=f"largest UDP reply, 512..4096 (default {DEFAULT_MAX_UDP})",
    )
    parser.add_argument(
        "--rrl-rate",
        type=float,
        default=RrlConfig.rate,
        metavar="PER_SECOND",
        help="response rate limit: identical UDP responses per second per client /24 (/56); "
        f"0 turns it off (default {RrlConfig.rate:g})",
    )
    parser.add_argument(
        "--rrl-window", type=float, default=RrlConfig.window, help="RRL burst, in seconds"
    )
    parser.add_argument(
        "--rrl-slip",
        type=int,
        default=RrlConfig.slip,
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
        default=0.0,
        metavar="FRACTION",
        help="log this fraction of queries, e.g. 0.001 (default 0: none)",
    )
    parser.add_argument(
        "--tcp-idle-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="close a TCP connection idle this long (default 10)",
    )
    parser.add_argument(
        "--tcp-max-queries",
        type=int,
        default=10_000,
        metavar="N",
        help="queries one TCP connection may ask before it is closed (default 10000)",
    )
    parser.add_argument(
        "--tcp-max-connections",
        type=int,
        default=1000,
        metavar="N",
        help="concurrent TCP connections accepted (default 1000)",
    )
    parser.add_argument(
        "--tcp-max-per-client",
        type=int,
        default=TCP_DEFAULTS.max_per_client,
        metavar="N",
        help="concurrent TCP connections from one client, IPv4 address or IPv6 /64 "
        f"(default {TCP_DEFAULTS.max_per_client})",
    )
    parser.add_argument(
        "--tcp-write-timeout",
        type=float,
        default=TCP_DEFAULTS.write_timeout,
        metavar="SECONDS",
        help="abort a TCP connection whose client leaves a reply unread this long "
        f"(default {TCP_DEFAULTS.write_timeout:g})",
    )
    _log_flags(parser)


def _api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node-id", help="this node's name on the dashboard (default: HOST/first listener)"
    )
    parser.add_argument(
        "--region", default="default", help="where this node runs, for the dashboard"
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
        default=HTTP_DEFAULTS.max_connections,
        metavar="N",
        help=f"concurrent HTTP connections (default {HTTP_DEFAULTS.max_connections})",
    )
    parser.add_argument(
        "--http-max-per-client",
        type=int,
        default=HTTP_DEFAULTS.max_per_client,
        metavar="N",
        help="concurrent HTTP connections from one client, IPv4 address or IPv6 /64 "
        f"(default {HTTP_DEFAULTS.max_per_client})",
    )
    parser.add_argument(
        "--http-header-timeout",
        type=float,
        default=HTTP_DEFAULTS.header_timeout,
        metavar="SECONDS",
        help="close a connection whose request headers take longer "
        f"(default {HTTP_DEFAULTS.header_timeout:g})",
    )
    parser.add_argument(
        "--http-keepalive-timeout",
        type=float,
        default=HTTP_DEFAULTS.keepalive_timeout,
        metavar="SECONDS",
        help=f"close an idle keep-alive connection (default {HTTP_DEFAULTS.keepalive_timeout:g})",
    )
    parser.add_argument(
        "--api-max-body",
        type=int,
        default=1 << 20,
        metavar="BYTES",
        help="largest request body the API accepts (default 1 MiB)",
    )


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-zone-records",
        type=int,
        default=DEFAULT_MAX_RECORDS,
        metavar="N",
        help=f"records one zone may hold; more is refused (default {DEFAULT_MAX_RECORDS})",
    )


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(records=max(1, args.max_zone_records))


def _log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
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


def _geoip_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--geoip", type=Path, metavar="CITY.mmdb", help="GeoIP2 City database")
    parser.add_argument("--geoip-asn", type=Path, metavar="ASN.mmdb", help="GeoIP2 ASN database")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        from healthchecks.agent import AgentConfig, run_agent, run_announce

        logs.configure(args.log_format, args.log_level)
        try:
            # The one text form the pools' keys use (an IPv6 address has many).
            args.member = str(ipaddress.ip_address(args.member))
        except ValueError:
            print(f"gslb agent: --member {args.member!r} is not an IP address", file=sys.stderr)
            return 2
        if args.action != "run":
            loop.run(run_announce(args.redis, args.member, args.action == "drain"))
            return 0
        config = AgentConfig(
            args.member, tuple(args.port), args.interval, drain_on_stop=args.drain_on_stop
        )
        loop.run(run_agent(args.redis, config))
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


def checker(args: argparse.Namespace) -> int:
    from healthchecks.run import run_checker

    logs.configure(args.log_format, args.log_level)
    if args.quorum not in ("majority", "all", "any") and not args.quorum.isdigit():
        print("gslb checker: --quorum is majority, all, any or a number", file=sys.stderr)
        return 2
    config = CheckerConfig(
        id=args.id,
        region=args.region,
        paths=dict(args.path) if args.path else None,
        replicas=args.replicas,
        quorum=args.quorum,
        heartbeat=args.heartbeat,
        allow=tuple(args.allow_targets or ()),
        strict_paths=args.strict_paths,
    )
    from healthchecks.checker import PathsRefused

    try:
        loop.run(run_checker(args.redis, config))
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
    if args.geoip is None:
        if args.geoip_asn is not None:
            raise GeoIpError("--geoip-asn needs --geoip (the City database) as well")
        return None
    return GeoIpLocator(args.geoip, args.geoip_asn)


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


def _rrl(args: argparse.Namespace) -> RrlConfig:
    if not hasattr(args, "rrl_rate"):
        return RrlConfig(rate=0)  # the API role answers no DNS
    exempt = tuple(args.rrl_exempt) if args.rrl_exempt else RrlConfig.exempt
    for network in exempt:
        try:
            ipaddress.ip_network(network)
        except ValueError as e:
            raise ValueError(f"--rrl-exempt {network}: {e}") from None
    if args.rrl_rate < 0 or args.rrl_window <= 0 or args.rrl_slip < 0:
        raise ValueError("--rrl-rate >= 0, --rrl-window > 0 and --rrl-slip >= 0")
    return RrlConfig(args.rrl_rate, args.rrl_window, args.rrl_slip, exempt)


def _worker_command(
    args: argparse.Namespace,
) -> Callable[[str, list[tuple[str, int]], int], list[str]]:
    """How `serve`/`dns` with `--workers N` starts worker `index`: the DNS role with the same
    DNS flags, on the ports the node bound (the Redis URL goes in the environment)."""

    def command(url: str, endpoints: list[tuple[str, int]], index: int) -> list[str]:
        first = format_endpoint(*endpoints[0]) if endpoints else "-"
        node = args.node_id or f"{socket.gethostname()}/{first}"
        argv = [sys.executable, "-m", "gslb", "dns", "--workers", "1", "--reuse-port"]
        argv += ["--parent-pid", str(os.getpid()), "--node-id", f"{node}/w{index}"]
        argv += ["--region", args.region, "--nsid", args.nsid]
        argv += ["--max-udp-size", str(args.max_udp_size)]
        argv += ["--query-log-rate", str(args.query_log_rate)]
        argv += ["--rrl-rate", str(args.rrl_rate), "--rrl-window", str(args.rrl_window)]
        argv += ["--rrl-slip", str(args.rrl_slip)]
        for network in args.rrl_exempt or ():
            argv += ["--rrl-exempt", network]
        argv += ["--tcp-idle-timeout", str(args.tcp_idle_timeout)]
        argv += ["--tcp-max-connections", str(args.tcp_max_connections)]
        argv += ["--tcp-max-queries", str(args.tcp_max_queries)]
        argv += ["--tcp-max-per-client", str(args.tcp_max_per_client)]
        argv += ["--tcp-write-timeout", str(args.tcp_write_timeout)]
        argv += ["--log-format", args.log_format, "--log-level", args.log_level]
        for host, port in endpoints:
            argv += ["--dns", format_endpoint(host, port)]
        if args.data_dir is not None:
            argv += ["--data-dir", str(args.data_dir)]
        if args.geoip is not None:
            argv += ["--geoip", str(args.geoip)]
        if args.geoip_asn is not None:
            argv += ["--geoip-asn", str(args.geoip_asn)]
        return argv

    return command


def serve(args: argparse.Namespace) -> int:
    from gslb.shell.private import keep_private, private_dir
    from gslb.shell.serve import Node, NodeConfig
    from gslb.shell.sync import mirror_path

    logs.configure(args.log_format, args.log_level)
    log = logs.get("gslb")
    if args.command == "api":
        args.dns, args.max_udp_size, args.nsid = [], DEFAULT_MAX_UDP, ""
        args.tcp_max_connections, args.tcp_idle_timeout, args.tcp_max_queries = 1, 1.0, 1
        args.tcp_max_per_client, args.tcp_write_timeout = 1, 1.0
    if not 0.0 <= getattr(args, "query_log_rate", 0.0) <= 1.0:
        print("gslb: --query-log-rate is a fraction within 0..1", file=sys.stderr)
        return 2
    if not 512 <= args.max_udp_size <= 4096:
        print("gslb: --max-udp-size must be within 512..4096", file=sys.stderr)
        return 2
    zones = None
    zones_dir = getattr(args, "zones", None)
    if zones_dir is not None:
        try:
            zones = zonefiles.load_directory(zones_dir, limits=_limits(args))
        except zonefiles.ZoneLoadError as e:
            for error in e.errors:
                log.error("zone refused", error=str(error))
            return 1
        for zone in zones.values():
            for warning in zone.warnings:
                log.warning("zone warning", warning=warning)
    try:
        locator = _locator(args)
    except GeoIpError as e:
        log.error("cannot open the GeoIP database", error=str(e))
        return 1
    if locator is None:
        log.warning("no GeoIP database: proximity and topology keep the configured order")
    else:
        log.info("geoip", **locator.describe())
    try:
        rrl = _rrl(args)
    except ValueError as e:
        print(f"gslb: {e}", file=sys.stderr)
        return 2
    data_dir = getattr(args, "data_dir", None)
    keep_private()
    if data_dir is not None:
        private_dir(data_dir)
    try:
        tokens = auth.load(args.api_tokens, os.environ, args.api_read_open)
    except auth.TokenConfigError as e:
        log.error("cannot read the API tokens", error=str(e))
        return 1
    if len(tokens) == 0 and data_dir is not None and args.http is not None:
        token, path = auth.local_token(data_dir)
        tokens = auth.with_local(tokens, token)
        log.info("no API tokens configured: made a local write token", file=str(path))
    config = NodeConfig(
        zones_dir=zones_dir,
        dns=args.dns if args.dns is not None else [("127.0.0.1", 5353)],
        http=args.http,
        redis_url=args.redis,
        data_dir=data_dir or Path("data"),
        locator=locator,
        checker=CheckerConfig(
            id=args.checker_id,
            region="local",
            paths=dict(args.path) if args.path else None,
            allow=tuple(args.allow_targets or ()),
        )
        if args.command == "serve" and not args.no_checker
        else None,
        settings=Settings(max_udp_size=args.max_udp_size, nsid=args.nsid.encode()),
        tcp=TcpLimits(
            max_connections=args.tcp_max_connections,
            idle_timeout=args.tcp_idle_timeout,
            max_queries=args.tcp_max_queries,
            max_per_client=args.tcp_max_per_client,
            write_timeout=args.tcp_write_timeout,
        ),
        tokens=tokens,
        api_max_body=args.api_max_body,
        limits=_limits(args),
        http_limits=HttpLimits(
            max_connections=args.http_max_connections,
            max_per_client=args.http_max_per_client,
            header_timeout=args.http_header_timeout,
            keepalive_timeout=args.http_keepalive_timeout,
        ),
        http_hosts=tuple(args.http_host or ()),
        query_log_rate=getattr(args, "query_log_rate", 0.0),
        # With an external Redis a node keeps what it last read on disk (the embedded one
        # persists itself, beside it).
        snapshot_file=mirror_path(data_dir)
        if data_dir is not None and args.redis is not None and args.command != "api"
        else None,
        rrl=rrl,
        node_id=args.node_id,
        region=args.region,
        workers=max(1, getattr(args, "workers", 1)),
        worker_command=_worker_command(args),
        reuse_port=getattr(args, "reuse_port", False),
        wait_for_sync=10.0 if getattr(args, "parent_pid", None) else 0.0,
        parent_pid=getattr(args, "parent_pid", None),
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
