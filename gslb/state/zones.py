"""Writing zones resource by resource: checked at the grain they change, diffed, one Write.

A write names its *container*: the whole document (zone files, `PUT /zones/Z`), one pool
(pools and their members), or the zone's head (sites, monitors, ISPs, topology). It reads
what it needs through the ZoneView of its transaction, checks the new container and what
it refers to (a pool: the head's monitor, sites and ISPs, its fallback pool and the chain
behind it, who else answers its name, the static records there; a removed site: who still
uses it), and says what to store. Checking one pool costs one pool, whatever the zone's size;
only whole documents are checked whole.

A write that changes nothing writes nothing: applying the same document twice is one change.
"""

from __future__ import annotations

import asyncio
import functools
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pydantic
from pydantic_core.core_schema import ErrorType

from gslb.core import names
from gslb.core.masterfile import Limits
from gslb.core.pooldoc import (
    PoolDoc,
    fallback_cycle,
    fallback_target,
    head_faults,
    pool_faults,
)
from gslb.core.pools import Pool, PoolContext
from gslb.core.records import A
from gslb.core.stored import (
    Meta,
    digest,
    dumps,
    encode_node,
    join,
    node_lines,
    normal_document,
    normal_pool,
    owner_key,
    split,
    static_nodes,
)
from gslb.core.targets import monitors_of, pool_targets
from gslb.core.zonedoc import (
    Static,
    ZoneDoc,
    ZoneError,
    automatic,
    check_zone_name,
    compile_document,
    format_loc,
    placement_fault,
    soa_rrset,
)
from gslb.schema import ConfigChange, monitor_to_json
from gslb.state.store import Ref, Write, ZoneView

Json = Any
LARGE = 1000  # changed items in one write beyond which its log entry says "all of them"
AUDIT_WHOLE = 64 * 1024  # octets of JSON beyond which an audit record keeps a summary
MAX_SERIAL = 2**32 - 1


# The two ways a write is refused. 400: the request does not match the published schema (a
# string where a number goes, a field that does not exist, a number out of range). 422: it
# matches, and is refused for what a schema cannot say (a member naming a site that does not
# exist, an address that is not one, a fallback cycle). A client can fix the first by reading
# the OpenAPI document, the second only by reading the message.
MALFORMED = 400
UNPROCESSABLE = 422
# pydantic's own error types are the schema's keywords (type, range, pattern, required), but
# for the two its validators raise; our validators' custom types (ip_address, url_path) are
# checks the schema cannot state.
_SCHEMA_ERRORS = frozenset(typing.get_args(ErrorType)) - {"value_error", "assertion_error"}


class DocumentError(ValueError):
    """A refused document: `faults` are (field path, reason), the first one the headline."""

    def __init__(self, faults: list[tuple[str, str]], status: int = UNPROCESSABLE) -> None:
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


def zone_name(text: str) -> str:
    """The name a zone is stored and addressed under: no trailing dot, lower case; a name
    that is not a host name is refused (422 at the API)."""
    try:
        check_zone_name(text)
    except ValueError as e:
        raise DocumentError([("zone", str(e))]) from None
    return text.strip().rstrip(".").lower()


def etag(value: Json) -> str:
    """A strong entity tag for one resource's JSON value."""
    return '"' + digest(value) + '"'


def zone_etag(zone: str, meta: Meta | None) -> str | None:
    """A zone's entity tag: from its revision, which grows with every change of it (a
    digest of a million pools would cost what the change should not)."""
    return None if meta is None else '"' + digest([zone, meta.revision]) + '"'


@dataclass(frozen=True, slots=True)
class Who:
    """Who writes and what: for the audit trail, the meta and the event."""

    source: str  # "api:TOKEN-NAME" or "file:PATH"
    action: str
    resource: str
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class Outcome:
    before: Json  # the resource as it was (None: absent)
    after: Json  # as it is now (None: removed)


# A precondition on the resource's current entity tag (None: it does not exist); raises
# Conflict to refuse the write.
Precondition = Callable[[str | None], None]


def _always(_tag: str | None) -> None:
    pass


def audit_record(who: Who, zone: str, before: Json, after: Json) -> dict[str, Json]:
    return {
        "at": round(time.time(), 3),
        "who": who.source,
        "action": who.action,
        "zone": zone,
        "resource": who.resource,
        "before": _summary(before),
        "after": _summary(after),
    }


def _summary(value: Json) -> Json:
    """Whole documents of a large zone are summarized in the audit trail (which keeps ten
    thousand records): what it had, not all of it."""
    if not isinstance(value, dict) or ("pools" not in value and "records" not in value):
        return value
    if len(dumps(value)) <= AUDIT_WHOLE:
        return value
    pools = value.get("pools") or {}
    return {
        "summary": True,
        "zone": value.get("zone"),
        "pools": len(pools),
        "pool_names": sorted(pools)[:100],
        "records_lines": len((value.get("records") or "").splitlines()),
    }


def _faults(e: pydantic.ValidationError, prefix: tuple[int | str, ...] = ()) -> DocumentError:
    errors = e.errors()
    # 400 only when every fault is one the schema states. A value that fails one branch of a
    # union by the schema's rules and another by a validator's (a fallback given as a list
    # of strings that are not addresses) matches the schema: 422.
    beyond = any(err["type"] not in _SCHEMA_ERRORS for err in errors)
    return DocumentError(
        [(format_loc((*prefix, *tuple(err["loc"]))), err["msg"]) for err in errors],
        UNPROCESSABLE if beyond else MALFORMED,
    )


def _zone_error(e: ZoneError) -> DocumentError:
    if e.in_records:
        where = f"line {e.line}: " if e.line is not None else ""
        return DocumentError([("records", where + e.reason)])
    return DocumentError([(format_loc(e.path), e.reason)])


def _fault(fault: tuple[tuple[int | str, ...], str]) -> DocumentError:
    path, message = fault
    return DocumentError([(format_loc(path), message)])


def _next_meta(meta: Meta, head: ZoneDoc, who: Who, floor: int | None = None) -> Meta:
    """The meta after a change: a new revision, the writer, and (automatic serials) a serial
    above the last one, with the SOA that carries it."""
    serial = meta.serial
    soa = meta.soa
    if not meta.soa_in_records:
        if meta.automatic:
            serial = min(max(floor or int(time.time()), meta.serial + 1), MAX_SERIAL)
        rrset = soa_rrset(head, Static([], {}, None), serial)
        serial = int.from_bytes(rrset.rdatas[0][-1][:4], "big")  # type: ignore[index]
        soa = encode_node([rrset])
    return replace(meta, serial=serial, soa=soa, source=who.source, revision=meta.revision + 1)


def pool_refs(pool: Json) -> set[Ref]:
    """What a pool document refers to: its monitor, its members' sites and ISPs named
    explicitly, the sites its own topology rules prefer, and the pool it falls back to."""
    refs: set[Ref] = set()
    if not isinstance(pool, dict):
        return refs
    if pool.get("monitor"):
        refs.add(("monitor", pool["monitor"]))
    fallback = pool.get("fallback")
    if isinstance(fallback, str) and fallback.startswith("pool:"):
        refs.add(("pool", fallback.removeprefix("pool:")))
    for member in pool.get("members") or []:
        if isinstance(member, dict):
            if member.get("site"):
                refs.add(("site", member["site"]))
            if member.get("isp"):
                refs.add(("isp", member["isp"]))
    for rule in pool.get("topology") or []:
        if isinstance(rule, dict):
            prefer = rule.get("prefer") or []
            refs.update(("site", site) for site in prefer if isinstance(site, str))
    return refs


def _ref_changes(name: str, before: Json, after: Json) -> dict[tuple[Ref, str], bool]:
    old, new = pool_refs(before), pool_refs(after)
    changes = {(ref, name): False for ref in old - new}
    changes.update({(ref, name): True for ref in new - old})
    return changes


def owner_entry(pool: Pool) -> str:
    """The owners-index key of where a pool answers: `name. A` or `name. AAAA`."""
    return f"{owner_key(pool.owner)} {'A' if pool.rtype == A else 'AAAA'}"


def _targets(pool: Pool) -> str | None:
    found = pool_targets(pool)
    return None if found is None else found.to_json()


def _listed(items: Mapping[str, object]) -> tuple[str, ...] | None:
    return None if len(items) > LARGE else tuple(sorted(items))


# --- whole documents ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checked:
    """A whole document, checked and compiled, in the parts it is stored as."""

    doc: ZoneDoc
    document: dict[str, Json]  # normalized
    static: Static
    pools: dict[str, Pool]
    head: dict[str, Json]
    records: str
    pool_texts: dict[str, str]
    nodes: dict[str, str]


def check_document(
    data: Json, limits: Limits, static: Static | None = None, doc: ZoneDoc | None = None
) -> Checked:
    """A whole zone document validated, compiled and split, or DocumentError with every
    fault's field path. (`static` and `doc` when the caller has read them already.)"""
    if doc is None:
        if not isinstance(data, dict):
            raise DocumentError([("", "a zone document is a JSON object")], MALFORMED)
        if "records_file" in data:
            raise DocumentError([("records_file", "the API takes the records inline")])
        try:
            doc = ZoneDoc.model_validate(data)
        except pydantic.ValidationError as e:
            raise _faults(e) from None
    try:
        zone, read = compile_document(doc, doc.records, 1, limits)
    except ZoneError as e:
        raise _zone_error(e) from None
    return check_loaded(doc, zone.pools_by_name, static or read)


@dataclass(frozen=True, slots=True)
class FileSource:
    """Where a document written from a zone file came from, and its serial there."""

    path: str
    digest: str
    serial: int


async def write_document(
    view: ZoneView,
    zone: str,
    data: Json | None,
    who: Who,
    precondition: Precondition = _always,
    checked: Checked | None = None,
    file: FileSource | None = None,
) -> tuple[Write | None, Outcome]:
    """Create, replace or (data None) remove a whole zone."""
    meta = await view.meta()
    precondition(zone_etag(zone, meta))
    if data is None and checked is None:
        if meta is None:
            raise NotFound(f"zone {zone!r}")
        before = join(await view.head() or {}, await view.records(), await view.pools())
        change = ConfigChange(0, zone, deleted=True)
        keys = tuple(await view.zone_keys())
        record = audit_record(who, zone, before, None)
        return Write(None, change, record, drop=keys), Outcome(before, None)
    if checked is None:
        checked = await asyncio.to_thread(check_document, data, who.limits)
    if meta is None:
        return _create(zone, checked, who, file), Outcome(None, checked.document)
    stored = _Stored(
        meta,
        await view.head() or {},
        await view.records(),
        await view.all_rrsets(),
        await view.owners(),
        await read_pool_texts(view),
    )
    write, before = await asyncio.to_thread(_replace, zone, checked, stored, who, file)
    return write, Outcome(before, checked.document)


async def read_pool_texts(view: ZoneView) -> dict[str, str]:
    return await view._all("pools")


@dataclass(frozen=True, slots=True)
class _Stored:
    meta: Meta
    head: dict[str, Json]
    records: str
    rrsets: dict[str, str]
    owners: dict[str, str]
    pools: dict[str, str]


def _meta_for(checked: Checked, serial: int, who: Who, file: FileSource | None) -> Meta:
    soa = soa_rrset(checked.doc, checked.static, serial)
    actual = int.from_bytes(soa.rdatas[0][-1][:4], "big")  # type: ignore[index]
    return Meta(
        actual,
        encode_node([soa]),
        who.source,
        file.path if file else None,
        file.digest if file else None,
        1,
        checked.static.soa is not None,
        automatic(checked.doc, checked.static),
    )


def _create(zone: str, checked: Checked, who: Who, file: FileSource | None) -> Write:
    serial = file.serial if file else min(int(time.time()), MAX_SERIAL)
    return create_write(zone, checked, _meta_for(checked, serial, who, file), who)


def create_write(zone: str, checked: Checked, meta: Meta, who: Who) -> Write:
    """The write that stores a new zone whole."""
    refs: dict[tuple[Ref, str], bool] = {}
    for name in checked.pool_texts:
        refs.update(_ref_changes(name, None, checked.document["pools"][name]))
    return Write(
        meta,
        ConfigChange(0, zone, None, None, head=True),
        audit_record(who, zone, None, checked.document),
        head=checked.head,
        records=checked.records,
        rrsets=dict(checked.nodes),
        pools=dict(checked.pool_texts),
        owners={owner_entry(p): name for name, p in checked.pools.items()},
        refs=refs,
        targets={name: t for name, p in checked.pools.items() if (t := _targets(p))},
        monitors={n: monitor_to_json(m) for n, m in monitors_of(checked.doc).items()},
    )


def _replace(
    zone: str, checked: Checked, stored: _Stored, who: Who, file: FileSource | None
) -> tuple[Write | None, Json]:
    """The write that turns what is stored into `checked`: only what differs."""
    import json

    head_changed = dumps(stored.head) != dumps(checked.head)
    records_changed = stored.records != checked.records
    rrsets: dict[str, str | None] = {}
    if records_changed or head_changed:  # the zone's TTL is the records' default TTL
        rrsets = {o: n for o, n in checked.nodes.items() if stored.rrsets.get(o) != n}
        rrsets.update({o: None for o in stored.rrsets if o not in checked.nodes})
    pools: dict[str, str | None] = {
        n: t for n, t in checked.pool_texts.items() if stored.pools.get(n) != t
    }
    pools.update({n: None for n in stored.pools if n not in checked.pool_texts})
    owners_now = {owner_entry(p): name for name, p in checked.pools.items()}
    owners: dict[str, str | None] = {
        k: v for k, v in owners_now.items() if stored.owners.get(k) != v
    }
    owners.update({k: None for k in stored.owners if k not in owners_now})
    refs: dict[tuple[Ref, str], bool] = {}
    for name in pools:
        old = json.loads(stored.pools[name]) if name in stored.pools else None
        refs.update(_ref_changes(name, old, checked.document.get("pools", {}).get(name)))
    isps_changed = stored.head.get("isps") != checked.head.get("isps")
    retarget = (
        checked.pools if isps_changed else {n: p for n, p in checked.pools.items() if n in pools}
    )
    targets: dict[str, str | None] = {n: _targets(p) for n, p in retarget.items()}
    targets.update({n: None for n in pools if n not in checked.pools})
    monitors = None
    if stored.head.get("monitors") != checked.head.get("monitors"):
        monitors = {n: monitor_to_json(m) for n, m in monitors_of(checked.doc).items()}
    file_changed = file is not None and (
        stored.meta.file != file.path or stored.meta.file_digest != file.digest
    )
    if not (head_changed or records_changed or rrsets or pools or owners or file_changed):
        return None, None
    before = join(stored.head, stored.records, {n: json.loads(t) for n, t in stored.pools.items()})
    content_changed = head_changed or records_changed or bool(rrsets or pools)
    serial = stored.meta.serial
    if content_changed:
        floor = file.serial if file else int(time.time())
        serial = min(max(floor, stored.meta.serial + 1), MAX_SERIAL)
    meta = _meta_for(checked, serial, who, file or _kept_file(stored.meta))
    meta = replace(meta, revision=stored.meta.revision + (1 if content_changed else 0))
    change = ConfigChange(
        0,
        zone,
        None if isps_changed else _listed(pools),
        _listed(rrsets),
        head=head_changed,
    )
    write = Write(
        meta,
        change,
        audit_record(who, zone, before, checked.document),
        head=checked.head if head_changed else None,
        records=checked.records if records_changed else None,
        rrsets=rrsets,
        pools=pools,
        owners=owners,
        refs=refs,
        targets=targets,
        monitors=monitors,
    )
    return write, before


def _kept_file(meta: Meta) -> FileSource | None:
    if meta.file is None or meta.file_digest is None:
        return None
    return FileSource(meta.file, meta.file_digest, meta.serial)


# --- one pool -----------------------------------------------------------------------------


async def write_pool(
    view: ZoneView,
    zone: str,
    name: str,
    change: Callable[[Json | None], Json | None],
    pick: Callable[[Json | None], Json],
    who: Who,
    precondition: Precondition = _always,
) -> tuple[Write | None, Outcome]:
    """Change one pool: `change(pool)` is the new pool document (None: removed), `pick(pool)`
    the resource the request is about (the pool, or one of its members)."""
    meta = await view.meta()
    head_json = await view.head()
    if meta is None or head_json is None:
        raise NotFound(f"zone {zone!r}")
    old = await view.pool(name)
    old_resource = pick(old)
    precondition(None if old_resource is None else etag(old_resource))
    new = change(old)
    head = ZoneDoc.model_validate(head_json)
    if new is None:
        if old is None:
            raise NotFound(f"pool {name!r}", f"pools.{name}")
        await _refuse_referred(view, "pool", name, head, lambda _r: f"unknown pool {name!r}")
        write = Write(
            _next_meta(meta, head, who),
            ConfigChange(0, zone, (name,), ()),
            audit_record(who, zone, old_resource, pick(None)),
            pools={name: None},
            refs=_ref_changes(name, old, None),
            targets={name: None},
        )
        compiled_old = _compile(head, name, PoolDoc.model_validate(old))
        entry = owner_entry(compiled_old)
        if await view.holder(entry) == name:
            write.owners[entry] = None
        return write, Outcome(old_resource, pick(None))
    try:
        pool = PoolDoc.model_validate(new)
    except pydantic.ValidationError as e:
        raise _faults(e, ("pools", name)) from None
    docs = await _fallback_chain(view, name, pool)
    faults = pool_faults(head, name, pool, docs.get)
    if faults:
        raise _fault(faults[0])
    cycle = fallback_cycle(name, docs.get)
    if cycle is not None:
        raise _fault(cycle)
    if old is not None and old.get("type", "A") != pool.type:
        await _refuse_referred(
            view,
            "pool",
            name,
            head,
            lambda r: f"pool {name!r} is not of type {r.type}" if r.type != pool.type else None,
        )
    compiled = _compile(head, name, pool)
    fault = placement_fault(
        name,
        compiled,
        head.apex,
        await _static_at(view, compiled.owner, head.apex),
        await view.holder(owner_entry(compiled)),
    )
    if fault is not None:
        raise _zone_error(fault)
    normal = normal_pool(pool)
    if old is not None and dumps(old) == dumps(normal):
        return None, Outcome(old_resource, old_resource)
    owners: dict[str, str | None] = {owner_entry(compiled): name}
    if old is not None:
        old_entry = owner_entry(_compile(head, name, PoolDoc.model_validate(old)))
        if old_entry != owner_entry(compiled) and await view.holder(old_entry) == name:
            owners[old_entry] = None
    after = pick(normal)
    write = Write(
        _next_meta(meta, head, who),
        ConfigChange(0, zone, (name,), ()),
        audit_record(who, zone, old_resource, after),
        pools={name: dumps(normal)},
        owners=owners,
        refs=_ref_changes(name, old, normal),
        targets={name: _targets(compiled)},
    )
    return write, Outcome(old_resource, after)


def _compile(head: ZoneDoc, name: str, pool: PoolDoc) -> Pool:
    try:
        return PoolContext.of(head.apex, head).compile(name, pool)
    except names.BadName as e:
        raise DocumentError([("pools", str(e))]) from None


async def _fallback_chain(view: ZoneView, name: str, pool: PoolDoc) -> dict[str, PoolDoc]:
    """The pool and every pool down its chain of fallbacks, as far as they exist."""
    docs = {name: pool}
    target = fallback_target(pool)
    while target is not None and target not in docs:
        raw = await view.pool(target)
        if raw is None:
            break
        try:
            docs[target] = PoolDoc.model_validate(raw)
        except pydantic.ValidationError:
            break
        target = fallback_target(docs[target])
    return docs


async def _static_at(
    view: ZoneView, owner: bytes, apex: bytes
) -> Callable[[bytes], Mapping[int, int] | None]:
    """What the static records say at `owner` and the names above it, up to the apex."""
    wanted = []
    for name in names.suffixes(owner):
        if len(name) <= len(apex):
            break
        wanted.append(name)
    found = await view.rrsets([owner_key(n) for n in wanted])
    lines = {n: node_lines(t) for n in wanted if (t := found.get(owner_key(n))) is not None}
    return lines.get


async def _refuse_referred(
    view: ZoneView,
    kind: str,
    name: str,
    head: ZoneDoc,
    reason: Callable[[PoolDoc], str | None],
) -> None:
    """Refuse a change that leaves a pool referring to `kind` `name` broken, naming that
    pool's field as a check of the whole document would."""
    for referrer in sorted(await view.referrers(kind, name)):
        if kind == "pool" and referrer == name:
            continue
        raw = await view.pool(referrer)
        if raw is None:
            continue
        doc = PoolDoc.model_validate(raw)
        if kind == "pool":
            message = reason(doc)
            if message is not None:
                raise _fault((("pools", referrer, "fallback"), message))
            continue
        # Its fallback is no concern here: whatever it names is taken to exist.
        faults = pool_faults(head, referrer, doc, functools.partial(_itself, doc))
        if faults:
            raise _fault(faults[0])


def _itself(doc: PoolDoc, _name: str) -> PoolDoc:
    return doc


# --- the head: sites, monitors, ISPs, topology --------------------------------------------


async def write_head(
    view: ZoneView,
    zone: str,
    change: Callable[[dict[str, Json]], dict[str, Json]],
    pick: Callable[[dict[str, Json]], Json],
    who: Who,
    precondition: Precondition = _always,
) -> tuple[Write | None, Outcome]:
    """Change the zone's head (its sites, monitors, ISPs or topology)."""
    meta = await view.meta()
    head_json = await view.head()
    if meta is None or head_json is None:
        raise NotFound(f"zone {zone!r}")
    old_resource = pick(head_json)
    precondition(None if old_resource is None else etag(old_resource))
    new_json = change(head_json)
    try:
        head = ZoneDoc.model_validate(new_json)
    except pydantic.ValidationError as e:
        raise _faults(e) from None
    faults = head_faults(head)
    if faults:
        raise _fault(faults[0])
    normal, _, _ = split(normal_document(head))
    if dumps(normal) == dumps(head_json):
        return None, Outcome(old_resource, old_resource)
    for kind, collection in (("site", "sites"), ("monitor", "monitors"), ("isp", "isps")):
        gone = set(head_json.get(collection) or {}) - set(normal.get(collection) or {})
        for name in sorted(gone):
            await _refuse_referred(view, kind, name, head, lambda _r: None)
    after = pick(normal)
    write = Write(
        _next_meta(meta, head, who),
        ConfigChange(0, zone, (), (), head=True),
        audit_record(who, zone, old_resource, after),
        head=normal,
    )
    if head_json.get("monitors") != normal.get("monitors"):
        write.monitors = {n: monitor_to_json(m) for n, m in monitors_of(head).items()}
    if head_json.get("isps") != normal.get("isps"):
        # Members' ISPs come from the table: every pool's targets may change.
        context = PoolContext.of(head.apex, head)
        for name, text in (await read_pool_texts(view)).items():
            pool = context.compile(name, PoolDoc.model_validate_json(text))
            write.targets[name] = _targets(pool)
        write.change = ConfigChange(0, zone, None, (), head=True)
    return write, Outcome(old_resource, after)


def check_loaded(doc: ZoneDoc, pools: Mapping[str, Pool], static: Static) -> Checked:
    """A zone file already loaded (gslb.zonefiles), in the parts it is stored as: its
    checks were made when it was read."""
    document = normal_document(doc)
    head, records, pool_docs = split(document)
    return Checked(
        doc,
        document,
        static,
        dict(pools),
        head,
        records,
        {name: dumps(pool) for name, pool in pool_docs.items()},
        static_nodes(static.rrsets, static.lines, doc.apex),
    )
