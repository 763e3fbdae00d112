"""Each probe type against a real server on loopback (issue 4 §2)."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from gslb.core.snapshot import Snapshot
from gslb.schema import Monitor, Target
from gslb.shell.transport import Answerer, listen
from healthchecks.probes import Outcome, Resources, dns, http, icmp, tcp
from tests.helpers import CORE_ZONE, snapshot_of, write_zones
from tests.test_redis_state import free_port

HOST = "127.10.4.1"


def target(monitor: Monitor, address: str = HOST) -> Target:
    return Target(f"z/p/{address}", address, monitor)


async def with_resources(coro_factory: object) -> Outcome:
    resources = Resources()
    try:
        return await coro_factory(resources)  # type: ignore[operator, no-any-return]
    finally:
        await resources.close()


def test_tcp_probe() -> None:
    port = free_port()

    async def run() -> tuple[Outcome, Outcome]:
        server = await asyncio.start_server(lambda r, w: w.close(), HOST, port)
        async with server:
            up = await tcp.probe(target(Monitor("tcp", port)), None, Resources())
        down = await tcp.probe(target(Monitor("tcp", port)), None, Resources())
        return up, down

    up, down = asyncio.run(run())
    assert up.ok and up.rtt is not None and up.rtt < 1
    assert not down.ok and "refused" in (down.error or "").lower()


def test_tcp_probe_binds_the_path_source() -> None:
    port = free_port()

    async def run() -> tuple[Outcome, Outcome]:
        seen = []

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("peername")[0])
            writer.close()

        server = await asyncio.start_server(accept, HOST, port)
        async with server:
            good = await tcp.probe(target(Monitor("tcp", port)), "127.10.4.9", Resources())
            await asyncio.sleep(0.05)
            bad = await tcp.probe(target(Monitor("tcp", port)), "192.0.2.1", Resources())
        assert seen == ["127.10.4.9"], "the probe left from the path's source address"
        return good, bad

    good, bad = asyncio.run(run())
    assert good.ok
    assert not bad.ok and "assign requested address" in (bad.error or "")


async def http_app(port: int, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text=f"ok host={request.headers.get('Host')}")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, ssl_context=ssl_context).start()
    return runner


def test_http_probe_status_body_and_host() -> None:
    port = free_port()

    async def run() -> list[Outcome]:
        runner = await http_app(port)
        try:
            probes = [
                Monitor("http", port, path="/healthz"),
                Monitor(
                    "http",
                    port,
                    path="/healthz",
                    host="www.example.test",
                    expect_body="host=www.example.test",
                ),
                Monitor("http", port, path="/broken"),
                Monitor("http", port, path="/broken", expect_status=(200, 503)),
                Monitor("http", port, path="/healthz", expect_body="something else"),
            ]
            return [
                await with_resources(lambda r, m=m: http.probe(target(m), None, r)) for m in probes
            ]
        finally:
            await runner.cleanup()

    ok, with_host, broken, accepted, wrong_body = asyncio.run(run())
    assert ok.ok and with_host.ok and accepted.ok
    assert not broken.ok and broken.error == "HTTP 503"
    assert not wrong_body.ok and "body lacks" in (wrong_body.error or "")


def test_https_verifies_by_default_and_sends_sni(tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=members.example.test",
            "-addext",
            "subjectAltName=DNS:members.example.test",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment, misc, func-returns-value]
    port = free_port()

    async def run() -> tuple[Outcome, Outcome]:
        runner = await http_app(port, context)
        try:
            monitor = Monitor("https", port, path="/healthz", host="members.example.test")
            verified = await with_resources(lambda r: http.probe(target(monitor), None, r))
            unverified = Monitor(
                "https", port, path="/healthz", host="members.example.test", tls_verify=False
            )
            trusting = await with_resources(lambda r: http.probe(target(unverified), None, r))
            return verified, trusting
        finally:
            await runner.cleanup()

    verified, trusting = asyncio.run(run())
    assert not verified.ok and "TLS" in (verified.error or ""), (
        "a self-signed certificate is refused"
    )
    assert trusting.ok, "tls_verify: false accepts it"
    assert "members.example.test" in names, "the monitor's host is sent as SNI"


def test_dns_probe_against_a_gslb_listener(tmp_path: Path) -> None:
    snapshot: Snapshot = snapshot_of(write_zones(tmp_path / "zones", {"z.yaml": CORE_ZONE}))

    async def run() -> list[Outcome]:
        listeners = await listen([("127.0.0.1", 0)], Answerer(snapshot))
        port = listeners.addresses()[0][1]
        try:
            monitors = [
                Monitor("dns", port, query_name="www.gslb.example.com", query_type="A"),
                Monitor("dns", port, query_name="nothing.gslb.example.com", query_type="A"),
                Monitor(
                    "dns", port, query_name="nothing.gslb.example.com", expect_rcode="NXDOMAIN"
                ),
            ]
            return [await dns.probe(target(m, "127.0.0.1"), None, Resources()) for m in monitors]
        finally:
            await listeners.close()

    found, missing, expected_missing = asyncio.run(run())
    assert found.ok and found.rtt is not None
    assert not missing.ok and missing.error == "rcode NXDOMAIN"
    assert expected_missing.ok


def test_icmp_refused_with_a_reason_where_the_system_forbids_it() -> None:
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        low, high = (int(x) for x in f.read().split())
    if low <= os.getgid() <= high:
        assert icmp.available() is None
    else:
        reason = icmp.available()
        assert reason is not None and "ping_group_range" in reason


def test_icmp_probe_in_a_namespace_that_allows_it() -> None:
    namespace = f"gslbtest-icmp-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        inside = ["ip", "netns", "exec", namespace]
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [*inside, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"], check=True
        )
        script = (
            "import asyncio\n"
            "from gslb.schema import Monitor, Target\n"
            "from healthchecks.probes import Resources, icmp\n"
            "assert icmp.available() is None\n"
            "up = asyncio.run(icmp.probe(Target('k', '127.0.0.1', Monitor('icmp')), None, Resources()))\n"
            "print('up', up.ok, up.rtt is not None)\n"
        )
        out = subprocess.run(
            [*inside, sys.executable, "-c", script], check=True, capture_output=True, text=True
        )
        assert out.stdout.strip() == "up True True"
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
