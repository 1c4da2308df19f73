"""Protocol callbacks of datagram endpoints, read/write pipes and
subprocesses run in the context that was current when the endpoint or
transport was created: a ContextVar set around create_datagram_endpoint,
connect_read_pipe/connect_write_pipe or subprocess_exec is what the
protocol sees, whoever triggers the callback.

asyncio's loop agrees for the callbacks it schedules from the creator's
context; where it runs a callback in the context of whatever triggered it
(connection_lost after a close() from elsewhere, pause_writing from a
write() elsewhere, process_exited from the child watcher), the test says
so and pins uvffi's behaviour only."""
import asyncio
import os
import socket
import sys
import tempfile

import pytest

from _contexts import TIMEOUT, Recorder, cvar, in_other_context, run

_run = run
_in_other_context = in_other_context


# -- datagram endpoints -----------------------------------------------------------

class DatagramRecorder(Recorder, asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def datagram_received(self, data, addr):
        self.note("datagram_received")

    def error_received(self, exc):
        self.note("error_received")

    def pause_writing(self):
        self.note("pause_writing")

    def resume_writing(self):
        self.note("resume_writing")

    def connection_lost(self, exc):
        self.note("connection_lost")


async def _udp_endpoint(loop, **kwargs):
    cvar.set("inner")
    return await loop.create_datagram_endpoint(DatagramRecorder, **kwargs)


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_udp_callbacks_in_creation_context(any_loop):
    async def main():
        transport, proto = await _udp_endpoint(any_loop, local_addr=("127.0.0.1", 0))
        addr = transport.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"data", addr)
            await proto.wait("datagram_received")
        transport.close()
        await proto.wait("connection_lost")
        return proto.seen

    seen = _run(any_loop, asyncio.ensure_future(main()))
    assert seen == {"connection_made": ["inner"], "datagram_received": ["inner"],
                    "connection_lost": ["inner"]}


def test_udp_error_received_in_creation_context(any_loop):
    if sys.platform == "win32":
        pytest.skip("ICMP errors on connected UDP sockets: Linux/BSD")

    async def main():
        transport, proto = await _udp_endpoint(
            any_loop, remote_addr=("127.0.0.1", _free_udp_port()))
        try:
            for _ in range(TIMEOUT * 20):
                transport.sendto(b"nobody listens")
                await asyncio.sleep(0.05)
                if "error_received" in proto.seen:
                    break
            await proto.wait("error_received")
        finally:
            transport.close()
        return proto.seen["error_received"]

    assert set(_run(any_loop, main())) == {"inner"}


@pytest.mark.parametrize("family", ["inet", "unix"])
def test_datagram_connection_lost_after_close_from_another_context(loop, family):
    # uvffi only: asyncio's close() schedules connection_lost in the
    # caller's context ('other' here)
    async def main():
        if family == "inet":
            transport, proto = await _udp_endpoint(loop, local_addr=("127.0.0.1", 0))
        else:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            b.close()
            transport, proto = await _udp_endpoint(loop, sock=a)
        await proto.wait("connection_made")
        loop.call_soon(_in_other_context, transport.close)
        await proto.wait("connection_lost")
        return proto.seen["connection_lost"]

    assert _run(loop, main()) == ["inner"]


def test_datagram_flow_control_in_creation_context(loop):
    # uvffi only: asyncio calls pause_writing in the context of the
    # sendto() that filled the buffer, resume_writing in its writer's
    with tempfile.TemporaryDirectory() as tmp:
        here, there = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(there)

        async def main():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(here)
            sock.connect(there)
            sock.setblocking(False)
            transport, proto = await _udp_endpoint(loop, sock=sock)
            transport.set_write_buffer_limits(high=1)
            try:
                def flood():
                    for _ in range(10000):
                        transport.sendto(b"x" * 1000)
                        if transport.get_write_buffer_size():
                            return
                loop.call_soon(_in_other_context, flood)
                await proto.wait("pause_writing")
                peer.setblocking(False)

                def drain():
                    while True:
                        peer.recv(2000)
                await proto.drain_until_resumed(drain)
            finally:
                transport.close()
            await proto.wait("connection_lost")
            return proto.seen

        try:
            seen = _run(loop, main())
        finally:
            peer.close()
    assert seen["pause_writing"] == ["inner"]
    assert seen["resume_writing"] == ["inner"]
    assert seen["connection_lost"] == ["inner"]


# -- pipes ---------------------------------------------------------------------------

class StreamRecorder(Recorder, asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def data_received(self, data):
        self.note("data_received")

    def eof_received(self):
        self.note("eof_received")

    def pause_writing(self):
        self.note("pause_writing")

    def resume_writing(self):
        self.note("resume_writing")

    def connection_lost(self, exc):
        self.note("connection_lost")


def test_read_pipe_callbacks_in_creation_context(any_loop):
    rfd, wfd = os.pipe()

    async def main():
        cvar.set("inner")
        transport, proto = await any_loop.connect_read_pipe(
            StreamRecorder, os.fdopen(rfd, "rb"))
        os.write(wfd, b"data")
        await proto.wait("data_received")
        os.close(wfd)
        await proto.wait("connection_lost")
        return proto.seen

    seen = _run(any_loop, main())
    assert seen == {"connection_made": ["inner"], "data_received": ["inner"],
                    "eof_received": ["inner"], "connection_lost": ["inner"]}


@pytest.mark.parametrize("side", ["read", "write"])
def test_pipe_connection_lost_after_close_from_another_context(loop, side):
    # uvffi only: asyncio's close() schedules connection_lost in the
    # caller's context
    rfd, wfd = os.pipe()

    async def main():
        cvar.set("inner")
        if side == "read":
            transport, proto = await loop.connect_read_pipe(
                StreamRecorder, os.fdopen(rfd, "rb"))
        else:
            transport, proto = await loop.connect_write_pipe(
                StreamRecorder, os.fdopen(wfd, "wb"))
        await proto.wait("connection_made")
        loop.call_soon(_in_other_context, transport.close)
        await proto.wait("connection_lost")
        return proto.seen["connection_lost"]

    try:
        assert _run(loop, main()) == ["inner"]
    finally:
        os.close(wfd if side == "read" else rfd)


def test_write_pipe_reader_gone_in_creation_context(any_loop):
    rfd, wfd = os.pipe()

    async def main():
        cvar.set("inner")
        transport, proto = await any_loop.connect_write_pipe(
            StreamRecorder, os.fdopen(wfd, "wb"))
        await proto.wait("connection_made")
        os.close(rfd)
        await proto.wait("connection_lost")
        return proto.seen

    seen = _run(any_loop, main())
    assert seen == {"connection_made": ["inner"], "connection_lost": ["inner"]}


def test_write_pipe_flow_control_in_creation_context(loop):
    # uvffi only: asyncio calls pause_writing in the context of the write()
    # that filled the buffer, and resume_writing in its writer callback's
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)

    async def main():
        cvar.set("inner")
        transport, proto = await loop.connect_write_pipe(
            StreamRecorder, os.fdopen(wfd, "wb"))
        transport.set_write_buffer_limits(high=1)
        try:
            def flood():
                for _ in range(1000):
                    transport.write(b"x" * 65536)
                    if transport.get_write_buffer_size():
                        return
            loop.call_soon(_in_other_context, flood)
            await proto.wait("pause_writing")
            def drain():
                while os.read(rfd, 1 << 20):
                    pass
            await proto.drain_until_resumed(drain)
        finally:
            transport.close()
        await proto.wait("connection_lost")
        return proto.seen

    try:
        seen = _run(loop, main())
    finally:
        os.close(rfd)
    assert seen["pause_writing"] == ["inner"]
    assert seen["resume_writing"] == ["inner"]
    assert seen["connection_lost"] == ["inner"]


# -- subprocesses ---------------------------------------------------------------------

class SubprocessRecorder(Recorder, asyncio.SubprocessProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def pipe_data_received(self, fd, data):
        self.note("pipe_data_received")

    def pipe_connection_lost(self, fd, exc):
        self.note("pipe_connection_lost")

    def process_exited(self):
        self.note("process_exited")

    def connection_lost(self, exc):
        self.note("connection_lost")


CAT = [sys.executable, "-c",
       "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"]


def _subprocess_seen(loop, close_from_other=False):
    async def main():
        cvar.set("inner")
        transport, proto = await loop.subprocess_exec(SubprocessRecorder, *CAT)
        try:
            await proto.wait("connection_made")
            stdin = transport.get_pipe_transport(0)
            stdin.write(b"data")
            stdin.write_eof()
            await proto.wait("pipe_data_received")
            await proto.wait("process_exited")
            if close_from_other:
                loop.call_soon(_in_other_context, transport.close)
            await proto.wait("connection_lost")
        finally:
            transport.close()
        return proto.seen
    return _run(loop, main())


def test_subprocess_pipe_callbacks_in_creation_context(any_loop, spawn_path):
    seen = _subprocess_seen(any_loop)
    for name in ("connection_made", "pipe_data_received", "pipe_connection_lost"):
        assert set(seen[name]) == {"inner"}, name
    assert len(seen["pipe_connection_lost"]) == 3  # stdin, stdout, stderr


def test_subprocess_exit_callbacks_in_creation_context(loop, spawn_path):
    # uvffi only: asyncio calls process_exited and connection_lost from
    # its child watcher's callback, in the loop's own context
    seen = _subprocess_seen(loop)
    assert seen["process_exited"] == ["inner"]
    assert seen["connection_lost"] == ["inner"]
    assert set(seen["connection_made"]) == {"inner"}


def test_subprocess_callbacks_in_creation_context_after_close_elsewhere(loop):
    # uvffi only (as above)
    seen = _subprocess_seen(loop, close_from_other=True)
    assert all(values == ["inner"] or set(values) == {"inner"}
               for values in seen.values()), seen
