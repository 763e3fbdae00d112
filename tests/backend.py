"""A stand-in member for health-check tests: `python -m tests.backend ADDRESS PORT [STATUS]`.

Answers any HTTP request with STATUS (default 200) and accepts plain TCP connections; a test
stops a member by stopping this process.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def main(address: str, port: int, status: int) -> None:
    body = f"member {address}\n".encode()
    reply = (
        f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(reply)
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, address, port, reuse_address=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 200))
