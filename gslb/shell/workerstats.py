"""What a node's DNS workers have counted, reported to the node, so that `/metrics` and the
dashboard count every worker and not only the first process (workers are the default: one
per core).

Each worker writes one JSON line a second to a pipe its node gave it (`--stats-fd`): its
totals since it started (queries, answers by transport, type and code, answer-time buckets,
rate limiting) and the answers per member since its last line. The node keeps each worker's
latest totals and adds the per-member counts up; its collector adds them to its own. A
worker that is started again starts from zero: its node keeps what the earlier one counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from gslb.common import logs
from gslb.core import names
from gslb.shell.transport import LATENCY_BUCKETS, AnswerCounts, Answerer, QueryStats

log = logs.get("gslb.workers")

REPORT_EVERY = 1.0  # seconds


def report(answerer: Answerer, answers: dict[str, int]) -> dict[str, Any]:
    """One worker's line: its totals, and `answers` (per member, since the last line)."""
    rrl = answerer.rrl.stats if answerer.rrl is not None else None
    return {
        "queries": answerer.queries,
        "stats": {t: _stats(s) for t, s in answerer.stats.items()},
        "rrl": dict(vars(rrl)) if rrl is not None else {},
        "answers": answers,
        # Each worker signs with signers of its own snapshot: what they made and found made.
        "dnssec": {
            names.to_text(apex): [signer.stats.made, signer.stats.hits]
            for apex, signer in answerer.snapshot.signers.items()
        },
    }


def _stats(stats: QueryStats) -> dict[str, Any]:
    return {
        "counts": [[q.hex(), c, n] for (q, c), n in list(stats.counts.items())],
        "latency": list(stats.latency),
        "sum": stats.latency_sum,
        "count": stats.latency_count,
    }


@dataclass
class Totals:
    """A node's workers' counts, as the collector adds them to its own."""

    queries: int = 0
    stats: dict[str, QueryStats] = field(default_factory=dict)
    rrl: dict[str, int] = field(default_factory=dict)
    answers: AnswerCounts = field(default_factory=AnswerCounts)
    dnssec: dict[str, list[int]] = field(default_factory=dict)  # zone -> [made, hits]


class WorkerStats:
    """The node's side: the latest line of each worker, and per-member answers added up."""

    def __init__(self) -> None:
        self.latest: dict[int, dict[str, Any]] = {}
        self.before: dict[int, list[dict[str, Any]]] = {}  # totals of earlier runs of a worker
        self.answers = AnswerCounts()

    def take(self, worker: int, line: dict[str, Any]) -> None:
        self.answers.add({str(k): int(v) for k, v in (line.get("answers") or {}).items()})
        self.latest[worker] = line

    def restarted(self, worker: int) -> None:
        """Worker `worker` is started again: what its last run counted is kept."""
        last = self.latest.pop(worker, None)
        if last is not None:
            self.before.setdefault(worker, []).append(last)

    def totals(self) -> Totals:
        out = Totals(answers=self.answers)
        lines = [*self.latest.values(), *(x for runs in self.before.values() for x in runs)]
        for line in lines:
            out.queries += int(line.get("queries", 0))
            for transport, stats in (line.get("stats") or {}).items():
                into = out.stats.setdefault(transport, QueryStats())
                for qtype, code, count in stats.get("counts", []):
                    key = (bytes.fromhex(qtype), int(code))
                    into.counts[key] = into.counts.get(key, 0) + int(count)
                for i, count in enumerate(stats.get("latency", [])[: len(LATENCY_BUCKETS) + 1]):
                    into.latency[i] += int(count)
                into.latency_sum += float(stats.get("sum", 0.0))
                into.latency_count += int(stats.get("count", 0))
            for name, value in (line.get("rrl") or {}).items():
                out.rrl[name] = out.rrl.get(name, 0) + int(value)
            for zone, (made, hits) in (line.get("dnssec") or {}).items():
                into_zone = out.dnssec.setdefault(str(zone), [0, 0])
                into_zone[0] += int(made)
                into_zone[1] += int(hits)
        return out

    async def read(self, worker: int, fd: int) -> None:
        """Read worker `worker`'s lines from `fd` until it closes it (the worker ended)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    self.take(worker, json.loads(line))
        finally:
            transport.close()


async def send_reports(answerer: Answerer, fd: int) -> None:
    """The worker's side: a line a second to its node, until the pipe closes."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(fd, "wb", buffering=0))
    if answerer.answers.unreported is None:
        answerer.answers.unreported = {}  # from now on, what the node has not been told
    try:
        while not transport.is_closing():
            answers = answerer.answers.take_unreported()
            transport.write((json.dumps(report(answerer, answers)) + "\n").encode())
            await asyncio.sleep(REPORT_EVERY)
    finally:
        transport.close()
