from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.core.policy import weighted
from tests.policy.strategies import context, member, pool


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=2, max_size=6))
def test_shares_follow_weights_within_two_percent_over_100000_draws(weights: list[int]) -> None:
    ms = [member(i + 1, weight=w) for i, w in enumerate(weights)]
    p = pool(ms)
    leads = Counter(
        weighted.apply(p.members, context(p, slot=s))[0].address for s in range(100_000)
    )
    total = sum(weights)
    for m in ms:
        share = leads[m.address] / 100_000
        assert abs(share - m.weight / total) <= 0.02 * (m.weight / total) + 1e-9, (m.weight, share)


@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(0, 10_000))
def test_every_member_is_in_every_answer(weights: list[int], slot: int) -> None:
    ms = [member(i + 1, weight=w) for i, w in enumerate(weights)]
    p = pool(ms)
    out = weighted.apply(p.members, context(p, slot=slot))
    assert sorted(out, key=lambda m: m.address) == sorted(ms, key=lambda m: m.address)
    assert out == weighted.apply(p.members, context(p, slot=slot)), "the slot decides, nothing else"
