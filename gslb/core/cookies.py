"""DNS Cookies (RFC 7873), with the interoperable server cookie of RFC 9018.

A client that sends a COOKIE option gets back its client cookie and a server cookie made of a
version (1), three reserved octets, a timestamp, and SipHash-2-4 of all that and its address
under the server secret. Every node of a cluster holds the same secret (shared through the
state store), so a cookie one node made is valid at any other; the secret is rotated, and the
one before stays valid for a while, so that clients holding a cookie never fail across a
rotation. A query that brings back a valid server cookie comes from the address it says (a
spoofer cannot learn a cookie made for another address): rate limiting lets it through.

Rules (RFC 7873 §5.2; RFC 9018 §4.3):
- an option that is not 8 octets (client cookie only) or 16 to 40 is FORMERR;
- a server cookie is valid when it is ours (version 1, 16 octets), its hash matches under the
  current or the previous secret, and its timestamp is at most an hour old and at most five
  minutes ahead; a valid one older than half an hour is replaced by a fresh one;
- an invalid or missing server cookie is no error: the answer goes out as usual, with a fresh
  cookie, unless the answer was to be rate limited, when BADCOOKIE (23) goes out instead: a few
  octets that the client answers by asking again with the cookie it now holds.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import siphashc

COOKIE = 10  # EDNS option code
BADCOOKIE = 23  # extended RCODE
CLIENT_LENGTH = 8
VERSION = 1
LIFETIME = 3600  # seconds a server cookie stays valid (RFC 9018 §4.3)
REFRESH = 1800  # seconds after which a valid cookie is replaced anyway
SKEW = 300  # seconds a cookie's timestamp may be ahead (clocks of the cluster differ)


class BadCookie(ValueError):
    """A malformed COOKIE option: the query gets FORMERR."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """The cluster's server secrets: the one cookies are made with, the one before (cookies
    it made are still honoured), and the one after (known to every node a whole period before
    it is used, so that a cookie made by the first node to switch is valid at the others)."""

    current: bytes  # 16 octets each
    previous: bytes | None = None
    upcoming: bytes | None = None


def split(option: bytes) -> tuple[bytes, bytes]:
    """(client cookie, server cookie) of a COOKIE option's data; BadCookie if malformed."""
    if len(option) != CLIENT_LENGTH and not 16 <= len(option) <= 40:
        raise BadCookie(f"COOKIE option of {len(option)} octets (8, or 16 to 40)")
    return option[:CLIENT_LENGTH], option[CLIENT_LENGTH:]


def _address(client: str) -> bytes:
    host = client.partition("%")[0]
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host)
    return socket.inet_aton(host)


def _hash(secret: bytes, client_cookie: bytes, head: bytes, address: bytes) -> bytes:
    value: int = siphashc.siphash(secret, client_cookie + head + address)
    return value.to_bytes(8, "little")


def make(secrets: Secrets, client_cookie: bytes, client: str, now: int) -> bytes:
    """A fresh server cookie for `client` (its address as text)."""
    head = struct.pack("!B3xI", VERSION, now & 0xFFFFFFFF)
    return head + _hash(secrets.current, client_cookie, head, _address(client))


def valid(secrets: Secrets, client_cookie: bytes, server: bytes, client: str, now: int) -> bool:
    """Whether `server` is a cookie this cluster made for `client` and still honours."""
    if len(server) != 16 or server[0] != VERSION:
        return False
    stamp: int = struct.unpack_from("!I", server, 4)[0]
    age = (now - stamp + (1 << 31)) % (1 << 32) - (1 << 31)  # serial arithmetic (RFC 1982)
    if age > LIFETIME or age < -SKEW:
        return False
    address = _address(client)
    head, given = server[:8], server[8:]
    for secret in (secrets.current, secrets.previous, secrets.upcoming):
        if secret is not None and _hash(secret, client_cookie, head, address) == given:
            return True
    return False


def fresh_enough(server: bytes, now: int) -> bool:
    """A valid cookie young enough to be sent back as it is (else a new one replaces it)."""
    stamp: int = struct.unpack_from("!I", server, 4)[0]
    return (now - stamp) % (1 << 32) < REFRESH


def option(client_cookie: bytes, server_cookie: bytes) -> bytes:
    """The COOKIE option of a reply: the client's cookie and ours."""
    data = client_cookie + server_cookie
    return struct.pack("!HH", COOKIE, len(data)) + data
