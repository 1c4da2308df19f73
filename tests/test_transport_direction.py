"""A pipe transport has the methods of its direction only, as asyncio's
_UnixReadPipeTransport (a ReadTransport) and _UnixWritePipeTransport (a
Transport whose reading methods are ReadTransport's NotImplementedError
stubs): a subprocess's stdin transport cannot pause reading, its stdout
transport cannot write."""
import asyncio
import os
import subprocess
import sys

import pytest

TIMEOUT = 10


def _run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def test_subprocess_stdin_transport_is_write_only(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        transport = proc._transport
        stdin = transport.get_pipe_transport(0)
        stdout = transport.get_pipe_transport(1)
        for method in ("pause_reading", "resume_reading", "is_reading"):
            with pytest.raises(NotImplementedError):
                getattr(stdin, method)()
        with pytest.raises(AttributeError):
            stdout.write(b"x")
        assert not hasattr(stdout, "write_eof")
        # the read side still pauses and resumes (asyncio's read pipe has
        # is_reading() from 3.11 on; uvffi's on every version)
        stdout.pause_reading()
        stdout.resume_reading()
        if sys.version_info >= (3, 11) or any_loop.kind == "uvffi":
            assert stdout.is_reading()
        out, _ = await proc.communicate(b"through the pipe")
        return out
    assert _run(any_loop, main()) == b"through the pipe"


def test_write_pipe_refuses_start_tls_and_sendfile(any_loop, tmp_path):
    rfd, wfd = os.pipe()
    data = tmp_path / "data"
    data.write_bytes(b"abc")

    async def main():
        transport, _ = await any_loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(wfd, "wb"))
        try:
            import ssl
            ctx = ssl.create_default_context()
            with pytest.raises(TypeError, match="is not supported by start_tls"):
                await any_loop.start_tls(transport, asyncio.Protocol(), ctx)
            with open(data, "rb") as f:
                with pytest.raises(RuntimeError, match="sendfile is not supported"):
                    await any_loop.sendfile(transport, f)
        finally:
            transport.close()
            await asyncio.sleep(0)
    try:
        _run(any_loop, main())
    finally:
        os.close(rfd)


def test_read_pipe_has_no_write_methods(any_loop):
    rfd, wfd = os.pipe()

    async def main():
        transport, _ = await any_loop.connect_read_pipe(
            asyncio.Protocol, os.fdopen(rfd, "rb"))
        try:
            for method in ("write", "writelines", "write_eof", "can_write_eof",
                           "abort", "get_write_buffer_size",
                           "set_write_buffer_limits"):
                assert not hasattr(transport, method), method
        finally:
            transport.close()
            await asyncio.sleep(0)
    try:
        _run(any_loop, main())
    finally:
        os.close(wfd)
