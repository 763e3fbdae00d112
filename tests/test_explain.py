"""`gslb explain` and the explain function: the answer and what each step did."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from gslb import zonefiles
from gslb.core.explain import explain
from gslb.core.snapshot import Snapshot
from gslb.core.state import ClusterState, MemberState
from gslb.shell.geoip import GeoIpLocator
from tests.geoip_fixtures import LONDON, NEW_YORK, write_city

EXAMPLE = Path(__file__).parent.parent / "zones"


def snapshot(tmp_path: Path) -> Snapshot:
    loaded = zonefiles.load_directory(EXAMPLE)
    return Snapshot(
        1, zonefiles.zone_set(loaded), locator=GeoIpLocator(write_city(tmp_path / "c.mmdb"))
    )


def test_explain_shows_each_step_and_the_answer(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    down = ClusterState(
        health={
            "gslb.example.com/www/127.10.1.10": MemberState("down"),
            "gslb.example.com/www/127.10.2.10": MemberState("up"),
            "gslb.example.com/www/127.10.1.20": MemberState("up"),
            "gslb.example.com/www/127.10.2.20": MemberState("up"),
        }
    )
    result = explain(
        dataclasses.replace(snap, state=down), "www.gslb.example.com", "A", NEW_YORK, 24
    )
    assert result["location"]["city"] == "New York"
    assert result["ecs_scope"] == 24
    (pool,) = result["pools"]
    steps = {s["step"]: s for s in pool["steps"]}
    assert steps["health"]["dropped"] == ["127.10.1.10"]
    assert "127.10.1.10 (down)" in steps["health"]["notes"][-1]
    assert steps["proximity"]["kept"][0] in ("127.10.1.20", "127.10.2.20")
    assert steps["proximity"]["reordered"] is True
    assert [line.split()[-1] for line in result["answer"]] == pool["answer"]


def cli_explain(client: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gslb", "explain", "www.gslb.example.com"]
    command += ["--client", client, "--zones", str(EXAMPLE), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_cli_explain_prints_the_story(tmp_path: Path) -> None:
    out = cli_explain(LONDON, "--geoip", str(write_city(tmp_path / "city.mmdb"))).stdout
    assert "location: London, GB, EU" in out
    assert "proximity" in out and "127.10.1.10@lon" in out
    assert json.loads(cli_explain(LONDON, "--json").stdout)["geoip"] is False


def test_cli_explain_refuses_a_bad_client() -> None:
    result = cli_explain("nope")
    assert result.returncode == 2
    assert "client: 'nope' is not an IP address" in result.stderr


def test_cli_explain_asks_a_running_server_and_says_when_it_cannot(tmp_path: Path) -> None:
    from tests.api_client import Http
    from tests.helpers import write_zones
    from tests.server import ServerProcess
    from tests.test_redis_state import until

    zones = write_zones(
        tmp_path / "zones", {"z.yaml": (EXAMPLE / "gslb.example.com.yaml").read_text()}
    )
    server = ServerProcess(zones, tmp_path / "data", "--no-checker")
    try:
        until(lambda: server.events("redis synced"))
        host, port = server.http[0]
        token = (tmp_path / "data" / "api-token").read_text().strip()
        api = Http(host, port, token)
        drained = "/api/v1/zones/gslb.example.com/pools/www/members/127.10.1.10/drain"
        assert api("POST", drained).status == 200
        live = cli_explain(
            LONDON,
            "--server",
            f"http://{host}:{port}",
            "--token-file",
            str(tmp_path / "data" / "api-token"),
        )
        assert live.returncode == 0, live.stderr
        assert live.stdout.startswith(f"(live, from http://{host}:{port})")
        assert "127.10.1.10 (drained)" in live.stdout, "the server's own state, not the files'"
        offline = cli_explain(LONDON).stdout
        assert "127.10.1.10 (drained)" not in offline
    finally:
        assert server.stop() == 0
    gone = cli_explain(LONDON, "--server", f"http://{host}:{port}")
    assert gone.returncode == 1
    assert f"could not ask http://{host}:{port}" in gone.stderr
