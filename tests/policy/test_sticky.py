from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.core.policy import sticky
from tests.policy.strategies import context, member, pool

CLIENTS = [bytes([4, 24, 10, i // 256, i % 256, 0]) for i in range(5000)]


def leaders(ms: list) -> list[str]:
    p = pool(ms)
    return [sticky.apply(p.members, context(p, client_key=c))[0].address for c in CLIENTS]


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 8), st.data())
def test_a_member_leaving_moves_only_its_own_clients(n: int, data: st.DataObject) -> None:
    ms = [member(i + 1) for i in range(n)]
    before = leaders(ms)
    gone = data.draw(st.sampled_from(ms))
    after = leaders([m for m in ms if m is not gone])
    moved = sum(b != a for b, a in zip(before, after, strict=True))
    assert moved == before.count(gone.address), "only the clients of the member that left move"
    assert moved / len(CLIENTS) <= 1 / n + 0.03, "about 1/n of the clients"


def test_same_client_same_member() -> None:
    ms = [member(i + 1) for i in range(4)]
    assert leaders(ms) == leaders(ms)
    assert len(set(leaders(ms))) == 4, "clients spread over every member"
