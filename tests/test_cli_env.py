"""Every flag from the environment (issue 9: deploy files and containers set GSLB_*)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gslb import cli


def parse(argv: list[str], environ: dict[str, str]) -> object:
    parser = cli._parser()
    cli.from_environment(parser, environ)
    return parser.parse_args(argv)


def test_flags_come_from_the_environment_and_the_command_line_wins() -> None:
    env = {
        "GSLB_REDIS": "redis://10.0.0.5:6379/0",
        "GSLB_DNS": "127.0.0.1:5300, [::1]:5300",
        "GSLB_API_READ_OPEN": "1",
        "GSLB_MAX_UDP_SIZE": "1400",
        "GSLB_WORKERS": "3",
    }
    args = parse(["dns"], env)
    assert args.redis == "redis://10.0.0.5:6379/0"  # type: ignore[attr-defined]
    assert args.dns == [("127.0.0.1", 5300), ("::1", 5300)]  # type: ignore[attr-defined]
    assert args.api_read_open is True  # type: ignore[attr-defined]
    assert args.max_udp_size == 1400 and args.workers == 3  # type: ignore[attr-defined]
    args = parse(["dns", "--redis", "redis://other/0", "--max-udp-size", "1232"], env)
    assert args.redis == "redis://other/0" and args.max_udp_size == 1232  # type: ignore[attr-defined]


def test_a_required_flag_is_still_required_without_its_variable() -> None:
    with pytest.raises(SystemExit):
        parse(["checker"], {})
    assert parse(["checker"], {"GSLB_REDIS": "redis://x/0"}).redis == "redis://x/0"  # type: ignore[attr-defined]


def test_a_bad_value_in_the_environment_is_refused_by_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gslb", "dns", "--redis", "redis://x/0"],
        env={"GSLB_DNS": "127.0.0.1:notaport", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "GSLB_DNS" in result.stderr
