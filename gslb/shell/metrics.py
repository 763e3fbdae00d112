"""Prometheus metrics at `/metrics`, collected from the node's state when scraped.

Nothing is counted on the answer path beyond the counters the node keeps anyway; this
collector reads them (and the sync's view of Redis) at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dns.rcode
import dns.rdatatype
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gslb.core import names
from gslb.core.dnssec import dnssec_key_tags
from gslb.shell.poolstats import STATES
from gslb.shell.transport import LATENCY_BUCKETS, QueryStats
from gslb.shell.workerstats import Totals
from healthchecks.checker import RTT_BUCKETS
from healthchecks.watch import Watch

if TYPE_CHECKING:
    from gslb.shell.serve import Node
    from healthchecks.checker import CheckerNode


class NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        sync = node.sync
        workers = node.worker_stats.totals()
        yield CounterMetricFamily(
            "gslb_dns_queries",
            "DNS messages received (by every worker of the node)",
            value=node.answerer.queries + workers.queries,
        )
        yield GaugeMetricFamily(
            "gslb_snapshot_version",
            "version of the snapshot answers come from",
            value=node.answerer.snapshot.version,
        )
        up = 1 if sync is not None and sync.connected else 0
        yield GaugeMetricFamily("gslb_redis_up", "1 while Redis is reachable", value=up)
        staleness = sync.staleness if sync is not None else float("inf")
        yield GaugeMetricFamily(
            "gslb_snapshot_stale_seconds",
            "seconds since the snapshot was last known to match Redis (0 while connected)",
            value=staleness,
        )
        yield CounterMetricFamily(
            "gslb_redis_resyncs",
            "snapshots rebuilt from Redis",
            value=sync.resyncs if sync is not None else 0,
        )
        yield GaugeMetricFamily(
            "gslb_reply_cache_entries", "encoded replies cached", value=len(node.answerer.cache)
        )
        yield from _queries(node, workers)
        limiter = node.answerer.rrl
        if limiter is not None:
            own = vars(limiter.stats)
            for name, key, text in (
                ("gslb_rrl_limited", "limited", "UDP responses over the rate limit"),
                ("gslb_rrl_dropped", "dropped", "of those, dropped"),
                ("gslb_rrl_slipped", "slipped", "of those, sent truncated (TC=1)"),
                ("gslb_rrl_badcookie", "badcookie", "of those, sent as BADCOOKIE with a cookie"),
                (
                    "gslb_rrl_cookie_passed",
                    "cookie_passed",
                    "over the rate, but answered: a valid DNS cookie proved the client",
                ),
            ):
                value = own.get(key, 0) + workers.rrl.get(key, 0)
                yield CounterMetricFamily(name, text, value=value)
        yield from _pools(node)
        yield from _dnssec(node, workers)
        if sync is not None:
            yield from _checkers(sync.checkers)
        if node.checker is not None:
            yield from _probes(node.checker)
        if sync is not None and sync.last_sync:
            yield GaugeMetricFamily(
                "gslb_snapshot_age_seconds",
                "seconds since the snapshot was last rebuilt or confirmed from Redis",
                value=0.0 if sync.connected else sync.staleness,
            )


def _queries(node: Node, workers: Totals) -> Iterator[Metric]:
    answerer = node.answerer
    merged: dict[str, QueryStats] = {}
    for transport in {*answerer.stats, *workers.stats}:
        into = merged[transport] = QueryStats()
        for stats in (answerer.stats.get(transport), workers.stats.get(transport)):
            if stats is None:
                continue
            for key, count in list(stats.counts.items()):
                into.counts[key] = into.counts.get(key, 0) + count
            for i, count in enumerate(stats.latency):
                into.latency[i] += count
            into.latency_sum += stats.latency_sum
    queries = CounterMetricFamily(
        "gslb_dns_answers",
        "DNS messages by transport, query type and reply code (none: no reply, or held)",
        labels=["transport", "qtype", "rcode"],
    )
    for transport, stats in sorted(merged.items()):
        for (qtype, code), count in list(stats.counts.items()):
            queries.add_metric([transport, _qtype(qtype), _rcode(code)], count)
    yield queries
    latency = HistogramMetricFamily(
        "gslb_dns_answer_seconds",
        "time from a query read to its reply ready (UDP: one query in 8 measured)",
        labels=["transport"],
    )
    for transport, stats in sorted(merged.items()):
        buckets = _cumulative(LATENCY_BUCKETS, stats.latency)
        latency.add_metric([transport], buckets, sum_value=stats.latency_sum)
    yield latency
    own, theirs = answerer.answers, workers.answers
    zones = CounterMetricFamily(
        "gslb_zone_answers", "answers that led with a member of the zone's pools", labels=["zone"]
    )
    for zone in sorted({*own.by_zone, *theirs.by_zone}):
        zones.add_metric([zone], own.by_zone.get(zone, 0) + theirs.by_zone.get(zone, 0))
    yield zones
    answers = CounterMetricFamily(
        "gslb_member_answers",
        f"answers that led with the member (while at most {SERIES_LIMIT} members have led)",
        labels=["member"],
    )
    if len(own.by_member) + len(theirs.by_member) <= SERIES_LIMIT:
        totals = dict(own.by_member)
        for member, count in theirs.by_member.items():
            totals[member] = totals.get(member, 0) + count
        for member, count in sorted(totals.items()):
            answers.add_metric([member], count)
    yield answers


def _pools(node: Node) -> Iterator[Metric]:
    """Pools by state from the counts the sync keeps (gslb.shell.poolstats): per zone always,
    per pool while the node serves at most SERIES_LIMIT pools; beyond, only the pools on
    fallback (the ones to alert on), at most SERIES_LIMIT of them."""
    stats = node.sync.pool_stats if node.sync is not None else None
    if stats is None:
        return
    zone_members = GaugeMetricFamily(
        "gslb_zone_members", "members of the zone's pools by state", labels=["zone", "state"]
    )
    zone_pools = GaugeMetricFamily("gslb_zone_pools", "pools of the zone", labels=["zone"])
    zone_fallback = GaugeMetricFamily(
        "gslb_zone_pools_on_fallback",
        "pools of the zone that can answer none of their members",
        labels=["zone"],
    )
    members = GaugeMetricFamily(
        "gslb_pool_members",
        "members of each pool by state (up/down/unknown from the checkers; drained, disabled)"
        f"; while the node serves at most {SERIES_LIMIT} pools",
        labels=["zone", "pool", "state"],
    )
    fallback = GaugeMetricFamily(
        "gslb_pool_on_fallback",
        "1 when no member of the pool can be answered (beyond "
        f"{SERIES_LIMIT} pools: only the pools on fallback)",
        labels=["zone", "pool"],
    )
    every_pool = stats.pool_count <= SERIES_LIMIT
    room = SERIES_LIMIT
    for name, zone in sorted(stats.zones.items()):
        for state, count in zip(STATES, zone.members, strict=True):
            zone_members.add_metric([name, state], count)
        zone_pools.add_metric([name], len(zone.pools))
        zone_fallback.add_metric([name], len(zone.on_fallback))
        if every_pool:
            for pool, counts in zone.pools.items():
                for state, count in zip(STATES, counts, strict=True):
                    members.add_metric([name, pool, state], count)
                fallback.add_metric([name, pool], 1 if pool in zone.on_fallback else 0)
        else:
            for pool in sorted(zone.on_fallback)[:room]:
                fallback.add_metric([name, pool], 1)
            room = max(0, room - len(zone.on_fallback))
    yield from (zone_members, zone_pools, zone_fallback, members, fallback)


def _dnssec(node: Node, workers: Totals) -> Iterator[Metric]:
    """The signers of this process (docs/dnssec.md): signatures made and found made (its
    workers' added), key ages, and how long until the earliest signature expires (alerted
    on)."""
    made = CounterMetricFamily(
        "gslb_dnssec_signatures_made", "RRSIGs made (one per new RRset)", labels=["zone"]
    )
    hits = CounterMetricFamily(
        "gslb_dnssec_signature_cache_hits",
        "RRSIGs answered from those already made (every order of a pool shares one)",
        labels=["zone"],
    )
    ages = GaugeMetricFamily(
        "gslb_dnssec_key_age_seconds", "age of each signing key", labels=["zone", "key_tag"]
    )
    expiry = GaugeMetricFamily(
        "gslb_dnssec_signature_expiry_seconds",
        "seconds until the earliest signature this node hands out expires",
        labels=["zone"],
    )
    now = time.time()
    for signer in node.answerer.snapshot.signers.values():
        text = names.to_text(signer.apex)
        zone = text.rstrip(".")
        theirs = workers.dnssec.get(text, [0, 0])
        made.add_metric([zone], signer.stats.made + theirs[0])
        hits.add_metric([zone], signer.stats.hits + theirs[1])
        expiry.add_metric([zone], signer.earliest_expiry - now)
        for tag, key in zip(dnssec_key_tags(signer), signer.keys, strict=True):
            if key.created:
                ages.add_metric([zone, str(tag)], now - key.created)
    yield from (made, hits, ages, expiry)


def _checkers(checkers: dict[str, Any]) -> Iterator[Metric]:
    """Every checker's heartbeat as the shared state has it (re-read every few seconds): a
    dead one stays listed for a minute, then goes (gslb.schema.CHECKERS)."""
    states = GaugeMetricFamily(
        "gslb_checkers", "checkers by heartbeat state (alive, dead)", labels=["state"]
    )
    alive = sum(1 for c in checkers.values() if c.get("alive"))
    states.add_metric(["alive"], alive)
    states.add_metric(["dead"], len(checkers) - alive)
    yield states
    seen = GaugeMetricFamily(
        "gslb_checker_heartbeat_timestamp_seconds",
        "when each checker last said it was alive (Unix time)",
        labels=["checker"],
    )
    for name, checker in sorted(checkers.items()):
        seen.add_metric([name], float(checker.get("seen", 0.0)))
    yield seen


def _probes(checker: CheckerNode) -> Iterator[Metric]:
    stats = checker.stats
    probes = CounterMetricFamily(
        "gslb_checker_probes",
        "health probes by path and result",
        labels=["checker", "path", "result"],
    )
    for (path, ok), count in list(stats.results.items()):
        probes.add_metric([checker.config.id, path, "ok" if ok else "failed"], count)
    yield probes
    rtt = HistogramMetricFamily(
        "gslb_checker_probe_rtt_seconds", "round-trip time of successful probes", labels=["checker"]
    )
    buckets = _cumulative(RTT_BUCKETS, stats.rtt_buckets)
    rtt.add_metric([checker.config.id], buckets, sum_value=stats.rtt_sum)
    yield rtt
    ends = CounterMetricFamily(
        "gslb_checker_watch_ends",
        "watched connections that ended (each followed by confirming probes)",
        labels=["checker"],
    )
    ends.add_metric([checker.config.id], checker.watch_ends)
    yield ends
    open_now = GaugeMetricFamily(
        "gslb_checker_watched_connections", "watched connections open now", labels=["checker"]
    )
    open_now.add_metric([checker.config.id], Watch.open_count)
    yield open_now


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one past every bound) as Prometheus's cumulative buckets."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        out.append((str(bound) if bound != float("inf") else "+Inf", running))
    return out


# Series per pool and per member up to this many: beyond, Prometheus would hold millions of
# series a node should not render at every scrape; the per-zone families say the same in sum.
SERIES_LIMIT = 1_000


def _qtype(raw: bytes) -> str:
    if len(raw) != 2:
        return "none"
    value = int.from_bytes(raw, "big")
    try:
        return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(value))
    except ValueError:
        return str(value)


def _rcode(code: int) -> str:
    return "none" if code < 0 else dns.rcode.to_text(dns.rcode.Rcode.make(code))


def registry_for(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
