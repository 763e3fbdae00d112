"""Reading a query off the wire: just what an answer depends on, fully validated.

The common query (one question, no answer or authority records, at most an OPT record, an
uncompressed name) is scanned in place with `struct`; anything else goes to dnslib's complete
parser, which produces the same `Query`. Either way a malformed message raises `FormErr`, and the
caller answers FORMERR (or nothing, when not even a header can be read).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import dnslib

from gslb.core import cookies
from gslb.core.records import OPT

EDNS_NSID = 3  # RFC 5001
EDNS_CLIENT_SUBNET = 8  # RFC 7871
FLAG_QR = 0x8000
_HEADER = struct.Struct("!6H")
_TYPE_CLASS = struct.Struct("!HH")
_OPT_FIXED = struct.Struct("!HBBHH")  # udp size, extended rcode, version, flags, rdlength
_OPTION = struct.Struct("!HH")


class FormErr(Exception):
    """The message is not a well-formed query; `question` is echoed when it was readable, and
    `edns` says whether it carried an OPT record (which the error reply then carries too)."""

    def __init__(self, reason: str, question: bytes = b"", edns: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.question = question
        self.edns = edns


class ClientSubnet(NamedTuple):
    """An EDNS Client Subnet option as received (RFC 7871 §6)."""

    family: int  # 1 = IPv4, 2 = IPv6
    source: int  # source prefix length
    address: bytes  # the first ceil(source / 8) octets, as sent


class Edns(NamedTuple):
    udp_size: int
    version: int
    do: bool
    nsid: bool
    ecs: ClientSubnet | None
    cookie: bytes | None = None  # the COOKIE option's data (RFC 7873), when sent
    other: bool = False  # options that change nothing in the reply (padding, unknown ones)


class Query(NamedTuple):
    id: int
    flags: int
    qname: bytes  # as received, the client's letter case
    key: bytes  # canonical (lowercase) qname
    qtype: int
    qclass: int
    edns: Edns | None

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def question(self) -> bytes:
        return self.qname + _TYPE_CLASS.pack(self.qtype, self.qclass)


def scan(wire: bytes) -> Query:
    """Parse a query of at least 12 octets; raise FormErr when it is malformed."""
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        return _complete_parse(wire)
    end = len(wire)
    i = 12
    while True:
        if i >= end:
            raise FormErr("truncated question")
        n = wire[i]
        if n == 0:
            break
        if n > 63:  # a compression pointer or a reserved label type: take the slow road
            return _complete_parse(wire)
        i += n + 1
    i += 1
    if i - 12 > 255:
        raise FormErr("name longer than 255 octets")
    if i + 4 > end:
        raise FormErr("truncated question")
    qname = wire[12:i]
    qtype, qclass = _TYPE_CLASS.unpack_from(wire, i)
    i += 4
    edns = None
    if arcount:
        question = wire[12:i]
        # An OPT record: root owner (one zero octet) then type 41.
        if i + 11 > end or wire[i] != 0 or wire[i + 1] != 0 or wire[i + 2] != OPT:
            return _complete_parse(wire)
        udp_size, _ext, version, zflags, rdlength = _OPT_FIXED.unpack_from(wire, i + 3)
        i += 11
        if i + rdlength != end:
            raise FormErr("OPT record length does not match the message", question, True)
        edns = _edns(udp_size, version, zflags, wire[i:end], question)
    elif i != end:
        raise FormErr("trailing data after the question", wire[12:i])
    return Query(qid, flags, qname, qname.lower(), qtype, qclass, edns)


def _edns(udp_size: int, version: int, zflags: int, options: bytes, question: bytes) -> Edns:
    try:
        return _options(udp_size, version, zflags, options, question)
    except FormErr as e:
        raise FormErr(e.reason, e.question, edns=True) from None


def _options(udp_size: int, version: int, zflags: int, options: bytes, question: bytes) -> Edns:
    nsid = False
    ecs = None
    cookie = None
    other = False
    i = 0
    end = len(options)
    while i < end:
        if i + 4 > end:
            raise FormErr("truncated EDNS option", question)
        code, length = _OPTION.unpack_from(options, i)
        i += 4
        if i + length > end:
            raise FormErr("truncated EDNS option", question)
        if code == EDNS_NSID:
            nsid = True
        elif code == EDNS_CLIENT_SUBNET:
            if ecs is not None:
                raise FormErr("more than one client subnet option", question)
            ecs = _client_subnet(options[i : i + length], question)
        elif code == cookies.COOKIE:
            if cookie is not None:
                raise FormErr("more than one COOKIE option", question)
            cookie = options[i : i + length]
            try:
                cookies.split(cookie)
            except cookies.BadCookie as e:
                raise FormErr(str(e), question) from None
        else:
            other = True
        i += length
    return Edns(udp_size, version, bool(zflags & 0x8000), nsid, ecs, cookie, other)


def _client_subnet(data: bytes, question: bytes) -> ClientSubnet:
    """Validate an ECS option as RFC 7871 §7.1.1 requires, else FORMERR."""
    if len(data) < 4:
        raise FormErr("client subnet option too short", question)
    family, source, _scope = struct.unpack_from("!HBB", data)
    address = data[4:]
    if family == 1:
        max_bits = 32
    elif family == 2:
        max_bits = 128
    else:
        raise FormErr(f"client subnet family {family} unknown", question)
    if source > max_bits:
        raise FormErr(f"client subnet prefix /{source} too long for its family", question)
    if len(address) != (source + 7) // 8:
        raise FormErr("client subnet address length does not match its prefix", question)
    if source % 8 and address[-1] & (0xFF >> (source % 8)):
        raise FormErr("client subnet address has bits set beyond its prefix", question)
    return ClientSubnet(family, source, address)


def carries_opt(wire: bytes) -> bool:
    """Whether a message (any opcode, any shape) carries an OPT record, if it can be read."""
    try:
        return any(rr.rtype == OPT for rr in dnslib.DNSRecord.parse(wire).ar)
    except Exception:
        return False


def _complete_parse(wire: bytes) -> Query:
    """Unusual but possibly valid messages: let dnslib read the whole of it."""
    try:
        record = dnslib.DNSRecord.parse(wire)
    except Exception as e:  # dnslib raises DNSError, struct.error, IndexError...
        raise FormErr(f"malformed message: {e}") from None
    header = record.header
    if len(record.questions) != 1:
        has_opt = any(rr.rtype == OPT for rr in record.ar)
        raise FormErr(f"{len(record.questions)} questions (exactly one is allowed)", b"", has_opt)
    q = record.questions[0]
    if any(not 0 < len(label) <= 63 for label in q.qname.label):
        raise FormErr("bad label in the question name")
    qname = b"".join(bytes([len(label)]) + label for label in q.qname.label) + b"\x00"
    if len(qname) > 255:
        raise FormErr("name longer than 255 octets")
    question = qname + _TYPE_CLASS.pack(q.qtype, q.qclass)
    opts = [rr for rr in record.ar if rr.rtype == OPT]
    edns = None
    if len(opts) > 1:
        raise FormErr("more than one OPT record", question, True)
    if opts:
        opt = opts[0]
        if opt.rname.label:
            raise FormErr("OPT record owner is not the root", question, True)
        options = b"".join(_OPTION.pack(o.code, len(o.data)) + o.data for o in opt.rdata)
        version = (opt.ttl >> 16) & 0xFF
        edns = _edns(opt.rclass, version, opt.ttl & 0xFFFF, options, question)
    flags = struct.unpack_from("!H", wire, 2)[0]
    return Query(header.id, flags, qname, qname.lower(), q.qtype, q.qclass, edns)
