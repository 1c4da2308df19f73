"""An echo client with asyncio streams on uvffi.

Without --port it starts its own echo server (examples/echo_server.py's
protocol) on a free port in the same loop, so it runs standalone and exits:

    python examples/echo_client.py                 # self-contained demo
    python examples/echo_client.py --port 8888 --count 1000
"""
import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvffi  # noqa: E402
from echo_server import EchoProtocol  # noqa: E402


async def client(args):
    loop = asyncio.get_running_loop()
    server = None
    port = args.port
    if port is None:
        server = await loop.create_server(EchoProtocol, args.host, 0)
        port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(args.host, port)
    message = b"x" * args.size
    start = time.perf_counter()
    for _ in range(args.count):
        writer.write(message)
        await reader.readexactly(len(message))
    elapsed = time.perf_counter() - start
    writer.close()
    await writer.wait_closed()
    if server is not None:
        server.close()
        await server.wait_closed()
    print(f"{args.count} round trips of {args.size} bytes to port {port} "
          f"in {elapsed:.3f}s ({args.count / elapsed:.0f}/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--size", type=int, default=1024)
    uvffi.run(client(parser.parse_args()))


if __name__ == "__main__":
    main()
