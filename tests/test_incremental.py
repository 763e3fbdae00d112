"""A snapshot brought up to date change by change is the snapshot built from scratch
(issue 13, "Done when"): random sequences of API writes (pools, members, sites, monitors,
ISPs, whole documents, refused ones included), health changes and load reports, against
Debian's redis-server, followed by a DNS process's Sync through the change logs, give
exactly what a second Sync reads whole. A process that missed part of the log reads it
again whole; one that reconnects to a Redis that lost its history does too."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gslb.common.redis import connect
from gslb.core.snapshot import Snapshot
from gslb.core.state import MemberState
from gslb.core.zone import ZoneSet
from gslb.schema import CONFIG_LOG, HEALTH_LOG, LOAD
from gslb.shell.poolstats import PoolStats
from gslb.shell.sync import Sync
from gslb.state.migrate import ensure_layout
from gslb.state.store import Store
from gslb.state.zones import DocumentError, Who, write_document, write_head, write_pool
from tests.test_redis_state import RedisServer, free_port

ZONE = "inc.example"
SITES = ("lon", "nyc", "fra")
BASE: dict[str, Any] = {
    "zone": ZONE,
    "soa": {"mname": "ns1", "rname": "hostmaster.inc.example."},
    "records": "@ NS ns1\nns1 A 192.0.2.53\nstatic A 192.0.2.80\nsub.deep A 192.0.2.81\n",
    "isps": {"isp-a": ["10.1.0.0/16"], "isp-b": ["10.2.0.0/16"]},
    "sites": {"lon": {"lat": 51.5, "lon": -0.1}, "nyc": {"lat": 40.7, "lon": -74.0}},
    "monitors": {"web": {"type": "tcp", "port": 80}},
    "pools": {
        "www": {
            "monitor": "web",
            "policy": ["health", "proximity", "isp_interleave", "limit"],
            "members": [
                {"address": "10.1.0.1", "site": "lon"},
                {"address": "10.2.0.1", "site": "nyc"},
            ],
        }
    },
}


@pytest.fixture(scope="module")
def backing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.kill()


# --- the operations ------------------------------------------------------------------------

Op = tuple[str, Any]

NAMES = st.sampled_from(["www", "api", "cdn", "a.b", "img"])
ADDRESS = st.builds(lambda isp, n: f"10.{isp}.0.{n}", st.sampled_from([1, 2]), st.integers(1, 9))
MEMBER = st.fixed_dictionaries(
    {"address": ADDRESS},
    optional={
        "site": st.sampled_from([*SITES, "nowhere"]),
        "weight": st.integers(1, 5),
        "state": st.sampled_from(["drained", "disabled"]),
    },
)
POOL = st.fixed_dictionaries(
    {"members": st.lists(MEMBER, min_size=1, max_size=4, unique_by=lambda m: m["address"])},
    optional={
        "monitor": st.sampled_from(["web", "missing"]),
        "ttl": st.integers(5, 60),
        "name": st.sampled_from(["alias", "static", "sub.deep", "x.sub"]),
        "fallback": st.sampled_from(["none", "pool:www", "pool:api", ["10.1.0.99"]]),
        "policy": st.sampled_from([["health", "round_robin", "limit"], ["least_load", "limit"]]),
    },
)
OPS = st.one_of(
    st.tuples(st.just("put_pool"), st.tuples(NAMES, POOL)),
    st.tuples(st.just("delete_pool"), NAMES),
    st.tuples(st.just("drain"), st.tuples(NAMES, ADDRESS)),
    st.tuples(st.just("site"), st.tuples(st.sampled_from(SITES), st.booleans())),
    st.tuples(st.just("monitor"), st.tuples(st.integers(1, 5), st.booleans())),
    st.tuples(st.just("isps"), st.booleans()),
    st.tuples(st.just("records"), st.integers(0, 3)),
    st.tuples(st.just("health"), st.tuples(NAMES, ADDRESS, st.sampled_from(["up", "down"]))),
    st.tuples(st.just("load"), st.tuples(ADDRESS, st.integers(0, 100))),
)

WHO = Who("api:test", "test", "zones/inc.example")


async def apply(store: Store, op: Op) -> None:
    """One operation as the API would make it; a refused one changes nothing (as there)."""
    kind, arg = op
    try:
        if kind == "put_pool":
            name, pool = arg
            await store.change(ZONE, _pool(name, lambda _old, pool=pool: copy.deepcopy(pool)))
        elif kind == "delete_pool":
            await store.change(ZONE, _pool(arg, lambda old: _present(old) and None))
        elif kind == "drain":
            name, address = arg
            await store.change(ZONE, _pool(name, lambda old, a=address: _drained(old, a)))
        elif kind == "site":
            site, keep = arg
            value = {"lat": 10.0 + len(site), "lon": 5.0} if keep else None
            await store.change(ZONE, _head(lambda h: _item(h, "sites", site, value)))
        elif kind == "monitor":
            interval, keep = arg
            value = {"type": "tcp", "port": 80, "interval": interval} if keep else None
            await store.change(ZONE, _head(lambda h: _item(h, "monitors", "web", value)))
        elif kind == "isps":
            blocks = ["10.1.0.0/16"] if arg else ["10.1.0.0/17", "10.1.128.0/17"]
            await store.change(ZONE, _head(lambda h: _item(h, "isps", "isp-a", blocks)))
        elif kind == "records":
            document = await store.document(ZONE)
            assert document is not None
            document["records"] = BASE["records"] + "".join(
                f"r{i} A 192.0.2.{100 + i}\n" for i in range(arg)
            )
            await store.change(ZONE, lambda view: write_document(view, ZONE, document, WHO))
        elif kind == "health":
            name, address, word = arg
            await store.set_health({f"{ZONE}/{name}/{address}": MemberState(word, 0.01)})
        elif kind == "load":
            address, sessions = arg
            report = {"sessions": sessions, "cpu": None, "traffic": None, "at": time.time()}
            await store.redis.hset(LOAD, address, json.dumps(report))
    except DocumentError:
        pass


def _present(old: Any) -> bool:
    if old is None:
        raise DocumentError([("", "no such pool")], status=404)
    return True


def _drained(old: Any, address: str) -> Any:
    _present(old)
    members = [{**m, "state": "drained"} if m["address"] == address else m for m in old["members"]]
    return {**old, "members": members}


def _item(head: dict[str, Any], collection: str, name: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(head)
    items = out.setdefault(collection, {})
    if value is None:
        items.pop(name, None)
    else:
        items[name] = value
    if not items:
        del out[collection]
    return out


def _pool(name: str, change: Callable[[Any], Any]) -> Any:
    return lambda view: write_pool(view, ZONE, name, change, lambda p: p, WHO)


def _head(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    return lambda view: write_head(view, ZONE, change, lambda h: h, WHO)


# --- following, and comparing with a read from scratch --------------------------------------


def empty() -> Snapshot:
    return Snapshot(1, ZoneSet({}))


class Follower:
    """A DNS process's Sync, without listeners: the snapshot it keeps, swapped whole."""

    def __init__(self, store: Store) -> None:
        self.snapshot = empty()
        self.sync = Sync(store, lambda: self.snapshot, self._install, pool_stats=PoolStats())

    def _install(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    async def catch_up(self) -> None:
        """Apply every entry the logs hold now (and the load, re-read as the loop does)."""
        sync = self.sync
        target = await sync.store.position()
        for _ in range(1000):
            assert sync.position is not None
            if (
                sync.position.config_seq >= target.config_seq
                and sync.position.health_seq >= target.health_seq
            ):
                break
            await sync.follow_once(block=0.05)
        assert await sync.settled(30)
        await sync.refresh_load()


def same(a: Snapshot, b: Snapshot) -> None:
    """Zones and state equal, but for what depends on when it was read (versions, cold
    start deadlines)."""
    assert set(a.zones.zones) == set(b.zones.zones)
    for apex, zone in a.zones.zones.items():
        other = b.zones.zones[apex]
        assert dict(zone.pools_by_name) == dict(other.pools_by_name)
        assert zone == other
    strip = {"cold": frozenset(), "cold_deadline": 0.0}
    assert dataclasses.replace(a.state, **strip) == dataclasses.replace(b.state, **strip)


async def scenario(url: str, ops: list[Op]) -> None:
    client = connect(url)
    try:
        await client.flushall()
        await ensure_layout(client)
        store = Store(client)
        await store.change(ZONE, lambda view: write_document(view, ZONE, BASE, WHO))
        follower = Follower(store)
        await follower.sync.resync()
        for i, op in enumerate(ops):
            await apply(store, op)
            if i % 3 == 2:  # sometimes one change at a time, sometimes several together
                await follower.catch_up()
        await follower.catch_up()
        scratch = Follower(store)
        await scratch.sync.resync()
        same(follower.snapshot, scratch.snapshot)
        assert follower.sync.resyncs == 1, "nothing but the first read was whole"
        # What /metrics says of the pools, kept change by change, is what counting afresh says.
        counted = PoolStats()
        counted.rebuild(scratch.snapshot.zones.zones.values(), scratch.snapshot.state.health)
        assert follower.sync.pool_stats is not None
        assert follower.sync.pool_stats.zones == counted.zones
    finally:
        await client.aclose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(OPS, min_size=1, max_size=25))
def test_changes_applied_one_by_one_give_the_snapshot_built_from_scratch(
    backing: str, ops: list[Op]
) -> None:
    asyncio.run(scenario(backing, ops))


def test_the_incremental_snapshot_shares_what_did_not_change(backing: str) -> None:
    async def go() -> None:
        client = connect(backing)
        try:
            await client.flushall()
            await ensure_layout(client)
            store = Store(client)
            document = copy.deepcopy(BASE)
            for i in range(50):
                document["pools"][f"p{i}"] = {"members": [{"address": f"10.1.1.{i + 1}"}]}
            await store.change(ZONE, lambda view: write_document(view, ZONE, document, WHO))
            follower = Follower(store)
            await follower.sync.resync()
            before = next(iter(follower.snapshot.zones.zones.values()))
            await apply(store, ("drain", ("p7", "10.1.1.8")))
            await follower.catch_up()
            after = next(iter(follower.snapshot.zones.zones.values()))
            assert after.pools_by_name["p7"].members[0].admin == "drained"
            assert after.pools_by_name["p8"] is before.pools_by_name["p8"]  # shared, not copied
            assert after.nodes is not before.nodes  # the apex SOA has the new serial
            assert after.pools_by_name["www"] is before.pools_by_name["www"]
        finally:
            await client.aclose()

    asyncio.run(go())


def test_a_node_that_missed_part_of_the_log_reads_everything_again(backing: str) -> None:
    async def go() -> None:
        client = connect(backing)
        try:
            await client.flushall()
            await ensure_layout(client)
            store = Store(client)
            await store.change(ZONE, lambda view: write_document(view, ZONE, BASE, WHO))
            follower = Follower(store)
            await follower.sync.resync()
            for i in range(5):
                await apply(store, ("put_pool", (f"n{i}", {"members": [{"address": "10.1.0.5"}]})))
                await store.set_health({f"{ZONE}/www/10.1.0.1": MemberState("down", 0.02)})
            # The logs are trimmed past where the follower stands, as MAXLEN would.
            redis.Redis.from_url(backing).xtrim(CONFIG_LOG, maxlen=1, approximate=False)
            redis.Redis.from_url(backing).xtrim(HEALTH_LOG, maxlen=1, approximate=False)
            await follower.catch_up()
            assert follower.sync.resyncs == 2, "the gap was noticed and everything read"
            scratch = Follower(store)
            await scratch.sync.resync()
            same(follower.snapshot, scratch.snapshot)
            assert "n4" in next(iter(follower.snapshot.zones.zones.values())).pools_by_name
        finally:
            await client.aclose()

    asyncio.run(go())


def test_a_reconnect_goes_on_from_the_log_unless_redis_lost_its_history(
    backing: str, tmp_path: Path
) -> None:
    async def go() -> None:
        client = connect(backing)
        try:
            await client.flushall()
            await ensure_layout(client)
            store = Store(client)
            await store.change(ZONE, lambda view: write_document(view, ZONE, BASE, WHO))
            follower = Follower(store)
            await follower.sync.resync()
            await apply(store, ("drain", ("www", "10.1.0.1")))
            await follower.catch_up()
            assert await follower.sync._continuous(), "the log still holds our last entry"
            # Redis comes back without its history (restarted empty, then written again).
            await client.flushall()
            await ensure_layout(client)
            await store.change(ZONE, lambda view: write_document(view, ZONE, BASE, WHO))
            assert not await follower.sync._continuous()
        finally:
            await client.aclose()

    asyncio.run(go())
