"""Stable hashing to the unit interval, for steps that must decide the same way every time."""

from __future__ import annotations

import hashlib


def unit(*parts: bytes | str | int) -> float:
    """A number in (0, 1), fixed for the given parts, uniform over them."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = (
            part.encode()
            if isinstance(part, str)
            else (part.to_bytes(8, "big", signed=True) if isinstance(part, int) else part)
        )
        digest.update(len(data).to_bytes(2, "big") + data)
    return (int.from_bytes(digest.digest(), "big") + 1) / (2**64 + 2)
