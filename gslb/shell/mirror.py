"""The last state read from Redis, kept on disk (SQLite), changed as it changes.

A DNS node restarting while Redis is down answers from this instead of from nothing. It
holds what the snapshot is built from, in the parts Redis keeps (gslb.core.stored): each
zone's meta and head, its static RRsets per owner and its pools, and the decided health of
the members. Changes are collected as the node applies them and written every few seconds
in one transaction, in a thread: a change costs a few rows, not a copy of everything.

A node of an earlier release kept `snapshot.json` (one JSON document of whole zones) here;
the first start of this release moves it into the database and renames the file
`snapshot.json.migrated`, so it is never read as something it is not.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gslb.common import logs
from gslb.core.stored import Meta

log = logs.get("gslb.mirror")

SCHEMA = """
CREATE TABLE IF NOT EXISTS layout (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS zones (zone TEXT PRIMARY KEY, meta TEXT NOT NULL, head TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rrsets (
    zone TEXT NOT NULL, owner TEXT NOT NULL, node TEXT NOT NULL, PRIMARY KEY (zone, owner));
CREATE TABLE IF NOT EXISTS pools (
    zone TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (zone, name));
CREATE TABLE IF NOT EXISTS health (member TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
LAYOUT = 2


@dataclass(frozen=True, slots=True)
class Kept:
    """What the mirror holds: zones by name as (meta, head, rrsets, pools), and health."""

    zones: dict[str, tuple[Meta, Any, dict[str, str], dict[str, str]]]
    health: dict[str, str]


class Mirror:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ops: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()  # the loop adds operations while a thread writes them

    # --- changes, collected on the event loop -------------------------------------------

    def _add(self, sql: str, *args: Any) -> None:
        with self._lock:
            self._ops.append((sql, args))

    def _many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._lock:
            self._ops.append((sql, ("many", list(rows))))

    def zone_whole(
        self,
        zone: str,
        meta: Meta,
        head: Any,
        rrsets: dict[str, str | None],
        pools: dict[str, str | None],
    ) -> None:
        self.zone_gone(zone)
        self._add("INSERT INTO zones VALUES (?, ?, ?)", zone, meta.to_json(), json.dumps(head))
        self._many(
            "INSERT INTO rrsets VALUES (?, ?, ?)",
            ((zone, o, n) for o, n in rrsets.items() if n is not None),
        )
        self._many(
            "INSERT INTO pools VALUES (?, ?, ?)",
            ((zone, p, d) for p, d in pools.items() if d is not None),
        )

    def zone_items(
        self,
        zone: str,
        meta: Meta,
        rrsets: dict[str, str | None],
        pools: dict[str, str | None],
    ) -> None:
        self._add("UPDATE zones SET meta = ? WHERE zone = ?", meta.to_json(), zone)
        for table, column, items in (("rrsets", "owner", rrsets), ("pools", "name", pools)):
            self._many(
                f"DELETE FROM {table} WHERE zone = ? AND {column} = ?",
                ((zone, k) for k, v in items.items() if v is None),
            )
            self._many(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)",
                ((zone, k, v) for k, v in items.items() if v is not None),
            )

    def zone_gone(self, zone: str) -> None:
        for table in ("zones", "rrsets", "pools"):
            self._add(f"DELETE FROM {table} WHERE zone = ?", zone)

    def keep_only(self, zones: Iterable[str]) -> None:
        names = sorted(zones)
        marks = ",".join("?" * len(names))
        for table in ("zones", "rrsets", "pools"):
            self._add(f"DELETE FROM {table} WHERE zone NOT IN ({marks})", *names)

    def health_whole(self, health: dict[str, str]) -> None:
        self._add("DELETE FROM health")
        self.health(health)

    def health(self, changes: dict[str, str]) -> None:
        self._many("INSERT OR REPLACE INTO health VALUES (?, ?)", changes.items())

    # --- writing and reading, in a thread -----------------------------------------------

    async def flush(self) -> None:
        import asyncio

        with self._lock:
            ops, self._ops = self._ops, []
        if ops:
            await asyncio.to_thread(self._write, ops)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        if db.execute("SELECT version FROM layout").fetchone() is None:
            db.execute("INSERT INTO layout VALUES (?)", (LAYOUT,))
        return db

    def _write(self, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
        db = self._connect()
        try:
            db.execute("BEGIN")
            for sql, args in ops:
                if args and args[0] == "many":
                    db.executemany(sql, args[1])
                else:
                    db.execute(sql, args)
            db.execute("COMMIT")
        finally:
            db.close()

    def read(self) -> Kept | None:
        """What the mirror holds, or None when there is none yet."""
        self._migrate_json()
        if not self.path.exists():
            return None
        db = self._connect()
        try:
            (version,) = db.execute("SELECT version FROM layout").fetchone()
            if version != LAYOUT:
                raise ValueError(f"{self.path}: layout {version}, this release reads {LAYOUT}")
            zones: dict[str, tuple[Meta, Any, dict[str, str], dict[str, str]]] = {}
            for zone, meta, head in db.execute("SELECT zone, meta, head FROM zones"):
                zones[zone] = (Meta.from_json(meta), json.loads(head), {}, {})
            for zone, owner, node in db.execute("SELECT zone, owner, node FROM rrsets"):
                if zone in zones:
                    zones[zone][2][owner] = node
            for zone, name, doc in db.execute("SELECT zone, name, doc FROM pools"):
                if zone in zones:
                    zones[zone][3][name] = doc
            health = dict(db.execute("SELECT member, value FROM health"))
        finally:
            db.close()
        return Kept(zones, health) if zones or health else None

    def _migrate_json(self) -> None:
        """Move an earlier release's snapshot.json into the database, once."""
        old = self.path.with_name("snapshot.json")
        if not old.exists() or self.path.exists():
            return
        from gslb.state.migrate import layout1_parts

        try:
            raw = json.loads(old.read_text(encoding="utf-8"))
            parts = layout1_parts(raw.get("zones") or {})
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("snapshot.json of an earlier release unreadable, ignored", error=str(e))
            old.rename(old.with_name("snapshot.json.unreadable"))
            return
        for zone, (meta, head, rrsets, pools) in parts.items():
            self.zone_whole(zone, meta, head, dict(rrsets), dict(pools))
        self.health(dict(raw.get("health") or {}))
        with self._lock:
            ops, self._ops = self._ops, []
        self._write(ops)
        old.rename(old.with_name("snapshot.json.migrated"))
        log.info("snapshot.json of an earlier release moved into", file=str(self.path))
