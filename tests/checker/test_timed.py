from __future__ import annotations

import asyncio

from gslb.common.redis import connect
from gslb.schema import Monitor, Target
from healthchecks.checker import CheckerConfig, CheckerNode
from healthchecks.probes import Outcome, Resources

TARGET = Target("z/p/127.0.0.1", "127.0.0.1", Monitor("tcp", 1))


async def hang(target: Target, source: str | None, resources: Resources) -> Outcome:
    await asyncio.sleep(3600)
    return Outcome(True)


def test_a_hanging_probe_fails_after_its_timeout_and_the_task_goes_on() -> None:
    async def run() -> tuple[Outcome, float]:
        node = CheckerNode(connect("redis://127.0.0.1:1/0"), CheckerConfig("t"))
        started = asyncio.get_running_loop().time()
        outcome = await node._timed(hang, TARGET, None, 0.05)
        await asyncio.sleep(0.01)  # the task is not left cancelled
        return outcome, asyncio.get_running_loop().time() - started

    outcome, took = asyncio.run(run())
    assert not outcome.ok and outcome.error == "no answer within 0.05 s"
    assert took < 1


def test_cancelling_the_task_is_not_mistaken_for_a_timeout() -> None:
    async def run() -> bool:
        node = CheckerNode(connect("redis://127.0.0.1:1/0"), CheckerConfig("t"))
        task = asyncio.create_task(node._timed(hang, TARGET, None, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(run()), "a checker told to stop stops"
