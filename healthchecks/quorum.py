"""Deciding a member's state from the checkers' votes.

Rise/fall hysteresis happens where the probes are (each checker's vote per path changes only
after `rise` successes or `fall` failures in a row); here the fresh votes are counted:

- a checker's vote for the member is `up` if any of its paths is up, `down` if all its known
  paths are down (a member reachable over one uplink is reachable);
- the member is `down` when a quorum of the checkers with a vote say so (majority by default,
  or `all`, `any`, or a number), `up` otherwise, `unknown` without fresh votes;
- per path, the same rule over the checkers that have that path: the paths a quorum sees down
  are the member's `paths_down`, which `isp_interleave` and `cost` use;
- votes past their expiry do not count: a dead or partitioned checker's word fades by itself;
- an ISP's path at a site is cut when every member of that ISP at that site is up (another
  path reaches it) with that ISP's path among its `paths_down` (each one a quorum's verdict):
  the checkers then write `isp|site` to `gslb:paths_down`, which `isp_interleave` and `cost`
  read for every member of that ISP there, and take it away when one of them is reached again.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from gslb.schema import Health, HealthWord, Result

Quorum = str  # "majority" | "all" | "any" | a number


def needed(quorum: Quorum, voters: int) -> int:
    """Down votes needed to call a member down out of `voters` votes."""
    if quorum == "majority":
        return voters // 2 + 1
    if quorum == "all":
        return voters
    if quorum == "any":
        return 1
    return max(1, min(int(quorum), voters))


def path_cut(isp: str, members: Sequence[Health | None]) -> bool:
    """Whether the members of `isp` at one site (their decided states) say its path is cut."""
    return bool(members) and all(
        h is not None and h.health == "up" and isp in h.paths_down for h in members
    )


def decide(
    results: Mapping[tuple[str, str], Result],
    now: float,
    quorum: Quorum = "majority",
    previous: Health | None = None,
) -> Health:
    """The member's state from {(checker, path): Result}."""
    fresh = {k: r for k, r in results.items() if r.expires >= now and r.vote != "unknown"}
    by_checker: dict[str, list[HealthWord]] = {}
    by_path: dict[str, list[HealthWord]] = {}
    for (checker, path), result in fresh.items():
        by_checker.setdefault(checker, []).append(result.vote)
        by_path.setdefault(path, []).append(result.vote)
    checker_votes = ["up" if "up" in votes else "down" for votes in by_checker.values()]
    health: HealthWord
    if not checker_votes:
        health = "unknown"
    elif checker_votes.count("down") >= needed(quorum, len(checker_votes)):
        health = "down"
    else:
        health = "up"
    paths_down = tuple(
        sorted(
            path
            for path, votes in by_path.items()
            if votes.count("down") >= needed(quorum, len(votes))
        )
    )
    rtts = [r.rtt for r in fresh.values() if r.ok and r.rtt is not None]
    decided = Health(
        health,
        statistics.median(rtts) if rtts else None,
        paths_down,
        now,
        {f"{c}|{p}": r.vote for (c, p), r in sorted(fresh.items())},
    )
    if previous is not None and previous.same_verdict(decided):
        return Health(
            decided.health, decided.rtt, decided.paths_down, previous.since, decided.votes
        )
    return decided
