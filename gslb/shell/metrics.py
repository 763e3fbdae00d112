"""Prometheus metrics at `/metrics`, collected from the node's state when scraped.

Nothing is counted on the answer path beyond the counters the node keeps anyway; this
collector reads them (and the sync's view of Redis) at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gslb.shell.serve import Node


class NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        sync = node.sync
        yield CounterMetricFamily(
            "gslb_dns_queries", "DNS messages received", value=node.answerer.queries
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


def registry_for(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
