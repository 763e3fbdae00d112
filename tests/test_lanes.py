"""A big write in one zone delays nothing in the others, and health never waits behind
configuration (issue 13): against a real `gslb dns` node on Debian's redis-server, a drain in
one zone and a health change both show in the answers while the node is still reading a
zone of 200 000 records written just before them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.query
import dns.rcode

from gslb.common.redis import connect
from gslb.core.state import MemberState
from gslb.state.migrate import ensure_layout
from gslb.state.store import Store
from gslb.state.zones import Who, write_document, write_pool
from tests.helpers import query
from tests.server import ServerProcess
from tests.test_redis_state import RedisServer, free_port, until

SMALL = {
    "zone": "small.example",
    "soa": {"mname": "ns1", "rname": "hostmaster.small.example."},
    "records": "@ NS ns1\nns1 A 192.0.2.53\n",
    "pools": {
        "www": {"members": [{"address": "192.0.2.10"}, {"address": "192.0.2.11"}]},
        "api": {"members": [{"address": "192.0.2.20"}, {"address": "192.0.2.21"}]},
    },
}
RECORDS = 200_000


def big() -> dict[str, object]:
    lines = ["@ NS ns1", "ns1 A 192.0.2.53"]
    lines += [f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(RECORDS)]
    return {
        "zone": "big.example",
        "soa": {"mname": "ns1", "rname": "hostmaster.big.example."},
        "records": "\n".join(lines) + "\n",
    }


def answers(node: ServerProcess, name: str) -> set[str]:
    reply = dns.query.udp(query(name), node.host, port=node.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


def big_is_served(node: ServerProcess) -> bool:
    reply = dns.query.udp(
        query(f"h{RECORDS - 1}.big.example"), node.host, port=node.port, timeout=2
    )
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def test_a_big_zone_write_delays_neither_other_zones_nor_health(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    who = Who("api:test", "put", "zones")

    async def setup() -> None:
        client = connect(url)
        try:
            await ensure_layout(client)
            await Store(client).change(
                "small.example", lambda v: write_document(v, "small.example", SMALL, who)
            )
        finally:
            await client.aclose()

    asyncio.run(setup())
    document = big()
    node = ServerProcess(None, None, "--redis", url, role="dns")
    try:
        until(lambda: answers(node, "www.small.example") == {"192.0.2.10", "192.0.2.11"})

        async def writes() -> None:
            client = connect(url)
            store = Store(client)
            try:
                await store.change(
                    "big.example", lambda v: write_document(v, "big.example", document, who)
                )

                def drained(pool: object) -> object:
                    assert isinstance(pool, dict)
                    first, second = pool["members"]
                    return {**pool, "members": [{**first, "state": "drained"}, second]}

                await store.change(
                    "small.example",
                    lambda v: write_pool(v, "small.example", "www", drained, lambda p: p, who),
                )
                await store.set_health({"small.example/api/192.0.2.20": MemberState("down")})
            finally:
                await client.aclose()

        asyncio.run(writes())
        # Both changes written after the big zone are answered before the big zone is.
        seen_drain = seen_health = False
        deadline = time.monotonic() + 60
        while not (seen_drain and seen_health):
            assert time.monotonic() < deadline, "the small changes never showed"
            served = big_is_served(node)
            if not seen_drain and answers(node, "www.small.example") == {"192.0.2.11"}:
                assert not served, "the drain waited for the big zone"
                seen_drain = True
            if not seen_health and answers(node, "api.small.example") == {"192.0.2.21"}:
                assert not served, "the health change waited for the big zone"
                seen_health = True
        until(lambda: big_is_served(node), 120)  # and the big zone comes in its own time
    finally:
        node.stop()
        backing.kill()
