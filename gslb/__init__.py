"""gslb: a global server load balancing authoritative DNS server."""

__version__ = "0.1.0"
