"""Uplinks that are what they say: each `--path NAME=SOURCE` must leave by a route of its own.

The SCTP multihoming draft's warning, which holds for every protocol: binding a socket to a
source address does not choose the interface a packet leaves by; the routing table does.
Without a policy rule (`ip rule add from SOURCE table T`) every source address follows the
main table, so two "uplinks" are one, and a dead ISP looks alive over both paths.

A checker asks the kernel with `ip -j route get DEST from SOURCE` and `ip -j rule show`
(iproute2, in a child process) how each path reaches a sample of the members it probes,
and which policy rules name each source. It reports:

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
import json
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
LOOKUP_TIMEOUT = 10.0  # seconds the kernel's answers may take
SETTLE = 0.5  # seconds to let a burst of netlink announcements end before looking again

# rtnetlink multicast groups: links, IPv4/IPv6 addresses, routes and rules.
GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400 | (1 << (8 - 1)) | (1 << (19 - 1))


@dataclass(frozen=True, slots=True)
class Route:
    """How the kernel would send from one source to one destination."""

    device: str
    gateway: str | None  # None: directly connected (or local)
    table: str  # as iproute2 names it: main, local, or a number

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


async def _ip(*args: str) -> tuple[Any, str | None]:
    """`ip -j ARGS`: its JSON, or the kernel's refusal (its error text)."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "-j", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LOOKUP_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip().splitlines()
        reason = text[-1] if text else f"ip exited with {proc.returncode}"
        return None, reason.removeprefix("RTNETLINK answers: ").removeprefix("Error: ")
    return json.loads(out or b"[]"), None


async def look_up(
    paths: Mapping[str, str | None], targets: Sequence[str]
) -> tuple[list[Lookup], dict[str, bool]]:
    """Ask the kernel, through iproute2 (`ip -j route get`, `ip -j rule show`): the same
    lookups an operator would type, in a child process, so no netlink library runs inside
    the checker's event loop."""
    rules: dict[int, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
    for version in (4, 6):
        found, _error = await _ip(f"-{version}", "rule", "show")
        rules[version] = [
            ipaddress.ip_network(f"{r['src']}/{r.get('srclen', 32 if version == 4 else 128)}")
            for r in found or []
            if r.get("src") not in (None, "all")
        ]
    lookups = []
    ruled = {}
    for name, source in paths.items():
        if source is not None:
            address = ipaddress.ip_address(source)
            own, _error = await _ip("route", "get", source)
            if not own or own[0].get("type") != "local":
                lookups.append(Lookup(name, source, source, None, NOT_LOCAL))
                continue
            ruled[name] = any(address in net for net in rules[address.version])
        for destination in targets:
            if source is not None and (
                ipaddress.ip_address(source).version != ipaddress.ip_address(destination).version
            ):
                continue  # this path never probes that family
            found, error = await _ip(
                "route", "get", destination, *(("from", source) if source else ())
            )
            if not found:
                lookups.append(Lookup(name, source, destination, None, error or "no route"))
                continue
            reply = found[0]
            route = Route(
                str(reply.get("dev", "?")), reply.get("gateway"), str(reply.get("table", "main"))
            )
            lookups.append(Lookup(name, source, destination, route))
    return lookups, ruled


async def check(paths: Mapping[str, str | None], addresses: Iterable[str]) -> list[str]:
    """The problems of `paths` towards (a sample of) `addresses`."""
    try:
        lookups, ruled = await look_up(paths, destinations(addresses))
    except (OSError, TimeoutError, ValueError) as e:  # no iproute2, or no answer: say so
        return [f"cannot look up routes: {e!r}"]
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
