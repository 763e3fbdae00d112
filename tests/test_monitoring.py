"""The Prometheus alerting rules and the Grafana dashboard in deploy/ (issue 19 §3): promtool
accepts the rules and their unit tests pass, and every metric they and the dashboard name is
one a running node exports."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import start_backend, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "gslb-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "gslb-dashboard.json"
METRIC = re.compile(r"\bgslb_[a-z_]+")
PORT = 18481
ZONE = f"""\
zone: monitoring.example
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: "@ NS ns1"
monitors:
  web: {{type: http, port: {PORT}, interval: 1, timeout: 0.5, rise: 1, fall: 1}}
pools:
  www:
    monitor: web
    members: [{{address: 127.10.13.1}}]
"""


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        ["promtool", "test", "rules", "gslb-alerts.test.yml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert names >= {
        "GslbPoolOnFallback",
        "GslbMemberDown",
        "GslbCheckerDead",
        "GslbRedisUnreachable",
        "GslbSnapshotStale",
        "GslbRrlDropping",
    }


def expressions() -> dict[str, list[str]]:
    rules = yaml.safe_load(RULES.read_text())["groups"]
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        "rules": [r["expr"] for g in rules for r in g["rules"]],
        "dashboard": [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        + [dashboard["templating"]["list"][0]["definition"]],
    }


def test_every_metric_the_rules_and_the_dashboard_name_is_exported(tmp_path: Path) -> None:
    backend = start_backend("127.10.13.1", PORT)
    server = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data")
    try:
        url = f"http://127.0.0.1:{server.http[0][1]}/metrics"

        def exported() -> set[str]:
            """The series names the node's metric families have, samples or not yet (a
            counter that has counted nothing is still declared)."""
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
            names = set()
            for family in text_string_to_metric_families(text):
                suffixes = {
                    "counter": ("_total",),
                    "histogram": ("_bucket", "_sum", "_count"),
                }.get(family.type, ("",))
                names |= {family.name + suffix for suffix in suffixes}
            return names

        # The checkers' heartbeats are read every few seconds: wait for their series.
        until(lambda: "gslb_checkers" in exported())
        found = exported()
        for source, exprs in expressions().items():
            named = {m for e in exprs for m in METRIC.findall(e)}
            assert named, source
            assert named <= found, f"{source} names what no node exports: {named - found}"
        panels = json.loads(DASHBOARD.read_text())["panels"]
        assert len(panels) >= 10 and all(
            p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in panels
        )
    finally:
        server.stop()
        stop_process(backend)
