"""What the benchmark scripts share (they run as `python bench/NAME.py`, beside this file)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period: a benchmark leaves no process behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_redis(directory: Path, core: str = "1") -> tuple[subprocess.Popen[bytes], str]:
    """Debian's redis-server on a free loopback port, pinned to `core`, without persistence;
    returns it once it answers, with its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            core,
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if redis.Redis(port=port).ping():
                break
        time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"
