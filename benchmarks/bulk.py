"""Bulk-transfer benchmarks: big writes, big reads, sendfile, communicate().

    python bulk.py LOOP NAME   -> prints {"bytes": N, "seconds": S, "cpu": C} as JSON

NAME is one of BENCHMARKS.  Both ends live in the one process (and loop),
except for the subprocess rows, whose other end is ``cat``.  Each benchmark
moves a fixed number of bytes a few times over and checks that every byte
arrived; the figure is bytes per second of wall time (CPU time kept too).
"""
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import time

from loops import new_loop

MB = 1024 * 1024
_SENDFILE_PATH = os.path.join(tempfile.gettempdir(), "uvffi-bench-64MB.bin")


class _Sink(asyncio.Protocol):
    """Counts what arrives; resolves ``done`` once ``expected`` bytes have."""

    def __init__(self, loop, expected):
        self.got = 0
        self.expected = expected
        self.done = loop.create_future()

    def data_received(self, data):
        self.got += len(data)
        if self.got >= self.expected and not self.done.done():
            self.done.set_result(self.got)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.got)


async def _server_pair(loop, transport, expected):
    """A connected (writer stream, sink protocol) over TCP or Unix."""
    sink = _Sink(loop, expected)
    tmp = None
    if transport == "tcp":
        server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "s")
        server = await loop.create_unix_server(lambda: sink, path)
        reader, writer = await asyncio.open_unix_connection(path)
    return server, writer, sink, tmp


def _write_drain(transport, size, rounds):
    def bench(loop):
        async def main():
            data = b"x" * size
            server, writer, sink, tmp = await _server_pair(loop, transport, size * rounds)
            for _ in range(rounds):
                writer.write(data)
                await writer.drain()
            got = await asyncio.wait_for(sink.done, 60)
            writer.close()
            server.close()
            if tmp:
                # (3.13's unix servers remove their socket file on close)
                shutil.rmtree(tmp, ignore_errors=True)
            assert got == size * rounds, (got, size * rounds)
            return got
        return loop.run_until_complete(main())
    return bench


def _pipe_write_drain(size, rounds):
    def bench(loop):
        async def main():
            data = b"x" * size
            total = 0
            for _ in range(rounds):
                # wc -c counts what arrived: the figure is checked, not trusted
                proc = await asyncio.create_subprocess_exec(
                    "wc", "-c", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE)
                proc.stdin.write(data)
                await proc.stdin.drain()
                proc.stdin.close()
                out = await proc.stdout.read()
                await proc.wait()
                assert int(out) == size, (out, size)
                total += size
            return total
        return loop.run_until_complete(main())
    return bench


def _stream_reads(how, size=MB, rounds=64):
    def bench(loop):
        async def main():
            block = b"y" * (size - 1) + b"\n"

            async def serve(reader, writer):
                for _ in range(rounds):
                    writer.write(block)
                    await writer.drain()
                writer.close()
            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           limit=4 * size)
            got = 0
            for _ in range(rounds):
                if how == "readexactly":
                    got += len(await reader.readexactly(size))
                else:
                    got += len(await reader.readuntil(b"\n"))
            writer.close()
            server.close()
            assert got == size * rounds
            return got
        return loop.run_until_complete(main())
    return bench


def _sendfile_file(size=64 * MB):
    if not os.path.exists(_SENDFILE_PATH) or os.path.getsize(_SENDFILE_PATH) != size:
        with open(_SENDFILE_PATH + ".tmp", "wb") as f:
            f.write(os.urandom(MB) * (size // MB))
        os.replace(_SENDFILE_PATH + ".tmp", _SENDFILE_PATH)
    return _SENDFILE_PATH


def _sendfile(kind, rounds=2):
    def bench(loop):
        path = _sendfile_file()
        size = os.path.getsize(path)

        async def main():
            total = 0
            for _ in range(rounds):
                sink = _Sink(loop, size)
                server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
                port = server.sockets[0].getsockname()[1]
                with open(path, "rb") as f:
                    if kind == "loop":
                        transport, _ = await loop.create_connection(
                            asyncio.Protocol, "127.0.0.1", port)
                        await loop.sendfile(transport, f)
                        transport.close()
                    else:
                        sock = socket.socket()
                        sock.setblocking(False)
                        await loop.sock_connect(sock, ("127.0.0.1", port))
                        await loop.sock_sendfile(sock, f)
                        sock.close()
                got = await asyncio.wait_for(sink.done, 60)
                server.close()
                assert got == size, (got, size)
                total += got
            return total
        return loop.run_until_complete(main())
    return bench


def _communicate(size=5 * MB, rounds=4):
    def bench(loop):
        async def main():
            data = b"z" * size
            total = 0
            for _ in range(rounds):
                proc = await asyncio.create_subprocess_exec(
                    "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
                out, _ = await proc.communicate(data)
                assert len(out) == size, len(out)
                total += 2 * size  # in and out
            return total
        return loop.run_until_complete(main())
    return bench


BENCHMARKS = {
    "write_drain_tcp_5MB": _write_drain("tcp", 5 * MB, 8),
    "write_drain_tcp_64MB": _write_drain("tcp", 64 * MB, 2),
    "write_drain_unix_5MB": _write_drain("unix", 5 * MB, 8),
    "write_drain_unix_64MB": _write_drain("unix", 64 * MB, 2),
    "write_drain_pipe_5MB": _pipe_write_drain(5 * MB, 8),
    "write_drain_pipe_64MB": _pipe_write_drain(64 * MB, 2),
    "streams_readexactly_1MB": _stream_reads("readexactly"),
    "streams_readuntil_1MB": _stream_reads("readuntil"),
    "loop_sendfile_64MB": _sendfile("loop"),
    "sock_sendfile_64MB": _sendfile("sock"),
    "communicate_5MB": _communicate(),
}


def main(loop_name, name):
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    try:
        BENCHMARKS[name](loop)  # warm-up: the JIT on PyPy, lazy imports
        t0, c0 = time.perf_counter(), time.process_time()
        nbytes = BENCHMARKS[name](loop)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
    finally:
        loop.close()
    print(json.dumps({"bytes": nbytes, "seconds": seconds, "cpu": cpu}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
