"""Debian's unbound as the real resolver of the tests: its configuration, one stub zone."""

from __future__ import annotations

SERVER = """\
server:
  interface: {address}
  port: 53
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{directory}"
  pidfile: "{directory}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
"""


def unbound_config(
    address: str, directory: object, zone: str, stub: str, anchor: str | None = None
) -> str:
    """unbound on `address`:53, sending queries for `zone` to `stub`; validating, with
    `anchor` (a DNSKEY or DS record) as its trust anchor, when one is given."""
    text = SERVER.format(address=address, directory=directory)
    if anchor is None:
        text += '  module-config: "iterator"\n'
    else:
        text += f'  module-config: "validator iterator"\n  val-log-level: 2\n  trust-anchor: "{anchor}"\n'
    return text + f'\nstub-zone:\n  name: "{zone}"\n  stub-addr: {stub}\n'
