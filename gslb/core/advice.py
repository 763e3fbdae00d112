"""Warnings about a zone document that is valid but probably not what was meant.

A document these flag is served as it is; `gslb check-zones` prints them with their
`file:line`, and a node logs them when it loads the file.
"""

from __future__ import annotations

from gslb.core.policy import STEPS
from gslb.core.pooldoc import Fault, GslbDoc
from gslb.core.pools import isp_of, isp_table

WEIGHED_BY = tuple(sorted(name for name, step in STEPS.items() if step.WEIGHS))


def advice(doc: GslbDoc) -> list[Fault]:
    """Each warning with the field path it is about."""
    out: list[Fault] = []
    table = isp_table(doc.isps)
    for name, pool in doc.pools.items():
        where: tuple[int | str, ...] = ("pools", name)
        if any(m.weight != 1 for m in pool.members) and not set(pool.policy) & set(WEIGHED_BY):
            out.append(
                (
                    (*where, "policy"),
                    "members have weights, but no step of the policy reads them "
                    f"({', '.join(WEIGHED_BY)})",
                )
            )
        if "isp_interleave" in pool.policy:
            isps = {m.isp or isp_of(m.address, table) for m in pool.members}
            named = sorted(i for i in isps if i is not None)
            if len(isps) < 2:
                spanned = named[0] if named else "none of the zone's isps"
                out.append(
                    (
                        (*where, "members"),
                        f"isp_interleave has one ISP to interleave ({spanned}): give members "
                        "of two ISPs or more (isps: or a member's isp:)",
                    )
                )
    return out
