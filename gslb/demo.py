"""`gslb demo-backends`: stand-in servers for the members of the zones' HTTP-monitored pools.

For trying gslb on one machine (`make run` starts it): every member of a pool with an http
monitor gets a tiny HTTP server on its address and the monitor's port, answering the
monitor's path with the expected status. Only loopback addresses are served; members
elsewhere are skipped, so the demo never pretends to be a real host.

To watch a failure without stopping anything: `curl -X POST http://ADDRESS:PORT/demo/fail`
makes that member's health check fail (503) until `curl -X POST .../demo/recover`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
from pathlib import Path

from aiohttp import web

from gslb import zonefiles
from gslb.common import logs

log = logs.get("gslb.demo")


def endpoints(zones_dir: Path) -> list[tuple[str, int, str, int]]:
    """(address, port, path, status) of every loopback member of an HTTP-monitored pool."""
    out = set()
    for loaded in zonefiles.load_directory(zones_dir).values():
        doc = loaded.doc
        for pool in doc.pools.values():
            monitor = doc.monitors.get(pool.monitor) if pool.monitor else None
            if monitor is None or monitor.type != "http":
                continue
            status = monitor.expect_status
            code = status[0] if isinstance(status, list) else status
            for member in pool.members:
                if ipaddress.ip_address(member.address).is_loopback:
                    out.add((member.address, monitor.port or 80, monitor.path, code))
    return sorted(out)


async def serve(zones_dir: Path, while_pid: int | None = None) -> None:
    runners = []
    for address, port, path, status in endpoints(zones_dir):
        failing = {"now": False}

        async def ok(
            _: web.Request,
            status: int = status,
            address: str = address,
            failing: dict[str, bool] = failing,
        ) -> web.Response:
            if failing["now"]:
                return web.Response(status=503, text=f"demo backend {address}: failing\n")
            return web.Response(status=status, text=f"demo backend {address}\n")

        async def toggle(request: web.Request, failing: dict[str, bool] = failing) -> web.Response:
            failing["now"] = request.path.endswith("/fail")
            log.info("demo backend", address=request.host, failing=failing["now"])
            return web.Response(text="failing\n" if failing["now"] else "healthy\n")

        app = web.Application()
        app.router.add_post("/demo/fail", toggle)
        app.router.add_post("/demo/recover", toggle)
        app.router.add_route("*", path, ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, address, port).start()
        runners.append(runner)
        log.info("demo backend", address=address, port=port, path=path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if while_pid is not None:
        _stop_with(while_pid, stop)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def _stop_with(pid: int, stop: asyncio.Event) -> None:
    """Set `stop` when process `pid` exits (`make run`: the server it stands in for). A pidfd
    becomes readable then: an event, no polling."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        log.warning("cannot follow the process; stop the backends yourself", pid=pid)
        return
    asyncio.get_running_loop().add_reader(fd, stop.set)
