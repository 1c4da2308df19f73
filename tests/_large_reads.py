"""What the large-read tests share (test_large_reads.py for a plain
Protocol, test_direct_reads.py for a BufferedProtocol): a connected server
transport, a first read that is large, and waiting without a timed test.
The protocols given here have a ``transport`` attribute, set in
connection_made, and ``got``/``lost``/``hook`` as both files' Collector."""
import asyncio
import socket

BIG = 1024 * 1024


def payload(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(256)) * (n // 256) + b"x" * (n % 256)


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def connected(loop, protocol, family=socket.AF_INET, path=None):
    """A server transport with *protocol* and the client socket."""
    accepted = loop.create_future()

    def factory():
        accepted.set_result(None)
        return protocol

    if family == socket.AF_UNIX:
        server = await loop.create_unix_server(factory, path)
        client = socket.socket(socket.AF_UNIX)
        address = path
    else:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        client = socket.socket()
        address = ("127.0.0.1", server.sockets[0].getsockname()[1])
    client.setblocking(False)
    await loop.sock_connect(client, address)
    await accepted
    while protocol.transport is None:
        await asyncio.sleep(0)
    return server, client


async def send_large_first(loop, protocol, client, data):
    """Send *data* with the server paused for a moment, so that its first
    read is a large one (on uvffi, the switch to reading large)."""
    protocol.transport.pause_reading()
    sending = loop.create_task(loop.sock_sendall(client, data))
    await asyncio.sleep(0.05)
    protocol.transport.resume_reading()
    await sending


async def wait_for(predicate, timeout=10):
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def deliver_all(loop, proto, data, hook=None):
    """Send *data* to *proto* (the first read large), wait until all of it
    arrived, then close the client and wait for connection_lost."""
    server, client = await connected(loop, proto)
    proto.hook = hook
    await send_large_first(loop, proto, client, data)
    await wait_for(lambda: len(proto.got) == len(data))
    client.close()
    await proto.lost
    server.close()
    await server.wait_closed()


def recorded_errors(loop):
    """The contexts the loop's exception handler gets, from now on."""
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    return seen


async def order_behind_a_queued_callback(loop, proto, mode, then="data"):
    """Data (or, *then* "eof", the client's EOF) waits in the socket of a
    paused server; then, in one step, a callback is queued and reading
    resumed.  On asyncio's loop the next poll's read callback is queued
    behind that callback, so the protocol hears of the data after it;
    returns what happened, in order ('callback', 'read' for each call of
    proto's hook, 'eof').  *mode*: the read mode a uvffi stream is put in
    for that read (a self read, say: the mode a stream is in after a large
    read)."""
    server, client = await connected(loop, proto)
    await send_large_first(loop, proto, client, payload(BIG))
    await wait_for(lambda: len(proto.got) == BIG)
    proto.transport.pause_reading()
    more = payload(64 * 1024, seed=1) if then == "data" else b""
    if more:
        await loop.sock_sendall(client, more)
    else:
        client.shutdown(socket.SHUT_WR)
    await asyncio.sleep(0.05)  # (loopback: it is in the server's socket now)
    stream = getattr(proto.transport, "_stream", None)
    if stream is not None:
        stream.set_read_mode(mode)
    order = []
    errors = []  # a failed hold would still deliver later: catch it here
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    proto.hook = lambda *_: order.append("read")
    eof_received = proto.eof_received
    proto.eof_received = lambda: (order.append("eof"), eof_received())[1]
    loop.call_soon(order.append, "callback")
    proto.transport.resume_reading()
    if more:
        await wait_for(lambda: len(proto.got) == BIG + len(more))
    client.close()
    await proto.lost
    server.close()
    await server.wait_closed()
    loop.set_exception_handler(None)
    assert not errors, errors
    return order
