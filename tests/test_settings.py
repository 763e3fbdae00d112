"""One configuration model for every role (issue 19 §6): defaults written once, a settings
file below the environment below the flags, validation naming the flag, workers given the
node's settings serialized, and `gslb config show` with secrets hidden."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gslb import cli
from gslb.settings import ApiSettings, CheckerSettings, DnsSettings, NodeSettings


def show(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GSLB_")}
    return subprocess.run(
        [sys.executable, "-m", "gslb", "config", "show", *argv],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_file_environment_and_flags_layer_and_secrets_are_hidden(tmp_path: Path) -> None:
    settings = tmp_path / "gslb.yaml"
    settings.write_text(
        "max-udp-size: 1400\n"
        "tcp_max_per_client: 8\n"
        "dns: ['127.0.0.1:5300', '[::1]:5300']\n"
        "rrl-rate: 50\n"
        "api-read-open: true\n"
    )
    env = {"GSLB_RRL_RATE": "30", "GSLB_REDIS": "redis://:hunter2-secret@10.0.0.5:6379/0"}
    done = show("dns", "--config", str(settings), "--rrl-rate", "40", env=env)
    assert done.returncode == 0, done.stderr
    effective = json.loads(done.stdout)
    assert effective["max_udp_size"] == 1400 and effective["tcp_max_per_client"] == 8, "file"
    assert effective["dns"] == ["127.0.0.1:5300", "[::1]:5300"]
    assert effective["api_read_open"] is True
    assert effective["rrl_rate"] == 40, "the flag wins over the environment over the file"
    assert effective["tcp_idle_timeout"] == DnsSettings().tcp_idle_timeout, "a default"
    assert "hunter2-secret" not in done.stdout
    assert effective["redis"] == "redis://:***@10.0.0.5:6379/0"
    # The environment over the file, and $GSLB_CONFIG instead of --config.
    again = json.loads(show("dns", env={**env, "GSLB_CONFIG": str(settings)}).stdout)
    assert again["rrl_rate"] == 30 and again["max_udp_size"] == 1400


def test_a_bad_setting_is_refused_naming_the_flag_or_the_file_key(tmp_path: Path) -> None:
    bad = show("dns", "--redis", "redis://x/0", "--max-udp-size", "9000")
    assert bad.returncode == 2
    assert "--max-udp-size: Input should be less than or equal to 4096" in bad.stderr
    quorum = show("checker", "--redis", "redis://x/0", "--quorum", "most")
    assert quorum.returncode == 2 and "--quorum" in quorum.stderr
    member = show("agent", "--redis", "redis://x/0", "--member", "not-an-address")
    assert member.returncode == 2 and "--member" in member.stderr
    unknown = tmp_path / "typo.yaml"
    unknown.write_text("max-udp-sise: 1400\n")
    refused = show("dns", "--redis", "redis://x/0", "--config", str(unknown))
    assert refused.returncode == 2
    assert f"--config {unknown}: max-udp-sise: not a setting of gslb dns" in refused.stderr
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("workers: many\n")
    refused = show("dns", "--redis", "redis://x/0", "--config", str(wrong))
    assert refused.returncode == 2 and f"{wrong}: workers" in refused.stderr


@pytest.mark.parametrize("role", ["serve", "dns"])
def test_every_setting_is_a_flag_whose_default_is_the_models(role: str) -> None:
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices[role]._actions}
    for model in (DnsSettings, ApiSettings):
        for name, field in model.model_fields.items():
            assert name in actions, f"{name}: no flag for it in gslb {role}"
            default = field.get_default(call_default_factory=True)
            if default is not None and actions[name].default is not None:
                assert actions[name].default == default, name


def test_workers_get_the_nodes_settings_serialized_not_a_rebuilt_command_line() -> None:
    settings = NodeSettings(
        role="serve",
        workers=2,
        nsid="n1",
        max_udp_size=1400,
        tcp_max_per_client=7,
        rrl_exempt=["10.0.0.0/8"],
        redis="redis://:pw@10.0.0.1/0",
        checker=CheckerSettings(id="c"),
    )
    argv, env = cli._worker_command(settings)("unix:///tmp/r.sock", [("127.0.0.1", 5300)], 1)
    assert argv[-2:] == ["dns", "--worker"], "nothing but the role on the command line"
    assert not any("pw" in a or "1400" in a for a in argv)
    worker = NodeSettings.model_validate_json(env[cli.WORKER_SETTINGS])
    assert (worker.nsid, worker.max_udp_size, worker.tcp_max_per_client) == ("n1", 1400, 7)
    assert worker.rrl_exempt == ["10.0.0.0/8"]
    assert (worker.role, worker.workers, worker.reuse_port) == ("dns", 1, True)
    assert worker.dns == [("127.0.0.1", 5300)] and worker.redis == "unix:///tmp/r.sock"
    assert worker.http is None and worker.checker is None, "one HTTP listener, one checker"
    assert worker.node_id and worker.node_id.endswith("/w1")
