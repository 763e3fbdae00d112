"""A DNS node restarting while Redis is down answers from the snapshot it kept on disk
(issue 8), not from nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import dns.query

from gslb.core.state import MemberState
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import ZONE, RedisServer, free_port, run, until


def answers(node: ServerProcess) -> set[str]:
    reply = dns.query.udp(query("www.gslb.example.com"), node.host, port=node.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


def kept_health(path: Path, key: str) -> str | None:
    """The health the node keeps on disk for `key` (None: not there yet)."""
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM health WHERE member = ?", (key,)).fetchone()
    except sqlite3.OperationalError:  # the tables are being made
        return None
    finally:
        db.close()
    return None if row is None else str(json.loads(row[0])["health"])


def test_a_node_restarted_while_redis_is_down_serves_its_last_snapshot(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    # A serve node puts the zone into Redis; the DNS node under test only reads it.
    writer = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
        tmp_path / "writer",
        "--redis",
        url,
        "--no-checker",
    )
    data = tmp_path / "dns-data"
    node = ServerProcess(None, None, "--redis", url, "--data-dir", str(data), role="dns")
    try:
        until(lambda: answers(node) == {"192.0.2.10", "198.51.100.10"})
        run(
            lambda store: store.set_health(
                {"gslb.example.com/www/192.0.2.10": MemberState("down")}
            ),
            url,
        )
        until(lambda: answers(node) == {"198.51.100.10"})
        key = "gslb.example.com/www/192.0.2.10"
        until(lambda: kept_health(data / "snapshot.db", key) == "down")
        node.stop()
        writer.stop()
        backing.kill()
        restarted = ServerProcess(None, None, "--redis", url, "--data-dir", str(data), role="dns")
        try:
            restarted.wait_for_event("answering from the snapshot kept on disk until redis is read")
            assert answers(restarted) == {"198.51.100.10"}  # zones and health, as they were
            restarted.wait_for_event("redis unreachable, answering from the last snapshot")
            assert answers(restarted) == {"198.51.100.10"}
        finally:
            restarted.stop()
    finally:
        node.stop()
        writer.stop()
        backing.kill()
