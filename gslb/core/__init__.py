"""The pure core: DNS messages, zones, snapshots and policies as functions over frozen data.

Nothing in this package imports asyncio, sockets, Redis or aiohttp; the shell (gslb.shell)
feeds it bytes and snapshots and sends what it returns.
"""
