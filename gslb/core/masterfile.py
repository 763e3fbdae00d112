"""RFC 1035 master-file text (the `records:` of a zone document) into records, in linear time.

dnspython's reader does the lexing ($ORIGIN, $TTL, $GENERATE, `@`, relative names, parentheses,
comments, quoted TXT strings, every rdata type); this module adds what an authoritative server
needs on top: the line of every record, refusal of names outside the zone, of CNAME beside other
data, and of `$INCLUDE` (a zone document names its one `records_file` explicitly, so a zone
cannot read arbitrary files of the server).

The records go into a collector of our own rather than one of dnspython's transactions: those
look up the node of every new record by scanning all the records read so far, which makes a
zone of n records cost n² (4 000 records took 21 s). Here each record costs one dict lookup.

Two limits keep a few bytes of text from costing unbounded time or memory: a `$GENERATE`
directive makes at most `MAX_GENERATE` names, and a zone holds at most `Limits.records`
records. Both are checked before the work is done, so `$GENERATE 1-4294967295` is refused at
once instead of spinning a core.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any, cast

import dns.exception
import dns.grange
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.transaction
import dns.ttl
import dns.zonefile

from gslb.core.names import BadName, relative, to_text, wire_of
from gslb.core.records import NameRef, Part, rdata_parts

MAX_GENERATE = 65_536  # names one $GENERATE directive may make
MAX_RDATA = 65_535  # octets of one record's data: RDLENGTH is 16 bits
DEFAULT_MAX_RECORDS = 2_000_000  # records per zone (--max-zone-records)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one zone may cost; `records_flag` is where an operator raises the cap."""

    records: int = DEFAULT_MAX_RECORDS
    records_flag: str = "--max-zone-records"


class MasterFileError(ValueError):
    """A refused line: `line` counts from 1 within the parsed text."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceRecord:
    wire: bytes  # the owner, canonical wire form
    ttl: int
    rdtype: int
    parts: tuple[Part, ...]  # the rdata as the encoder writes it (gslb.core.records)
    target: bytes | None  # the name additional-section processing looks up, if any
    line: int

    @property
    def owner(self) -> dns.name.Name:
        return dns.name.from_wire(self.wire, 0)[0]


_CNAME = dns.node.NodeKind.CNAME
_REGULAR = dns.node.NodeKind.REGULAR


class _Origin:
    """What dnspython's reader asks of a transaction manager."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return self.origin, False, self.origin


class _Collector:
    """Records in the order read, each with its line; CNAME beside other data refused.

    It stands where dnspython's reader expects a transaction: the reader only ever calls
    `add`, `check_put_rdataset` and `_set_origin` on it.
    """

    def __init__(self, origin: dns.name.Name, limits: Limits) -> None:
        self.manager = _Origin(origin)
        self.limits = limits
        self.line = 0
        self.records: list[SourceRecord] = []
        self.kinds: dict[bytes, dns.node.NodeKind] = {}  # owner (wire) -> CNAME or REGULAR

    def check_put_rdataset(self, check: Any) -> None:
        pass  # the CNAME rule is checked in `add`, with a dict instead of a scan

    def _set_origin(self, origin: dns.name.Name) -> None:
        pass

    def room(self, more: int) -> None:
        """Refuse, before doing it, what would take the zone past its record limit."""
        if len(self.records) + more > self.limits.records:
            raise MasterFileError(
                self.line,
                f"more than {self.limits.records} records: the limit per zone "
                f"({self.limits.records_flag})",
            )

    def add(self, name: dns.name.Name, ttl: int, rd: dns.rdata.Rdata) -> None:
        parts, target = rdata_parts(rd)
        self.add_parts(wire_of(name), ttl, rd.rdtype, rd.covers(), parts, target)

    def add_parts(
        self,
        wire: bytes,
        ttl: int,
        rdtype: int,
        covers: int,
        parts: tuple[Part, ...],
        target: bytes | None,
    ) -> None:
        self.room(1)
        size = sum(len(p.wire) if isinstance(p, NameRef) else len(p) for p in parts)
        if size > MAX_RDATA:
            raise MasterFileError(
                self.line,
                f"{to_text(wire)}: the record's data is {size} octets; at most {MAX_RDATA}",
            )
        kind = _kind(rdtype, covers)
        if kind != dns.node.NodeKind.NEUTRAL:
            name = wire
            had = self.kinds.setdefault(name, kind)
            if had == _CNAME and kind == _REGULAR:
                raise MasterFileError(
                    self.line,
                    f"{to_text(wire)}: rdataset type is not compatible with a CNAME node",
                )
            if had == _REGULAR and kind == _CNAME:
                raise MasterFileError(
                    self.line,
                    f"{to_text(wire)}: CNAME rdataset is not compatible with a regular data node",
                )
        self.records.append(SourceRecord(wire, ttl, rdtype, parts, target, self.line))


_KINDS: dict[tuple[int, int], dns.node.NodeKind] = {}


def _kind(rdtype: int, covers: int) -> dns.node.NodeKind:
    """CNAME, REGULAR or NEUTRAL (dnspython's rule), once per type."""
    kind = _KINDS.get((rdtype, covers))
    if kind is None:
        kind = _KINDS[(rdtype, covers)] = dns.node.NodeKind.classify(
            dns.rdatatype.RdataType.make(rdtype), dns.rdatatype.RdataType.make(covers)
        )
    return kind


class _Reader(dns.zonefile.Reader):
    collector: _Collector
    # The fast path keeps names in wire form: the owner it read last (which dnspython's
    # `last_name` stands for until `sync_owner`), and the current origin's wire form.
    fast_owner: bytes | None = None
    _origin: tuple[dns.name.Name | None, bytes | None] | None = None

    def owner_wire(self) -> bytes | None:
        """The last owner, for a line that leaves it out."""
        if self.fast_owner is None:
            if self.last_name is None:
                return None
            self.fast_owner = wire_of(self.last_name)
        return self.fast_owner

    def origin_wire(self) -> bytes | None:
        """The current $ORIGIN's wire form when it lies in the zone (else None: dnspython
        reads what is relative to it, and refuses what falls outside)."""
        origin = self.current_origin
        if self._origin is None or self._origin[0] is not origin:
            inside = (
                origin is not None
                and self.zone_origin is not None
                and origin.is_subdomain(self.zone_origin)
            )
            found = wire_of(origin) if inside and origin is not None else None
            self._origin = (origin, found)
            return found
        return self._origin[1]

    def sync_owner(self) -> None:
        """Before dnspython reads a line: its last owner is the one the fast path read."""
        if self.fast_owner is not None:
            self.last_name = dns.name.from_wire(self.fast_owner, 0)[0]
            self.fast_owner = None

    def _rr_line(self) -> None:
        # Remember where the record starts: with parentheses it may end lines later, and by the
        # time a bad field is noticed the tokenizer may already stand on the next line.
        start = self.tok.line_number
        self.collector.line = start
        try:
            super()._rr_line()
        except dns.exception.DNSException as e:
            raise MasterFileError(start, str(e) or type(e).__name__) from None

    def _generate_line(self) -> None:
        start = self.tok.line_number
        self.collector.line = start
        token = self.tok.get()
        self.tok.unget(token)
        try:
            first, last, step = dns.grange.from_text(token.value)
        except dns.exception.DNSException as e:
            raise MasterFileError(start, f"$GENERATE: bad range {token.value!r}: {e}") from None
        count = len(range(first, last + 1, step))
        if count > MAX_GENERATE:
            raise MasterFileError(
                start,
                f"$GENERATE {token.value} makes {count} names; the limit is {MAX_GENERATE} "
                "per directive",
            )
        self.collector.room(count)
        try:
            super()._generate_line()  # type: ignore[no-untyped-call]
        except dns.exception.DNSException as e:
            raise MasterFileError(start, str(e) or type(e).__name__) from None

    def _eat_line(self) -> None:
        # dnspython skips records whose owner is outside the zone; a typo there (a missing
        # trailing dot, a wrong $ORIGIN) would silently lose data, so refuse it instead.
        raise _syntax_error(f"{self.last_name} is outside the zone {self.zone_origin}")


_LINE_PREFIX = "<records>:"


def _syntax_error(message: str) -> Exception:
    # Raised inside dnspython's reader, which adds the line where it stopped.
    return dns.exception.SyntaxError(message)  # type: ignore[no-untyped-call]


def parse(
    text: str, origin: dns.name.Name, default_ttl: int, limits: Limits | None = None
) -> list[SourceRecord]:
    """Every record of `text`, in order; raise MasterFileError on the first refused line.

    Plain lines (no quotes, parentheses, comments or escapes: what large generated zones are
    made of) are split here and only their rdata goes through dnspython; every other line,
    and every directive, goes through dnspython's reader whole, sharing one reader's state
    ($ORIGIN, $TTL, the previous owner), so both paths read a line the same way.
    """
    collector = _Collector(origin, limits or Limits())
    reader = _Reader(
        dns.tokenizer.Tokenizer("", "<records>"),
        dns.rdataclass.IN,
        cast(dns.transaction.Transaction, collector),
        allow_directives={"$ORIGIN", "$TTL", "$GENERATE"},
        default_ttl=default_ttl,
    )
    reader.collector = collector
    lines = text.splitlines()
    i = 0
    try:
        while i < len(lines):
            line = lines[i]
            if not line or line.isspace():
                i += 1
                continue
            if _PLAIN.fullmatch(line) and _plain_record(reader, line, i + 1):
                i += 1
                continue
            end = _statement_end(lines, i)
            tok = dns.tokenizer.Tokenizer("\n".join(lines[i:end]) + "\n", "<records>")
            tok.line_number = i + 1
            reader.tok = tok
            reader.sync_owner()
            reader.read()
            i = end
    except MasterFileError as e:
        raise MasterFileError(e.line, _with_source(lines, e.line, e.message)) from None
    except dns.exception.SyntaxError as e:
        line_number, message = _split_where(str(e), reader.tok.line_number)
        raise MasterFileError(line_number, _with_source(lines, line_number, message)) from None
    except dns.exception.DNSException as e:
        raise MasterFileError(reader.tok.line_number, str(e) or type(e).__name__) from None
    return collector.records


# A line the fast path may read: no directive, and none of the characters that give the
# master-file syntax its subtleties (quotes, parentheses, comments, escapes).
_PLAIN = re.compile(r"[^$\"();\\][^\"();\\]*")
_TYPES: dict[str, dns.rdatatype.RdataType] = {}


def _rdtype(text: str) -> dns.rdatatype.RdataType | None:
    rdtype = _TYPES.get(text)
    if rdtype is None:
        try:
            rdtype = dns.rdatatype.from_text(text)
        except dns.exception.DNSException:
            return None
        if len(_TYPES) < 1000:
            _TYPES[text] = rdtype
    return rdtype


def _plain_record(reader: _Reader, line: str, number: int) -> bool:
    """Read one plain line as dnspython would; False: leave it to dnspython (which then
    reads it, or refuses it with its own message)."""
    tokens = line.split()
    zone = reader.zone_origin
    if zone is None or reader.current_origin is None:
        return False
    if line[0] in " \t":
        owner = reader.owner_wire()
        if owner is None:
            return False
    else:
        first = tokens.pop(0)
        origin = reader.origin_wire()
        if origin is None or first.endswith("."):
            return False  # an absolute name, or an $ORIGIN outside the zone: dnspython's
        if first == "@":
            owner = origin
        else:
            try:
                owner = relative(first, origin)
            except BadName:
                return False
    ttl: int | None = None
    while len(tokens) > 1 and (tokens[0][0].isdigit() or tokens[0].upper() == "IN"):
        token = tokens.pop(0)
        if token.upper() == "IN":
            continue
        if ttl is not None:
            return False
        try:
            ttl = dns.ttl.from_text(token)
        except dns.exception.DNSException:
            return False
    if len(tokens) < 2:
        return False
    rdtype = _rdtype(tokens[0].upper())
    if rdtype is None:
        return False
    target: bytes | None = None
    try:
        if rdtype == dns.rdatatype.A and len(tokens) == 2:
            # inet_pton is as strict as dnspython (no leading zeros, four parts): what it
            # takes, dnspython takes too, and the wire form is the same.
            parts: tuple[Part, ...] = (socket.inet_pton(socket.AF_INET, tokens[1]),)
        elif rdtype == dns.rdatatype.AAAA and len(tokens) == 2:
            parts = (socket.inet_pton(socket.AF_INET6, tokens[1]),)
        else:
            rd = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, " ".join(tokens[1:]), reader.current_origin, False, zone
            )
            parts, target = rdata_parts(rd)
    except Exception:
        return False
    if ttl is None:
        ttl = reader._implicit_ttl()
        if ttl is None:
            return False
    else:
        reader.last_ttl, reader.last_ttl_known = ttl, True
    reader.fast_owner = owner
    reader.collector.line = number
    reader.collector.add_parts(owner, ttl, rdtype, 0, parts, target)
    return True


def _statement_end(lines: list[str], start: int) -> int:
    """The line after the one where the statement starting at `start` ends: a parenthesis
    opened on it may close lines later (quotes and comments honoured)."""
    depth = 0
    for index in range(start, len(lines)):
        quoted = False
        escaped = False
        for char in lines[index]:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif quoted:
                quoted = char != '"'
            elif char == '"':
                quoted = True
            elif char == ";":
                break
            elif char == "(":
                depth += 1
            elif char == ")":
                depth = max(0, depth - 1)
        if depth == 0:
            return index + 1
    return len(lines)


def _with_source(lines: list[str], line: int, message: str) -> str:
    """Quote the refused line: dnspython's messages alone rarely say which field is wrong."""
    if 1 <= line <= len(lines) and lines[line - 1].strip():
        quoted = lines[line - 1].strip()
        if len(quoted) > QUOTE:
            quoted = quoted[:QUOTE] + "..."
        return f"{message} in {quoted!r}"
    return message


QUOTE = 120  # characters of a refused line quoted in its error


def _split_where(text: str, fallback: int) -> tuple[int, str]:
    """dnspython says `<records>:LINE: message`; keep the line and the message apart."""
    if text.startswith(_LINE_PREFIX):
        line, _, message = text[len(_LINE_PREFIX) :].partition(": ")
        if line.isdigit():
            return int(line), message
    return fallback, text
