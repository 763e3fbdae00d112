"""Nodes sharing one Redis: a `gslb dns` node follows a `gslb serve` node; TLS and Sentinel."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gslb.core.state import MemberState
from tests.helpers import write_zones
from tests.server import ServerProcess
from tests.test_redis_state import MEMBER, ZONE, answers, free_port, run, until

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def test_dns_role_serves_what_another_node_stored(tmp_path: Path) -> None:
    primary = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data")
    url = f"unix://{(tmp_path / 'data' / 'redis.sock').resolve()}"
    secondary = ServerProcess(None, None, "--redis", url, role="dns")
    try:
        until(lambda: secondary.events("redis synced"))
        assert answers(secondary) == {"192.0.2.10", "198.51.100.10"}
        run(lambda store: store.set_health({MEMBER: MemberState("down")}), url)
        until(lambda: answers(secondary) == {"198.51.100.10"} == answers(primary))
    finally:
        assert secondary.stop() == 0
        assert primary.stop() == 0


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """Debian's redis-server speaking TLS only, with a certificate from a throwaway CA."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}"
    finally:
        proc.kill()
        proc.wait(10)


def test_rediss_with_password(tmp_path: Path, tls_redis: str) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}), None, "--redis", tls_redis
    )
    try:
        until(lambda: server.events("redis synced"))
        started = server.events("started")[0]
        assert "s3cret" not in str(started), "no password in the logs"
        run(lambda store: store.set_health({MEMBER: MemberState("down")}), tls_redis)
        until(lambda: answers(server) == {"198.51.100.10"})
    finally:
        server.stop()


def test_sentinel(tmp_path: Path) -> None:
    master_port, sentinel_port = free_port(), free_port()
    master = subprocess.Popen(
        [
            REDIS,
            "--port",
            str(master_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor gslb 127.0.0.1 {master_port} 1\n"
    )
    sentinel = subprocess.Popen(
        [REDIS, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/gslb"
    server = None
    try:
        server = ServerProcess(
            write_zones(tmp_path / "zones", {"z.yaml": ZONE}), None, "--redis", url
        )
        until(lambda: server.events("redis synced"))
        run(lambda store: store.set_health({MEMBER: MemberState("down")}), url)
        until(lambda: answers(server) == {"198.51.100.10"})
    finally:
        if server is not None:
            server.stop()
        for proc in (sentinel, master):
            proc.kill()
            proc.wait(10)
