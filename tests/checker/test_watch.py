"""The connection watch, over real sockets: a member's process killed is heard through the
idle connection long before the probe timer would fire, and members that close idle
connections by design never go down for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gslb.common.redis import connect
from gslb.schema import Monitor, Target
from healthchecks.checker import CheckerConfig, CheckerNode, _watch
from healthchecks.watch import Watch

ROOT = Path(__file__).resolve().parents[2]
PORT = 18431


def member(address: str, idle: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.backend", address, str(PORT), "200", str(idle)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def target(address: str, kind: str, interval: float, watch: bool = True) -> Target:
    monitor = Monitor(kind, PORT, interval=interval, timeout=0.5, rise=1, fall=2, watch=watch)
    return Target(f"z/p/{address}", address, monitor)


async def until(check: object, within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_killed_process_is_voted_down_through_the_watch_not_the_timer(
    procs: list[subprocess.Popen[bytes]], kind: str
) -> None:
    proc = member("127.12.0.1", idle=3600)
    procs.append(proc)
    # An interval far longer than the test: only the watch can notice the death in time.
    t = target("127.12.0.1", kind, interval=60)

    async def run() -> tuple[str, float, int]:
        node = CheckerNode(connect("redis://127.0.0.1:1/0"), CheckerConfig("t"))
        task = asyncio.create_task(node._probe_loop(t, "default"))
        await asyncio.sleep(0)  # the loop's first step makes its vote
        loop = asyncio.get_running_loop()
        try:
            vote = node.votes[(t.key, "default")]
            assert await until(lambda: vote.vote == "up" and Watch.open_count == 1, 10)
            proc.kill()
            killed = loop.time()
            await until(lambda: vote.vote == "down", 20)
            return vote.vote, loop.time() - killed, node.probes_done
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await node.resources.close()

    vote, took, probes = asyncio.run(run())
    assert vote == "down", "a dead member's vote stays up until the next 60 s probe"
    assert took < 20
    # One probe before the death, then the `fall` (2) confirming probes: no timer fired.
    assert probes == 3
    assert Watch.open_count == 0, "the loop's end lets its connection go"


async def watched(t: Target, done: Callable[[CheckerNode], bool]) -> tuple[list[str], int]:
    """Run one probe loop until `done`; every vote seen meanwhile, and the watches' ends."""
    node = CheckerNode(connect("redis://127.0.0.1:1/0"), CheckerConfig("t"))
    task = asyncio.create_task(node._probe_loop(t, "default"))
    await asyncio.sleep(0)  # the loop's first step makes its vote
    seen: list[str] = []
    try:
        vote = node.votes[(t.key, "default")]

        def check() -> bool:
            seen.append(vote.vote)
            return done(node)

        assert await until(check, 20), "the member's closes were not heard"
        return seen, node.watch_ends
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node.resources.close()


def test_a_member_that_closes_idle_connections_stays_up_and_is_watched_again(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    procs.append(member("127.12.0.2", idle=0.6))
    t = target("127.12.0.2", "http", interval=0.3)
    seen, ends = asyncio.run(watched(t, lambda node: node.watch_ends >= 3))
    assert "down" not in seen, "a close by the member's design took it down"
    assert ends >= 3


def test_a_member_that_closes_faster_than_the_probes_is_probed_plainly(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    procs.append(member("127.12.0.3", idle=0.05))
    t = target("127.12.0.3", "tcp", interval=0.2)
    seen, ends = asyncio.run(watched(t, lambda node: node.probes_done >= 15))
    assert "down" not in seen
    assert ends == 1, "after one short-lived connection the watch rests instead of reconnecting"
    assert Watch.open_count == 0


def test_watch_false_and_monitors_without_a_connection_have_no_watch() -> None:
    assert _watch(target("127.0.0.1", "tcp", 1, watch=False), None) is None
    assert _watch(Target("z/p/a", "127.0.0.1", Monitor("dns", 53)), None) is None
    assert _watch(Target("z/p/a", "127.0.0.1", Monitor("https")), None) is not None
