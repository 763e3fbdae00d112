"""A stand-in member for health-check tests:
`python -m tests.backend ADDRESS PORT [STATUS [IDLE]]`.

Answers any HTTP request with STATUS (default 200) and accepts plain TCP connections, which it
closes after IDLE seconds without a request (default 5, as a server's header timeout would);
a test stops a member by stopping this process.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def main(address: str, port: int, status: int, idle: float) -> None:
    body = f"member {address}\n".encode()
    reply = (
        f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle)
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
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0],
            int(args[1]),
            int(args[2]) if len(args) > 2 else 200,
            float(args[3]) if len(args) > 3 else 5.0,
        )
    )
