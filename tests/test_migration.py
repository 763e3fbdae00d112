"""State written by an earlier release is moved forward on first start, or refused with what
to do; never misread (issue 13, "Done when"). Against Debian's redis-server, with real
`gslb dns` processes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import dns.query
import redis

from gslb import zonefiles
from gslb.core.stored import digest, normal_document
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import ZONE, RedisServer, free_port, until

NAME = "gslb.example.com"


def layout1_zone(tmp_path: Path) -> dict[str, Any]:
    """The zone as a release before per-resource state stored it in `gslb:zones`."""
    loaded = zonefiles.load_directory(write_zones(tmp_path / "zones", {"z.yaml": ZONE}))
    zone = next(iter(loaded.values()))
    document = normal_document(zone.doc)
    return {
        "document": document,
        "serial": 2024120101,
        "fingerprint": "0" * 64,
        "source": f"file:{zone.path}",
        "file": str(zone.path),
        "file_digest": '"' + digest(document) + '"',  # layout 1 quoted it as an ETag
    }


def answers(node: ServerProcess) -> set[str]:
    reply = dns.query.udp(query(f"www.{NAME}"), node.host, port=node.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


def test_a_redis_of_layout_1_is_migrated_on_first_start(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    client = redis.Redis(port=backing.port)
    client.hset("gslb:zones", NAME, json.dumps(layout1_zone(tmp_path)))
    client.hset("gslb:targets", NAME, "[]")
    client.hset("gslb:health", f"{NAME}/www/192.0.2.10", json.dumps({"health": "down"}))
    node = ServerProcess(None, None, "--redis", url, role="dns")
    try:
        moved = node.wait_for_event("the shared state was moved from layout 1 to layout 2")[0]
        assert moved["zones"] == 1 and moved["refused"] == []
        until(lambda: answers(node) == {"198.51.100.10"})  # zone and health, both read
        assert client.get("gslb:layout") == b"2"
        assert not client.exists("gslb:zones") and not client.exists("gslb:targets")
        meta = json.loads(client.get(f"gslb:zone:{NAME}:meta"))
        assert meta["serial"] == 2024120101, "the serial a secondary has seen stays"
        assert meta["file_digest"] == digest(layout1_zone(tmp_path)["document"])
        # A second node starting on the migrated state reads it as it is.
        again = ServerProcess(None, None, "--redis", url, role="dns")
        try:
            until(lambda: answers(again) == {"198.51.100.10"})
            assert not again.events("the shared state was moved from layout 1 to layout 2")
        finally:
            again.stop()
    finally:
        node.stop()
        backing.kill()


def test_a_redis_of_a_newer_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    client = redis.Redis(port=backing.port)
    client.set("gslb:layout", 3)
    node = ServerProcess(None, None, "--redis", f"redis://127.0.0.1:{backing.port}/0", role="dns")
    try:
        refused = node.wait_for_event("cannot use the shared state")[0]
        assert "layout 3" in str(refused["error"]) and "upgrade" in str(refused["error"])
        node.proc.wait(15)
        assert node.proc.returncode == 1
        assert client.get("gslb:layout") == b"3", "nothing was written"
    finally:
        node.stop()
        backing.kill()


def test_a_data_directory_of_layout_1_is_moved_into_the_mirror(tmp_path: Path) -> None:
    data = tmp_path / "dns-data"
    data.mkdir()
    old = {
        "version": 7,
        "zones": {NAME: json.dumps(layout1_zone(tmp_path))},
        "health": {f"{NAME}/www/192.0.2.10": json.dumps({"health": "down"})},
        "paths_down": [],
    }
    (data / "snapshot.json").write_text(json.dumps(old))
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # Redis is down: only the disk speaks
    node = ServerProcess(None, None, "--redis", nowhere, "--data-dir", str(data), role="dns")
    try:
        node.wait_for_event("answering from the snapshot kept on disk until redis is read")
        assert answers(node) == {"198.51.100.10"}
        assert (data / "snapshot.json.migrated").exists() and not (data / "snapshot.json").exists()
        db = sqlite3.connect(data / "snapshot.db")
        try:
            assert db.execute("SELECT zone FROM zones").fetchall() == [(NAME,)]
        finally:
            db.close()
    finally:
        node.stop()
