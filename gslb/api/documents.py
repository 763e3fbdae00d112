"""Zone documents as the API sees them: JSON values edited in plain functions.

Documents are kept in one normal form (gslb.core.stored.normal_document: defaults left out,
records inline, keys in the order of DESIGN.md §5), so that GET, export and PUT round-trip
exactly and an ETag changes only when the content does. Checking and storing an edit is the
state layer's (gslb.state.zones); here are the edits themselves: merge patches, an item put
into or taken out of a collection, a member found by its address, and the YAML export.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from typing import Any

import yaml

from gslb.core.stored import normal_document
from gslb.core.zonedoc import ZoneDoc
from gslb.state.zones import Conflict, DocumentError, NotFound, etag, zone_name

__all__ = ["Conflict", "DocumentError", "NotFound", "etag", "zone_key"]

Json = Any
zone_key = zone_name  # the name a zone is stored and addressed under


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
    document = normal_document(ZoneDoc.model_validate(document))
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
