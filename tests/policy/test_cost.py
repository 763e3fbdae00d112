from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import cost
from gslb.core.state import ClusterState, Load
from tests.policy.strategies import client_at, clients, context, member, members, pool, states


@given(st.data())
def test_unreachable_members_are_left_out_unless_none_is_reachable(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state, data.draw(clients()))
    out = cost.apply(p.members, ctx)
    reachable = [m for m in ms if not cost.path_down(m, ctx)]
    assert sorted(out, key=ms.index) == (reachable or ms)


def test_distance_times_load() -> None:
    near_busy = member(1, site="lon")
    far_idle = member(2, site="nyc")
    p = pool([near_busy, far_idle])
    client = client_at(51.5, -0.1)
    quiet = ClusterState()
    assert cost.apply(p.members, context(p, quiet, client))[0] is near_busy
    busy = ClusterState(load={near_busy.address: Load(sessions=20)})
    # London: (1 + 0) x 21 = 21; New York: (1 + 5.57) x 1 = 6.6
    assert cost.apply(p.members, context(p, busy, client))[0] is far_idle
    cut = ClusterState(isp_paths_down=frozenset({("isp-a", "nyc")}))
    a_nyc = member(3, site="nyc", isp="isp-a")
    p2 = pool([a_nyc, near_busy])
    assert cost.apply(p2.members, context(p2, cut, client_at(40.7, -74.0))) == (near_busy,)
