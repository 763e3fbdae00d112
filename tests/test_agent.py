"""`gslb agent`: sessions from the kernel's TCP table, reported to Redis, used by least_load and
by agent monitors (issue 4 §5)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import dns.query
import redis

from gslb.schema import Load
from healthchecks.agent import Agent, AgentConfig, sessions
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import free_port, until

BUSY, IDLE = "127.10.3.1", "127.10.3.2"


def listen(address: str, port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(64)
    return server


def test_sessions_are_counted_from_the_kernel() -> None:
    port = free_port()
    server = listen(BUSY, port)
    clients = [socket.create_connection((BUSY, port)) for _ in range(5)]
    accepted = [server.accept()[0] for _ in clients]
    try:
        assert sessions(AgentConfig(BUSY, (port,))) == 5
        assert sessions(AgentConfig(BUSY, (port + 1,))) == 0, "only the listed ports"
        assert sessions(AgentConfig(IDLE)) == 0
    finally:
        for s in [*clients, *accepted, server]:
            s.close()


def test_sessions_are_reported_per_port_for_session_weights() -> None:
    web, mail = free_port(), free_port()
    servers = [listen(BUSY, web), listen(BUSY, mail)]
    clients = [socket.create_connection((BUSY, web)) for _ in range(3)]
    clients.append(socket.create_connection((BUSY, mail)))
    accepted = [servers[0].accept()[0] for _ in range(3)] + [servers[1].accept()[0]]
    try:
        report = Agent(AgentConfig(BUSY, (web, mail))).measure()
        assert report.ports == {str(web): 3.0, str(mail): 1.0}
        assert report.sessions == 4
        assert Load.from_json(report.to_json()).ports == report.ports, "through Redis whole"
    finally:
        for s in [*clients, *accepted, *servers]:
            s.close()


def test_least_load_follows_agents_and_a_silent_agent_means_down(tmp_path: Path) -> None:
    port = free_port()
    zone = f"""\
zone: gslb.example.com
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: "@ NS ns1"
monitors:
  agents: {{type: agent, interval: 1, rise: 1, fall: 2}}
pools:
  app:
    policy: [health, least_load, limit]
    monitor: agents
    fallback: none
    members: [{{address: {BUSY}}}, {{address: {IDLE}}}]
"""
    server_socket = listen(BUSY, port)
    node = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": zone}), tmp_path / "data")
    url = f"unix://{(tmp_path / 'data' / 'redis.sock').resolve()}"
    agents = {
        member: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gslb",
                "agent",
                "--redis",
                url,
                "--member",
                member,
                "--port",
                str(port),
                "--interval",
                "0.5",
            ],
            stderr=subprocess.DEVNULL,
        )
        for member in (BUSY, IDLE)
    }
    clients = [socket.create_connection((BUSY, port)) for _ in range(5)]
    accepted = [server_socket.accept()[0] for _ in clients]
    try:
        client = redis.Redis.from_url(url)

        def busy_sessions() -> float | None:
            raw = client.hget("gslb:load", BUSY)
            return Load.from_json(raw).sessions if raw else None

        until(lambda: busy_sessions() == 5)

        def first() -> str:
            reply = dns.query.udp(
                query("app.gslb.example.com"), node.host, port=node.port, timeout=2
            )
            return reply.answer[0][0].to_text() if reply.answer else ""

        def both_up() -> bool:
            decided = client.hgetall("gslb:health")
            return len(decided) == 2 and all(b'"health":"up"' in v for v in decided.values())

        until(both_up)
        until(lambda: first() == IDLE)  # load is re-read every 5 s
        assert answers_of(node) == {BUSY, IDLE}

        stop_process(agents[IDLE])  # its agent falls silent: 3 intervals, then fall failures
        until(lambda: answers_of(node) == {BUSY}, 3 * 1 + 2 * 1 + 2)
    finally:
        for s in [*clients, *accepted, server_socket]:
            s.close()
        for proc in agents.values():
            stop_process(proc)
        node.stop()


def answers_of(node: ServerProcess) -> set[str]:
    reply = dns.query.udp(query("app.gslb.example.com"), node.host, port=node.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}
