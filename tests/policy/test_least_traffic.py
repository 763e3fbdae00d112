from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import least_traffic
from tests.policy.strategies import context, members, pool, states


@given(st.data())
def test_ordered_by_traffic_per_weight_unreported_last(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state)
    out = least_traffic.apply(p.members, ctx)
    assert sorted(out, key=ms.index) == ms
    keys = [
        math.inf if ctx.load(m).traffic is None else ctx.load(m).traffic / m.weight  # type: ignore[operator]
        for m in out
    ]
    assert keys == sorted(keys)
