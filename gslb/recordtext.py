"""A zone document's static records as RRsets, and back: for the tools that edit documents
through the API (the octoDNS provider, the external-dns webhook) a record at a time.

The document keeps them as master-file text (`records`); these read it with dnspython, names
made absolute, and write it back one record per line. Comments and `$GENERATE` lines do not
survive the round trip; the records they made do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dns.name
import dns.rdata
import dns.rdatatype
import dns.zone

# (owner, type) -> (TTL, rdata texts); owners absolute, with their trailing dot.
RRsets = dict[tuple[str, str], tuple[int, list[str]]]


def static_rrsets(
    doc: Mapping[str, Any], render: Callable[[dns.rdata.Rdata], str] | None = None
) -> RRsets:
    """The document's static RRsets but its SOA (the zone's own, made from `soa`)."""
    if not doc.get("records"):
        return {}
    origin = dns.name.from_text(str(doc["zone"]))
    text = f"$TTL {doc.get('ttl', 300)}\n{doc['records']}"
    parsed = dns.zone.from_text(text, origin, relativize=False, check_origin=False)
    out: RRsets = {}
    for owner, node in parsed.nodes.items():
        for rdataset in node.rdatasets:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            if rtype != "SOA":
                texts = [render(rd) if render else rd.to_text() for rd in rdataset]
                out[(owner.to_text(), rtype)] = (rdataset.ttl, texts)
    return out


def records_text(rrsets: RRsets) -> str:
    """The master-file text of `rrsets`, one record per line, in name and type order."""
    return "".join(
        f"{owner} {ttl} {rtype} {text}\n"
        for (owner, rtype), (ttl, texts) in sorted(rrsets.items())
        for text in texts
    )
