"""An echo server on uvffi: a plain asyncio Protocol, optionally over TLS
or a Unix socket.

    python examples/echo_server.py --port 8888            # until Ctrl-C
    python examples/echo_server.py --unix /tmp/echo.sock --duration 10
"""
import argparse
import asyncio
import ssl

import uvffi


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close our side too


async def serve(args):
    loop = asyncio.get_running_loop()
    context = None
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile, args.keyfile)
    if args.unix:
        server = await loop.create_unix_server(EchoProtocol, args.unix,
                                               ssl=context)
    else:
        server = await loop.create_server(EchoProtocol, args.host, args.port,
                                          ssl=context)
    names = ", ".join(str(s.getsockname()) for s in server.sockets)
    print(f"echo server listening on {names}", flush=True)
    async with server:
        if args.duration:
            await asyncio.sleep(args.duration)
        else:
            await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--unix", help="listen on this Unix socket path")
    parser.add_argument("--certfile", help="PEM certificate: serve TLS")
    parser.add_argument("--keyfile")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop after this many seconds (0: never)")
    args = parser.parse_args()
    try:
        uvffi.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
