"""Which checkers probe which member: rendezvous hashing, regions spread first.

Each live checker scores each target with a stable hash of (target, checker). A target is
probed by `replicas` checkers (all when there are fewer): the regions are ranked by their
best-scoring checker, and copies are handed out one region at a time, so that a target is seen
from as many regions as there are copies before any region gets a second one. When a checker
joins or leaves, only the targets whose top scores it holds change hands (rendezvous
hashing's minimal disruption); every checker computes the same answer from the same list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gslb.schema import Checker


def score(target: str, checker: str) -> int:
    digest = hashlib.blake2b(f"{target}\0{checker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owners(target: str, checkers: Sequence[Checker], replicas: int) -> list[str]:
    """Ids of the checkers that probe `target`, best first."""
    ranked = sorted(checkers, key=lambda c: score(target, c.id), reverse=True)
    regions: dict[str, list[str]] = {}
    for checker in ranked:  # regions in order of their best checker
        regions.setdefault(checker.region, []).append(checker.id)
    want = min(replicas, len(ranked))
    picked: list[str] = []
    depth = 0
    while len(picked) < want:
        for ids in regions.values():
            if depth < len(ids) and len(picked) < want:
                picked.append(ids[depth])
        depth += 1
    return picked
