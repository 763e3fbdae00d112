from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.schema import Checker
from healthchecks.assign import owners

TARGETS = [f"z/www/10.0.{i // 256}.{i % 256}" for i in range(2000)]


def checkers(n: int, regions: int = 3) -> list[Checker]:
    return [Checker(f"c{i}", f"r{i % regions}", ("default",), 0.0) for i in range(n)]


@given(st.integers(1, 9), st.integers(1, 4), st.integers(1, 4))
def test_replicas_and_region_spread(n: int, regions: int, replicas: int) -> None:
    live = checkers(n, regions)
    for target in TARGETS[:50]:
        picked = owners(target, live, replicas)
        assert len(picked) == min(replicas, n) == len(set(picked))
        used_regions = [next(c.region for c in live if c.id == p) for p in picked]
        distinct = len({c.region for c in live})
        assert len(set(used_regions)) == min(len(picked), distinct), "regions before doubling up"


@settings(max_examples=10, deadline=None)
@given(st.integers(3, 8), st.integers(1, 3), st.data())
def test_a_checker_leaving_moves_only_its_share(n: int, replicas: int, data: st.DataObject) -> None:
    live = checkers(n, regions=1)
    gone = data.draw(st.sampled_from(live))
    rest = [c for c in live if c is not gone]
    for target in TARGETS[:300]:
        before = owners(target, live, replicas)
        after = owners(target, rest, replicas)
        if gone.id not in before:
            assert after == before, "targets it did not probe keep their checkers"
        else:
            assert set(before) - {gone.id} <= set(after)


def test_load_spreads_evenly() -> None:
    live = checkers(4, regions=2)
    load = Counter(p for t in TARGETS for p in owners(t, live, 2))
    assert all(abs(count - 1000) < 120 for count in load.values()), load
