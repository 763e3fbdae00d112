"""Load reports projected along their trend (gslb.core.state.anticipated, gslb.shell.ramp)."""

from __future__ import annotations

from gslb.core.state import Load, anticipated
from gslb.shell.ramp import LoadTrend


def test_a_rising_load_is_read_as_it_will_be_and_a_steady_one_as_it_is() -> None:
    before, now = Load(sessions=100, at=10.0), Load(sessions=150, at=15.0)
    assert anticipated(before, now, 10.0).sessions == 250  # 10 a second, 10 s ahead
    assert anticipated(Load(sessions=150, at=10.0), now, 10.0).sessions == 150
    falling = anticipated(Load(sessions=500, at=10.0), Load(sessions=100, at=15.0), 10.0)
    assert falling.sessions == 0, "never below nothing"
    assert anticipated(None, now, 10.0) is now
    assert anticipated(now, now, 10.0) is now, "the same report twice has no trend"


def test_the_trend_is_kept_per_agent_between_distinct_reports() -> None:
    trend = LoadTrend(lead=10.0)
    first = trend.project({"192.0.2.1": Load(sessions=100, at=10.0)})
    assert first["192.0.2.1"].sessions == 100
    again = trend.project({"192.0.2.1": Load(sessions=100, at=10.0)})
    assert again["192.0.2.1"].sessions == 100, "no new report: no trend yet"
    rising = trend.project({"192.0.2.1": Load(sessions=150, at=15.0)})
    assert rising["192.0.2.1"].sessions == 250
    same = trend.project({"192.0.2.1": Load(sessions=150, at=15.0)})
    assert same["192.0.2.1"].sessions == 250, "read again before the next report: same trend"
    assert trend.project({}) == {} and trend.reports == {}, "silent agents are forgotten"
