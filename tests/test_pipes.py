"""connect_read_pipe / connect_write_pipe: asyncio's pipe transport
semantics on uvffi, checked side by side with the selector loop (any_loop)."""
import asyncio
import errno
import os
import socket
import sys
import tempfile

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="POSIX pipes, FIFOs and ptys")


class Recorder(asyncio.Protocol):
    """Records every protocol call; `lost` resolves at connection_lost."""

    def __init__(self, loop, eof_result=None):
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.eof_result = eof_result
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        self.data += data
        if not self.events or self.events[-1] != "data":
            self.events.append("data")

    def eof_received(self):
        self.events.append("eof")
        return self.eof_result

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


def _run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def _fd_is_open(fd):
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


async def _read_all(loop, fd):
    """Read *fd* (blocking) in a thread until EOF."""
    def reader():
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    return await loop.run_in_executor(None, reader)


# -- read pipes ----------------------------------------------------------------

def test_read_pipe_delivers_data_then_eof_then_connection_lost(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    pipe = open(rfd, "rb", buffering=0)

    async def main():
        proto = Recorder(loop)
        tr, p = await loop.connect_read_pipe(lambda: proto, pipe)
        assert p is proto and proto.transport is tr
        assert tr.get_extra_info("pipe") is pipe
        os.write(wfd, b"hello ")
        os.write(wfd, b"world")
        os.close(wfd)
        exc = await proto.lost
        return proto, exc

    proto, exc = _run(loop, main())
    assert exc is None
    assert bytes(proto.data) == b"hello world"
    assert proto.events == ["made", "data", "eof", "lost"]
    assert pipe.closed  # the transport owns the pipe object


def test_read_pipe_eof_received_true_still_closes(any_loop):
    # unlike sockets, a pipe at EOF is closed whatever eof_received says
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop, eof_result=True)
        await loop.connect_read_pipe(lambda: proto, open(rfd, "rb", buffering=0))
        os.close(wfd)
        return proto, await proto.lost

    proto, exc = _run(loop, main())
    assert exc is None
    assert proto.events == ["made", "eof", "lost"]


def test_read_pipe_pause_and_resume_reading(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    # asyncio's read pipe transport has is_reading() since 3.11 (3.10's
    # raises ReadTransport's NotImplementedError)
    has_is_reading = sys.version_info >= (3, 11) or loop.kind == "uvffi"

    def is_reading(tr):
        return tr.is_reading() if has_is_reading else not tr._paused

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_read_pipe(lambda: proto, open(rfd, "rb", buffering=0))
        assert is_reading(tr)
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        assert not is_reading(tr)
        os.write(wfd, b"while paused")
        for _ in range(10):
            await asyncio.sleep(0.01)
        paused_data = bytes(proto.data)
        tr.resume_reading()
        assert is_reading(tr)
        while not proto.data:
            await asyncio.sleep(0.01)
        tr.close()
        assert tr.is_closing()
        if has_is_reading:
            assert not tr.is_reading()
        exc = await proto.lost
        os.close(wfd)
        return paused_data, bytes(proto.data), exc

    paused_data, data, exc = _run(loop, main())
    assert paused_data == b""
    assert data == b"while paused"
    assert exc is None


def test_read_pipe_close_calls_connection_lost_none_and_closes_fd(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    pipe = open(rfd, "rb", buffering=0)

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_read_pipe(lambda: proto, pipe)
        tr.close()
        tr.close()
        return await proto.lost

    assert _run(loop, main()) is None
    assert pipe.closed
    assert not _fd_is_open(rfd)
    # the writer now sees the reader gone
    with pytest.raises(BrokenPipeError):
        os.write(wfd, b"x")
    os.close(wfd)


def test_read_pipe_data_received_error_goes_to_handler_and_pipe_stays_open(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    class Failing(Recorder):
        def data_received(self, data):
            super().data_received(data)
            if data == b"boom":
                raise ZeroDivisionError("in data_received")

    async def main():
        proto = Failing(loop)
        await loop.connect_read_pipe(lambda: proto, open(rfd, "rb", buffering=0))
        os.write(wfd, b"boom")
        while not errors:
            await asyncio.sleep(0.01)
        os.write(wfd, b"more")
        os.close(wfd)
        return proto, await proto.lost

    proto, exc = _run(loop, main())
    assert exc is None
    assert bytes(proto.data) == b"boommore"
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_connect_read_pipe_rejects_regular_file(any_loop):
    loop = any_loop
    with tempfile.TemporaryFile() as f:
        with pytest.raises(ValueError, match=r"^Pipe transport is for pipes/sockets only\.$"):
            _run(loop, loop.connect_read_pipe(asyncio.Protocol, f))
        assert not f.closed  # not taken on failure


def test_read_pipe_on_socket(any_loop):
    loop = any_loop
    a, b = socket.socketpair()

    async def main():
        proto = Recorder(loop)
        await loop.connect_read_pipe(lambda: proto, a)
        b.sendall(b"over a socket")
        b.close()
        return proto, await proto.lost

    proto, exc = _run(loop, main())
    assert exc is None
    assert bytes(proto.data) == b"over a socket"
    assert proto.events == ["made", "data", "eof", "lost"]
    assert a.fileno() == -1  # socket object closed by the transport


def test_read_pipe_on_fifo(any_loop, tmp_path):
    loop = any_loop
    path = str(tmp_path / "fifo")
    os.mkfifo(path)
    rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open(path, os.O_WRONLY)

    async def main():
        proto = Recorder(loop)
        await loop.connect_read_pipe(lambda: proto, open(rfd, "rb", buffering=0))
        os.write(wfd, b"fifo data")
        os.close(wfd)
        return proto, await proto.lost

    proto, exc = _run(loop, main())
    assert exc is None
    assert bytes(proto.data) == b"fifo data"


def test_read_pipe_on_pty_master_reports_eio_when_slave_closes(any_loop):
    loop = any_loop
    master, slave = os.openpty()

    async def main():
        proto = Recorder(loop)
        await loop.connect_read_pipe(lambda: proto, open(master, "rb", buffering=0))
        os.write(slave, b"tty line\n")
        while b"tty line" not in proto.data:
            await asyncio.sleep(0.01)
        os.close(slave)
        return proto, await proto.lost

    proto, exc = _run(loop, main())
    assert b"tty line" in proto.data
    # Linux reports the hung-up slave as EIO; asyncio passes it on
    assert isinstance(exc, OSError) and exc.errno == errno.EIO


def test_read_pipe_on_unpollable_device_reports_error_without_crashing(any_loop):
    # epoll refuses /dev/null: asyncio's add_reader fails in a callback;
    # libuv would abort the process, so uvffi must refuse to poll it.
    if not sys.platform.startswith("linux"):
        pytest.skip("epoll behaviour")
    loop = any_loop
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    devnull = open(os.devnull, "rb", buffering=0)

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_read_pipe(lambda: proto, devnull)
        for _ in range(5):
            await asyncio.sleep(0.01)
        tr.close()
        await proto.lost
        return proto

    proto = _run(loop, main())
    assert [type(ctx["exception"]) for ctx in errors] == [PermissionError]
    assert proto.events == ["made", "lost"]


# -- write pipes ---------------------------------------------------------------

def test_write_pipe_write_writelines_and_close(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    pipe = open(wfd, "wb", buffering=0)

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, pipe)
        assert tr.get_extra_info("pipe") is pipe
        assert tr.can_write_eof()
        reading = asyncio.ensure_future(_read_all(loop, rfd))
        tr.write(b"abc")
        tr.write(bytearray(b"def"))
        tr.write(memoryview(b"ghi"))
        tr.write(b"")
        tr.writelines([b"j", b"k", bytearray(b"l")])
        tr.close()
        assert tr.is_closing()
        tr.write(b"dropped after close")  # silently ignored, as asyncio
        exc = await proto.lost
        return exc, await reading

    exc, data = _run(loop, main())
    os.close(rfd)
    assert exc is None
    assert data == b"abcdefghijkl"
    assert pipe.closed


def test_write_pipe_write_eof_closes_pipe_after_flushing(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    payload = os.urandom(1024 * 1024)  # far more than the pipe holds

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        tr.write_eof()
        assert tr.is_closing()
        data = await _read_all(loop, rfd)
        return await proto.lost, data, tr.get_write_buffer_size()

    exc, data, size = _run(loop, main())
    os.close(rfd)
    assert exc is None
    assert data == payload
    assert size == 0


def test_write_pipe_detects_reader_closing(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        await asyncio.sleep(0.01)
        os.close(rfd)
        return await proto.lost

    assert _run(loop, main()) is None


def test_write_pipe_reader_closing_with_pending_data_is_broken_pipe(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        tr.write(b"x" * (1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        os.close(rfd)
        return await proto.lost

    assert isinstance(_run(loop, main()), BrokenPipeError)


def test_write_pipe_write_after_reader_gone_is_broken_pipe(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()
    os.close(rfd)  # no reader at all: the first write fails

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        tr.write(b"nobody reads this")
        return await proto.lost

    assert isinstance(_run(loop, main()), BrokenPipeError)


def test_write_pipe_flow_control_pauses_and_resumes_protocol(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        tr.set_write_buffer_limits(high=1024, low=256)
        assert tr.get_write_buffer_limits() == (256, 1024)
        tr.write(b"y" * (512 * 1024))
        assert proto.events[-1] == "pause"
        reading = asyncio.ensure_future(_read_all(loop, rfd))
        while proto.events[-1] != "resume":
            await asyncio.sleep(0.01)
        tr.close()
        await proto.lost
        return proto.events, await reading

    events, data = _run(loop, main())
    os.close(rfd)
    assert events == ["made", "pause", "resume", "lost"]
    assert len(data) == 512 * 1024


def test_write_pipe_abort_discards_buffer(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        tr.write(b"z" * (1024 * 1024))
        tr.abort()
        assert tr.is_closing()
        return await proto.lost, await _read_all(loop, rfd)

    exc, data = _run(loop, main())
    os.close(rfd)
    assert exc is None
    assert len(data) < 1024 * 1024


def test_write_pipe_write_rejects_str_like_asyncio(any_loop):
    loop = any_loop
    rfd, wfd = os.pipe()

    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.connect_write_pipe(lambda: proto, open(wfd, "wb", buffering=0))
        try:
            with pytest.raises(AssertionError):
                tr.write("text")
        finally:
            tr.close()
            await proto.lost

    _run(loop, main())
    os.close(rfd)


def test_connect_write_pipe_rejects_regular_file(any_loop):
    loop = any_loop
    with tempfile.TemporaryFile() as f:
        with pytest.raises(ValueError, match="^Pipe transport is only for pipes, "
                                             "sockets and character devices$"):
            _run(loop, loop.connect_write_pipe(asyncio.Protocol, f))


def test_write_pipe_on_socket_and_pty(any_loop):
    loop = any_loop
    a, b = socket.socketpair()
    master, slave = os.openpty()
    tty_out = open(slave, "wb", buffering=0)

    async def main():
        p1, p2 = Recorder(loop), Recorder(loop)
        t1, _ = await loop.connect_write_pipe(lambda: p1, a)
        t2, _ = await loop.connect_write_pipe(lambda: p2, tty_out)
        t1.write(b"to socket")
        t2.write(b"to tty\n")
        t1.close()
        t2.close()
        await p1.lost
        await p2.lost
        got = b""
        while b"to tty" not in got:
            got += await loop.run_in_executor(None, os.read, master, 1024)
        return b.recv(100), got

    sock_data, tty_data = _run(loop, main())
    os.close(master)
    b.close()
    assert sock_data == b"to socket"
    assert b"to tty" in tty_data
    assert tty_out.closed and a.fileno() == -1


def test_pipe_transports_never_close_a_reused_fd(loop):
    # libuv closes its own duplicate; the transport closes the caller's
    # object: a fd number reused afterwards must stay open.
    for _ in range(20):
        rfd, wfd = os.pipe()

        async def main():
            proto = Recorder(loop)
            tr, _ = await loop.connect_read_pipe(lambda: proto, open(rfd, "rb", buffering=0))
            tr.close()
            await proto.lost
            fresh = os.open(os.devnull, os.O_RDONLY)
            for _ in range(3):
                await asyncio.sleep(0)
            return fresh

        fresh = _run(loop, main())
        assert _fd_is_open(fresh)
        os.close(fresh)
        os.close(wfd)


def test_unclosed_pipe_transport_closed_with_loop(loop_factory):
    lp = loop_factory()
    rfd, wfd = os.pipe()
    pipe = open(rfd, "rb", buffering=0)

    async def main():
        tr, _ = await lp.connect_read_pipe(asyncio.Protocol, pipe)
        return tr._stream.fileno()

    libuv_fd = lp.run_until_complete(main())
    assert libuv_fd != rfd  # libuv works on its own duplicate
    lp.close()  # the libuv handle goes with the loop: no crash, no leak
    assert not _fd_is_open(libuv_fd)
    assert not pipe.closed  # still the caller's, as no connection_lost ran
    pipe.close()
    os.close(wfd)


# -- repr ----------------------------------------------------------------------

def test_pipe_transport_reprs_say_open_once_the_loop_is_closed():
    # CPython's test_unclosed_pipe_transport: after loop.close() (no selector
    # left) the reprs of still-open pipe transports read "open"
    import uvffi
    for factory in (asyncio.SelectorEventLoop, uvffi.new_event_loop):
        loop = factory()
        rfd, wfd = os.pipe()
        rpipe, wpipe = os.fdopen(rfd, "rb", 0), os.fdopen(wfd, "wb", 0)

        async def connect():
            rt, _ = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
            wt, _ = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
            return rt, wt

        rt, wt = _run(loop, connect())
        assert "polling" in repr(rt) and "idle" in repr(wt), (repr(rt), repr(wt))
        loop.close()
        assert "open" in repr(rt), repr(rt)
        assert "open" in repr(wt), repr(wt)
        rpipe.close()
        wpipe.close()
        rt._pipe = wt._pipe = None  # no ResourceWarning, as CPython's test
