"""The deployment files (issue 9, "Done when"): the systemd units pass systemd-analyze verify,
compose.yaml validates, and every command line in them is one our CLI accepts."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gslb import cli

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
GSLB = Path(sys.executable).parent / "gslb"


def accepted(argv: list[str]) -> None:
    """Parse as `gslb` would, with the environment a deployment gives (GSLB_REDIS)."""
    parser = cli._parser()
    cli.from_environment(
        parser, {"GSLB_REDIS": "redis://redis:6379/0", "GSLB_MEMBER": "192.0.2.10"}
    )
    parser.parse_args(argv)


def test_every_role_has_a_unit() -> None:
    assert {u.name for u in UNITS} >= {
        "gslb-dns.service",
        "gslb-api.service",
        "gslb-checker.service",
        "gslb-agent.service",
        "gslb-serve.service",
    }


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # The units name /opt/gslb/bin/gslb; verify checks that the program exists, so here it is
    # this checkout's.
    for unit in UNITS:
        text = unit.read_text().replace("/opt/gslb/bin/gslb", str(GSLB))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_a_unit_is_hardened_and_its_commands_are_ours(unit: Path) -> None:
    text = unit.read_text()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes"):
        assert setting in text
    assert "DynamicUser=yes" in text or re.search(r"^User=", text, re.M)
    if "--dns 0.0.0.0:53" in text:
        assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text  # port 53 without root
    commands = re.findall(r"^Exec(?:Start|StartPre)=((?:[^\n]*\\\n)*[^\n]*)", text, re.M)
    for command in commands:
        argv = shlex.split(command.replace("\\\n", " ").replace("${STATE_DIRECTORY}", "/var/lib/x"))
        assert argv[0] == "/opt/gslb/bin/gslb"
        accepted(argv[1:])


def test_compose_validates_with_docker_compose() -> None:
    env = {**os.environ, "GSLB_ADMIN_TOKEN": "a-token-for-the-test-0123456789"}
    result = subprocess.run(
        [
            shutil.which("docker-compose") or "docker-compose",
            "-f",
            str(ROOT / "compose.yaml"),
            "config",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    roles = [s.get("command", [None])[0] for s in services.values()]
    assert roles.count("dns") == 2 and roles.count("checker") == 3 and roles.count("api") == 1
    assert "redis" in services
    for service in services.values():
        if service.get("image") == "gslb:latest":
            accepted(service["command"])
    # Without the admin token the file refuses to start rather than run with no API token.
    env.pop("GSLB_ADMIN_TOKEN")
    refused = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode != 0 and "GSLB_ADMIN_TOKEN" in refused.stderr


def test_the_dockerfile_command_is_ours() -> None:
    text = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    accepted(cmd)
    assert re.search(r"^USER gslb$", text, re.M)  # not root


def test_the_kubernetes_manifests_are_well_formed_and_their_commands_ours() -> None:
    kinds = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] and doc["metadata"]["name"]
            kinds.append(doc["kind"])
            spec = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                if container["image"].startswith("gslb"):
                    accepted(container["args"])
    # gslb-dns, gslb-checker, gslb-api, and external-dns with its gslb webhook sidecar
    assert kinds.count("Deployment") == 4 and "StatefulSet" in kinds and kinds.count("Service") >= 3
