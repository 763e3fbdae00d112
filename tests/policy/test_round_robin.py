from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import round_robin
from tests.policy.strategies import context, members, pool


@given(members(min_size=1), st.integers(0, 10_000))
def test_each_member_leads_once_per_cycle(ms: list, start: int) -> None:
    p = pool(ms)
    n = len(ms)
    leaders = [round_robin.apply(p.members, context(p, slot=start + i))[0] for i in range(n)]
    assert sorted(m.address for m in leaders) == sorted(m.address for m in ms)
    out = round_robin.apply(p.members, context(p, slot=start))
    k = ms.index(out[0])
    assert list(out) == ms[k:] + ms[:k], "a rotation keeps the relative order"
