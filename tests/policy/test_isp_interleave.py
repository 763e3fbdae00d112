from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import isp_interleave
from gslb.core.state import ClusterState
from tests.policy.strategies import context, member, members, pool


@given(members(), st.integers(0, 1000))
def test_any_prefix_spans_as_many_isps_as_it_can(ms: list, slot: int) -> None:
    p = pool(ms)
    out = isp_interleave.apply(p.members, context(p, slot=slot))
    assert sorted(out, key=ms.index) == ms
    k = len({m.isp for m in ms})
    for j in range(1, len(out) + 1):
        assert len({m.isp for m in out[:j]}) >= min(j, k)
    for isp in {m.isp for m in ms}:
        assert [m for m in out if m.isp == isp] == [m for m in ms if m.isp == isp], (
            "order kept inside an ISP"
        )


@given(members(min_size=2), st.integers(0, 1000))
def test_each_isp_leads_equally_often(ms: list, start: int) -> None:
    p = pool(ms)
    k = len({m.isp for m in ms})
    leads = Counter(
        isp_interleave.apply(p.members, context(p, slot=start + i))[0].isp for i in range(k * 5)
    )
    assert set(leads.values()) == {5}


def test_isp_with_path_down_goes_last_or_is_dropped() -> None:
    a1, b1, a2, b2 = (
        member(1, "lon", "isp-a"),
        member(2, "lon", "isp-b"),
        member(3, "nyc", "isp-a"),
        member(4, "nyc", "isp-b"),
    )
    state = ClusterState(isp_paths_down=frozenset({("isp-a", "lon")}))
    p = pool([a1, b1, a2, b2])
    for slot in range(4):
        out = isp_interleave.apply(p.members, context(p, state, slot=slot))
        assert out[-1] is a1
    dropping = pool([a1, b1, a2, b2], isp_down="drop")
    assert a1 not in isp_interleave.apply(dropping.members, context(dropping, state))
