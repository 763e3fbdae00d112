"""A real octoDNS (1.22, its `octodns-sync` command) drives a real `gslb serve` through
gslb.octodns.GslbProvider (issue 19 §1): a dynamic record with geo and subnet rules, a down
value, a forced-up value and a fallback chain syncs, re-syncs with no change, and the answers
over the wire follow the rules and the members' health."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import octodns.yaml
import pytest
import yaml

from tests.geoip_fixtures import LONDON, NEW_YORK, NOWHERE, SINGAPORE, write_city
from tests.helpers import ecs, start_backend
from tests.server import ServerProcess
from tests.test_redis_state import until

ZONE = "octo.example.com"


def records(port: int) -> dict[str, object]:
    """The zone as octoDNS's YAML provider reads it (written with its own dumper, which sorts
    the keys the way its loader insists on)."""
    return {
        "": [
            {"type": "NS", "values": ["ns1.octo.example.com.", "ns2.octo.example.com."]},
            {"type": "MX", "values": [{"preference": 10, "exchange": "mx.octo.example.com."}]},
            {"type": "TXT", "values": ["v=spf1 -all", 'a "quoted" string\\; with a semicolon']},
            {"type": "CAA", "values": [{"flags": 0, "tag": "issue", "value": "ca.example.net"}]},
        ],
        "ns1": {"type": "A", "value": "192.0.2.53"},
        "ns2": {"type": "A", "value": "198.51.100.53"},
        "mx": {"type": "AAAA", "value": "2001:db8::25"},
        "alias": {"type": "CNAME", "value": "www.octo.example.com."},
        "_sip._tcp": {
            "type": "SRV",
            "values": [
                {"priority": 10, "weight": 5, "port": 5060, "target": "sip.octo.example.com."}
            ],
        },
        "sip": {"type": "A", "values": ["192.0.2.60", "192.0.2.61"]},
        "office": {
            "type": "LOC",
            "value": {
                "lat_degrees": 51,
                "lat_minutes": 30,
                "lat_seconds": 12.24,
                "lat_direction": "N",
                "long_degrees": 0,
                "long_minutes": 7,
                "long_seconds": 39.6,
                "long_direction": "W",
                "altitude": 10,
                "size": 1,
                "precision_horz": 10000,
                "precision_vert": 10,
            },
        },
        "svc": {
            "type": "HTTPS",
            "value": {"svcpriority": 1, "targetname": ".", "svcparams": {"alpn": ["h2", "h3"]}},
        },
        "www": {
            "type": "A",
            "ttl": 20,
            "values": ["127.31.9.9"],
            "dynamic": {
                "pools": {
                    "lon": {
                        "fallback": "nyc",
                        "values": [
                            {"value": "127.31.1.1", "weight": 3},
                            {"value": "127.31.1.2", "status": "down"},
                        ],
                    },
                    "nyc": {"values": [{"value": "127.31.2.1"}, {"value": "127.31.2.2"}]},
                    "sgp": {"values": [{"value": "127.31.3.1", "status": "up"}]},
                },
                "rules": [
                    {"subnets": ["10.66.0.0/16"], "geos": ["AS"], "pool": "sgp"},
                    {"geos": ["EU-GB"], "pool": "lon"},
                    {"geos": ["NA-US-NY"], "pool": "nyc"},
                    {"pool": "nyc"},
                ],
            },
            "octodns": {
                "healthcheck": {
                    "protocol": "HTTP",
                    "port": port,
                    "path": "/healthz",
                    "host": "www.example.com",
                },
                "gslb": {"healthcheck": {"interval": 0.5, "timeout": 0.4, "rise": 1, "fall": 1}},
            },
        },
    }


def write_records(path: Path, data: dict[str, object]) -> None:
    with path.open("w") as f:
        octodns.yaml.safe_dump(data, f)


CONFIG = """\
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: {directory}
  gslb:
    class: gslb.octodns.GslbProvider
    url: env/GSLB_URL
    token: env/GSLB_TOKEN
zones:
  {zone}.:
    sources: [config]
    targets: [gslb]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.31.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("octodns")
    port = free_port()
    backends = {
        a: start_backend(a, port) for a in ("127.31.1.1", "127.31.1.2", "127.31.2.1", "127.31.2.2")
    }
    (base / "config").mkdir()
    write_records(base / "config" / f"{ZONE}.yaml", records(port))
    config = base / "octodns.yaml"
    config.write_text(CONFIG.format(directory=base / "config", zone=ZONE))
    city = write_city(base / "city.mmdb")
    (base / "zones").mkdir()
    server = ServerProcess(base / "zones", base / "data", "--geoip", str(city))
    until(lambda: server.events("redis synced"))
    host, http_port = server.http[0]
    env = {
        **os.environ,
        "GSLB_URL": f"http://{host}:{http_port}",
        "GSLB_TOKEN": (base / "data" / "api-token").read_text().strip(),
    }
    yield {
        "server": server,
        "config": config,
        "env": env,
        "backends": backends,
        "base": base,
        "port": port,
    }
    for proc in backends.values():
        proc.terminate()
        proc.wait()
    assert server.stop() == 0


def sync(world: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    octodns_sync = Path(sys.executable).with_name("octodns-sync")
    return subprocess.run(
        [str(octodns_sync), "--config-file", str(world["config"]), *args],
        env=world["env"],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        timeout=120,
    )


def answer(
    server: ServerProcess, name: str, rdtype: str = "A", subnet: str | None = None
) -> list[str]:
    options = [ecs(subnet, 24)] if subnet else []
    q = dns.message.make_query(f"{name}.{ZONE}", rdtype, use_edns=0, options=options)
    reply = dns.query.udp(q, server.host, port=server.port, timeout=2)
    return sorted(
        rd.to_text()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.from_text(rdtype)
        for rd in rrset
    )


def leads(server: ServerProcess, subnet: str, n: int = 30) -> Counter[str]:
    return Counter(a for _ in range(n) for a in answer(server, "www", subnet=subnet))


def test_octodns_syncs_resyncs_with_no_change_and_the_rules_answer(
    world: dict[str, object],
) -> None:
    server: ServerProcess = world["server"]  # type: ignore[assignment]
    first = sync(world, "--doit")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Creates=" in first.stdout + first.stderr

    again = sync(world)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes were planned" in again.stdout + again.stderr, again.stdout + again.stderr

    # Static records of several types answer as octoDNS wrote them.
    until(lambda: answer(server, "ns1") == ["192.0.2.53"])
    assert answer(server, "sip") == ["192.0.2.60", "192.0.2.61"]
    assert answer(server, "_sip._tcp", "SRV") == ["10 5 5060 sip.octo.example.com."]
    assert answer(server, "mx", "AAAA") == ["2001:db8::25"]

    # The rules, in octoDNS's order, by the client's subnet (ECS) and where GeoIP puts it.
    # London: pool lon, whose down value never answers; weights lead with the other.
    until(lambda: set(leads(server, LONDON, 5)) == {"127.31.1.1"})
    assert set(leads(server, LONDON)) == {"127.31.1.1"}
    # New York: pool nyc, its two values sharing the answers once both are known up.
    until(lambda: set(leads(server, NEW_YORK, 10)) == {"127.31.2.1", "127.31.2.2"})
    shares = leads(server, NEW_YORK, 40)
    assert shares["127.31.2.1"] == shares["127.31.2.2"] == 20, shares
    # Singapore (continent AS) and a listed subnet: pool sgp, whose value is forced up
    # (nothing listens there, and nothing probes it).
    assert set(leads(server, SINGAPORE)) == {"127.31.3.1"}
    assert set(leads(server, "10.66.5.0")) == {"127.31.3.1"}
    # Anyone else: the catch-all rule's pool.
    assert set(leads(server, NOWHERE)) <= {"127.31.2.1", "127.31.2.2"}


def test_health_follows_the_fallback_chain_then_the_records_own_values(
    world: dict[str, object],
) -> None:
    server: ServerProcess = world["server"]  # type: ignore[assignment]
    backends: dict[str, subprocess.Popen[str]] = world["backends"]  # type: ignore[assignment]
    assert sync(world, "--doit").returncode == 0
    until(lambda: set(leads(server, LONDON, 5)) == {"127.31.1.1"})
    # London's only live value dies: London falls back to pool nyc.
    backends["127.31.1.1"].terminate()
    until(lambda: set(leads(server, LONDON, 5)) <= {"127.31.2.1", "127.31.2.2"}, timeout=20)
    # Then nyc dies too: every value of the chain is down, the record's values answer.
    for address in ("127.31.2.1", "127.31.2.2"):
        backends[address].terminate()
    until(lambda: set(leads(server, LONDON, 5)) == {"127.31.9.9"}, timeout=20)
    assert set(leads(server, NEW_YORK, 5)) == {"127.31.9.9"}
    # Singapore's forced-up value is not affected.
    assert set(leads(server, SINGAPORE, 5)) == {"127.31.3.1"}


def gslb(world: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    """A `gslb` command against the served API, with its write token."""
    env: dict[str, str] = world["env"]  # type: ignore[assignment]
    return subprocess.run(
        [sys.executable, "-m", "gslb", *args, "--api", env["GSLB_URL"]],
        env={**env, "GSLB_API_TOKEN": env["GSLB_TOKEN"]},
        capture_output=True,
        text=True,
        timeout=30,
    )


def planned_nothing(world: dict[str, object]) -> bool:
    done = sync(world)
    return done.returncode == 0 and "No changes were planned" in done.stdout + done.stderr


def test_a_changed_record_and_a_removed_one_sync_and_a_drain_outlives_it(
    world: dict[str, object],
) -> None:
    server: ServerProcess = world["server"]  # type: ignore[assignment]
    base: Path = world["base"]  # type: ignore[assignment]
    assert sync(world, "--doit").returncode == 0
    drained = gslb(world, "drain", ZONE, "www-a", "127.31.2.2")
    assert drained.returncode == 0, drained.stderr
    assert planned_nothing(world), "a drain is not configuration: octoDNS sees no change"

    path = base / "config" / f"{ZONE}.yaml"
    data = records(world["port"])  # type: ignore[arg-type]
    del data["sip"]
    data["ns2"] = {"type": "A", "value": "198.51.100.54"}
    www = data["www"]
    www["dynamic"]["pools"]["nyc"]["values"].append({"value": "127.31.2.3"})  # type: ignore[index]
    write_records(path, data)
    try:
        changed = sync(world, "--doit")
        assert changed.returncode == 0, changed.stdout + changed.stderr
        until(lambda: answer(server, "ns2") == ["198.51.100.54"])
        assert answer(server, "sip") == []
        assert planned_nothing(world)
        exported = gslb(world, "zones", "export", "--zone", ZONE, "--out", str(base / "export"))
        assert exported.returncode == 0, exported.stderr
        exported_zone = yaml.safe_load((base / "export" / f"{ZONE}.yaml").read_text())
        members = {m["address"]: m for m in exported_zone["pools"]["www-a"]["members"]}
        assert members["127.31.2.2"] == {"address": "127.31.2.2", "site": "nyc", "state": "drained"}
        assert members["127.31.2.3"] == {"address": "127.31.2.3", "site": "nyc"}
    finally:
        write_records(path, records(world["port"]))  # type: ignore[arg-type]


def test_refusals_name_the_record_and_change_nothing(world: dict[str, object]) -> None:
    base: Path = world["base"]  # type: ignore[assignment]
    assert sync(world, "--doit").returncode == 0
    path = base / "config" / f"{ZONE}.yaml"
    data = records(world["port"])  # type: ignore[arg-type]
    data["www"]["dynamic"]["pools"]["nyc"]["values"][1] = {"value": "127.31.1.1"}  # type: ignore[index]
    write_records(path, data)
    try:
        refused = sync(world, "--doit")
        out = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert "www.octo.example.com.: 127.31.1.1 is in pools lon and nyc" in out, out
    finally:
        write_records(path, records(world["port"]))  # type: ignore[arg-type]
    assert planned_nothing(world)
