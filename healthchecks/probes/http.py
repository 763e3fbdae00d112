"""http / https: the member answers an HTTP request with an expected status (and body).

The request goes to the member's address (not a name: DNS is what we are deciding), with the
monitor's method and path (a URL built with yarl, never concatenated; the address reached is
checked against what the checker may probe), its `host` as the Host header and, for https,
as the TLS SNI and the name the certificate must match. Certificates are verified unless
`tls_verify: false`. Success is a status in `expect_status` and, if `expect_body` is set,
that text within the first 64 KiB of the body. The RTT is the time to the response headers.
"""

from __future__ import annotations

import time

import aiohttp
from yarl import URL

from gslb.schema import Target
from healthchecks.probes import Outcome, Resources, describe_error

BODY_LIMIT = 64 * 1024


def probe_url(scheme: str, address: str, port: int, path: str) -> URL | None:
    """The URL of a probe, built (not concatenated): the member's address, the port, and the
    monitor's path, which must be an absolute path (`/healthz?x=1`), never an authority
    (`@other:9999/x` once made a checker fetch another host)."""
    if not path.startswith("/") or path.startswith("//"):
        return None
    parsed = URL(path, encoded=False)
    if parsed.is_absolute() or parsed.host is not None:
        return None
    return URL.build(
        scheme=scheme,
        host=address,
        port=port,
        path=parsed.path,
        query_string=parsed.query_string,
    )


def _peer(response: aiohttp.ClientResponse) -> str | None:
    connection = response.connection
    transport = connection.transport if connection is not None else None
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None


def _session(resources: Resources, source: str | None, verify: bool) -> aiohttp.ClientSession:
    key = (source, verify)
    session = resources.sessions.get(key)
    if session is None:
        connector = aiohttp.TCPConnector(
            local_addr=(source, 0) if source else None,
            force_close=True,  # each probe is a new connection, as a new client's would be
            limit=0,
            ssl=verify,
        )
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        resources.sessions[key] = session
    assert isinstance(session, aiohttp.ClientSession)
    return session


async def probe(target: Target, source: str | None, resources: Resources) -> Outcome:
    monitor = target.monitor
    scheme = "https" if monitor.type == "https" else "http"
    port = monitor.port or (443 if scheme == "https" else 80)
    url = probe_url(scheme, target.address, port, monitor.path)
    if url is None:
        return Outcome(False, None, f"refused path {monitor.path!r}: not an absolute path")
    headers = {"User-Agent": "gslb-checker"}
    if monitor.host:
        headers["Host"] = monitor.host
    session = _session(resources, source, monitor.tls_verify)
    started = time.perf_counter()
    try:
        async with session.request(
            monitor.method,
            url,
            headers=headers,
            allow_redirects=False,
            server_hostname=monitor.host if scheme == "https" and monitor.host else None,
        ) as response:
            rtt = time.perf_counter() - started
            peer = _peer(response)
            policy = resources.policy
            if peer is not None and policy is not None and not policy.permits(peer):
                return Outcome(False, rtt, f"connected to {peer}, which may not be probed")
            if response.status not in monitor.expect_status:
                return Outcome(False, rtt, f"HTTP {response.status}")
            if monitor.expect_body is not None:
                body = await response.content.read(BODY_LIMIT)
                if monitor.expect_body.encode() not in body:
                    return Outcome(False, rtt, f"body lacks {monitor.expect_body!r}")
            return Outcome(True, rtt)
    except aiohttp.ClientSSLError as e:
        return Outcome(False, None, f"TLS: {e}")
    except (aiohttp.ClientError, OSError) as e:
        return Outcome(False, None, describe_error(e))
