from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import fastest
from tests.policy.strategies import context, members, pool, states


@given(st.data())
def test_lowest_rtt_first_unmeasured_last(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    out = fastest.apply(p.members, context(p, state))
    assert sorted(out, key=ms.index) == ms
    rtts = [state.member(m.key).rtt for m in out]
    keys = [math.inf if r is None else r for r in rtts]
    assert keys == sorted(keys)
