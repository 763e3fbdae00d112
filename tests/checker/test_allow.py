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


def test_link_local_and_metadata_addresses_need_to_be_named() -> None:
    """Found by the security review: with no allow list (or a catch-all), a zone writer could
    make every checker fetch 169.254.169.254, the cloud metadata service."""
    anything = CheckerNode(aioredis.Redis(), CheckerConfig("c1"))
    catch_all = CheckerNode(aioredis.Redis(), CheckerConfig("c1", allow=("0.0.0.0/0", "::/0")))
    named = CheckerNode(aioredis.Redis(), CheckerConfig("c1", allow=("169.254.169.254/32",)))
    for address in ("169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254"):
        assert not anything._allowed(target(address)), address
        assert not catch_all._allowed(target(address)), address
    assert named._allowed(target("169.254.169.254"))
    assert not named._allowed(target("169.254.0.1"))
    assert catch_all._allowed(target("198.51.100.10"))


def test_probe_urls_are_built_and_never_take_an_authority() -> None:
    from healthchecks.probes.http import probe_url

    url = probe_url("http", "192.0.2.10", 8080, "/healthz?check=deep")
    assert url is not None and str(url) == "http://192.0.2.10:8080/healthz?check=deep"
    assert url.host == "192.0.2.10" and url.port == 8080
    v6 = probe_url("https", "2001:db8::1", 443, "/")
    assert v6 is not None and v6.host == "2001:db8::1"
    # An authority smuggled in the path (the review's "@127.0.0.1:9999/x") is refused.
    for path in ("@127.0.0.1:9999/x", "//127.0.0.1:9999/x", "http://127.0.0.1:9999/x"):
        assert probe_url("http", "192.0.2.10", 80, path) is None, path
