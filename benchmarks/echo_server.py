"""Echo servers for the ping-pong benchmarks, one per asyncio API.

    python echo_server.py LOOP KIND ADDRESS
LOOP: asyncio | uvloop | uvffi;  KIND: protocol | buffered | streams | sock;
ADDRESS: tcp:PORT or unix:PATH.  Prints READY once listening."""
import asyncio
import os
import socket
import sys

from loops import new_loop


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray(256 * 1024)
        self.view = memoryview(self.buffer)

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        self.transport.write(self.view[:nbytes])


async def echo_stream(reader, writer):
    while True:
        data = await reader.read(256 * 1024)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def echo_sock(loop, client):
    with client:
        while True:
            data = await loop.sock_recv(client, 256 * 1024)
            if not data:
                break
            await loop.sock_sendall(client, data)


async def sock_server(loop, sock):
    sock.setblocking(False)
    while True:
        client, _ = await loop.sock_accept(sock)
        if client.family != socket.AF_UNIX:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setblocking(False)
        loop.create_task(echo_sock(loop, client))


def make_socket(address):
    if address.startswith("unix:"):
        path = address[5:]
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(address[4:])))
    sock.listen(1024)
    return sock


def main(loop_name, kind, address):
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    sock = make_socket(address)
    if kind == "protocol":
        loop.run_until_complete(loop.create_server(EchoProtocol, sock=sock))
    elif kind == "buffered":
        loop.run_until_complete(loop.create_server(EchoBufferedProtocol, sock=sock))
    elif kind == "streams":
        loop.run_until_complete(asyncio.start_server(echo_stream, sock=sock, limit=256 * 1024))
    elif kind == "sock":
        loop.create_task(sock_server(loop, sock))
    else:
        raise SystemExit("unknown kind %r" % kind)
    print("READY", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(*sys.argv[1:4])
