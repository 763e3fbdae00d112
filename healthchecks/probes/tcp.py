"""tcp: the member accepts a TCP connection on the monitor's port.

Success is the completed three-way handshake; the RTT is the connect time. The connection is
then reset rather than closed, so that thousands of probes a second leave no TIME_WAIT
sockets behind on the checker.
"""

from __future__ import annotations

import asyncio
import time

from gslb.schema import Target
from healthchecks.probes import Outcome, Resources, describe_error


async def probe(target: Target, source: str | None, resources: Resources) -> Outcome:
    loop = asyncio.get_running_loop()
    port = target.monitor.port or 80
    started = time.perf_counter()
    try:
        transport, _ = await loop.create_connection(
            asyncio.Protocol, target.address, port, local_addr=(source, 0) if source else None
        )
    except OSError as e:
        return Outcome(False, None, f"connect to port {port}: {describe_error(e)}")
    rtt = time.perf_counter() - started
    transport.abort()
    return Outcome(True, rtt)
