"""agent: the member's own agent keeps reporting.

Agents push their load to Redis every few seconds (`gslb agent`); a member whose report is no
older than three monitor intervals is up, one whose agent fell silent is down. There is no
network probe and so no path: the agent's report is the member speaking for itself (RFC 2391
§3.2: agents on the members report their load).
"""

from __future__ import annotations

import time

from gslb.schema import Target
from healthchecks.probes import Outcome, Resources


async def probe(target: Target, source: str | None, resources: Resources) -> Outcome:
    if resources.load_report is None:
        return Outcome(False, None, "no way to read agent reports")
    report = await resources.load_report(target.address)
    if report is None:
        return Outcome(False, None, "no report from the agent")
    age = time.time() - report.at
    if age > 3 * target.monitor.interval:
        return Outcome(False, None, f"last report {age:.0f} s ago")
    return Outcome(True, None)
