"""A short run of the fuzz target inside make test (`make fuzz` runs a million)."""

from __future__ import annotations

import pytest

from tests import fuzz


def test_ten_thousand_mutated_queries_find_nothing() -> None:
    findings = fuzz.run(10_000, seed=20261124)
    assert findings == [], findings[:3]


def test_the_fuzz_checks_would_see_a_broken_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    # The target must be able to fail: a handler that answers garbage is caught.
    monkeypatch.setattr(fuzz, "handle", lambda wire, *a, **k: wire[:2] + b"\x80")
    assert fuzz.run(50, seed=1)


def test_a_short_coverage_guided_run_finds_nothing() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_atheris", "-runs=3000", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3" in result.stderr
