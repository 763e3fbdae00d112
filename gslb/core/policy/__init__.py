"""Policy steps (DESIGN.md §6): ordered candidates in, ordered candidates out.

Every step is a pure, stable function `apply(candidates, ctx) -> candidates` in a module of its
own, whose docstring states its rule. `STEPS` maps the names used in zone files to them; adding
a policy is one new module and one line here. A step that looks at the client says so in
`CLIENT` ("geo": its location; "subnet": its address block), which is what decides the
reply-cache key and the EDNS Client Subnet scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from gslb.core.location import ClientInfo
from gslb.core.pools import Member, Pool
from gslb.core.state import NO_LOAD, ClusterState, Load

Candidates = tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Context:
    pool: Pool
    state: ClusterState
    client: ClientInfo | None = None
    slot: int = 0  # the rotation slot this query drew (DESIGN.md §9)
    client_key: bytes = b""  # the decision key, for steps that hash the client
    notes: list[str] | None = None  # filled only when explaining

    def note(self, text: str | Callable[[], str]) -> None:
        if self.notes is not None:
            self.notes.append(text if isinstance(text, str) else text())

    def load(self, member: Member) -> Load:
        return self.state.load.get(member.address, NO_LOAD)

    def sessions(self, member: Member) -> float:
        """RFC 2391 load: the agent's session count when fresh, else the answers this cluster
        handed out for the member in the recent window, which stand in for new sessions."""
        reported = self.load(member).sessions
        if reported is not None:
            return reported
        return self.state.answers.get(member.key, 0.0)


def _steps() -> dict[str, ModuleType]:
    from gslb.core.policy import (
        cost,
        failover,
        fastest,
        health,
        isp_interleave,
        least_load,
        least_traffic,
        limit,
        proximity,
        round_robin,
        sticky,
        topology,
        weighted,
    )

    return {
        "health": health,
        "failover": failover,
        "proximity": proximity,
        "topology": topology,
        "round_robin": round_robin,
        "weighted": weighted,
        "least_load": least_load,
        "least_traffic": least_traffic,
        "fastest": fastest,
        "cost": cost,
        "sticky": sticky,
        "isp_interleave": isp_interleave,
        "limit": limit,
    }


STEPS: dict[str, ModuleType] = _steps()


def client_use(steps: tuple[str, ...]) -> frozenset[str]:
    """What of the client a pipeline looks at: a subset of {"geo", "subnet"}."""
    return frozenset(u for s in steps if (u := getattr(STEPS[s], "CLIENT", None)) is not None)
