"""The asyncio shell: transports, processes, Redis, HTTP. It feeds the pure core and sends."""
