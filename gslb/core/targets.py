"""What the checkers probe: a zone document's monitored members, as schema `Target`s.

Every member of a pool with a monitor is a target, drained ones included (they must be known
healthy before they are enabled again, and backups must be watched while idle: SCTP's lesson
that unused paths fail silently); disabled members are not probed.
"""

from __future__ import annotations

from collections.abc import Mapping

from gslb.core.pooldoc import MonitorDoc
from gslb.core.pools import Pool, compile_pools
from gslb.core.zonedoc import ZoneDoc
from gslb.schema import Monitor, Target


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
    )


def targets_of(doc: ZoneDoc, pools: Mapping[str, Pool] | None = None) -> list[Target]:
    """What the checkers probe in a zone; `pools`: its compiled pools, when at hand."""
    if pools is None:
        pools = compile_pools(doc.apex, doc)
    monitors = {name: monitor_of(m) for name, m in doc.monitors.items()}
    out = []
    for name, pool_doc in doc.pools.items():
        if pool_doc.monitor is None:
            continue
        monitor = monitors[pool_doc.monitor]
        for member in pools[name].members:
            if member.admin == "disabled":
                continue
            site = member.site.name if member.site else None
            out.append(Target(member.key, member.address, monitor, member.isp, site))
    return out
