"""icmp: the member answers an ICMP echo request.

Uses the kernel's unprivileged ICMP datagram sockets (Linux: allowed for the groups in
`net.ipv4.ping_group_range`), so checkers need no raw-socket privilege. Where the system does
not allow them, `available()` says why, and the checker refuses icmp monitors with that
message rather than failing every probe.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

from gslb.schema import Target
from healthchecks.probes import Outcome, Resources, describe_error

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


def _socket(version: int) -> socket.socket:
    if version == 4:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    return socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)


def available() -> str | None:
    """None when unprivileged ICMP sockets work here, else the reason they do not."""
    try:
        _socket(4).close()
    except OSError as e:
        return (
            f"ICMP datagram sockets are not allowed ({describe_error(e)}): add this process's "
            f"group {os.getgid()} to net.ipv4.ping_group_range, or use a tcp monitor"
        )
    return None


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


async def probe(target: Target, source: str | None, resources: Resources) -> Outcome:
    version = 6 if ":" in target.address else 4
    sequence = int(time.monotonic() * 1000) & 0xFFFF
    payload = b"gslb-checker"
    header = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, 0, 0, sequence)
    checksum = _checksum(header + payload) if version == 4 else 0  # the kernel sums ICMPv6
    packet = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, checksum, 0, sequence) + payload
    loop = asyncio.get_running_loop()
    try:
        sock = _socket(version)
    except OSError as e:
        return Outcome(False, None, describe_error(e))
    sock.setblocking(False)
    try:
        if source:
            sock.bind((source, 0))
        started = time.perf_counter()
        await loop.sock_sendto(sock, packet, (target.address, 0))
        while True:
            data = await loop.sock_recv(sock, 2048)
            kind = data[0]
            seq = struct.unpack_from("!H", data, 6)[0] if len(data) >= 8 else -1
            if kind == ECHO_REPLY[version] and seq == sequence:
                return Outcome(True, time.perf_counter() - started)
    except OSError as e:
        return Outcome(False, None, describe_error(e))
    finally:
        sock.close()
