from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import health
from gslb.core.state import ClusterState, MemberState
from tests.policy.strategies import (
    assert_reorders_or_filters,
    context,
    member,
    members,
    pool,
    states,
)


@given(st.data())
def test_never_a_down_member_while_a_healthy_one_exists(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms, monitor="web")
    out = health.apply(p.members, context(p, state))
    assert_reorders_or_filters(p.members, out)
    assert all(m.admin == "enabled" for m in out)
    assert all(state.member(m.key).health != "down" for m in out)
    healthy = [m for m in ms if m.admin == "enabled" and state.member(m.key).health == "up"]
    if healthy:
        assert list(out) == healthy, "known-up members win, in their order"
    assert out == health.apply(p.members, context(p, state)), "same input, same output"


def test_unknown_members_are_kept_only_when_none_is_known_up() -> None:
    a, b = member(1), member(2)
    p = pool([a, b], monitor="web")
    assert health.apply(p.members, context(p)) == (a, b), "cold start: fail open on unknown"
    state = ClusterState(health={a.key: MemberState("up")})
    assert health.apply(p.members, context(p, state)) == (a,)


def test_pool_without_monitor_counts_enabled_members_up() -> None:
    a, b, c = member(1), member(2, admin="drained"), member(3)
    p = pool([a, b, c])
    state = ClusterState(health={c.key: MemberState("down")})
    assert health.apply(p.members, context(p, state)) == (a,)


def test_drained_and_disabled_are_dropped_even_when_up() -> None:
    a, b, c = member(1, admin="drained"), member(2, admin="disabled"), member(3)
    p = pool([a, b, c], monitor="web")
    state = ClusterState(health={m.key: MemberState("up") for m in (a, b, c)})
    assert health.apply(p.members, context(p, state)) == (c,)


def test_an_unmonitored_member_counts_up_whatever_the_state_but_not_when_disabled() -> None:
    a, b, c = member(1), member(2), member(3, admin="disabled")
    p = pool([a, b, c], monitor="web", unmonitored=frozenset({a.rdata, c.rdata}))
    state = ClusterState(health={m.key: MemberState("down") for m in (a, b, c)})
    assert health.apply(p.members, context(p, state)) == (a,)
