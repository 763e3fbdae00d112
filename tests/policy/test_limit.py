from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import limit
from tests.policy.strategies import context, member, members, pool


@given(members(), st.integers(1, 12))
def test_keeps_the_first_max_answers_and_another_site_last(ms: list, n: int) -> None:
    p = pool(ms, max_answers=n)
    out = limit.apply(p.members, context(p))
    first = p.members[:n]
    assert len(out) == len(first)
    assert out[:-1] == first[:-1]
    one_site = len(first) >= 2 and first[0].site is not None and len({m.site for m in first}) == 1
    later = [m for m in p.members[n:] if m.site not in (None, first[0].site)]
    if one_site and later:
        assert out[-1] is later[0], "a way out when the site is down"
    else:
        assert out[-1] is first[-1]


def test_a_london_answer_ends_with_new_york() -> None:
    lon = [member(i, "lon") for i in (1, 2, 3, 4)]
    nyc = [member(i, "nyc") for i in (5, 6)]
    p = pool([*lon, *nyc], max_answers=4)
    assert limit.apply(p.members, context(p)) == (*lon[:3], nyc[0])
    single = pool([*lon, *nyc], max_answers=1)
    assert limit.apply(single.members, context(single)) == (lon[0],)
