from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.schema import Health, Result
from healthchecks.quorum import decide, needed, path_cut

NOW = 1000.0


def result(vote: str, expires: float = NOW + 5, rtt: float | None = 0.01) -> Result:
    return Result(vote, vote == "up", rtt, None if vote == "up" else "refused", NOW, NOW, expires)  # type: ignore[arg-type]


def test_partitioned_checker_cannot_take_a_member_down() -> None:
    votes = {("c1", "p"): result("up"), ("c2", "p"): result("up"), ("c3", "p"): result("down")}
    assert decide(votes, NOW).health == "up"
    votes[("c2", "p")] = result("down")
    assert decide(votes, NOW).health == "down"


def test_expired_votes_do_not_count() -> None:
    votes = {
        ("c1", "p"): result("up"),
        ("c2", "p"): result("down", expires=NOW - 1),
        ("c3", "p"): result("down", expires=NOW - 1),
    }
    assert decide(votes, NOW).health == "up"
    assert decide({("c1", "p"): result("up", expires=NOW - 1)}, NOW).health == "unknown"


def test_one_path_down_everywhere_is_a_path_down_not_a_member_down() -> None:
    votes = {
        (c, p): result("down" if p == "isp-b" else "up")
        for c in ("c1", "c2", "c3")
        for p in ("isp-a", "isp-b")
    }
    decided = decide(votes, NOW)
    assert decided.health == "up"
    assert decided.paths_down == ("isp-b",)


def test_since_is_kept_while_the_verdict_holds() -> None:
    first = decide({("c1", "p"): result("up")}, NOW)
    later = decide({("c1", "p"): result("up", expires=NOW + 100)}, NOW + 50, previous=first)
    assert later.since == first.since
    changed = decide({("c1", "p"): result("down", expires=NOW + 100)}, NOW + 60, previous=later)
    assert changed.since == NOW + 60


@given(
    st.lists(st.sampled_from(["up", "down"]), min_size=1, max_size=9),
    st.sampled_from(["majority", "all", "any", "2"]),
)
def test_quorum_rules(votes: list[str], quorum: str) -> None:
    results = {(f"c{i}", "p"): result(v) for i, v in enumerate(votes)}
    down = votes.count("down")
    assert (decide(results, NOW, quorum).health == "down") == (down >= needed(quorum, len(votes)))


def test_rtt_is_the_median_of_successful_probes() -> None:
    votes = {
        ("c1", "p"): result("up", rtt=0.010),
        ("c2", "p"): result("up", rtt=0.030),
        ("c3", "p"): result("up", rtt=0.020),
    }
    assert decide(votes, NOW).rtt == 0.020
    assert isinstance(decide(votes, NOW), Health)


def test_an_isp_path_is_cut_at_a_site_only_when_all_its_members_say_so() -> None:
    cut = Health("up", None, ("isp-a",))
    assert path_cut("isp-a", [cut, cut])
    assert not path_cut("isp-a", [cut, Health("up")]), "one member still reached over it"
    assert not path_cut("isp-a", [cut, Health("down", None, ("isp-a", "isp-b"))]), (
        "a dead member is not a path"
    )
    assert not path_cut("isp-a", [cut, None]), "undecided is no evidence"
    assert not path_cut("isp-b", [cut]), "another ISP's path"
    assert not path_cut("isp-a", [])
