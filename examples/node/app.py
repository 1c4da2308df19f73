"""The Python half of examples/node/demo.js: asyncio code that runs inside
Node.js, on Node's own libuv loop (uvffi guest mode), in Node's main thread.

``main`` runs a TCP echo server and a client on 127.0.0.1 and does
``rounds`` round trips while Node's JavaScript timers keep ticking;
``add_slowly`` and ``echo`` are what JavaScript calls (py.call) and awaits as
Promises.
"""
import asyncio
import atexit
import time

_server_address = None   # a future: (host, port) once the server listens

# runs when the addon finalizes Python (Py_FinalizeEx), whichever way Node ends
atexit.register(print, "python: interpreter finalizing", flush=True)


async def _handle_echo(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
            await writer.drain()
    except asyncio.CancelledError:
        # The ending of the program cancels a connection still open.  Its
        # task ends here rather than as "cancelled": asyncio 3.11 and 3.12.0
        # log a spurious traceback for a cancelled client_connected_cb task
        # (their callback calls task.exception(); fixed in 3.13).
        pass
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(rounds=10, interval=0.05):
    global _server_address
    loop = asyncio.get_running_loop()
    _server_address = loop.create_future()
    print("python: main started on %s" % type(loop).__module__, flush=True)
    server = await asyncio.start_server(_handle_echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    _server_address.set_result((host, port))
    print("python: echo server on %s:%d" % (host, port), flush=True)
    reader, writer = await asyncio.open_connection(host, port)
    total = 0.0
    try:
        for i in range(1, rounds + 1):
            start = time.perf_counter()
            writer.write(b"ping %d\n" % i)
            line = await reader.readline()
            elapsed = time.perf_counter() - start
            total += elapsed
            print("python: echo %d %r (%.2f ms)"
                  % (i, line.decode().strip(), elapsed * 1000), flush=True)
            await asyncio.sleep(interval)
    except asyncio.CancelledError:
        print("python: main cancelled; closing the client and the server",
              flush=True)
        raise
    finally:
        writer.close()
        server.close()
        await writer.wait_closed()
        await server.wait_closed()
    print("python: main done", flush=True)
    return {"rounds": rounds, "mean_ms": round(total / rounds * 1000, 3)}


async def add_slowly(a, b, delay=0.1):
    """What demo.js awaits as a Promise."""
    await asyncio.sleep(delay)
    return a + b


async def echo(text):
    """A round trip through main's echo server, on a connection of its own."""
    host, port = await _server_address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(text.encode() + b"\n")
        return (await reader.readline()).decode().rstrip("\n")
    finally:
        writer.close()
        await writer.wait_closed()
