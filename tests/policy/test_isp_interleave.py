from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import isp_interleave
from gslb.core.state import ClusterState
from tests.policy.strategies import client_at, context, member, members, pool


@given(members(), st.integers(0, 1000))
def test_any_prefix_spans_as_many_isps_as_it_can(ms: list, slot: int) -> None:
    p = pool(ms)
    out = isp_interleave.apply(p.members, context(p, slot=slot))
    assert sorted(out, key=ms.index) == ms
    k = len({m.isp for m in ms})
    for j in range(1, len(out) + 1):
        assert len({m.isp for m in out[:j]}) >= min(j, k)
    for isp in {m.isp for m in ms}:
        mine, theirs = [m for m in out if m.isp == isp], [m for m in ms if m.isp == isp]
        assert any(mine == theirs[i:] + theirs[:i] for i in range(len(theirs))), (
            "inside an ISP, a rotation of the incoming order"
        )


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


def test_after_proximity_the_nearest_site_leads_and_isps_interleave_inside_each_site() -> None:
    from gslb.core.decide import decide

    lon_a = member(1, "lon", "isp-a")
    nyc_a, nyc_b = member(3, "nyc", "isp-a"), member(4, "nyc", "isp-b")
    lon_b = member(2, "lon", "isp-b")
    steps = ("health", "proximity", "isp_interleave", "limit")
    london = client_at(51.5, -0.1)
    # The review's case: London has only its isp-a member up.
    p = pool([lon_a, nyc_a, nyc_b], steps)
    for slot in range(12):
        out = decide(p, ClusterState(), {}, london, slot).members
        assert out[0] is lon_a, slot
        assert set(out[1:]) == {nyc_a, nyc_b}
    # Both ISPs in London: they alternate in the lead, New York behind them.
    p2 = pool([lon_a, lon_b, nyc_a, nyc_b], steps)
    firsts = Counter(decide(p2, ClusterState(), {}, london, s).members[0] for s in range(12))
    assert firsts == {lon_a: 6, lon_b: 6}
    for slot in range(12):
        assert {m.site.name for m in decide(p2, ClusterState(), {}, london, slot).members[:2]} == {  # type: ignore[union-attr]
            "lon"
        }
    # A dead path still goes last of all, behind the far site.
    cut = ClusterState(isp_paths_down=frozenset({("isp-a", "lon")}))
    assert decide(p, cut, {}, london, 0).members[-1] is lon_a
