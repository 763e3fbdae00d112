"""`gslb agent`: a member reports its own load (RFC 2391 §5.1, the active category).

- sessions: established TCP connections whose local address is the member's address (and
  local port one of `--port`, when given), read from /proc/net/tcp and /proc/net/tcp6, in
  all and per local port (session types, for pools with `session_weights`);
- cpu: the one-minute load average per CPU (`least_load` gives a member at 1.0 or more no new
  lead: its CPUs are saturated whatever its session count);
- traffic: bytes per second through the interfaces, received plus sent, since the last report
  (all interfaces but loopback, or only loopback for a loopback member).

Reports go to `gslb:load` with their time; DNS nodes ignore a report older than 30 s, and an
`agent` monitor calls a member down when its agent falls silent.

The agent also says when its member is going away, before any checker could notice: `gslb
agent drain` (or the running agent's SIGTERM, with `--drain-on-stop`) writes the address to
`gslb:leaving` and an entry to the health log, which every DNS node follows with a blocking
read, so every pool's answers drop the address within milliseconds. The agent starting again
(or `gslb agent undrain`) says it is back, and pools with `slow_start` ramp it in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gslb.common import logs
from gslb.common.redis import connect
from gslb.schema import (
    APPEND_LOG,
    EVENTS,
    HEALTH_LOG,
    HEALTH_SEQ,
    LEAVING,
    LOAD,
    VERSION,
    HealthChange,
    Leaving,
    Load,
    append_args,
    dumps,
)

log = logs.get("gslb.agent")

ESTABLISHED = "01"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    member: str
    ports: tuple[int, ...] = ()
    interval: float = 5.0
    proc: Path = Path("/proc")
    drain_on_stop: bool = False  # a SIGTERM announces the member is leaving before it exits


def _hex_address(address: str) -> str:
    """The member's address as /proc/net/tcp writes local addresses (host byte order words)."""
    ip = ipaddress.ip_address(address)
    packed = ip.packed
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    return "".join(w[::-1].hex().upper() for w in words)


def sessions(config: AgentConfig) -> int:
    return sum(sessions_by_port(config).values())


def sessions_by_port(config: AgentConfig) -> dict[int, int]:
    """Established connections to the member's address, per local port (only `--port`
    ones when given): the session types a pool's `session_weights` weigh."""
    ip = ipaddress.ip_address(config.member)
    table = "tcp" if ip.version == 4 else "tcp6"
    wanted = _hex_address(config.member)
    counts: dict[int, int] = {}
    try:
        lines = (config.proc / "net" / table).read_text().splitlines()[1:]
    except OSError:
        return counts
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != ESTABLISHED:
            continue
        local_address, _, local_port = fields[1].partition(":")
        if local_address != wanted:
            continue
        port = int(local_port, 16)
        if config.ports and port not in config.ports:
            continue
        counts[port] = counts.get(port, 0) + 1
    return counts


def cpu_load(config: AgentConfig) -> float:
    try:
        one_minute = float((config.proc / "loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return one_minute / (os.cpu_count() or 1)


def traffic_bytes(config: AgentConfig) -> int:
    loopback = ipaddress.ip_address(config.member).is_loopback
    total = 0
    try:
        lines = (config.proc / "net" / "dev").read_text().splitlines()[2:]
    except OSError:
        return 0
    for line in lines:
        name, _, counters = line.partition(":")
        if (name.strip() == "lo") != loopback:
            continue
        fields = counters.split()
        total += int(fields[0]) + int(fields[8])
    return total


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._last: tuple[float, int] | None = None

    def measure(self) -> Load:
        now = time.time()
        transferred = traffic_bytes(self.config)
        rate = None
        if self._last is not None and now > self._last[0]:
            rate = max(0.0, (transferred - self._last[1]) / (now - self._last[0]))
        self._last = (now, transferred)
        ports = sessions_by_port(self.config)
        return Load(
            float(sum(ports.values())),
            round(cpu_load(self.config), 3),
            rate,
            now,
            {str(p): float(n) for p, n in sorted(ports.items())},
        )


async def announce(redis: Any, member: str, leaving: bool, reason: str = "drain") -> bool:
    """Say that `member` is leaving (or is back), in one transaction: `gslb:leaving` and
    the health log entry the DNS nodes wake on. False when there was nothing to say (back,
    but it was not leaving)."""
    if not leaving and not await redis.hexists(LEAVING, member):
        return False
    script = redis.register_script(APPEND_LOG)
    async with redis.pipeline(transaction=True) as pipe:
        if leaving:
            pipe.hset(LEAVING, member, Leaving(time.time(), reason).to_json())
        else:
            pipe.hdel(LEAVING, member)
        await script(
            keys=[HEALTH_LOG, HEALTH_SEQ, VERSION],
            args=append_args(HealthChange(0, {}, {member: leaving}).to_fields()),
            client=pipe,
        )
        *_, (_seq, version) = await pipe.execute()
    await redis.publish(
        EVENTS,
        dumps(
            {"kind": "leaving" if leaving else "back", "version": int(version), "member": member}
        ),
    )
    if leaving:
        log.info("member leaving", member=member, reason=reason)
    else:
        log.info("member back", member=member)
    return True


async def run_announce(url: str, member: str, leaving: bool) -> None:
    """`gslb agent drain` / `gslb agent undrain`: one announcement, then exit."""
    redis = connect(url)
    try:
        await announce(redis, member, leaving)
    finally:
        await redis.aclose()


async def run_agent(url: str, config: AgentConfig) -> None:
    redis = connect(url)
    agent = Agent(config)
    stop = asyncio.Event()
    terminated = False
    loop = asyncio.get_running_loop()

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.info(
        "agent started", member=config.member, host=socket.gethostname(), interval=config.interval
    )
    back = False
    reported = False
    try:
        while not stop.is_set():
            report = agent.measure()
            try:
                if not back:
                    # A member that left (drained, or its agent stopped) is back with its agent.
                    await announce(redis, config.member, False)
                    back = True
                await redis.hset(LOAD, config.member, report.to_json())
                if not reported:
                    log.info("agent reporting", sessions=report.sessions, cpu=report.cpu)
                    reported = True
            except Exception as e:  # Redis away: keep measuring, report when it is back
                if reported:
                    log.warning("agent cannot report", error=str(e))
                reported = False
            try:
                async with asyncio.timeout(config.interval):
                    await stop.wait()
            except TimeoutError:
                pass
        if terminated and config.drain_on_stop:
            try:
                await asyncio.wait_for(announce(redis, config.member, True, "stop"), 5.0)
            except Exception as e:
                log.error("agent could not announce the member is leaving", error=str(e))
    finally:
        await redis.aclose()
        log.info("agent stopped", member=config.member)
