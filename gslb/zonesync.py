"""`gslb zones apply DIR` and `gslb zones export`: zone files to and from a running API.

`apply` validates the whole directory first (the same `file:line` errors as `check-zones`)
and sends nothing unless every file loads; then it PUTs each zone, which the API applies
idempotently. `export` writes each zone as the YAML file it would be in `zones/`, so
export -> apply -> export gives the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gslb import zonefiles
from gslb.api import documents
from gslb.api.auth import LOCAL_TOKEN_FILE
from gslb.apiclient import ApiClient, ApiFailure, path
from gslb.core.zonedoc import check_zone_name

TOKEN_ENV = "GSLB_API_TOKEN"


def token_of(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return str(args.token_file.read_text(encoding="utf-8").strip())
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    local = Path("data") / LOCAL_TOKEN_FILE
    return local.read_text(encoding="utf-8").strip() if local.exists() else None


def export_path(out: Path, name: str) -> Path | None:
    """Where zone `name` is exported under `out`: `out/NAME.yaml`, for a name that is a host
    name and a file that stays inside `out`; None otherwise."""
    try:
        check_zone_name(name)
    except ValueError:
        return None
    path = (out / f"{name}.yaml").resolve()
    return path if path.parent == out.resolve() else None


def apply(client: ApiClient, directory: Path, prune: bool) -> int:
    loaded = zonefiles.load_or_report(directory)
    if loaded is None:
        return 1
    names = set()
    for zone in sorted(loaded.values(), key=lambda z: z.path):
        name = documents.zone_key(zone.doc.zone)
        names.add(name)
        # A directory applied whole says what nests in it: nested zones are meant.
        put = client.call("PUT", path("zones", name, query={"overlap": "allow"}), zone.document)
        print(f"{name}: {'created' if put.status == 201 else 'applied'} from {zone.path}")
    if prune:
        for item in client.call("GET", path("zones")).json()["zones"]:
            if item["zone"] not in names:
                client.call("DELETE", path("zones", item["zone"]))
                print(f"{item['zone']}: deleted (not in {directory})")
    return 0


def export(client: ApiClient, out: Path | None, only: list[str] | None) -> int:
    names = [z["zone"] for z in client.call("GET", path("zones")).json()["zones"]]
    if only:
        wanted = [documents.zone_key(n) for n in only]
        missing = [n for n in wanted if n not in names]
        if missing:
            print(f"gslb zones export: no zone {', '.join(missing)}", file=sys.stderr)
            return 1
        names = wanted
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = client.call("GET", path("zones", name, "export")).body
        if out is None:
            sys.stdout.write(("---\n" if len(names) > 1 else "") + text.decode())
            continue
        where = export_path(out, name)
        if where is None:
            print(f"gslb zones export: {name!r} is not a host name: not written", file=sys.stderr)
            return 1
        where.write_bytes(text)
        print(f"{name}: {where}")
    return 0


def drain(args: argparse.Namespace) -> int:
    """`gslb drain ZONE POOL ADDRESS [--at TIME | --in SECONDS]`: POST .../drain."""
    client = ApiClient(args.api, token_of(args))
    where = path("zones", args.zone, "pools", args.pool, "members", args.address, "drain")
    plan = {"at": args.at} if args.at else {"in": args.delay} if args.delay is not None else None
    try:
        member = client.call("POST", where, plan).json()
    except ApiFailure as e:
        print(f"gslb drain: {e}", file=sys.stderr)
        return 1
    if member.get("drain_at"):
        print(f"{args.address} drains at {member['drain_at']}; the pool's TTL drops one TTL ahead")
    else:
        print(f"{args.address} drained")
    return 0


def main(args: argparse.Namespace) -> int:
    client = ApiClient(args.api, token_of(args))
    try:
        if args.zones_command == "apply":
            return apply(client, args.directory, args.prune)
        return export(client, args.out, args.zone)
    except ApiFailure as e:
        print(f"gslb zones {args.zones_command}: {e}", file=sys.stderr)
        return 1
