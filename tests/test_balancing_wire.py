"""Balancing over the wire, against a real `gslb serve` (issue 15, "Done when"): the nearest
site leads with interleaved ISPs, least_load does not herd without agents, and a recovered
member takes its share slowly."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from gslb.core.state import MemberState
from gslb.schema import LOAD, Load
from tests.geoip_fixtures import CITIES, LONDON, write_city
from tests.helpers import ecs, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import run, until

ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [192.0.2.0/25]
  isp-b: [192.0.2.128/25]
sites:
  lon: {lat: 51.51, lon: -0.13}
  nyc: {lat: 40.71, lon: -74.01}
  sgp: {lat: 1.35, lon: 103.82}
pools:
  www:
    policy: [health, proximity, isp_interleave, limit]
    members:
      - {address: 192.0.2.10, site: lon}
      - {address: 192.0.2.130, site: lon}
      - {address: 192.0.2.20, site: nyc}
      - {address: 192.0.2.140, site: nyc}
  shared:
    policy: [health, least_load, limit]
    max_answers: 1
    members:
      - {address: 192.0.2.31}
      - {address: 192.0.2.32}
      - {address: 192.0.2.33}
  spill:
    policy: [health, proximity]
    max_answers: 1
    members:
      - {address: 192.0.2.61, site: lon, capacity: 100}
      - {address: 192.0.2.62, site: lon, capacity: 100}
      - {address: 192.0.2.63, site: nyc, capacity: 100}
      - {address: 192.0.2.64, site: nyc, capacity: 100}
      - {address: 192.0.2.65, site: sgp, capacity: 100}
      - {address: 192.0.2.66, site: sgp, capacity: 100}
  planned:
    policy: [health, round_robin, limit]
    ttl: 20
    members:
      - {address: 192.0.2.51}
      - {address: 192.0.2.52}
  slow:
    policy: [health, round_robin, limit]
    max_answers: 1
    slow_start: 30
    members:
      - {address: 192.0.2.41}
      - {address: 192.0.2.42}
      - {address: 192.0.2.43}
"""


# Client networks in New York, each its own decision (spill-over is drawn per network).
NEW_YORKERS = [(f"198.18.{i}.0/24", "New York", "US", "NA", 40.7128, -74.0060) for i in range(30)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, Path]]:
    base = tmp_path_factory.mktemp("balancing")
    city = write_city(base / "city.mmdb", CITIES + NEW_YORKERS)
    server = ServerProcess(
        write_zones(base / "zones", {"z.yaml": ZONE}), base / "data", "--geoip", str(city)
    )
    url = f"unix://{(base / 'data' / 'redis.sock').resolve()}"
    until(lambda: server.events("redis synced"))
    yield server, url, base
    assert server.stop() == 0


def first(server: ServerProcess, name: str, subnet: str | None = None) -> str | None:
    options = [ecs(subnet, 24)] if subnet else []
    q = dns.message.make_query(f"{name}.gslb.example.com", "A", use_edns=0, options=options)
    reply = dns.query.udp(q, server.host, port=server.port, timeout=2)
    for rrset in reply.answer:
        return str(rrset[0])
    return None


def set_health(url: str, states: dict[str, str]) -> None:
    run(
        lambda store: store.set_health(
            {f"gslb.example.com/{k}": MemberState(v) for k, v in states.items()}  # type: ignore[arg-type]
        ),
        url,
    )


def test_a_london_client_is_led_by_london_when_it_has_only_one_isp_up(
    served: tuple[ServerProcess, str, Path],
) -> None:
    server, url, _ = served
    set_health(url, {"www/192.0.2.130": "down"})
    until(lambda: all(first(server, "www", LONDON) == "192.0.2.10" for _ in range(5)))
    leads = Counter(first(server, "www", LONDON) for _ in range(100))
    assert leads["192.0.2.10"] >= 99, leads


def test_least_load_without_agents_gives_nobody_most_answers_in_any_2_s_window(
    served: tuple[ServerProcess, str, Path],
) -> None:
    server, _, _ = served
    windows: list[Counter[str | None]] = []
    started = time.monotonic()
    # 12 s: answer counts reach Redis every second and are read back every 5 s, so the
    # shares change at least twice while we look.
    while time.monotonic() - started < 12:
        window: Counter[str | None] = Counter()
        until_end = time.monotonic() + 2
        while time.monotonic() < until_end:
            window[first(server, "shared")] += 1
        windows.append(window)
    for window in windows:
        total = sum(window.values())
        assert max(window.values()) <= 0.6 * total, windows
        assert len(window) == 3, windows


def test_a_recovered_member_ramps_up_over_its_slow_start(
    served: tuple[ServerProcess, str, Path],
) -> None:
    server, url, _ = served
    member = "192.0.2.43"
    set_health(url, {f"slow/{member}": "down"})
    until(lambda: all(first(server, "slow") != member for _ in range(10)))
    set_health(url, {f"slow/{member}": "up"})
    back = time.monotonic()
    early: Counter[str | None] = Counter()
    while time.monotonic() - back < 5:
        early[first(server, "slow")] += 1
    assert early[member] < 0.3 * sum(early.values()), early
    assert early[member] > 0, "it does take trial answers"
    time.sleep(max(0.0, back + 31 - time.monotonic()))
    late = Counter(first(server, "slow") for _ in range(300))
    assert late[member] == pytest.approx(100, abs=15), late


def ttl_and_addresses(server: ServerProcess, name: str) -> tuple[int, set[str]]:
    q = dns.message.make_query(f"{name}.gslb.example.com", "A")
    reply = dns.query.udp(q, server.host, port=server.port, timeout=2)
    return reply.answer[0].ttl, {str(rr) for rr in reply.answer[0]}


def test_a_planned_drain_steps_the_ttl_down_first_and_back_after(
    served: tuple[ServerProcess, str, Path],
) -> None:
    server, _, base = served
    assert ttl_and_addresses(server, "planned") == (20, {"192.0.2.51", "192.0.2.52"})
    token = base / "data" / "api-token"
    api = f"http://127.0.0.1:{server.http[0][1]}"
    said = subprocess.run(
        [
            sys.executable,
            "-m",
            "gslb",
            "drain",
            "gslb.example.com",
            "planned",
            "192.0.2.52",
            "--in",
            "8",
            "--api",
            api,
            "--token-file",
            str(token),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "drains at" in said
    # Inside the TTL before the drain: a short TTL, the member still answered.
    until(lambda: ttl_and_addresses(server, "planned")[0] <= 5)
    ttl, addresses = ttl_and_addresses(server, "planned")
    assert ttl == 5 and "192.0.2.52" in addresses, "not drained yet: planned 8 s ahead"
    # Then it is drained, and the TTL comes back.
    until(lambda: ttl_and_addresses(server, "planned") == (20, {"192.0.2.51"}))


def test_when_london_fails_new_york_sheds_at_once_what_londons_load_will_need(
    served: tuple[ServerProcess, str, Path],
) -> None:
    """New York at 170 of 200 spills a quarter of its answers (read off its load: 0 at 80 %,
    all at 100 %). When London fails, London's 120 sessions are on their
    way to New York before any report shows them: the spill goes at once to what keeps New
    York at 88 % with them (1 - 0.88 x 200 / (170 / 0.75 + 120), about half), with the
    same reports."""
    server, url, _ = served
    reports = {"61": 60, "62": 60, "63": 85, "64": 85, "65": 30, "66": 30}

    async def write(store: object) -> None:
        at = time.time()
        await store.redis.hset(  # type: ignore[attr-defined]
            LOAD,
            mapping={f"192.0.2.{k}": Load(sessions=v, at=at).to_json() for k, v in reports.items()},
        )

    def shed() -> float:
        # Every rotation slot of every network: 20 queries in a row go round the slots.
        led = Counter(
            first(server, "spill", network.split("/")[0])
            for network, *_ in NEW_YORKERS
            for _ in range(20)
        )
        return 1 - (led["192.0.2.63"] + led["192.0.2.64"]) / (20 * len(NEW_YORKERS))

    run(write, url)
    until(lambda: abs(shed() - 0.25) < 0.06)
    set_health(url, {"spill/192.0.2.61": "down", "spill/192.0.2.62": "down"})
    run(write, url)  # the same sessions again: nothing in the reports has moved
    until(lambda: abs(shed() - (1 - 0.88 * 200 / (170 / 0.75 + 120))) < 0.06)
