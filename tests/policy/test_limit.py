from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import limit
from tests.policy.strategies import context, members, pool


@given(members(), st.integers(1, 12))
def test_keeps_the_first_max_answers(ms: list, n: int) -> None:
    p = pool(ms, max_answers=n)
    out = limit.apply(p.members, context(p))
    assert out == p.members[:n]
