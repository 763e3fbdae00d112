"""What a response *is*, for response rate limiting: responses that count as one.

Rate limiting counts identical responses to one client network (gslb.shell.rrl). Counting
them by the question alone lets a flood of random names through, each its own response: 400
random names under a wildcard got 400 full answers. Responses are grouped instead as BIND's
RRL groups them:

- a positive answer: by its name and type, or, when it was made from a wildcard (the name
  itself does not exist), by the wildcard that made it;
- a referral: by the delegation point, whatever the name below it;
- NXDOMAIN and NODATA: by the zone;
- any other error (REFUSED, FORMERR, SERVFAIL...): by the code alone.

It is worked out from the query, the reply's header and the snapshot: a few dictionary
lookups, done only for clients that are not exempt.
"""

from __future__ import annotations

from gslb.core import names
from gslb.core.snapshot import Snapshot
from gslb.core.zone import RCODE_NOERROR, RCODE_NXDOMAIN, WILDCARD

FLAG_AA = 0x0400


def _question(wire: bytes) -> tuple[bytes, bytes] | None:
    """The question's name (lower case, as the zones key it) and type, label by label: the
    first zero octet need not end the name (a label may hold zeros). None when the name is
    compressed or malformed, which no answer of ours was made for."""
    at, end = 12, len(wire)
    while at < end:
        length = wire[at]
        if length == 0:
            if at + 3 > end:
                return None
            return wire[12 : at + 1].lower(), wire[at + 1 : at + 3]
        if length > 63:
            return None
        at += length + 1
    return None


def identity(wire: bytes, reply: bytes, snapshot: Snapshot) -> bytes:
    """The key under which `reply` to `wire` is counted (the client network aside)."""
    code = reply[3] & 0xF if len(reply) > 3 else 0
    if code not in (RCODE_NOERROR, RCODE_NXDOMAIN):
        return b"E" + bytes((code,))
    question = _question(wire)
    if question is None:
        return b"E" + bytes((code,))
    qname, qtype = question
    zone = snapshot.zones.find(qname)
    if zone is None:
        return b"E" + bytes((code,))
    if code == RCODE_NXDOMAIN:
        return b"X" + zone.apex
    if not reply[2] & (FLAG_AA >> 8):  # not authoritative: a referral
        return b"R" + (zone.find_cut(qname) or zone.apex)
    answers = reply[6] << 8 | reply[7]
    if answers == 0:
        return b"N" + zone.apex
    if zone.exists(qname):
        return b"A" + qname + qtype
    for ancestor in names.suffixes(qname):  # made from the wildcard of the closest encloser
        if zone.exists(ancestor):
            return b"W" + WILDCARD + ancestor + qtype
    return b"A" + qname + qtype
