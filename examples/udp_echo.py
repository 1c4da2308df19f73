"""The asyncio documentation's "UDP Echo Server" and "UDP Echo Client", on
uvffi, in one program: the server listens on 127.0.0.1, the client sends
one message (the first argument, default "Hello World!"), prints the echo,
closes; then the server closes too and the program ends.  (Both protocols
subclass DatagramProtocol so that closing the server has a connection_lost
to call.)"""
import asyncio
import sys

import uvffi


class EchoServerProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message = data.decode()
        print('Received %r from %s' % (message, addr))
        print('Send %r to %s' % (message, addr))
        self.transport.sendto(data, addr)


class EchoClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        print('Send:', self.message)
        self.transport.sendto(self.message.encode())

    def datagram_received(self, data, addr):
        print("Received:", data.decode())

        print("Close the socket")
        self.transport.close()

    def error_received(self, exc):
        print('Error received:', exc)

    def connection_lost(self, exc):
        print("Connection closed")
        self.on_con_lost.set_result(True)


async def main(message):
    loop = asyncio.get_running_loop()

    print("Starting UDP server")
    # One protocol instance will be created to serve all client requests.
    server_transport, _ = await loop.create_datagram_endpoint(
        EchoServerProtocol, local_addr=('127.0.0.1', 0))
    address = server_transport.get_extra_info('sockname')

    on_con_lost = loop.create_future()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(message, on_con_lost),
        remote_addr=address)

    try:
        # The docs' server serves for an hour; here it serves one client,
        # whose protocol closes its transport once the echo is back.
        await asyncio.wait_for(on_con_lost, 10)
    finally:
        transport.close()
        server_transport.close()


if __name__ == "__main__":
    uvffi.run(main(sys.argv[1] if len(sys.argv) > 1 else "Hello World!"))
