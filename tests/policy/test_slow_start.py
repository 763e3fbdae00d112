from __future__ import annotations

from collections import Counter

import pytest

from gslb.core.decide import decide, period
from gslb.core.state import ClusterState
from tests.policy.strategies import client_at, member, pool


@pytest.mark.parametrize(
    "steps",
    [
        ["health", "round_robin", "limit"],
        ["health", "weighted", "limit"],
        ["health", "least_load", "limit"],
        ["health", "proximity", "isp_interleave", "limit"],
        ["health", "sticky", "limit"],
    ],
)
def test_a_ramping_member_leads_its_ramp_of_its_share_with_every_ordering(steps: list) -> None:
    ms = [member(i, "lon", ("isp-a", "isp-b")[i % 2]) for i in (1, 2, 3, 4)]
    p = pool(ms, steps, slow_start=30.0)
    full = ClusterState()
    ramping = ClusterState(ramp={ms[0].key: 0.25})
    n = period(p, ramping, {})
    assert n % 20 == 0, "the ramp's 20 slots are in the period"
    keys = [i.to_bytes(2, "big") for i in range(50)]  # client networks, for sticky

    def leads(state: ClusterState) -> Counter:
        return Counter(
            decide(p, state, {}, client_at(51.5, -0.1), s, k).members[0]
            for s in range(n)
            for k in keys
        )

    before, after = leads(full), leads(ramping)
    if before[ms[0]]:
        assert after[ms[0]] == pytest.approx(before[ms[0]] * 0.25, rel=0.2, abs=2)
    assert sum(after.values()) == sum(before.values())
    # Still in every answer it was in: clients that try in order still reach it.
    for s in range(n):
        assert ms[0] in decide(p, ramping, {}, client_at(51.5, -0.1), s, b"k").members


def test_no_ramp_without_slow_start_or_with_everyone_ramping() -> None:
    ms = [member(i) for i in (1, 2)]
    plain = pool(ms, ["health", "round_robin", "limit"])
    state = ClusterState(ramp={ms[0].key: 0.05})
    assert Counter(decide(plain, state, {}, None, s).members[0] for s in range(20)) == {
        ms[0]: 10,
        ms[1]: 10,
    }
    ramped = pool(ms, ["health", "round_robin", "limit"], slow_start=10.0)
    both = ClusterState(ramp={ms[0].key: 0.05, ms[1].key: 0.05})
    assert len({decide(ramped, both, {}, None, s).members[0] for s in range(20)}) == 2


def test_explain_shows_the_ramp() -> None:
    ms = [member(i) for i in (1, 2)]
    p = pool(ms, ["health", "limit"], slow_start=10.0)
    trace = decide(p, ClusterState(ramp={ms[0].key: 0.05}), {}, None, 3, explain=True).trace
    notes = [n for t in trace if t.step == "slow_start" for n in t.notes]
    assert notes and "5 %" not in notes[0] and "at 5%" in notes[0]
