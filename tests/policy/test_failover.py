from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import failover
from tests.policy.strategies import assert_reorders_or_filters, context, member, members, pool


@given(members(), st.integers(1, 4))
def test_keeps_exactly_one_priority_group(ms: list, min_up: int) -> None:
    p = pool(ms, min_up=min_up)
    out = failover.apply(p.members, context(p))
    assert_reorders_or_filters(p.members, out)
    assert len({m.priority for m in out}) == 1
    chosen = out[0].priority
    assert list(out) == [m for m in ms if m.priority == chosen], "the whole group, in order"
    reaching = sorted(
        q for q in {m.priority for m in ms} if sum(m.priority == q for m in ms) >= min_up
    )
    assert chosen == (reaching[0] if reaching else min(m.priority for m in ms))


def test_backup_takes_over_below_min_up() -> None:
    primary = [member(1, priority=1), member(2, priority=1)]
    backup = [member(3, priority=2), member(4, priority=2)]
    p = pool(primary + backup, min_up=2)
    assert failover.apply(tuple(primary + backup), context(p)) == tuple(primary)
    assert failover.apply((primary[0], *backup), context(p)) == tuple(backup)
