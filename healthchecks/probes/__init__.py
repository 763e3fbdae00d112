"""Probes: one module per monitor type, each `async probe(target, source, resources)`.

A probe says whether the member answered as its monitor expects and how long it took, binding
its source address to the path being tested (`source`, None for the system's choice). The
caller applies the monitor's timeout and the rise/fall hysteresis; probes only observe.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gslb.schema import Load, Target


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    rtt: float | None = None  # seconds
    error: str | None = None


class Resources:
    """What probes share: HTTP sessions per path, and a way to read agents' reports."""

    def __init__(self, load_report: Callable[[str], Awaitable[Load | None]] | None = None) -> None:
        self.load_report = load_report
        self.sessions: dict[tuple[str | None, bool], object] = {}
        # What the checker may connect to (healthchecks.allow.TargetPolicy): probes check the
        # address they actually reached against it too.
        self.policy: Any = None

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()  # type: ignore[attr-defined]
        self.sessions.clear()


Probe = Callable[[Target, str | None, Resources], Awaitable[Outcome]]


def registry() -> dict[str, Probe]:
    from healthchecks.probes import agent, dns, http, icmp, tcp

    return {
        "tcp": tcp.probe,
        "http": http.probe,
        "https": http.probe,
        "dns": dns.probe,
        "icmp": icmp.probe,
        "agent": agent.probe,
    }


def describe_error(error: BaseException) -> str:
    """What went wrong, in the system's words ("Connection refused", "No route to host")."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__
