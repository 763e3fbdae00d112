"""Running a checker process until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from gslb.common import logs
from gslb.common.redis import connect
from healthchecks.checker import CheckerConfig, CheckerNode, PathsRefused

log = logs.get("gslb.checker")


async def run_checker(url: str, config: CheckerConfig) -> None:
    redis = connect(url)
    node = CheckerNode(redis, config)
    task = asyncio.get_running_loop().create_task(node.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = loop.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    # Asked again while it goes on: a cancellation that arrives inside a library call (a
    # Redis command in flight) can be swallowed on Python 3.11, and then the task group
    # waits for a child that was never told (seen: a checker taking 5 s to stop).
    for _attempt in range(4):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            break
    with contextlib.suppress(Exception):
        await asyncio.wait_for(redis.aclose(), 1.0)
    log.info("checker stopped", id=config.id, probes=node.probes_done)
    if task.done() and not task.cancelled():
        error = task.exception()
        refused = _refusal(error)
        if refused is not None:
            raise refused
        if error is not None:
            raise error


def _refusal(error: BaseException | None) -> PathsRefused | None:
    """The PathsRefused inside what the checker's task group raised, if that is why."""
    if isinstance(error, PathsRefused):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _refusal(inner)
            if found is not None:
                return found
    return None
