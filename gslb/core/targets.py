"""What the checkers probe: each monitored pool's members, and the zone's monitors.

Every member of a pool with a monitor is a target, drained ones included (they must be known
healthy before they are enabled again, and backups must be watched while idle: SCTP's lesson
that unused paths fail silently); disabled members are not probed. A pool's targets name its
monitor; the monitors are stored once per zone (gslb.schema.PoolTargets).
"""

from __future__ import annotations

from gslb.core.pooldoc import GslbDoc, MonitorDoc
from gslb.core.pools import Pool
from gslb.schema import Monitor, PoolTargets


def monitor_of(doc: MonitorDoc) -> Monitor:
    status = doc.expect_status
    return Monitor(
        type=doc.type,
        port=doc.port,
        interval=doc.interval,
        timeout=doc.timeout,
        rise=doc.rise,
        fall=doc.fall,
        method=doc.method,
        path=doc.path,
        host=doc.host,
        expect_status=tuple(status) if isinstance(status, list) else (status,),
        expect_body=doc.expect_body,
        tls_verify=doc.tls_verify,
        query_name=doc.query_name,
        query_type=doc.query_type,
        expect_rcode=doc.expect_rcode,
        watch=doc.watch,
    )


def monitors_of(doc: GslbDoc) -> dict[str, Monitor]:
    return {name: monitor_of(m) for name, m in doc.monitors.items()}


def pool_targets(pool: Pool) -> PoolTargets | None:
    """The members of `pool` to probe (None: the pool has no monitor)."""
    if pool.monitor is None:
        return None
    return PoolTargets(
        pool.monitor,
        tuple(
            (m.address, m.isp, m.site.name if m.site else None)
            for m in pool.members
            if m.admin != "disabled" and m.rdata not in pool.unmonitored
        ),
    )
