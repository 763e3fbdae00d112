"""Running a real `gslb serve` process for tests: ports chosen by the kernel, read from its log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from gslb.shell.transport import parse_endpoint


class ServerProcess:
    """`python -m gslb serve` with JSON logs; `lines` collects every log line it writes."""

    def __init__(
        self,
        zones: Path | None,
        data_dir: Path | None,
        *extra: str,
        dns: tuple[str, ...] = ("127.0.0.1:0",),
        role: str = "serve",
        env: dict[str, str] | None = None,
    ) -> None:
        args = [sys.executable, "-m", "gslb", role]
        if zones is not None:
            args += ["--zones", str(zones)]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        for endpoint in dns:
            args += ["--dns", endpoint]
        args += ["--http", "127.0.0.1:0", "--log-format", "json", *extra]
        if role in ("serve", "dns") and "--workers" not in extra:
            args += ["--workers", "1"]  # one process unless a test is about workers
        self.proc = subprocess.Popen(
            args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        self.lines: list[dict[str, object]] = []
        self._started = threading.Event()
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        self._started.wait(30)
        if not self.events("started"):
            self.stop()
            raise RuntimeError(f"gslb serve did not start: {self.lines}")
        started = self.events("started")[0]
        self.dns = [parse_endpoint(str(e)) for e in started["dns"]]  # type: ignore[attr-defined]
        self.http = [parse_endpoint(str(e)) for e in started["http"]]  # type: ignore[attr-defined]

    def _read(self, stream: IO[str]) -> None:
        for raw in stream:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                line = {"event": "unstructured", "text": raw.rstrip()}
            self.lines.append(line)
            if line.get("event") == "started":
                self._started.set()
        self._started.set()

    @property
    def host(self) -> str:
        return self.dns[0][0]

    @property
    def port(self) -> int:
        return self.dns[0][1]

    def events(self, name: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == name]

    def wait_for_event(
        self, name: str, count: int = 1, timeout: float = 30
    ) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} in the log: {self.lines}")

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode
