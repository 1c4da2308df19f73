"""Micro-benchmarks of the loop itself.

    python micro.py LOOP NAME   -> prints {"ops": N, "seconds": S, "cpu": C} as JSON
NAME is one of BENCHMARKS.  Each does a fixed amount of work, timed with
time.perf_counter (wall) and time.process_time (CPU of this process: the
steadier figure on a shared machine; subprocess and resolver work done
outside the process is only in the wall time)."""
import asyncio
import json
import random
import socket
import sys
import time

from loops import new_loop


def call_soon_chained(loop, n=200_000):
    left = [n]

    def step():
        left[0] -= 1
        if left[0]:
            loop.call_soon(step)
        else:
            loop.stop()
    loop.call_soon(step)
    loop.run_forever()
    return n


def call_soon_batch(loop, n=100_000, rounds=5):
    def noop():
        pass
    for _ in range(rounds):
        for _ in range(n):
            loop.call_soon(noop)
        loop.call_soon(loop.stop)
        loop.run_forever()
    return n * rounds


def timers_half_cancelled(loop, n=50_000):
    rnd = random.Random(7)
    done = [0]

    def fire():
        done[0] += 1
    handles = [loop.call_later(rnd.random() * 0.05, fire) for _ in range(n)]
    for h in handles[::2]:
        h.cancel()
    loop.run_until_complete(asyncio.sleep(0.06))
    assert done[0] == n // 2, done[0]
    return n


def sleep0_tasks(loop, tasks=1000, steps=100):
    async def worker():
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(worker() for _ in range(tasks)))
    loop.run_until_complete(main())
    return tasks * steps


def future_pingpong(loop, n=100_000):
    async def main():
        box = [None]

        async def ponger():
            for _ in range(n):
                fut = loop.create_future()
                box[0] = fut
                await fut
        t = loop.create_task(ponger())
        for _ in range(n):
            while box[0] is None or box[0].done():
                await asyncio.sleep(0)
            box[0].set_result(None)
        await t
    loop.run_until_complete(main())
    return n


def getaddrinfo(loop, n=2000, batch=50):
    async def main():
        for _ in range(n // batch):
            await asyncio.gather(*(loop.getaddrinfo("localhost", 80, type=1)
                                   for _ in range(batch)))
    loop.run_until_complete(main())
    return n


def subprocess_spawn(loop, n=100):
    async def main():
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec("/bin/true")
            await proc.wait()
    loop.run_until_complete(main())
    return n


def sleep0_chain(loop, n=100_000):
    async def chain():
        for _ in range(n):
            await asyncio.sleep(0)
    loop.run_until_complete(chain())
    return n


def sock_pingpong(loop, n=20_000):
    # sock_sendall of 1 byte / sock_recv between two tasks over a
    # socketpair: each round trip is two sends, two receives and (the
    # receiving side always being ahead) two waits for readability
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def pong():
        for _ in range(n):
            data = await loop.sock_recv(b, 1)
            await loop.sock_sendall(b, data)

    async def main():
        t = loop.create_task(pong())
        for _ in range(n):
            await loop.sock_sendall(a, b"x")
            assert await loop.sock_recv(a, 1) == b"x"
        await t
    try:
        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    return n


def udp_pingpong(loop, n=20_000):
    # a 64-byte datagram echoed by a server protocol over 127.0.0.1; the
    # client task awaits each echo (create_datagram_endpoint's transports:
    # libuv's uv_udp_t on uvffi)
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data, addr)

    class Client(asyncio.DatagramProtocol):
        waiter = None

        def datagram_received(self, data, addr):
            self.waiter.set_result(data)

    async def main():
        server, _ = await loop.create_datagram_endpoint(
            Echo, local_addr=("127.0.0.1", 0))
        client, proto = await loop.create_datagram_endpoint(
            Client, remote_addr=server.get_extra_info("sockname"))
        payload = b"x" * 64
        try:
            for _ in range(n):
                proto.waiter = loop.create_future()
                client.sendto(payload)
                assert await proto.waiter == payload
        finally:
            client.close()
            server.close()
    loop.run_until_complete(main())
    return n


def _uvffi_only(loop):
    if not hasattr(loop, "uv_loop_t"):
        raise RuntimeError("uvffi only: guest mode")
    import guest
    return guest


def sleep0_chain_guest(loop, n=100_000):
    # the same chain in guest mode, on a host's loop driven by one uv_run
    _uvffi_only(loop).chain_guest(n)
    return n


def host_iterations_no_guest(loop, n=300_000):
    # a host's uv_run(NOWAIT) with work of its own (an idle handle)
    _uvffi_only(loop).host_iterations(n, guest=False)
    return n


def host_iterations_idle_guest(loop, n=300_000):
    # the same with a uvffi guest in guest mode that waits for nothing
    _uvffi_only(loop).host_iterations(n, guest=True)
    return n


BENCHMARKS = {f.__name__: f for f in (
    call_soon_chained, call_soon_batch, timers_half_cancelled, sleep0_tasks,
    future_pingpong, sock_pingpong, udp_pingpong, getaddrinfo, subprocess_spawn, sleep0_chain,
    sleep0_chain_guest, host_iterations_no_guest, host_iterations_idle_guest)}


def main(loop_name, name):
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    try:
        # warm-up (the JIT on PyPy, lazy imports everywhere)
        if name not in ("subprocess_spawn", "getaddrinfo"):
            BENCHMARKS[name](loop)
        t0, c0 = time.perf_counter(), time.process_time()
        ops = BENCHMARKS[name](loop)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
    finally:
        loop.close()
    print(json.dumps({"ops": ops, "seconds": seconds, "cpu": cpu}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
