"""The balancing simulator: a seeded world of resolvers, clients, sites and agents around the
real answer path.

Every gslb answer comes from `gslb.core.answer.handle`, the function the DNS server runs, on
a real snapshot compiled from a zone file by the real loader, with a real GeoIP2 City
database (written here with mmdb-writer) as its locator and the DNS nodes' own reply caches
keeping the rotation slots and the answer tally. What the DNS nodes learn of the world comes
the way it comes in production: health after the checkers' detection delay, agents' session
reports every few seconds, answers counted in 10 s buckets and read back every 5 s.

The world is a fluid model, one tick a second:

- resolvers spread over the cities of four regions, with heavy-tailed client populations
  (Pareto), a quarter of them public resolvers sending EDNS Client Subnet, a tenth with a
  TTL floor of five minutes (*To Be Multihomed*: "some resolvers ignore TTLs under 5
  minutes");
- new sessions per resolver as Poisson arrivals; half the clients use only the first address,
  half try the addresses in order and take the first they can reach;
- sessions last an exponential time (mean `SESSION_S`), so a member's load is its sessions in
  progress; a member that dies loses them;
- three sites of four members, two ISPs per site; a path failure cuts one ISP at one site.

The peers' strategies (PowerDNS `ifportup` + `pickclosest`, gdnsd `multifo`, plain round
robin) are emulated in a few lines each, named as emulations, on the same world and the same
health view: they are not the peers' code.
"""

from __future__ import annotations

import ipaddress
import math
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.message
import immutables
import numpy as np

from gslb import zonefiles
from gslb.core.answer import Client, handle
from gslb.core.location import distance_km
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from gslb.core.state import ClusterState, Load, MemberState
from gslb.schema import Health
from gslb.shell.geoip import GeoIpLocator
from gslb.shell.ramp import LoadTrend, SlowStart
from gslb.shell.spill import SpillControl
from tests.geoip_fixtures import write_city

SESSION_S = 20.0  # mean session length (web: a page and its keep-alive connection)
RATE = 3000.0  # new sessions per second, the whole world
DETECT_S = 2.0  # checkers: interval 1 s x fall 2 (and rise 2 on recovery)
AGENT_EVERY = 5  # seconds between an agent's reports
REFRESH_EVERY = 5  # seconds between the DNS nodes' reads of load and answer counts
BUCKET_S = 10  # answer-count buckets, and the window of three of them
TTL = 20
TTL_FLOOR = 300
FIRST_ONLY = 0.5  # share of clients that use only the first address
ZONE = "sim.example"

SITES = {  # name: (lat, lon, capacity per member)
    "lon": (51.51, -0.13, 10_000.0),
    "nyc": (40.71, -74.01, 10_000.0),
    "sgp": (1.35, 103.82, 10_000.0),
}
PER_SITE = 4  # members: isp-a, isp-b, isp-a, isp-b

REGIONS = {"EU": 0.40, "NA": 0.35, "AS": 0.20, "SA": 0.05}
CITIES = [  # name, region, lat, lon
    ("London", "EU", 51.51, -0.13),
    ("Paris", "EU", 48.86, 2.35),
    ("Frankfurt", "EU", 50.11, 8.68),
    ("Madrid", "EU", 40.42, -3.70),
    ("Stockholm", "EU", 59.33, 18.07),
    ("Warsaw", "EU", 52.23, 21.01),
    ("Milan", "EU", 45.46, 9.19),
    ("Dublin", "EU", 53.35, -6.26),
    ("New York", "NA", 40.71, -74.01),
    ("Chicago", "NA", 41.88, -87.63),
    ("Toronto", "NA", 43.65, -79.38),
    ("Atlanta", "NA", 33.75, -84.39),
    ("Dallas", "NA", 32.78, -96.80),
    ("Los Angeles", "NA", 34.05, -118.24),
    ("Seattle", "NA", 47.61, -122.33),
    ("Mexico City", "NA", 19.43, -99.13),
    ("Singapore", "AS", 1.35, 103.82),
    ("Jakarta", "AS", -6.21, 106.85),
    ("Mumbai", "AS", 19.08, 72.88),
    ("Hong Kong", "AS", 22.32, 114.17),
    ("Tokyo", "AS", 35.68, 139.69),
    ("Sydney", "AS", -33.87, 151.21),
    ("Sao Paulo", "SA", -23.55, -46.63),
    ("Buenos Aires", "SA", -34.60, -58.38),
]
HUB = ("Ashburn", "NA", 39.04, -77.49)  # where the public (ECS) resolvers' addresses locate


def city_network(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{index}.0.0/16")


HUB_NETWORK = ipaddress.IPv4Network("10.250.0.0/16")


@dataclass(frozen=True)
class Member:
    index: int
    site: str
    isp: str
    address: str
    capacity: float


def members() -> list[Member]:
    out = []
    for s, (site, (_lat, _lon, capacity)) in enumerate(SITES.items()):
        for j in range(PER_SITE):
            isp = "isp-a" if j % 2 == 0 else "isp-b"
            out.append(Member(len(out), site, isp, f"198.18.{s}.{j + 1}", capacity))
    return out


MEMBERS = members()

# The gslb policies simulated, by pool name. TTL 20 s everywhere (the aims' condition).
POLICIES = {
    "nearest": ["health", "proximity", "isp_interleave", "limit"],
    "nearest-least-load": ["health", "proximity", "least_load", "isp_interleave", "limit"],
}


def zone_text(drained: frozenset[int] = frozenset(), slow_start: float = 0.0) -> str:
    sites = "\n".join(
        f"  {name}: {{lat: {lat}, lon: {lon}}}" for name, (lat, lon, _c) in SITES.items()
    )
    pools = []
    for name, steps in POLICIES.items():
        rows = "\n".join(
            f"      - {{address: {m.address}, site: {m.site}, isp: {m.isp}, "
            f"capacity: {m.capacity:g}" + (", state: drained" if m.index in drained else "") + "}"
            for m in MEMBERS
        )
        extra = f"    slow_start: {slow_start:g}\n" if slow_start else ""
        pools.append(
            f"  {name}:\n    ttl: {TTL}\n    max_answers: 4\n    monitor: tcp\n"
            f"    policy: [{', '.join(steps)}]\n{extra}    members:\n{rows}"
        )
    return (
        textwrap.dedent(
            f"""\
            zone: {ZONE}
            soa: {{mname: ns1.{ZONE}., rname: hostmaster.{ZONE}.}}
            records: |
              @ NS ns1
              ns1 A 192.0.2.53
            isps:
              isp-a: [198.18.0.0/32]
              isp-b: [198.18.0.1/32]
            monitors:
              tcp: {{type: tcp, port: 80, interval: 1, timeout: 1, rise: 2, fall: 2}}
            """
        )
        + f"sites:\n{sites}\npools:\n"
        + "\n".join(pools)
        + "\n"
    )


def write_geoip(path: Path) -> Path:
    """The cities as a GeoIP2 City database, written as the test suite writes its own."""
    places = [(city_network(i), c) for i, c in enumerate(CITIES)] + [(HUB_NETWORK, HUB)]
    return write_city(
        path,
        [(str(net), name, None, region, lat, lon) for net, (name, region, lat, lon) in places],
        "gslb balancing simulator",
    )


@dataclass
class Resolvers:
    """The resolver population, fixed by the seed."""

    city: np.ndarray  # index into CITIES
    rate: np.ndarray  # new sessions per second from its clients
    ecs: np.ndarray  # bool: sends EDNS Client Subnet
    floor: np.ndarray  # seconds it caches at least
    address: list[str]  # where its queries come from
    subnet: list[str | None]  # the ECS subnet it sends (/24), if any

    @property
    def count(self) -> int:
        return len(self.address)


def resolvers(count: int, rng: np.random.Generator) -> Resolvers:
    regions = list(REGIONS)
    per_city = np.array(
        [REGIONS[region] / sum(1 for c in CITIES if c[1] == region) for _n, region, *_ in CITIES]
    )
    city = rng.choice(len(CITIES), size=count, p=per_city / per_city.sum())
    size = rng.pareto(1.5, size=count) + 1.0
    # Each city's share of demand is its region's, whatever the draw of resolver sizes.
    rate = np.zeros(count)
    for c in range(len(CITIES)):
        mine = city == c
        if mine.any():
            rate[mine] = size[mine] / size[mine].sum() * RATE * per_city[c] / per_city.sum()
    ecs = rng.random(count) < 0.25
    floor = np.where(rng.random(count) < 0.10, TTL_FLOOR, 0)
    address, subnet = [], []
    for i in range(count):
        host = int(rng.integers(1, 65_000))
        if ecs[i]:
            address.append(str(HUB_NETWORK.network_address + int(rng.integers(1, 65_000))))
            subnet.append(str(city_network(int(city[i])).network_address + (host & ~0xFF)))
        else:
            address.append(str(city_network(int(city[i])).network_address + host))
            subnet.append(None)
    del regions
    return Resolvers(city, rate, ecs, floor, address, subnet)


def nearest_site(lat: float, lon: float, sites: Iterable[str]) -> str:
    return min(sites, key=lambda s: distance_km(lat, lon, SITES[s][0], SITES[s][1]))


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class World:
    """What is true, as opposed to what the DNS nodes have been told."""

    alive: np.ndarray  # member is running
    path_ok: dict[tuple[str, str], bool]  # (site, isp) reachable from the internet
    drained: frozenset[int] = frozenset()
    demand: dict[str, float] = field(default_factory=lambda: dict.fromkeys(REGIONS, 1.0))
    warm_from: dict[int, float] = field(default_factory=dict)  # member -> recovery time


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    event: float | None  # when the change happens
    change: Callable[[World, float], None] | None  # applied at `event`
    end: Callable[[World, float], None] | None = None  # applied at `until`, if any
    until: float | None = None
    start: Callable[[World], None] | None = None  # the world before the run

    def dead_member(self, world: World, m: Member) -> bool:
        return not world.alive[m.index] or not world.path_ok[(m.site, m.isp)]


def _kill_site(site: str) -> Callable[[World, float], None]:
    def change(world: World, t: float) -> None:
        for m in MEMBERS:
            if m.site == site:
                world.alive[m.index] = False

    return change


def _cut_path(site: str, isp: str) -> Callable[[World, float], None]:
    def change(world: World, t: float) -> None:
        world.path_ok[(site, isp)] = False

    return change


def _recover(member: int) -> Callable[[World, float], None]:
    def change(world: World, t: float) -> None:
        world.alive[member] = True
        world.warm_from[member] = t

    return change


def _kill(member: int) -> Callable[[World], None]:
    def start(world: World) -> None:
        world.alive[member] = False

    return start


def _crowd(region: str, factor: float) -> Callable[[World, float], None]:
    def change(world: World, t: float) -> None:
        world.demand[region] = factor

    return change


def _drain(member: int) -> Callable[[World, float], None]:
    def change(world: World, t: float) -> None:
        world.drained = world.drained | {member}

    return change


RECOVERING = 4  # the first nyc member
DRAINED = 5  # the second nyc member
SCENARIOS = [
    Scenario("steady", "Steady state", None, None),
    Scenario("site-failure", "The London site fails at 120 s", 120.0, _kill_site("lon")),
    Scenario(
        "path-failure", "London's isp-a path fails at 120 s", 120.0, _cut_path("lon", "isp-a")
    ),
    Scenario(
        "recovery",
        "A New York member, down from the start, recovers at 120 s (cold: 30 % of its "
        "capacity, rising to 100 % over 60 s)",
        120.0,
        _recover(RECOVERING),
        start=_kill(RECOVERING),
    ),
    Scenario(
        "flash-crowd",
        "Europe's demand doubles from 120 s to 240 s",
        120.0,
        _crowd("EU", 2.0),
        end=_crowd("EU", 1.0),
        until=240.0,
    ),
    Scenario("drain", "A New York member is drained at 120 s", 120.0, _drain(DRAINED)),
]
WARM_UP = 60.0
LATE_MIN = 60  # seconds of run the late swings are measured over, at least
SETTLED = 0.05  # share of the answers that may still go to another site than at the end
COLD_SHARE = 0.3
WARM_S = 60.0


def capacity_now(world: World, m: Member, t: float) -> float:
    since = world.warm_from.get(m.index)
    if since is None:
        return m.capacity
    ramp = min(1.0, COLD_SHARE + (1 - COLD_SHARE) * (t - since) / WARM_S)
    return m.capacity * ramp


# --- deciders: gslb's answer path, and the emulated peers ----------------------------------


@dataclass
class View:
    """What the DNS nodes have been told: health after detection, reports after delay."""

    up: np.ndarray  # member known up
    paths_down: dict[int, frozenset[str]]  # member -> ISPs it is unreachable over
    sessions: np.ndarray | None  # agents' latest reports (None: no agents)
    answers: dict[int, float]  # answers led in the window
    drained: frozenset[int]
    now: float = 0.0
    reported_at: float = 0.0  # when the agents' reports in `sessions` were measured


class Decider:
    name: str
    emulation = False

    def prepare(self, view: View, version: int) -> None: ...

    def due(self, now: float) -> bool:
        return False

    def answer(self, r: int) -> list[int]: ...

    def tally(self) -> dict[int, int]:
        return {}


def parse_addresses(reply: bytes) -> list[bytes]:
    """The A rdatas of a reply's answer section, in order (enough DNS for the simulator)."""
    count = int.from_bytes(reply[6:8], "big")
    pos = 12
    while reply[pos]:  # the question's name, never compressed
        pos += reply[pos] + 1
    pos += 5
    out = []
    for _ in range(count):
        if reply[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while reply[pos]:
                pos += reply[pos] + 1
            pos += 1
        rtype = int.from_bytes(reply[pos : pos + 2], "big")
        length = int.from_bytes(reply[pos + 8 : pos + 10], "big")
        pos += 10
        if rtype == 1:
            out.append(reply[pos : pos + length])
        pos += length
    return out


class Gslb(Decider):
    """The real answer path: two DNS nodes, each with its own reply cache."""

    def __init__(
        self,
        pool: str,
        agents: bool,
        res: Resolvers,
        locator: GeoIpLocator,
        root: Path,
        slow_start: float = 0.0,
    ) -> None:
        self.pool = pool
        self.agents = agents
        self.name = (
            f"gslb {' + '.join(POLICIES[pool][1:-1])}"
            + (" (agents)" if agents else " (no agents)" if "least_load" in POLICIES[pool] else "")
            + (f", slow_start {slow_start:g} s" if slow_start else "")
        )
        self.locator = locator
        self.root = root
        self.slow_start = slow_start
        self.nodes = [ReplyCache(first_slot=1), ReplyCache(first_slot=7)]
        self.by_rdata = {ipaddress.IPv4Address(m.address).packed: m.index for m in MEMBERS}
        self.keys = [f"{ZONE}/{pool}/{m.address}" for m in MEMBERS]
        self.wires = []
        self.clients = []
        for i in range(res.count):
            options = []
            if res.subnet[i] is not None:
                options.append(dns.edns.ECSOption(res.subnet[i], 24))
            q = dns.message.make_query(f"{pool}.{ZONE}", "A", use_edns=0, options=options)
            q.id = i & 0xFFFF
            self.wires.append(q.to_wire())
            self.clients.append(Client(res.address[i], 53))
        self._drained: frozenset[int] | None = None
        self.zones = None
        self.snapshot: Snapshot | None = None
        self.ramps = SlowStart()  # the DNS node's own clock of slow starts
        self.trend = LoadTrend()
        self.spill = SpillControl()  # the DNS node's held spill-over fractions
        self.known_up: np.ndarray | None = None

    def _zones(self, drained: frozenset[int]) -> object:
        if self._drained != drained or self.zones is None:
            directory = self.root / f"zone-{self.pool}-{len(drained)}-{hash(drained)}"
            directory.mkdir(exist_ok=True)
            (directory / "sim.yaml").write_text(zone_text(drained, self.slow_start))
            self.zones = zonefiles.zone_set(zonefiles.load_directory(directory))
            self._drained = drained
            for zone in self.zones.zones.values():
                self.spill.zone(None, zone, None)
        return self.zones

    def prepare(self, view: View, version: int) -> None:
        health = immutables.Map(
            {
                self.keys[m.index]: MemberState(
                    "up" if view.up[m.index] else "down",
                    None,
                    view.paths_down.get(m.index, frozenset()),
                )
                for m in MEMBERS
            }
        )
        load = {}
        if self.agents and view.sessions is not None:
            # As a DNS node reads them: the agents' reports, projected along their trend.
            load = self.trend.project(
                {
                    m.address: Load(sessions=float(view.sessions[m.index]), at=view.reported_at)
                    for m in MEMBERS
                }
            )
        answers = {self.keys[i]: n for i, n in view.answers.items()}
        zones = self._zones(view.drained)
        if self.known_up is not None:
            back = {
                self.keys[i]: Health("up")
                for i in range(len(MEMBERS))
                if view.up[i] and not self.known_up[i]
            }
            before = {self.keys[i]: MemberState("down") for i in range(len(MEMBERS))}
            self.ramps.heard(back, before, zones, now=view.now)  # type: ignore[arg-type]
        self.known_up = view.up.copy()
        state = self.ramps.apply(ClusterState(health, load, answers), now=view.now)
        self.spill.heard(None)  # the simulator builds the whole state again each time
        state = self.spill.apply(self.snapshot.state if self.snapshot else state, state, view.now)
        self.snapshot = Snapshot(version, zones, state=state, locator=self.locator)  # type: ignore[arg-type]

    def due(self, now: float) -> bool:
        return self.ramps.due(now)

    def answer(self, r: int) -> list[int]:
        assert self.snapshot is not None
        reply = handle(self.wires[r], self.clients[r], self.snapshot, self.nodes[r % 2])
        assert reply
        return [self.by_rdata[rd] for rd in parse_addresses(reply)]

    def tally(self) -> dict[int, int]:
        out: dict[int, int] = {}
        index = {k: i for i, k in enumerate(self.keys)}
        for node in self.nodes:
            for key, count in node.take_tally().items():
                out[index[key]] = out.get(index[key], 0) + count
        return out


class Emulated(Decider):
    emulation = True

    def __init__(self, res: Resolvers, locator: GeoIpLocator, rng: np.random.Generator) -> None:
        self.rng = rng
        self.where = []
        for i in range(res.count):
            source = res.subnet[i] or res.address[i]
            loc = locator.locate(ipaddress.ip_address(source))
            assert loc is not None and loc.lat is not None and loc.lon is not None
            self.where.append((loc.lat, loc.lon))
        self.view: View | None = None

    def prepare(self, view: View, version: int) -> None:
        self.view = view

    def up(self) -> list[int]:
        assert self.view is not None
        # Drained members are left out: both peers have an administrative "down".
        return [
            m.index for m in MEMBERS if self.view.up[m.index] and m.index not in self.view.drained
        ]


class PickClosest(Emulated):
    """PowerDNS LUA `ifportup` + `pickclosest`: of the addresses up, the one closest to the
    client (GeoIP of the ECS subnet or of the resolver); members of one site are equally
    close, and one of them is picked at random."""

    name = "PowerDNS ifportup + pickclosest (emulated)"

    def answer(self, r: int) -> list[int]:
        up = self.up() or [m.index for m in MEMBERS]
        lat, lon = self.where[r]
        best = min(distance_km(lat, lon, *SITES[MEMBERS[i].site][:2]) for i in up)
        closest = [i for i in up if distance_km(lat, lon, *SITES[MEMBERS[i].site][:2]) == best]
        return [closest[int(self.rng.integers(len(closest)))]]


class Multifo(Emulated):
    """gdnsd `multifo`: every address that is up, in a random order per answer (resolvers
    shuffle RRsets); no location."""

    name = "gdnsd multifo (emulated)"

    def answer(self, r: int) -> list[int]:
        up = self.up() or [m.index for m in MEMBERS]
        return [up[i] for i in self.rng.permutation(len(up))]


class RoundRobin(Emulated):
    """Plain DNS round robin: every address, rotated by one per answer; no health."""

    name = "plain round robin (emulated)"
    turn = 0

    def answer(self, r: int) -> list[int]:
        self.turn += 1
        k = self.turn % len(MEMBERS)
        order = list(range(len(MEMBERS)))
        return order[k:] + order[:k]


# --- the run --------------------------------------------------------------------------------


@dataclass
class Trace:
    """What happened, per tick."""

    load: np.ndarray  # (ticks, members): sessions in progress
    capacity: np.ndarray  # (ticks, members): what each member could take
    alive: np.ndarray  # (ticks, members): reachable (running, path up) and not drained
    nearest_ok: np.ndarray  # (ticks,): sessions that landed at their nearest site with room
    nearest_all: np.ndarray  # (ticks,): sessions whose nearest healthy site had room
    failed: np.ndarray  # (ticks,): sessions that reached nothing
    sessions: np.ndarray  # (ticks,)
    leads: np.ndarray  # (ticks, members): answers handed out, by the member they lead with
    dead_leads: np.ndarray  # (ticks,): answers leading with a dead member or path, as known
    answers: np.ndarray  # (ticks,)


def run(
    scenario: Scenario,
    decider: Decider,
    res: Resolvers,
    seconds: int,
    seed: int,
) -> Trace:
    rng = np.random.default_rng(seed)  # the same arrivals for every decider
    n = len(MEMBERS)
    world = World(np.ones(n, bool), {(m.site, m.isp): True for m in MEMBERS})
    if scenario.start is not None:
        scenario.start(world)
    # The DNS nodes' view, and the changes on their way to it.
    known_up = world.alive.copy()
    known_paths: dict[int, frozenset[str]] = {}
    reported = np.zeros(n)
    reported_at = 0.0
    buckets: dict[int, np.ndarray] = {}
    version = 1
    decider.prepare(View(known_up.copy(), {}, reported.copy(), {}, world.drained), version)

    load = np.zeros(n)
    expiry = np.full(res.count, -1.0)
    cached: list[list[int]] = [[] for _ in range(res.count)]
    lead = np.full(res.count, -1)  # the first address of each resolver's cached answer
    first_ok = np.full(res.count, -1)  # the first of them its clients can reach
    member_site = np.array([list(SITES).index(m.site) for m in MEMBERS] + [-2])
    city_rate = np.bincount(res.city, res.rate, minlength=len(CITIES))
    region_of = np.array([list(REGIONS).index(CITIES[c][1]) for c in res.city])
    city_where = [(c[2], c[3]) for c in CITIES]
    decay = math.exp(-1.0 / SESSION_S)
    site_members = {s: [m.index for m in MEMBERS if m.site == s] for s in SITES}

    trace = Trace(
        *(np.zeros((seconds, n)) for _ in range(3)),
        *(np.zeros(seconds) for _ in range(4)),
        np.zeros((seconds, n)),
        np.zeros(seconds),
        np.zeros(seconds),
    )
    pending: list[tuple[float, str, int, str]] = []  # (visible at, what, member, isp)

    def reachable(i: int) -> bool:
        m = MEMBERS[i]
        return bool(world.alive[i]) and world.path_ok[(m.site, m.isp)]

    for t in range(seconds):
        changed = False
        changed_world = False
        for when, change in ((scenario.event, scenario.change), (scenario.until, scenario.end)):
            if when is not None and change is not None and t == int(when):
                before_alive = world.alive.copy()
                before_paths = dict(world.path_ok)
                before_drained = world.drained
                change(world, float(t))
                changed_world = True
                for i in range(n):
                    if before_alive[i] != world.alive[i]:
                        pending.append((t + DETECT_S, "up" if world.alive[i] else "down", i, ""))
                for (site, isp), ok in world.path_ok.items():
                    if ok != before_paths[(site, isp)]:
                        for i in site_members[site]:
                            if MEMBERS[i].isp == isp:
                                pending.append(
                                    (t + DETECT_S, "path" if not ok else "unpath", i, isp)
                                )
                if world.drained != before_drained:
                    changed = True  # an API write: in the answers within milliseconds
        for item in [p for p in pending if p[0] <= t]:
            pending.remove(item)
            _when, what, i, isp = item
            if what in ("up", "down"):
                known_up[i] = what == "up"
            elif what == "path":
                known_paths[i] = known_paths.get(i, frozenset()) | {isp}
            else:
                known_paths[i] = known_paths.get(i, frozenset()) - {isp}
            changed = True
        if t % AGENT_EVERY == 0:
            reported = load.copy()
            reported_at = float(t)
        if t % REFRESH_EVERY == 0 or changed or decider.due(float(t)):
            bucket = t // BUCKET_S
            window: dict[int, float] = {}
            for b in range(bucket - 2, bucket + 1):
                for i, count in enumerate(buckets.get(b, np.zeros(n))):
                    if count:
                        window[i] = window.get(i, 0.0) + float(count)
            version += 1
            decider.prepare(
                View(
                    known_up.copy(),
                    dict(known_paths),
                    reported.copy(),
                    window,
                    world.drained,
                    float(t),
                    reported_at,
                ),
                version,
            )

        # Which site each city should be served by now: the nearest alive one with room.
        capacity = np.array([capacity_now(world, m, t) for m in MEMBERS])
        open_sites = [
            s
            for s in SITES
            if any(world.alive[i] and i not in world.drained for i in site_members[s])
        ]
        # A site has room when the clients it is nearest to fit in what of it can be reached:
        # their demand (sessions they would keep open there) under its capacity.
        nearest_of = [
            nearest_site(lat, lon, open_sites) if open_sites else None for lat, lon in city_where
        ]
        demand = dict.fromkeys(open_sites, 0.0)
        for c, w in enumerate(nearest_of):
            if w is not None:
                demand[w] += city_rate[c] * world.demand[CITIES[c][1]] * SESSION_S
        room = {
            s: demand[s]
            < sum(capacity[i] for i in site_members[s] if reachable(i) and i not in world.drained)
            for s in open_sites
        }
        site_names = list(SITES)
        target_site = np.array(
            [site_names.index(w) if w is not None and room[w] else -1 for w in nearest_of]
        )

        factor = np.array([world.demand[r] for r in REGIONS])[region_of]
        arrivals = rng.poisson(res.rate * factor)
        ok = np.array([reachable(i) for i in range(n)] + [False])  # index -1: nothing
        if changed_world:
            # Where each resolver's clients that try in order end up, with its cached answer.
            for r in range(res.count):
                first_ok[r] = next((i for i in cached[r] if ok[i]), -1)
        answers_now = np.zeros(n)
        dead_now = 0
        for r in np.nonzero((arrivals > 0) & (expiry <= t))[0]:
            order = decider.answer(int(r))
            cached[r] = order
            expiry[r] = t + max(TTL, int(res.floor[r]))
            lead[r] = order[0] if order else -1
            first_ok[r] = next((i for i in order if ok[i]), -1)
            if order:
                answers_now[order[0]] += 1
                dead_now += not ok[order[0]]
        k = arrivals.astype(float)
        first = k * FIRST_ONLY
        lead_ok = ok[lead]
        arrived = np.bincount(lead[lead_ok], first[lead_ok], minlength=n)
        tried = first_ok >= 0
        arrived += np.bincount(first_ok[tried], (k - first)[tried], minlength=n)
        landed = (k - first) * tried + first * lead_ok
        trace.failed[t] = (k - landed).sum()
        trace.sessions[t] = k.sum()
        # Nearest-site share: of the clients whose nearest open site has room, those there.
        want = target_site[res.city]  # -1: no open site with room
        eligible = want >= 0
        site_of_lead = member_site[lead]
        site_of_first = member_site[first_ok]
        trace.nearest_all[t] = k[eligible].sum()
        trace.nearest_ok[t] = (first * lead_ok * (site_of_lead == want))[eligible].sum() + (
            (k - first) * tried * (site_of_first == want)
        )[eligible].sum()
        load = load * decay + arrived
        load[~world.alive] = 0.0
        tally = decider.tally()
        counts = np.zeros(n)
        for i, c in tally.items():
            counts[i] = c
        if not tally:  # the emulations keep no tally of their own
            counts = answers_now
        buckets[t // BUCKET_S] = buckets.get(t // BUCKET_S, np.zeros(n)) + counts
        trace.load[t] = load
        trace.capacity[t] = capacity
        trace.alive[t] = ok[:n] & ~np.isin(np.arange(n), list(world.drained))
        trace.leads[t] = answers_now
        trace.dead_leads[t] = dead_now
        trace.answers[t] = answers_now.sum()
    return trace


# --- measures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measures:
    nearest: float  # share of sessions at their nearest site with room, when it had room
    imbalance: float  # mean over time of max/mean utilisation inside a site, worst site
    overload_s: float  # seconds during which some member was over its capacity
    reversals: float  # load direction changes per member per minute (swings >= 2 % capacity)
    amplitude: float  # their mean size, in % of capacity
    settle_s: float | None  # after the event, until the answers stay as they end
    settle_load_s: float | None  # ... until every member's load stays within 10 % of its end
    late_amplitude: float | None  # mean swing from a minute after the event, % capacity
    # (None: the run ends too soon after the event to say)
    dead_leads: float  # answers leading with a dead member or path, after detection
    failed: float  # sessions that reached nothing


def measure(trace: Trace, scenario: Scenario, seconds: int) -> Measures:
    start = int(WARM_UP)
    sl = slice(start, seconds)
    nearest = trace.nearest_ok[sl].sum() / max(1.0, trace.nearest_all[sl].sum())
    # Imbalance: members' mean utilisation over 10 s windows (what balancing controls, not the
    # second-to-second noise of arrivals), max/mean inside each site, averaged over windows.
    ratios = []
    for site in SITES:
        idx = [m.index for m in MEMBERS if m.site == site]
        per_window = []
        for w in range(start, seconds - 9, 10):
            live = [i for i in idx if trace.alive[w : w + 10, i].all()]
            if len(live) < 2:
                continue
            u = (trace.load[w : w + 10, live] / trace.capacity[w : w + 10, live]).mean(axis=0)
            if u.mean() > 0.05:
                per_window.append(u.max() / u.mean())
        if per_window:
            ratios.append(float(np.mean(per_window)))
    imbalance = max(ratios) if ratios else 1.0
    over = (trace.load[sl] > trace.capacity[sl] * 1.0001).any(axis=1)
    overload_s = float(over.sum())
    # Oscillation: 5 s means of each member's load, turns between swings of >= 2 % capacity.
    reversals, amplitudes = [], []
    for m in MEMBERS:
        series = trace.load[sl, m.index]
        means = series[: len(series) // 5 * 5].reshape(-1, 5).mean(axis=1)
        turns, sizes = _turns(means, 0.02 * m.capacity)
        reversals.append(turns / (len(means) * 5 / 60))
        amplitudes.extend(s / m.capacity * 100 for s in sizes)
    settle = settle_load = None
    late_from = start
    if scenario.event is not None:
        event = int(scenario.until or scenario.event)
        # Answers: 10 s shares of the lead per site against the last minute's; settled once
        # fewer than SETTLED of the answers would have to move to another site to match it.
        by_site = np.zeros((len(SITES), len(MEMBERS)))
        for m in MEMBERS:
            by_site[list(SITES).index(m.site), m.index] = 1
        leads = trace.leads @ by_site.T
        final = leads[seconds - 60 :].sum(axis=0) / max(1.0, leads[seconds - 60 :].sum())
        late = []
        for t in range(event, seconds - 9):
            window = leads[t : t + 10].sum(axis=0)
            if window.sum() and np.abs(window / window.sum() - final).sum() / 2 > SETTLED:
                late.append(t + 10)
        settle = float(late[-1] - event) if late else 0.0
        # Load: every member within 10 % of its capacity of where it ends.
        end = trace.load[seconds - 60 : seconds].mean(axis=0)
        smooth = np.array([trace.load[max(0, t - 4) : t + 1].mean(axis=0) for t in range(seconds)])
        off = (np.abs(smooth - end) / np.array([m.capacity for m in MEMBERS])).max(axis=1) > 0.10
        off_late = [t for t in range(event, seconds) if off[t]]
        settle_load = float(off_late[-1] + 1 - event) if off_late else 0.0
    # The same window for every decider: from a minute after the (last) change to the end.
    late_from = start if scenario.event is None else int((scenario.until or scenario.event) + 60)
    late: list[float] = []
    for m in MEMBERS:
        series = trace.load[late_from:seconds, m.index]
        means = series[: len(series) // 5 * 5].reshape(-1, 5).mean(axis=1)
        late.extend(x / m.capacity * 100 for x in _turns(means, 0.02 * m.capacity)[1])
    after = int((scenario.event or 0) + DETECT_S)
    dead = trace.dead_leads[after:].sum() / max(1.0, trace.answers[after:].sum())
    failed = trace.failed[sl].sum() / max(1.0, trace.sessions[sl].sum())
    return Measures(
        float(nearest),
        imbalance,
        overload_s,
        float(np.mean(reversals)),
        float(np.mean(amplitudes)) if amplitudes else 0.0,
        settle,
        settle_load,
        (float(np.mean(late)) if late else 0.0) if seconds - late_from >= LATE_MIN else None,
        float(dead),
        float(failed),
    )


def _turns(series: np.ndarray, threshold: float) -> tuple[int, list[float]]:
    """Direction changes of a series, ignoring swings smaller than `threshold` (hysteresis)."""
    turns, sizes = 0, []
    direction = 0
    extreme = series[0] if len(series) else 0.0
    for x in series[1:]:
        if direction >= 0 and x > extreme:
            extreme, direction = x, 1 if x - extreme >= 0 else direction
        if direction <= 0 and x < extreme:
            extreme = x
        if direction >= 0 and extreme - x >= threshold:
            if direction == 1:
                turns += 1
                sizes.append(float(extreme - x))
            direction, extreme = -1, x
        elif direction <= 0 and x - extreme >= threshold:
            if direction == -1:
                turns += 1
                sizes.append(float(x - extreme))
            direction, extreme = 1, x
    return turns, sizes


@dataclass
class Setup:
    res: Resolvers
    locator: GeoIpLocator
    root: Path
    seed: int

    def deciders(self, which: Iterable[str] | None = None) -> list[Callable[[], Decider]]:
        rng = lambda: np.random.default_rng(self.seed + 1)  # noqa: E731
        made: dict[str, Callable[[], Decider]] = {
            "nearest": lambda: Gslb("nearest", True, self.res, self.locator, self.root),
            "least-load-agents": lambda: Gslb(
                "nearest-least-load", True, self.res, self.locator, self.root
            ),
            "least-load-answers": lambda: Gslb(
                "nearest-least-load", False, self.res, self.locator, self.root
            ),
            "least-load-slow-start": lambda: Gslb(
                "nearest-least-load", True, self.res, self.locator, self.root, slow_start=30.0
            ),
            "pickclosest": lambda: PickClosest(self.res, self.locator, rng()),
            "multifo": lambda: Multifo(self.res, self.locator, rng()),
            "round-robin": lambda: RoundRobin(self.res, self.locator, rng()),
        }
        return [made[k] for k in (which or made)]


def setup(count: int, seed: int, root: Path | None = None) -> Setup:
    base = root or Path(tempfile.mkdtemp(prefix="gslb-sim-"))
    locator = GeoIpLocator(write_geoip(base / "cities.mmdb"))
    return Setup(resolvers(count, np.random.default_rng(seed)), locator, base, seed)
