"""Uplinks that are what they say: each `--path NAME=SOURCE` must leave by a route of its own.

The SCTP multihoming draft's warning, which holds for every protocol: binding a socket to a
source address does not choose the interface a packet leaves by; the routing table does.
Without a policy rule (`ip rule add from SOURCE table T`) every source address follows the
main table, so two "uplinks" are one, and a dead ISP looks alive over both paths.

A checker asks the kernel, as `ip route get DEST from SOURCE` does (netlink, through
pyroute2), how each path reaches a sample of the members it probes, and which policy rules
name each source. It reports:

- two paths that reach a destination by the same route (same device and gateway): the probes
  over them test one uplink, not two;
- a path whose source no `ip rule` names (with more than one path): routing, not the
  source, picks its uplink, so it holds only as long as the main table happens to agree;
- a path with no route to a destination, or a source that is not an address of this host.

Looked up at start, again whenever the kernel announces a change of links, addresses, routes
or rules, and when the members probed change. Lookups send no packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gslb.common import logs

log = logs.get("gslb.checker")

SAMPLE = 8  # destinations looked up per address family
# Where to look when there is nothing to probe yet: documentation addresses (RFC 5737,
# RFC 3849), only ever looked up, never sent to; they follow the default routes.
REFERENCE = ("198.51.100.1", "2001:db8::1")
NOT_LOCAL = "not local"
SETTLE = 0.5  # seconds to let a burst of netlink announcements end before looking again

# rtnetlink multicast groups: links, IPv4/IPv6 addresses, routes and rules.
GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400 | (1 << (8 - 1)) | (1 << (19 - 1))


@dataclass(frozen=True, slots=True)
class Route:
    """How the kernel would send from one source to one destination."""

    device: str
    gateway: str | None  # None: directly connected (or local)
    table: int

    def text(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"dev {self.device}{via} table {self.table}"

    @property
    def uplink(self) -> tuple[str, str | None]:
        """What makes two routes one uplink: the same device and next hop, whatever table
        holds them."""
        return self.device, self.gateway


@dataclass(frozen=True, slots=True)
class Lookup:
    path: str
    source: str | None
    destination: str
    route: Route | None
    error: str | None = None


def problems(
    paths: Mapping[str, str | None], lookups: Sequence[Lookup], ruled: Mapping[str, bool]
) -> list[str]:
    """What is wrong with `paths`, from the kernel's answers (pure: the tests feed it)."""
    out: list[str] = []
    for look in lookups:
        # No route to a reference address says nothing: no member is there.
        if look.error == NOT_LOCAL:
            out.append(f"path {look.path}: {look.source} is not an address of this host")
        elif look.error is not None and look.destination not in REFERENCE:
            out.append(
                f"path {look.path}: no route to {look.destination}"
                f"{f' from {look.source}' if look.source else ''} ({look.error})"
            )
    if len(paths) < 2:
        return out
    for name, source in paths.items():
        if source is not None and name in ruled and not ruled[name]:
            out.append(
                f"path {name}: no `ip rule from {source}`: the main routing table, not the "
                "source address, picks its uplink"
            )
    by_destination: dict[str, list[Lookup]] = {}
    for look in lookups:
        if look.route is not None:
            by_destination.setdefault(look.destination, []).append(look)
    said: set[tuple[str, str]] = set()
    for destination, looks in by_destination.items():
        for i, first in enumerate(looks):
            for second in looks[i + 1 :]:
                assert first.route is not None and second.route is not None
                pair = (first.path, second.path)
                if first.route.uplink != second.route.uplink or pair in said:
                    continue
                said.add(pair)
                out.append(
                    f"paths {first.path} and {second.path} leave by the same route to "
                    f"{destination} ({first.route.text()}): probes over them test one uplink, "
                    "not two"
                )
    return out


def destinations(addresses: Iterable[str], per_family: int = SAMPLE) -> list[str]:
    """A sample of the members' addresses, spread over their sorted order, per family; the
    reference addresses when there are none yet."""
    by_family: dict[int, list[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {4: [], 6: []}
    for text in set(addresses):
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(text)
            by_family[address.version].append(address)
    if not any(by_family.values()):
        return list(REFERENCE)
    out: list[str] = []
    for found in by_family.values():
        found.sort()
        step = max(1, len(found) // per_family)
        out.extend(str(a) for a in found[::step][:per_family])
    return out


def look_up(
    paths: Mapping[str, str | None], targets: Sequence[str]
) -> tuple[list[Lookup], dict[str, bool]]:
    """Ask the kernel (blocking: run it in a thread)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    lookups = []
    ruled = {}
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        rules = {
            family: [
                ipaddress.ip_network(f"{rule.get_attr('FRA_SRC')}/{rule['src_len']}")
                for rule in ipr.get_rules(family=family)
                if rule.get_attr("FRA_SRC") is not None
            ]
            for family in (socket.AF_INET, socket.AF_INET6)
        }
        for name, source in paths.items():
            if source is not None:
                address = ipaddress.ip_address(source)
                if not _local(ipr, source):
                    lookups.append(Lookup(name, source, source, None, NOT_LOCAL))
                    continue
                family = socket.AF_INET if address.version == 4 else socket.AF_INET6
                ruled[name] = any(address in net for net in rules[family])
            for destination in targets:
                if source is not None and (
                    ipaddress.ip_address(source).version
                    != ipaddress.ip_address(destination).version
                ):
                    continue  # this path never probes that family
                query = {"dst": destination, **({"src": source} if source else {})}
                try:
                    # RTM_F_LOOKUP_TABLE: say the table the route came from, as `ip route
                    # get` does, not the main table's number.
                    (reply,) = ipr.route("get", flags=RTM_F_LOOKUP_TABLE, **query)
                except NetlinkError as e:
                    lookups.append(Lookup(name, source, destination, None, _reason(e)))
                    continue
                oif = reply.get_attr("RTA_OIF")
                gateway = reply.get_attr("RTA_GATEWAY")
                table = reply.get_attr("RTA_TABLE") or reply["table"]
                route = Route(names.get(oif, str(oif)), gateway, int(table))
                lookups.append(Lookup(name, source, destination, route))
    return lookups, ruled


RTN_LOCAL = 2
RTM_F_LOOKUP_TABLE = 0x1000


def _local(ipr: Any, address: str) -> bool:
    """Whether the kernel takes `address` as its own (the local table: 127.0.0.2 is, though
    no interface lists it)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        (reply,) = ipr.route("get", dst=address)
    except NetlinkError:
        return False
    return bool(reply["type"] == RTN_LOCAL)


def _reason(error: Exception) -> str:
    code = error.args[0] if error.args else 0
    if isinstance(code, int) and code:
        import os

        return os.strerror(code)
    return str(error)


async def check(paths: Mapping[str, str | None], addresses: Iterable[str]) -> list[str]:
    """The problems of `paths` towards (a sample of) `addresses`, looked up in a thread."""
    try:
        lookups, ruled = await asyncio.to_thread(look_up, paths, destinations(addresses))
    except OSError as e:  # no netlink here (not Linux, or forbidden): say so once, go on
        return [f"cannot look up routes: {e}"]
    return problems(paths, lookups, ruled)


class RouteChanges:
    """Wakes up when the kernel announces a change of links, addresses, routes or rules (an
    rtnetlink multicast socket; the messages themselves are not read: any change means
    looking again)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.sock: socket.socket | None = None

    def start(self) -> bool:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.setblocking(False)
            sock.bind((0, GROUPS))
        except (OSError, AttributeError) as e:
            log.warning(
                "cannot follow route changes: paths are checked at start only", error=str(e)
            )
            return False
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return True

    def _readable(self) -> None:
        assert self.sock is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.sock.recv(65536):
                pass
        self.on_change()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
