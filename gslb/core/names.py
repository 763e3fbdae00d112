"""Domain names in uncompressed wire form, the representation used throughout the core.

A name is kept as its wire bytes (`b"\\x03www\\x07example\\x03com\\x00"`). The canonical form,
used as a dictionary key, is the same bytes lowercased: `bytes.lower()` folds exactly the ASCII
letters, which is DNS case-insensitivity (RFC 4343), and never touches a length byte (<= 63).
Every suffix of a wire name taken at a label boundary is itself a wire name, so walking up the
tree is slicing. Presentation text goes through dnspython, which knows every escape.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.exception
import dns.name

ROOT = b"\x00"


class BadName(ValueError):
    """Text that is not a valid domain name."""


def from_text(text: str, origin: bytes = ROOT) -> bytes:
    """Canonical wire bytes of `text`; a name without a trailing dot is relative to `origin`."""
    try:
        base = dns.name.from_wire(origin, 0)[0]
        return wire_of(dns.name.from_text(text, origin=base))
    except (dns.exception.DNSException, UnicodeError) as e:
        raise BadName(f"{text!r} is not a valid domain name: {e}") from None


_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")


def relative(text: str, origin: bytes) -> bytes:
    """`from_text(text, origin)`, quicker for the plain names pools have (`www`, `api.eu`):
    letters, digits, hyphens, underscores; anything else goes through dnspython."""
    if text and not text.endswith(".") and text.isascii():
        lowered = text.lower().encode()
        labels = lowered.split(b".")
        if all(0 < len(label) <= 63 and _PLAIN.issuperset(label) for label in labels):
            wire = b"".join(bytes((len(label),)) + label for label in labels) + origin
            if len(wire) <= 255:
                return wire
    return from_text(text, origin)


def wire_of(name: dns.name.Name) -> bytes:
    """Canonical wire bytes of an absolute dnspython name."""
    wire = name.to_wire()
    assert wire is not None  # None only when writing into a file
    return wire.lower()


def to_text(wire: bytes) -> str:
    """Presentation form with a trailing dot."""
    return dns.name.from_wire(wire, 0)[0].to_text()


def suffixes(wire: bytes) -> Iterator[bytes]:
    """The name itself, then each ancestor up to and including the root."""
    i = 0
    while True:
        yield wire[i:]
        n = wire[i]
        if n == 0:
            return
        i += n + 1


def is_subdomain(wire: bytes, ancestor: bytes) -> bool:
    """True when `wire` is `ancestor` or below it (both canonical)."""
    if not wire.endswith(ancestor):
        return False
    return any(s == ancestor for s in suffixes(wire))
