"""Prometheus metrics at `/metrics`, collected from the node's state when scraped.

Nothing is counted on the answer path beyond the counters the node keeps anyway; this
collector reads them (and the sync's view of Redis) at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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

from gslb.shell.transport import LATENCY_BUCKETS, QueryStats
from gslb.shell.workerstats import Totals
from healthchecks.checker import RTT_BUCKETS

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
    answers = CounterMetricFamily(
        "gslb_member_answers", "answers that named the member", labels=["member"]
    )
    totals = dict(answerer.answers_total)
    for member, count in workers.answers.items():
        totals[member] = totals.get(member, 0) + count
    for member, count in sorted(totals.items()):
        answers.add_metric([member], count)
    yield answers


def _pools(node: Node) -> Iterator[Metric]:
    snapshot = node.answerer.snapshot
    members = GaugeMetricFamily(
        "gslb_pool_members",
        "members of each pool by state (up/down/unknown from the checkers; drained, disabled)",
        labels=["zone", "pool", "state"],
    )
    fallback = GaugeMetricFamily(
        "gslb_pool_on_fallback",
        "1 when no member of the pool can be answered",
        labels=["zone", "pool"],
    )
    for zone in snapshot.zones.zones.values():
        for pool in zone.pools_by_name.values():
            states: dict[str, int] = dict.fromkeys(POOL_STATES, 0)
            usable = 0
            for member in pool.members:
                health = snapshot.state.member(member.key).health
                state: str = member.admin if member.admin != "enabled" else health
                states[state] = states.get(state, 0) + 1
                usable += member.admin == "enabled" and health != "down"
            for name, count in states.items():
                members.add_metric([pool.zone, pool.name, name], count)
            fallback.add_metric([pool.zone, pool.name], 0 if usable else 1)
    yield members
    yield fallback


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


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one past every bound) as Prometheus's cumulative buckets."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        out.append((str(bound) if bound != float("inf") else "+Inf", running))
    return out


POOL_STATES = ("up", "down", "unknown", "drained", "disabled")


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
