"""make simulate: every scenario of the balancing simulator, for gslb and the emulated peers;
writes docs/balancing.md and its plots (docs/balancing/*.png).

    python bench/simulate.py [--seconds 300] [--resolvers 10000] [--seed 20261202]

Deterministic for a seed: the same resolvers, the same arrivals for every decider.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import balancing as sim

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLOTS = DOCS / "balancing"

GSLB = ["nearest", "least-load-slow-start"]
PEERS = ["pickclosest", "multifo", "round-robin"]
EXTRA = {  # rows where they say something: without agents, and without slow start
    "steady": ["least-load-answers"],
    "site-failure": ["least-load-answers"],
    "flash-crowd": ["least-load-answers"],
    "recovery": ["least-load-agents"],
}
RECOMMENDED = "least-load-slow-start"  # the configuration the aims are read from


def deciders_for(scenario: str) -> list[str]:
    return GSLB + EXTRA.get(scenario, []) + PEERS


@dataclass
class Result:
    scenario: str
    decider: str
    name: str
    emulation: bool
    measures: sim.Measures
    utilisation: np.ndarray  # (ticks, members), in % of nominal capacity
    seconds: float


_SETUP: sim.Setup | None = None


def _init(resolvers: int, seed: int) -> None:
    global _SETUP
    _SETUP = sim.setup(resolvers, seed)


def _job(args: tuple[str, str, int]) -> Result:
    scenario_name, decider, seconds = args
    assert _SETUP is not None
    scenario = next(s for s in sim.SCENARIOS if s.name == scenario_name)
    started = time.perf_counter()
    made = _SETUP.deciders([decider])[0]()
    trace = sim.run(scenario, made, _SETUP.res, seconds, _SETUP.seed)
    measures = sim.measure(trace, scenario, seconds)
    nominal = np.array([m.capacity for m in sim.MEMBERS])
    return Result(
        scenario_name,
        decider,
        made.name,
        made.emulation,
        measures,
        trace.load / nominal * 100,
        time.perf_counter() - started,
    )


def run_all(seconds: int, resolvers: int, seed: int, scenarios: list[str]) -> list[Result]:
    jobs = [(s, d, seconds) for s in scenarios for d in deciders_for(s)]
    # The slow runs first, so that two processes finish together.
    jobs.sort(key=lambda j: j[1] in PEERS)
    workers = min(len(jobs), os.cpu_count() or 1)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, _init, (resolvers, seed)) as pool:
        return pool.map(_job, jobs, chunksize=1)


# --- the report -----------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def row(r: Result) -> str:
    m = r.measures

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    def s1(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    return (
        f"| {r.name} | {pct(m.nearest)} | {m.imbalance:.3f} | {m.overload_s:.0f} | "
        f"{m.reversals:.2f} | {m.amplitude:.1f} | {s1(m.late_amplitude)} | {s(m.settle_s)} | "
        f"{s(m.settle_load_s)} | "
        f"{pct(m.dead_leads)} | {pct(m.failed)} |"
    )


HEADER = (
    "| decider | nearest-site share | imbalance | overload (s) | reversals / min | "
    "amplitude (% cap.) | once settled | settle, answers (s) | settle, load (s) | "
    "dead-path leads | failed sessions |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def plot(results: list[Result], scenario: sim.Scenario, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"lon": "#1f77b4", "nyc": "#2ca02c", "sgp": "#9467bd"}
    rows = (len(results) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 2.6 * rows), sharex=True, sharey=True)
    flat = axes.ravel()
    for ax, r in zip(flat, results, strict=False):
        t = np.arange(r.utilisation.shape[0])
        for m in sim.MEMBERS:
            ax.plot(t, r.utilisation[:, m.index], color=colours[m.site], lw=0.8, alpha=0.8)
        ax.axhline(100, color="#d62728", lw=0.8, ls="--")
        if scenario.event is not None:
            ax.axvline(scenario.event, color="grey", lw=0.6, ls=":")
        if scenario.until is not None:
            ax.axvline(scenario.until, color="grey", lw=0.6, ls=":")
        ax.set_title(r.name, fontsize=9)
        ax.set_ylim(0, 150)
        ax.grid(alpha=0.3)
    for ax in flat[len(results) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("load, % of capacity")
    for ax in axes[-1, :]:
        ax.set_xlabel("time (s)")
    handles = [plt.Line2D([], [], color=c, label=f"{s} members") for s, c in colours.items()]
    handles.append(plt.Line2D([], [], color="#d62728", ls="--", label="capacity"))
    fig.suptitle(scenario.title, y=0.995, fontsize=11)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.975), ncol=4, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=80)
    plt.close(fig)


@dataclass(frozen=True)
class Aim:
    text: str
    scenario: str
    decider: str
    value: str
    met: bool


def aims(by: dict[tuple[str, str], Result]) -> list[Aim]:
    out = []

    def m(s: str, d: str) -> sim.Measures:
        return by[(s, d)].measures

    steady = m("steady", RECOMMENDED)
    out.append(
        Aim(
            "nearest-site share when the nearest site has headroom >= 99 %",
            "steady",
            RECOMMENDED,
            pct(steady.nearest),
            steady.nearest >= 0.99,
        )
    )
    out.append(
        Aim(
            "imbalance inside a site, least_load with agents <= 1.10",
            "steady",
            RECOMMENDED,
            f"{steady.imbalance:.3f}",
            steady.imbalance <= 1.10,
        )
    )
    bare = m("steady", "least-load-answers")
    out.append(
        Aim(
            "imbalance inside a site, least_load without agents <= 1.25",
            "steady",
            "least-load-answers",
            f"{bare.imbalance:.3f}",
            bare.imbalance <= 1.25,
        )
    )
    for s in ("steady", "site-failure", "flash-crowd", "recovery", "drain"):
        if (s, RECOMMENDED) in by:
            over = m(s, RECOMMENDED).overload_s
            out.append(
                Aim(
                    "seconds over capacity while total capacity suffices = 0",
                    s,
                    RECOMMENDED,
                    f"{over:.0f} s",
                    over == 0,
                )
            )
    failure = m("site-failure", RECOMMENDED)
    calm = max(steady.late_amplitude or 0.0, 1e-9)
    out.append(
        Aim(
            "after a site failure: settles within 2 TTLs (40 s)",
            "site-failure",
            RECOMMENDED,
            f"{failure.settle_s:.0f} s",
            failure.settle_s is not None and failure.settle_s <= 2 * sim.TTL,
        )
    )
    out.append(
        Aim(
            "after a site failure: no oscillation (once settled, swings no larger than "
            "twice steady state's)",
            "site-failure",
            RECOMMENDED,
            f"{failure.late_amplitude or 0:.1f} % vs {calm:.1f} %",
            failure.late_amplitude is not None and failure.late_amplitude <= 2 * calm,
        )
    )
    path = m("path-failure", RECOMMENDED)
    out.append(
        Aim(
            "first addresses on a dead ISP path, after detection <= 1 %",
            "path-failure",
            RECOMMENDED,
            pct(path.dead_leads),
            path.dead_leads <= 0.01,
        )
    )
    return out


FINDINGS = """\
## What the simulator showed, and what changed

Each of these was seen here first, then fixed in the core and checked again by a test of its
own (tests/policy/, tests/test_balancing_wire.py over the wire):

- **Herding.** `least_load` put every answer on the least loaded member until the next
  reading, then moved them all: its inputs change only every few seconds. It now shares the
  lead by headroom (a proportional controller, gain 3: at 1 a big resolver's batch of
  clients stayed uncorrected, at 5 and more the shares swung), and agents' reports are read
  projected 10 s ahead along their trend (the imbalance went from 1.07 to 1.04).
- **London led by New York.** Rotation steps after `proximity` rotated across sites. After a
  place step every sharing step now works inside each site and keeps the sites in order.
- **Unequal ISPs inside a site.** With three members left at a site, two on one ISP,
  `isp_interleave` gave the lone member of the other ISP half of the site's answers
  (imbalance 1.29, 80 s over capacity). It now shares the lead by weight: each ISP in
  proportion to its members.
- **Recovery.** A member back from the dead has no load, so `least_load` gave it most new
  answers at once; with cold caches it went over capacity for 17 s. `slow_start: 30` ramps it
  (no overload).
- **Spill-over.** Spilling only at capacity kept a site at or over it (nobody could see the
  clients still coming from cached answers). Spilling from 80 % with the projection keeps
  every member under capacity in every scenario.
- **Spill-over chasing noise.** After a site failure the next site's answers kept moving
  by 5-6 % from one 10 s window to the next while its load stood within 1 %: a count of n
  sessions wanders by about sqrt(n) between reports, the 10 s projection tripled that, and
  the spill fraction (0 at 80 % of capacity, 1 at 100 %) multiplied it by five. A site's
  summed load is now projected only by the part of its change beyond twice its noise
  (settling after a site failure 111 s -> 83 s, after a path failure 161 s -> 56 s, the
  flash crowd's nearest-site share 98.7 % -> 99.2 %). Left per member, the same threshold
  took least_load's damping inside a site (more reversals, imbalance 1.043 -> 1.051).
- **Settling after a site failure.** The spill fraction read off the load (0 at 80 % of
  capacity, 1 at 100 %) is a proportional controller with a gain of five behind a slow loop
  (reports every 5 s, a TTL in resolver caches, sessions of 20 s): when London failed, New
  York's load jumped, the fraction with it, and the site shares kept moving for 83 s (aim:
  two TTLs). Tried and not kept: a wider spill band (from 70 % or 60 %: 75 s, but the flash
  crowd's nearest-site share fell to 97.5 % and 96.7 %), a longer or shorter projection
  (15 s: 135 s; 5 s: more overload), a smoothed or least-squares trend (180 s), a hard
  deadband per member (143 s). Now the DNS node holds the fraction with memory
  (gslb.shell.spill): when a site loses capacity, the site taking its load is set at once
  to spill what keeps it at 88 % of its capacity with the lost site's last load added
  (feed-forward), then trimmed every 5 s by 0.05 x (load / capacity - 0.88). The answers
  settle in 10 s, the load in about 35 s, with no member over capacity; after a path
  failure the answers move once, at detection. Tried: a gain of 0.1 (the same after a site
  failure, but 64 s instead of 38 s for the load after a path failure), 0.2 (82 s: it
  swung), a target of 85 % (as good), 92 % (a member 9 s over capacity).
- **Dead paths.** Members unreachable over their ISP had no load, so they drew the largest
  shares and their capacity hid an overloaded site; they now get no share and bring no
  capacity. And a London answer of four London addresses left clients that try in order
  nowhere to go when London failed: `limit` now keeps one address of another site last.

Where gslb is below a peer, and why:

- **Nearest-site share in the recovery and the flash crowd**: gslb starts to spill at 80 % of
  a site's capacity, PowerDNS `pickclosest` never spills; its 100 % are clients sent to a
  site that is then over capacity (see the overload column). In the recovery, New York
  runs at 82 % on three members until the fourth comes back, and spills a little; in the
  flash crowd, the misses are Europe's clients still behind spilled answers in the TTL
  after the crowd ends. Spilling from 85 % gave the recovery 100 %, but a stronger crowd
  (Europe x2.5, not a scenario here) went 62 s over capacity instead of 41 s: the margin
  was kept.
- **Failed sessions after a site failure** (2.3 % against multifo's 1.9 %): the clients that
  fail are those that use only the first address, until their resolver asks again (a TTL,
  or five minutes behind TTL-floor resolvers). multifo's first addresses are spread over all
  sites, so London's failure hits a third of everyone's; gslb sends Europe to London, so it
  hits all of Europe's (40 % of the demand). Clients that try the addresses in order reach
  New York with both (`limit` keeps it last in London's answers).
"""


# Lower is better for all but the nearest-site share.
MEASURES = [
    ("nearest-site share", lambda x: -x.nearest, lambda x: pct(x.nearest)),
    ("imbalance", lambda x: x.imbalance, lambda x: f"{x.imbalance:.3f}"),
    ("overload (s)", lambda x: x.overload_s, lambda x: f"{x.overload_s:.0f}"),
    (
        "amplitude once settled (% cap.)",
        lambda x: x.late_amplitude,
        lambda x: "-" if x.late_amplitude is None else f"{x.late_amplitude:.1f}",
    ),
    ("dead-path leads", lambda x: x.dead_leads, lambda x: pct(x.dead_leads)),
    ("failed sessions", lambda x: x.failed, lambda x: pct(x.failed)),
]
# Differences below these are run-to-run noise (another seed moves them as much).
TOLERANCE = {
    "nearest-site share": 0.001,
    "imbalance": 0.01,
    "amplitude once settled (% cap.)": 0.5,
}


def against_peers(by: dict[tuple[str, str], Result], scenarios: list[str]) -> list[str]:
    lines = [
        "| scenario | measure | gslb (least_load, agents, slow start) | best emulated peer | |",
        "|---|---|---|---|---|",
    ]
    for s in scenarios:
        ours = by[(s, RECOMMENDED)].measures
        for label, key, show in MEASURES:
            if key(ours) is None:
                continue  # not measurable in this scenario (the run ends too soon after it)
            peers = [by[(s, p)] for p in PEERS if key(by[(s, p)].measures) is not None]
            best = min(peers, key=lambda r: key(r.measures))
            slack = TOLERANCE.get(label, 0.0)
            good = key(ours) <= key(best.measures) + slack + 1e-12
            lines.append(
                f"| {s} | {label} | {show(ours)} | {show(best.measures)} ({best.name}) | "
                f"{'as good or better' if good else '**worse**'} |"
            )
    return lines


def report(results: list[Result], args: argparse.Namespace, wall: float) -> str:
    by = {(r.scenario, r.decider): r for r in results}
    today = datetime.date.today().isoformat()
    cpu = sum(r.seconds for r in results)
    total = sum(sim.SITES[s][2] for s in sim.SITES) * sim.PER_SITE
    lines = [
        "# Balancing quality (make simulate)",
        "",
        f"Written by `make simulate` on {today} (seed {args.seed}, {args.resolvers} resolvers, "
        f"{args.seconds} s per run, {len(results)} runs in {wall:.0f} s on "
        f"{os.cpu_count()} cores, {cpu:.0f} s of CPU). Do not edit by hand: run it again.",
        "",
        "The simulator (`bench/balancing.py`) puts the real answer path, "
        "`gslb.core.answer.handle` on a snapshot compiled from a zone file by the real loader, "
        "with a real GeoIP2 City database, inside a seeded world:",
        "",
        f"- {args.resolvers} resolvers over {len(sim.CITIES)} cities of four regions (a /16 "
        "network each, written into a GeoIP2 City database with mmdb-writer and read by the "
        "server's own GeoIP reader: MaxMind's public test databases have too few places to "
        "spread them over) "
        f"(Europe {sim.REGIONS['EU']:.0%}, North America {sim.REGIONS['NA']:.0%}, "
        f"Asia-Pacific {sim.REGIONS['AS']:.0%}, South America {sim.REGIONS['SA']:.0%} of the "
        "demand), client populations heavy-tailed (Pareto 1.5); a quarter are public resolvers "
        "sending EDNS Client Subnet, a tenth keep answers at least "
        f"{sim.TTL_FLOOR} s whatever the TTL (*To Be Multihomed*);",
        f"- {sim.RATE:g} new sessions a second, lasting {sim.SESSION_S:g} s on average; "
        f"{sim.FIRST_ONLY:.0%} of clients use only the first address, the others try them "
        "in order;",
        f"- three sites (London, New York, Singapore) of {sim.PER_SITE} members, "
        f"{total:,.0f} sessions of capacity in all, two ISPs per site;",
        f"- health known {sim.DETECT_S:g} s after a change (checkers at interval 1 s, fall and "
        f"rise 2); agents report sessions every {sim.AGENT_EVERY} s and the DNS nodes read "
        f"load and answer counts every {sim.REFRESH_EVERY} s; answers are counted by the two "
        "DNS nodes' own reply caches, by the member they lead with, in 10 s buckets;",
        f"- every pool: TTL {sim.TTL} s, `max_answers: 4`.",
        "",
        "The peers are **emulations** of their strategies on the same world and the same "
        "health view, not their code: PowerDNS LUA `ifportup` + `pickclosest` (the closest "
        "address up), gdnsd `multifo` (every address up, in random order), plain DNS round "
        "robin (every address, rotated, no health).",
        "",
        "Measures (after a 60 s warm-up): **nearest-site share**: sessions at their nearest "
        "open site, of those whose nearest open site had room; **imbalance**: max/mean "
        "utilisation inside a site over 10 s windows, the worst site; **overload**: seconds "
        "during which some member was over its capacity; **reversals** and **amplitude**: "
        "direction changes of a member's 5 s mean load (swings of 2 % of capacity or more), "
        "per minute, and their mean size; **settle, answers**: after the event, until fewer "
        f"than {sim.SETTLED:.0%} of the answers go to another site than they do at the end; "
        "**settle, load**: until every member's load stays within 10 % of its capacity of "
        "where it ends; **dead-path leads**: answers, from detection on, whose first address "
        "is on a dead member or path; **failed sessions**: sessions whose client reached "
        "nothing.",
        "",
        "## Aims",
        "",
        "Read from gslb's `[health, proximity, least_load, isp_interleave, limit]` with agents "
        "and `slow_start: 30` unless the row says otherwise.",
        "",
        "| aim | scenario | measured | |",
        "|---|---|---|---|",
    ]
    for aim in aims(by):
        lines.append(
            f"| {aim.text} | {aim.scenario} ({aim.decider}) | {aim.value} | "
            f"{'met' if aim.met else '**not met**'} |"
        )
    lines += ["", "## Against the emulated peers", ""]
    lines += against_peers(by, args.scenarios)
    lines += ["", *FINDINGS.splitlines()]
    for scenario in sim.SCENARIOS:
        if scenario.name not in args.scenarios:
            continue
        mine = [by[(scenario.name, d)] for d in deciders_for(scenario.name)]
        png = PLOTS / f"{scenario.name}.png"
        plot(mine, scenario, png)
        lines += [
            "",
            f"## {scenario.title}",
            "",
            f"![{scenario.title}](balancing/{png.name})",
            "",
            HEADER,
            *(row(r) for r in mine),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--resolvers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--scenarios", nargs="*", default=[s.name for s in sim.SCENARIOS])
    parser.add_argument("--out", type=Path, default=DOCS / "balancing.md")
    args = parser.parse_args()
    PLOTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = run_all(args.seconds, args.resolvers, args.seed, args.scenarios)
    text = report(results, args, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
