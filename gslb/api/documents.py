"""Zone documents as the API and `gslb zones` see them: normalized, checked whole, edited.

A document is stored in one normal form (defaults left out, records inline, keys in the order
of DESIGN.md §5), so that GET, export and PUT round-trip exactly and an ETag changes only when
the content does. Every edit (a pool, a member, a monitor...) is applied to a copy of the zone
document, and the result is checked whole — schema, references and compilation — before
anything is stored: a document that would not serve is refused with every fault's field path.

Everything here is a plain function over JSON values; the HTTP handlers and the Redis
transaction around them are in gslb.api.routes and gslb.state.store.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any

import pydantic
import yaml

from gslb.common.gcpause import gc_paused
from gslb.core.targets import targets_of
from gslb.core.zonedoc import ZoneDoc, ZoneError, compile_zone, format_loc
from gslb.state.store import StoredZone
from gslb.zonefiles import LoadedZone

KEY_ORDER = (
    "zone",
    "ttl",
    "soa",
    "records",
    "isps",
    "sites",
    "monitors",
    "topology",
    "pools",
)

Json = Any


class DocumentError(ValueError):
    """A refused document: `faults` are (field path, reason), the first one the headline."""

    def __init__(self, faults: list[tuple[str, str]], status: int = 400) -> None:
        self.faults = faults
        self.status = status
        field, reason = faults[0]
        super().__init__(f"{field}: {reason}" if field else reason)


class NotFound(DocumentError):
    def __init__(self, what: str, field: str = "") -> None:
        super().__init__([(field, f"{what} does not exist")], status=404)


class Conflict(DocumentError):
    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__([(field, reason)], status=409)


def zone_key(name: str) -> str:
    """The name a zone is stored and addressed under: no trailing dot, lower case."""
    return name.strip().rstrip(".").lower()


def normalize(doc: ZoneDoc) -> dict[str, Json]:
    data = doc.model_dump(mode="json", exclude_defaults=True, exclude={"records_file"})
    data["zone"] = doc.zone
    if doc.records:
        # Trailing blanks mean nothing in a master file, and would keep the exported YAML
        # from showing the records as a plain block.
        data["records"] = "".join(line.rstrip() + "\n" for line in doc.records.splitlines())
    return {key: data[key] for key in KEY_ORDER if key in data}


def from_file(loaded: LoadedZone) -> StoredZone:
    """What a zone file stores: its document with the records inlined."""
    doc = loaded.doc.model_copy(update={"records": loaded.records, "records_file": None})
    document = normalize(doc)
    return StoredZone(
        zone_key(loaded.doc.zone),
        document,
        loaded.serial,
        loaded.fingerprint,
        f"file:{loaded.path}",
        str(loaded.path),
        etag(document),
        tuple(targets_of(loaded.doc)),
    )


def audit_record(
    who: str, action: str, zone: str, resource: str, before: Json, after: Json
) -> dict[str, Json]:
    return {
        "at": round(time.time(), 3),
        "who": who,
        "action": action,
        "zone": zone,
        "resource": resource,
        "before": before,
        "after": after,
    }


def etag(value: Json) -> str:
    """A strong entity tag for one resource's JSON value."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:24] + '"'


def check(data: Json, before: StoredZone | None, source: str) -> StoredZone:
    """Validate a whole zone document and make the StoredZone to write, or DocumentError.

    The automatic serial stays while the served content is unchanged and grows otherwise.
    """
    if not isinstance(data, dict):
        raise DocumentError([("", "a zone document is a JSON object")])
    if "records_file" in data:
        raise DocumentError([("records_file", "the API takes the records inline, in records")])
    try:
        doc = ZoneDoc.model_validate(data)
    except pydantic.ValidationError as e:
        raise DocumentError(
            [(format_loc(tuple(err["loc"])), err["msg"]) for err in e.errors()]
        ) from None
    seen: list[str] = []

    def automatic_serial(fingerprint: str) -> int:
        seen.append(fingerprint)
        if before is not None and before.fingerprint == fingerprint:
            return before.serial
        floor = before.serial + 1 if before is not None else 1
        return min(max(int(time.time()), floor), 2**32 - 1)

    try:
        with gc_paused():
            zone = compile_zone(doc, doc.records, automatic_serial)
    except ZoneError as e:
        if e.in_records:
            where = f"line {e.line}: " if e.line is not None else ""
            raise DocumentError([("records", where + e.reason)]) from None
        raise DocumentError([(format_loc(e.path), e.reason)]) from None
    serial = int.from_bytes(zone.soa.rdatas[0][-1][:4], "big")  # type: ignore[index]
    return StoredZone(
        zone_key(doc.zone),
        normalize(doc),
        serial,
        seen[0] if seen else (before.fingerprint if before else ""),
        source,
        before.file if before else None,
        before.file_digest if before else None,
        tuple(targets_of(doc, zone.pools_by_name)),
    )


def merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7396 JSON merge patch: objects merge key by key, null removes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Resources inside a zone document. A path names where a resource lives in the document
# (`("pools", "www")`); members are found in their pool's list by address.

COLLECTIONS = {"pools": "pool", "monitors": "monitor", "sites": "site", "isps": "ISP"}


def get_item(document: dict[str, Json], collection: str, name: str) -> Json:
    items = document.get(collection) or {}
    if name not in items:
        raise NotFound(f"{COLLECTIONS[collection]} {name!r}", f"{collection}.{name}")
    return items[name]


def with_item(
    document: dict[str, Json], collection: str, name: str, value: Json | None
) -> dict[str, Json]:
    """The document with `collection[name]` set to `value` (None: removed)."""
    out = copy.deepcopy(document)
    items = out.setdefault(collection, {})
    if value is None:
        if name not in items:
            raise NotFound(f"{COLLECTIONS[collection]} {name!r}", f"{collection}.{name}")
        del items[name]
    else:
        items[name] = value
    if not items:
        del out[collection]
    return out


def member_index(pool: Json, address: str) -> int:
    for i, member in enumerate(pool.get("members") or []):
        if _same_address(member.get("address"), address):
            return i
    raise NotFound(f"member {address!r}")


def _same_address(a: object, b: str) -> bool:
    try:
        return ipaddress.ip_address(str(a)) == ipaddress.ip_address(b)
    except ValueError:
        return str(a) == b


def edit_member(
    document: dict[str, Json],
    pool_name: str,
    address: str,
    change: Callable[[Json], Json | None],
) -> tuple[dict[str, Json], Json, Json | None]:
    """The document with one member replaced by `change(member)` (None: removed);
    returns (document, before, after)."""
    out = copy.deepcopy(document)
    pool = get_item(out, "pools", pool_name)
    i = member_index(pool, address)
    before = pool["members"][i]
    after = change(copy.deepcopy(before))
    if after is None:
        del pool["members"][i]
    else:
        pool["members"][i] = after
    return out, before, after


def to_yaml(document: dict[str, Json]) -> str:
    """The document as the file it would be in `zones/`: keys in the schema's order (Redis
    keeps them sorted), records as a literal block."""
    document = normalize(ZoneDoc.model_validate(document))
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
