"""RFC 1035 master-file text (the `records:` of a zone document) into record sets.

dnspython's reader does the lexing ($ORIGIN, $TTL, $GENERATE, `@`, relative names, parentheses,
comments, quoted TXT strings, every rdata type); this module adds what an authoritative server
needs on top: the line of every record, refusal of names outside the zone, of CNAME beside other
data, and of `$INCLUDE` (a zone document names its one `records_file` explicitly, so a zone
cannot read arbitrary files of the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.tokenizer
import dns.zonefile


class MasterFileError(ValueError):
    """A refused line: `line` counts from 1 within the parsed text."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceRecord:
    owner: dns.name.Name
    ttl: int
    rdata: dns.rdata.Rdata
    line: int


class _Transaction(dns.zonefile.RRsetsReaderTransaction):
    """Collects records with their line, enforcing zone membership as they arrive."""

    def __init__(self, manager: Any, replacement: bool, read_only: bool) -> None:
        super().__init__(manager, replacement, read_only)  # type: ignore[no-untyped-call]
        self.line = 0
        self.records: list[SourceRecord] = []

    def add(self, *args: Any) -> None:
        name, ttl, rd = args
        try:
            super().add(*args)
        except dns.zonefile.CNAMEAndOtherData as e:
            raise _syntax_error(f"{name}: {e}") from None
        self.records.append(SourceRecord(name, ttl, rd, self.line))


class _Manager(dns.zonefile.RRSetsReaderManager):
    def writer(self, replacement: bool = False) -> _Transaction:
        return _Transaction(self, True, False)


class _Reader(dns.zonefile.Reader):
    def _rr_line(self) -> None:
        # Remember where the record starts: with parentheses it may end lines later, and by the
        # time a bad field is noticed the tokenizer may already stand on the next line.
        start = self.tok.line_number
        self.txn.line = start  # type: ignore[attr-defined]
        try:
            super()._rr_line()
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


def parse(text: str, origin: dns.name.Name, default_ttl: int) -> list[SourceRecord]:
    """Every record of `text`, in order; raise MasterFileError on the first refused line."""
    manager = _Manager(origin, False, dns.rdataclass.IN)
    txn = manager.writer(True)
    tok = dns.tokenizer.Tokenizer(text, "<records>")
    reader = _Reader(
        tok,
        dns.rdataclass.IN,
        txn,
        allow_directives={"$ORIGIN", "$TTL", "$GENERATE"},
        default_ttl=default_ttl,
    )
    try:
        reader.read()
    except MasterFileError as e:
        raise MasterFileError(e.line, _with_source(text, e.line, e.message)) from None
    except dns.exception.SyntaxError as e:
        line, message = _split_where(str(e), tok.line_number)
        raise MasterFileError(line, _with_source(text, line, message)) from None
    except dns.exception.DNSException as e:
        raise MasterFileError(tok.line_number, str(e) or type(e).__name__) from None
    return txn.records


def _with_source(text: str, line: int, message: str) -> str:
    """Quote the refused line: dnspython's messages alone rarely say which field is wrong."""
    lines = text.splitlines()
    if 1 <= line <= len(lines) and lines[line - 1].strip():
        return f"{message} in {lines[line - 1].strip()!r}"
    return message


def _split_where(text: str, fallback: int) -> tuple[int, str]:
    """dnspython says `<records>:LINE: message`; keep the line and the message apart."""
    if text.startswith(_LINE_PREFIX):
        line, _, message = text[len(_LINE_PREFIX) :].partition(": ")
        if line.isdigit():
            return int(line), message
    return fallback, text
