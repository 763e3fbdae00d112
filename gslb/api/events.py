"""`GET /api/v1/events`: health and configuration changes as Server-Sent Events.

One subscription to Redis's event channel per process, fanned out to every open stream
(a dashboard per operator must not mean a Redis connection per operator). Each stream gets
`event: <kind>` (`config`, `health`, ...) with the change as JSON, `event: redis` when the
server's own connection to Redis is lost or back, and a comment every few seconds so that
proxies keep the connection and clients notice a dead one. A client too slow to keep up is
disconnected (it reconnects and reloads) rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from gslb.common import logs
from gslb.common.redis import REDIS_ERRORS
from gslb.schema import EVENTS

log = logs.get("gslb.api")

KEEPALIVE = 10.0  # seconds between comments on an idle stream
QUEUE = 256  # events a stream may fall behind before it is dropped


class EventHub:
    def __init__(self, redis: aioredis.Redis, redis_up: Callable[[], bool]) -> None:
        self.redis = redis
        # The process's own view of Redis (its sync loop's): a pub/sub connection can sit
        # through an outage without noticing, reconnecting quietly.
        self.redis_up = redis_up
        self.streams: set[asyncio.Queue[tuple[str, str] | None]] = set()
        self.connected = False
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> asyncio.Queue[tuple[str, str] | None]:
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE)
        self.streams.add(queue)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        self.streams.discard(queue)

    def send(self, kind: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, sort_keys=True)
        for queue in list(self.streams):
            try:
                queue.put_nowait((kind, text))
            except asyncio.QueueFull:
                self.streams.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)  # the stream ends; its client reconnects

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(EVENTS)
                self._state(self.redis_up())
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    self._state(self.redis_up())
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                        kind = str(event.get("kind", "change"))
                    except (ValueError, AttributeError):
                        continue  # not one of ours
                    self.send(kind, event)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS:
                self._state(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(*REDIS_ERRORS, RuntimeError):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call, unused-ignore]

    def _state(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.send("redis", {"state": "up" if up else "down"})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for queue in list(self.streams):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


def _concerns(data: str, visible: Callable[[str], bool]) -> bool:
    """Whether an event is about a zone a scoped token may see."""
    try:
        event = json.loads(data)
    except ValueError:
        return False
    zones = [*(event.get("zones") or []), *(event.get("removed") or [])]
    members = [*(event.get("members") or []), *(event.get("changes") or {})]
    zones += [str(m).partition("/")[0] for m in members]
    return any(visible(z) for z in zones)


async def stream(
    request: web.Request,
    hub: EventHub,
    version: int,
    visible: Callable[[str], bool] | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    queue = hub.subscribe()
    try:
        hello = {"version": version, "redis": "up" if hub.redis_up() else "down"}
        await response.write(f"event: hello\ndata: {json.dumps(hello)}\n\n".encode())
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if item is None:
                break
            kind, data = item
            if visible is not None and not _concerns(data, visible):
                continue
            await response.write(f"event: {kind}\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass  # the client went away
    finally:
        hub.unsubscribe(queue)
    return response
