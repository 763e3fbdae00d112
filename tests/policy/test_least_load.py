from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import least_load
from gslb.core.state import ClusterState, Load
from tests.policy.strategies import (
    assert_reorders_or_filters,
    context,
    member,
    members,
    pool,
    states,
)


@given(st.data())
def test_ordered_by_load_per_weight_stably(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state)
    out = least_load.apply(p.members, ctx)
    assert_reorders_or_filters(p.members, out)
    assert len(out) == len(ms)
    keys = [ctx.sessions(m) / m.weight for m in out]
    assert keys == sorted(keys)
    for a, b in itertools.pairwise(out):
        if ctx.sessions(a) / a.weight == ctx.sessions(b) / b.weight:
            assert ms.index(a) < ms.index(b), "ties keep their order"


def test_answers_handed_out_stand_in_without_agent_reports() -> None:
    a, b = member(1), member(2, weight=2)
    p = pool([a, b])
    busy_a = ClusterState(answers={a.key: 10, b.key: 15})  # b: 15/2 = 7.5 < 10
    assert least_load.apply(p.members, context(p, busy_a)) == (b, a)
    reported = ClusterState(load={b.address: Load(sessions=40)}, answers={a.key: 10})
    assert least_load.apply(p.members, context(p, reported)) == (a, b), "agent reports win"
