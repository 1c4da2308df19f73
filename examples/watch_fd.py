"""Watch a file descriptor for read events (the asyncio documentation's
example, on uvffi): wait until a socket receives data with add_reader."""
import asyncio
import socket

import uvffi


async def wait_for_data():
    loop = asyncio.get_running_loop()
    rsock, wsock = socket.socketpair()
    fut = loop.create_future()

    def reader():
        data = rsock.recv(100)
        print("Received:", data.decode())
        fut.set_result(None)
        # unregister: the fd must not be watched once it is closed
        loop.remove_reader(rsock)

    loop.add_reader(rsock, reader)
    # Simulate the reception of data from the network
    loop.call_soon(wsock.send, "abc".encode())
    try:
        await fut
    finally:
        rsock.close()
        wsock.close()


if __name__ == "__main__":
    uvffi.run(wait_for_data())
