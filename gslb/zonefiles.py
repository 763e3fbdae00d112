"""Loading `zones/*.yaml`: every file, or nothing.

Each file holds one zone document (DESIGN.md §5). Errors carry `file:line: message`, with lines
found from the YAML node marks (for schema errors) or from the records text (for master-file
errors), so that an operator can jump to the place. A directory loads whole or not at all: one
refused file means the running configuration stays as it was.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from gslb.common.gcpause import gc_paused
from gslb.core import names
from gslb.core.advice import advice
from gslb.core.masterfile import Limits
from gslb.core.stored import digest, normal_document
from gslb.core.zone import Zone, ZoneSet
from gslb.core.zonedoc import Static, ZoneDoc, ZoneError, compile_document, format_loc

SUFFIXES = (".yaml", ".yml")


class ZoneFileError(Exception):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ZoneLoadError(Exception):
    """One or more files were refused; `errors` says where and why."""

    def __init__(self, errors: list[ZoneFileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True, slots=True)
class LoadedZone:
    zone: Zone
    doc: ZoneDoc  # with the records inline (a `records_file` read in)
    path: Path
    serial: int
    digest: str  # of the normalized document: what the file says
    static: Static  # the records, read (so storing the zone does not read them again)
    # `file:line: message` of what is valid but probably not meant (gslb.core.advice)
    warnings: tuple[str, ...] = ()

    @property
    def records(self) -> str:
        return self.doc.records

    @property
    def document(self) -> dict[str, Any]:
        return normal_document(self.doc)


def load_directory(
    directory: Path,
    previous: dict[bytes, LoadedZone] | None = None,
    limits: Limits | None = None,
) -> dict[bytes, LoadedZone]:
    """Every zone file of `directory`, or ZoneLoadError listing every refused one.

    `previous` (the zones currently served) lets automatic serials stay put for unchanged
    zones and grow for changed ones, even within one second.
    """
    if not directory.is_dir():
        raise ZoneLoadError([ZoneFileError(directory, None, "not a directory")])
    paths = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
    errors: list[ZoneFileError] = []
    loaded: dict[bytes, LoadedZone] = {}
    for path in paths:
        try:
            zone = load_file(path, previous or {}, limits)
        except ZoneFileError as e:
            errors.append(e)
            continue
        other = loaded.get(zone.zone.apex)
        if other is not None:
            errors.append(
                ZoneFileError(
                    path, None, f"zone {zone.doc.zone} is already defined in {other.path}"
                )
            )
            continue
        loaded[zone.zone.apex] = zone
    if errors:
        raise ZoneLoadError(errors)
    return loaded


def load_or_report(directory: Path, limits: Limits | None = None) -> dict[bytes, LoadedZone] | None:
    """The directory's zones, or None after printing every refusal (`file:line: message`)
    to stderr: for commands that check or send files."""
    try:
        return load_directory(directory, limits=limits)
    except ZoneLoadError as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        return None


def zone_set(loaded: dict[bytes, LoadedZone]) -> ZoneSet:
    return ZoneSet({apex: z.zone for apex, z in loaded.items()})


def load_file(
    path: Path, previous: dict[bytes, LoadedZone], limits: Limits | None = None
) -> LoadedZone:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ZoneFileError(path, None, f"cannot read: {e}") from None
    root = _compose(path, text)
    data = yaml.SafeLoader(text).construct_document(root)
    if not isinstance(data, dict):
        raise ZoneFileError(path, 1, "a zone file is a mapping (zone:, soa:, records:, ...)")
    try:
        doc = ZoneDoc.model_validate(data)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(root, loc)
        field = format_loc(loc) or "document"
        raise ZoneFileError(path, line, f"{field}: {first['msg']}") from None

    records_path = path
    records_text = doc.records
    records_node = _node_at(root, ("records",))
    sources = [path]
    if doc.records_file is not None:
        records_path = path.parent / doc.records_file
        try:
            records_text = records_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ZoneFileError(
                path, _line_of(root, ("records_file",)), f"records_file: {e}"
            ) from None
        sources.append(records_path)

    doc = doc.model_copy(update={"records": records_text, "records_file": None})
    before = previous.get(doc.apex)
    try:
        with gc_paused():
            text_digest = digest(normal_document(doc))
            if before is not None and before.digest == text_digest:
                serial = before.serial
            elif before is None:
                serial = min(int(max(p.stat().st_mtime for p in sources)), 2**32 - 1)
            else:
                changed_at = int(max(p.stat().st_mtime for p in sources))
                serial = min(max(changed_at, before.serial + 1, int(time.time())), 2**32 - 1)
            zone, static = compile_document(doc, records_text, serial, limits)
    except ZoneError as e:
        if e.in_records and e.line is not None:
            if records_path is not path:
                raise ZoneFileError(records_path, e.line, e.message) from None
            raise ZoneFileError(path, _records_line(records_node, e.line), e.message) from None
        raise ZoneFileError(path, _line_of(root, e.path or ("zone",)), e.message) from None
    serial = int.from_bytes(zone.soa.rdatas[0][-1][:4], "big")  # type: ignore[index]
    warnings = tuple(
        f"{path}:{_line_of(root, loc)}: warning: {format_loc(loc)}: {message}"
        for loc, message in advice(doc)
    )
    return LoadedZone(zone, doc, path, serial, text_digest, static, warnings)


def describe(loaded: dict[bytes, LoadedZone]) -> list[dict[str, Any]]:
    """A short account of what is served, for logs and `check-zones`."""
    return [
        {
            "zone": names.to_text(apex),
            "file": str(z.path),
            "serial": z.serial,
            "rrsets": sum(len(types) for types in z.zone.nodes.values()),
            "pools": len(z.doc.pools),
        }
        for apex, z in sorted(loaded.items(), key=lambda item: item[1].path)
    ]


def _compose(path: Path, text: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        problem_mark = getattr(e, "problem_mark", None)
        context_mark = getattr(e, "context_mark", None)
        mark = problem_mark or context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"not valid YAML: {getattr(e, 'problem', None) or e}"
        context = getattr(e, "context", None)
        if context and context_mark is not None and context_mark is not mark:
            message += f" ({context} on line {context_mark.line + 1})"
        raise ZoneFileError(path, line, message) from None
    if root is None:
        raise ZoneFileError(path, 1, "the file is empty")
    _refuse_duplicate_keys(path, root)
    return root


def _refuse_duplicate_keys(path: Path, node: yaml.Node) -> None:
    # PyYAML keeps the last of two equal keys; in a zone that silently loses a pool or a record.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise ZoneFileError(
                        path, key.start_mark.line + 1, f"duplicate key {key.value!r}"
                    )
                seen.add(key.value)
            _refuse_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(path, item)


def _node_at(root: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in loc:
        node = _child(node, part) if node is not None else None
    return node


def _child(node: yaml.Node, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value  # type: ignore[no-any-return]
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def _line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node on `loc` that exists (a missing key: its parent)."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def _records_line(node: yaml.Node | None, line: int) -> int:
    if node is None:
        return line
    start = int(node.start_mark.line) + 1
    # A block scalar (`records: |`) starts on the line after its indicator.
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return start + line
    return start + line - 1
