"""dns: the member answers a DNS query over UDP with the expected rcode.

The monitor's `query_name` and `query_type` (default: the root's SOA) are asked of the member
on the monitor's port (default 53); success is a reply with the right ID and question and the
rcode in `expect_rcode` (default NOERROR). The RTT is the round trip.
"""

from __future__ import annotations

import asyncio
import time

import dns.exception
import dns.message
import dns.rcode

from gslb.schema import Target
from healthchecks.probes import Outcome, Resources, describe_error


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.future.done():
            self.future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


async def probe(target: Target, source: str | None, resources: Resources) -> Outcome:
    monitor = target.monitor
    query = dns.message.make_query(monitor.query_name or ".", monitor.query_type or "SOA")
    query.flags = 0  # a question to an authority, not a request for recursion
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Reply,
            remote_addr=(target.address, monitor.port or 53),
            local_addr=(source, 0) if source else None,
        )
    except OSError as e:
        return Outcome(False, None, describe_error(e))
    try:
        transport.sendto(query.to_wire())
        while True:
            wire = await protocol.future
            rtt = time.perf_counter() - started
            try:
                reply = dns.message.from_wire(wire)
            except dns.exception.DNSException as e:
                return Outcome(False, rtt, f"malformed reply: {e}")
            if query.is_response(reply):
                break
            protocol.future = loop.create_future()  # a stray datagram: keep waiting
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode != monitor.expect_rcode.upper():
            return Outcome(False, rtt, f"rcode {rcode}")
        return Outcome(True, rtt)
    except OSError as e:
        return Outcome(False, None, describe_error(e))
    finally:
        transport.close()
