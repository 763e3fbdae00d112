"""`Zone.update` gives what `Zone.build` gives from the same data (pure, many examples):
names that exist, empty non-terminals, delegation points, pools by owner and by name, and
the lookups that read them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gslb.core import names
from gslb.core.pools import Pool
from gslb.core.records import AAAA, NS, SOA, TXT, A, RRset
from gslb.core.zone import Zone, lookup

APEX = names.from_text("z.test.")
SOA_RRSET = RRset(APEX, SOA, 60, ((b"\x00" * 20,),))
LABELS = st.sampled_from(["a", "b", "c", "www", "x"])
OWNER = st.lists(LABELS, min_size=1, max_size=3).map(
    lambda labels: names.from_text(".".join(labels) + ".z.test.")
)
NODE = st.sampled_from([{TXT}, {A}, {NS}, {A, TXT}])


def node(owner: bytes, types: set[int]) -> dict[int, RRset]:
    return {t: RRset(owner, t, 60, ((bytes([t]),),)) for t in types}


def pool(name: str, owner: bytes, rtype: int) -> Pool:
    return Pool(APEX.decode("latin-1"), name, owner, rtype, 20, 4, ("limit",), ())


POOLS = st.dictionaries(
    st.sampled_from(["p1", "p2", "p3", "p4"]), st.tuples(OWNER, st.sampled_from([A, AAAA]))
)
STATIC = st.dictionaries(OWNER, NODE)


def built(static: dict[bytes, set[int]], pools: dict[str, tuple[bytes, int]]) -> Zone:
    rrsets = [SOA_RRSET, *(r for o, t in static.items() for r in node(o, t).values())]
    return Zone.build(APEX, rrsets, [pool(n, o, t) for n, (o, t) in pools.items()])


@settings(max_examples=2000, deadline=None)
@given(STATIC, POOLS, STATIC, POOLS, st.sets(OWNER), st.sets(st.sampled_from(["p1", "p2"])))
def test_an_update_is_a_build_of_the_result(
    static: dict[bytes, set[int]],
    pools: dict[str, tuple[bytes, int]],
    new_static: dict[bytes, set[int]],
    new_pools: dict[str, tuple[bytes, int]],
    gone_static: set[bytes],
    gone_pools: set[str],
) -> None:
    zone = built(static, pools)
    changes_static: dict[bytes, dict[int, RRset] | None] = {
        o: node(o, t) for o, t in new_static.items()
    }
    changes_static.update({o: None for o in gone_static if o not in new_static})
    changes_pools: dict[str, Pool | None] = {n: pool(n, o, t) for n, (o, t) in new_pools.items()}
    changes_pools.update({n: None for n in gone_pools if n not in new_pools})
    updated = zone.update(changes_static, changes_pools)

    final_static = {**static, **new_static}
    for o in gone_static:
        if o not in new_static:
            final_static.pop(o, None)
    final_pools = {**pools, **new_pools}
    for n in gone_pools:
        if n not in new_pools:
            final_pools.pop(n, None)
    expected = built(final_static, final_pools)
    assert updated == expected
    for name in {*static, *final_static, *(o for o, _ in final_pools.values())}:
        for qtype in (A, TXT, NS):
            assert lookup(updated, name, qtype) == lookup(expected, name, qtype)


def test_a_removed_owner_takes_its_empty_non_terminals_with_it() -> None:
    deep = names.from_text("a.b.c.z.test.")
    zone = built({deep: {A}}, {})
    assert lookup(zone, names.from_text("c.z.test."), A).rcode == 0  # NODATA: it exists
    gone = zone.update({deep: None})
    assert lookup(gone, names.from_text("c.z.test."), A).rcode == 3  # NXDOMAIN now
    assert gone == built({}, {})
