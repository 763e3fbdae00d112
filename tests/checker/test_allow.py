"""A checker probes only the networks it is allowed to (issue 8: no probing arbitrary hosts)."""

from __future__ import annotations

import redis.asyncio as aioredis

from gslb.schema import Monitor, Target
from healthchecks.checker import CheckerConfig, CheckerNode


def target(address: str) -> Target:
    return Target(f"z/p/{address}", address, Monitor("tcp", port=80))


def test_targets_outside_the_allowed_networks_are_refused() -> None:
    node = CheckerNode(
        aioredis.Redis(), CheckerConfig("c1", allow=("192.0.2.0/24", "2001:db8::/32"))
    )
    assert node._allowed(target("192.0.2.10"))
    assert node._allowed(target("2001:db8::1"))
    assert not node._allowed(target("198.51.100.10"))
    assert not node._allowed(target("10.0.0.1"))
    assert node._refused == {"z/p/198.51.100.10", "z/p/10.0.0.1"}


def test_without_an_allowlist_everything_may_be_probed() -> None:
    node = CheckerNode(aioredis.Redis(), CheckerConfig("c1"))
    assert node._allowed(target("198.51.100.10"))
