"""Moving the shared state from an earlier key layout to this one, on first start.

Layout 1 (releases before per-resource state) kept each zone as one JSON document in the
hash `gslb:zones` and its checker targets in `gslb:targets`. A node of this release that
finds them (and no `gslb:layout`) converts every zone into its parts, writes them the way
any write is made (log entry, audit record), removes the old keys and sets `gslb:layout` to 2,
holding a lock so that nodes starting together migrate once. A layout newer than this
release's is refused with what to do: nothing is ever read as a layout it is not.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from typing import Any

import redis.asyncio as aioredis

from gslb.common import logs
from gslb.core.masterfile import Limits
from gslb.core.stored import Meta, encode_node
from gslb.core.zonedoc import soa_rrset
from gslb.schema import EPOCH, LAYOUT, LAYOUT1_TARGETS, LAYOUT1_ZONES, LAYOUT_VERSION
from gslb.state.store import Store, ZoneView
from gslb.state.zones import Checked, DocumentError, Outcome, Who, check_document, create_write

log = logs.get("gslb.migrate")

LOCK = "gslb:migrating"
REFUSED = "gslb:layout1:refused"  # zones of layout 1 that this release refuses, kept as they were
LOCK_SECONDS = 300


class LayoutError(RuntimeError):
    """The shared state is in a layout this release cannot read or move forward."""


def layout1_parts(
    zones: dict[str, Any],
) -> dict[str, tuple[Meta, Any, dict[str, str], dict[str, str]]]:
    """Layout-1 stored zones (name -> JSON) as the parts of this layout (for the snapshot a
    node kept on disk)."""
    out = {}
    for name, raw in zones.items():
        checked, meta = _convert(name, raw)
        out[name] = (meta, checked.head, checked.nodes, checked.pool_texts)
    return out


def _convert(name: str, raw: str | bytes | dict[str, Any]) -> tuple[Checked, Meta]:
    stored = json.loads(raw) if isinstance(raw, str | bytes) else raw
    checked = check_document(stored["document"], Limits())
    serial = int(stored["serial"])
    soa = soa_rrset(checked.doc, checked.static, serial)
    digest = stored.get("file_digest")
    meta = Meta(
        int.from_bytes(soa.rdatas[0][-1][:4], "big"),  # type: ignore[index]
        encode_node([soa]),
        stored.get("source") or "migrated",
        stored.get("file"),
        # Layout 1 quoted its digests as ETags; the digest of the same document is the same.
        digest.strip('"') if isinstance(digest, str) else None,
        1,
        checked.static.soa is not None,
        checked.static.soa is None
        and checked.doc.soa is not None
        and checked.doc.soa.serial is None,
    )
    return checked, meta


async def ensure_layout(redis: aioredis.Redis, wait: float = LOCK_SECONDS) -> None:
    """Make sure the shared state is in this release's layout, migrating it if it is older,
    and that it has its epoch."""
    await _layout(redis, wait)
    await redis.set(EPOCH, secrets.token_hex(8), nx=True)


async def _layout(redis: aioredis.Redis, wait: float) -> None:
    found = await redis.get(LAYOUT)
    if found is not None:
        version = int(found)
        if version == LAYOUT_VERSION:
            return
        if version > LAYOUT_VERSION:
            raise LayoutError(
                f"the shared state is in layout {version}, written by a newer gslb; this one "
                f"reads layout {LAYOUT_VERSION}: upgrade it (or point it at another Redis)"
            )
        raise LayoutError(f"unknown layout {version} in {LAYOUT}")
    if not await redis.exists(LAYOUT1_ZONES):
        await redis.setnx(LAYOUT, LAYOUT_VERSION)  # a new, empty state
        return
    me = f"{socket.gethostname()}/{os.getpid()}"
    if not await redis.set(LOCK, me, nx=True, ex=LOCK_SECONDS):
        log.info(
            "another node is migrating the shared state; waiting", holder=await redis.get(LOCK)
        )
        for _ in range(int(wait * 10)):
            if await redis.get(LAYOUT) is not None:
                return await _layout(redis, wait)
            await asyncio.sleep(0.1)
        raise LayoutError(
            f"the shared state is still in layout 1 after {wait:g} s: the node holding {LOCK} "
            "did not finish; delete that key and start again"
        )
    try:
        await _migrate(redis)
    finally:
        await redis.delete(LOCK)


async def _migrate(redis: aioredis.Redis) -> None:
    store = Store(redis)
    old: dict[Any, Any] = await redis.hgetall(LAYOUT1_ZONES)
    moved, refused = [], []
    for key, raw in sorted(old.items()):
        name = key.decode() if isinstance(key, bytes) else key
        try:
            checked, meta = await asyncio.to_thread(_convert, name, raw)
        except (DocumentError, ValueError, KeyError, TypeError) as e:
            await redis.hset(REFUSED, name, raw)
            refused.append(name)
            log.error(
                "a zone of layout 1 is refused by this release: kept as it was in "
                f"{REFUSED}; fix it and PUT it through the API (or its zone file)",
                zone=name,
                error=str(e),
            )
            continue
        who = Who(meta.source, "migrate", f"zones/{name}")

        async def edit(
            view: ZoneView,
            name: str = name,
            checked: Checked = checked,
            meta: Meta = meta,
            who: Who = who,
        ) -> tuple[Any, Outcome]:
            return create_write(name, checked, meta, who), Outcome(None, checked.document)

        await store.change(name, edit)
        moved.append(name)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.unlink(LAYOUT1_ZONES, LAYOUT1_TARGETS)
        pipe.set(LAYOUT, LAYOUT_VERSION)
        await pipe.execute()
    log.warning(
        "the shared state was moved from layout 1 to layout 2",
        zones=len(moved),
        refused=refused,
    )
