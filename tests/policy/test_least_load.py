from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import _share, cost, least_load, least_traffic
from gslb.core.state import ClusterState, Load
from tests.policy.strategies import (
    assert_reorders_or_filters,
    context,
    member,
    members,
    pool,
    states,
)


def leads(step: object, p: object, state: ClusterState, slots: int = 20) -> Counter[str]:
    return Counter(
        step.apply(p.members, context(p, state, slot=s))[0].address  # type: ignore[attr-defined]
        for s in range(slots)
    )


@given(st.data())
def test_the_leader_then_the_others_by_load_per_weight(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state, slot=data.draw(st.integers(0, 100)))
    out = least_load.apply(p.members, ctx)
    assert_reorders_or_filters(p.members, out)
    assert len(out) == len(ms)
    keys = [ctx.sessions(m) / m.weight for m in out[1:]]
    assert keys == sorted(keys)


@given(st.data())
def test_each_slot_cycle_shares_the_lead_by_headroom(data: st.DataObject) -> None:
    ms = data.draw(members(min_size=2))
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state)
    counted = leads(least_load, p, state, least_load.period(p.members, ctx))
    usable = [m for m in ms if not cost.path_down(m, ctx)] or ms
    for m in ms:
        if m not in usable:
            assert counted[m.address] == 0, "unreachable over its ISP: no lead"
    per_weight = {m.address: ctx.sessions(m) / m.weight for m in usable}
    mean = sum(ctx.sessions(m) for m in usable) / sum(m.weight for m in usable)
    for m in usable:
        if mean > 0 and per_weight[m.address] >= (1 + 1 / _share.GAIN) * mean:
            assert counted[m.address] == 0, "a third above the mean load: no new lead"
    # Less loaded (per weight) never leads less often per weight than more loaded.
    for a in usable:
        for b in usable:
            if per_weight[a.address] < per_weight[b.address]:
                assert counted[a.address] / a.weight >= counted[b.address] / b.weight - 1


def test_no_member_takes_every_answer_while_the_counts_are_frozen() -> None:
    a, b, c = member(1), member(2), member(3)
    p = pool([a, b, c], max_answers=1)
    # The herd's cause: one member a bit less loaded than the others took every answer.
    state = ClusterState(answers={a.key: 100, b.key: 101, c.key: 102})
    counted = leads(least_load, p, state)
    assert max(counted.values()) <= 8, counted  # 7, 7, 6 of 20
    assert len(counted) == 3


def test_a_member_far_above_the_mean_gets_no_new_lead_until_the_others_catch_up() -> None:
    a, b = member(1), member(2, weight=2)
    p = pool([a, b])
    # Per weight: a = 30, b = 0: the mean is 10, a is at 3x: b leads every slot.
    assert leads(least_load, p, ClusterState(answers={a.key: 30})) == {b.address: 20}
    even = ClusterState(answers={a.key: 10, b.key: 20})
    assert leads(least_load, p, even) == {a.address: 7, b.address: 13}, "by weight"
    reported = ClusterState(load={b.address: Load(sessions=40)}, answers={a.key: 10})
    # a: 10 per weight, b: 40 / 2 = 20, mean 50 / 3: a 1 x 2.2, b 2 x 0.4: a leads 15 of 20.
    assert leads(least_load, p, reported)[a.address] == 15, "agent reports win over answers"


def test_least_traffic_shares_the_same_way_and_unreported_counts_as_the_mean() -> None:
    a, b, c = member(1), member(2), member(3)
    p = pool([a, b, c])
    state = ClusterState(load={a.address: Load(traffic=300.0), b.address: Load(traffic=100.0)})
    counted = leads(least_traffic, p, state)
    # mean 200: a at 1.5x -> 0, b at 0.5x -> 2.5, c (no report) at the mean -> 1.
    assert counted == {b.address: 14, c.address: 6}
    assert leads(least_traffic, p, ClusterState()) == {a.address: 7, b.address: 7, c.address: 6}


def test_rfc_2391_worked_example_weighs_sessions_by_type_and_hosts_by_resource() -> None:
    # RFC 2391 §5.1, algorithm 4: FTP sessions weigh 5, telnet 1; S3 is 3 times as resourceful
    # as S1. S1 holds 1 FTP + 1 telnet (6), S3 2 FTP + 5 telnet (15 / 3 = 5): S3 is picked.
    s1, s3 = member(1, weight=1), member(3, weight=3)
    p = pool([s1, s3], session_weights=((21, 5.0), (23, 1.0)))
    state = ClusterState(
        load={
            s1.address: Load(sessions=2, ports=((21, 1.0), (23, 1.0))),
            s3.address: Load(sessions=7, ports=((21, 2.0), (23, 5.0))),
        }
    )
    ctx = context(p, state)
    assert ctx.sessions(s1) / s1.weight == 6 and ctx.sessions(s3) / s3.weight == 5
    counted = leads(least_load, p, state)
    assert counted[s3.address] > counted[s1.address], "the RFC's choice leads"
    unweighted = pool([s1, s3])
    assert context(unweighted, state).sessions(s3) == 7, "without session_weights: the count"


def test_a_member_whose_cpus_are_saturated_gets_no_new_lead() -> None:
    a, b = member(1), member(2)
    p = pool([a, b])
    busy = ClusterState(
        load={a.address: Load(sessions=0, cpu=1.2), b.address: Load(sessions=50, cpu=0.4)}
    )
    assert leads(least_load, p, busy) == {b.address: 20}
