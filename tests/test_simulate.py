"""The short version of make simulate: the balancing simulator around the real answer path,
with the aims a user would notice for gslb's recommended pool and the combinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import balancing as sim

SECONDS = 180  # a minute of warm-up, then two; events at 120 s


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> sim.Setup:
    return sim.setup(10_000, 20261202, Path(tmp_path_factory.mktemp("sim")))


def measured(world: sim.Setup, scenario: str, decider: str) -> sim.Measures:
    chosen = next(s for s in sim.SCENARIOS if s.name == scenario)
    trace = sim.run(chosen, world.deciders([decider])[0](), world.res, SECONDS, world.seed)
    return sim.measure(trace, chosen, SECONDS)


def test_steady_state_nearest_site_first_and_balanced_inside_it(world: sim.Setup) -> None:
    ours = measured(world, "steady", "least-load-slow-start")
    assert ours.nearest >= 0.99
    assert ours.imbalance <= 1.10
    assert ours.overload_s == 0
    bare = measured(world, "steady", "least-load-answers")
    assert bare.nearest >= 0.99 and bare.imbalance <= 1.25
    # The peers on the same world: round robin ignores where clients are.
    assert measured(world, "steady", "round-robin").nearest < 0.5


def test_a_dead_isp_path_leads_no_answer_once_detected(world: sim.Setup) -> None:
    ours = measured(world, "path-failure", "least-load-slow-start")
    assert ours.dead_leads <= 0.01
    assert ours.overload_s == 0, "the site's remaining ISP takes what it can, the rest spills"
    assert measured(world, "path-failure", "round-robin").dead_leads > 0.1
