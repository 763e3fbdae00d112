from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import least_traffic
from tests.policy.strategies import context, members, pool, states


@given(st.data())
def test_after_the_leader_by_traffic_per_weight_unreported_as_the_mean(
    data: st.DataObject,
) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state, slot=data.draw(st.integers(0, 100)))
    out = least_traffic.apply(p.members, ctx)
    assert sorted(out, key=ms.index) == ms
    known = [(ctx.load(m).traffic, m.weight) for m in ms if ctx.load(m).traffic is not None]
    mean = sum(t for t, _ in known) / sum(w for _, w in known) if known else 0.0  # type: ignore[misc]
    keys = [
        mean if ctx.load(m).traffic is None else ctx.load(m).traffic / m.weight  # type: ignore[operator]
        for m in out[1:]
    ]
    assert keys == sorted(keys)
