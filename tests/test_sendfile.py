"""loop.sendfile over TCP/Unix transports: native os.sendfile path,
offsets/counts, file position, fallback and fallback=False."""
import asyncio
import socket
import sys

import pytest

from _netutil import Recorder, run

PAYLOAD = bytes(range(256)) * 8192  # 2 MiB: more than one socket buffer


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    return path


async def _pair(loop, factory_store):
    server = await loop.create_server(
        lambda: factory_store.append(Recorder(loop)) or factory_store[-1],
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                          "127.0.0.1", port)
    while not factory_store:
        await asyncio.sleep(0.01)
    return server, tr, pr, factory_store[0]


@pytest.mark.parametrize("offset,count", [(0, None), (1000, None),
                                          (5, 70000), (0, 10 ** 9)])
def test_sendfile_offset_count_and_file_position(any_loop, data_file,
                                                 offset, count):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        with open(data_file, "rb") as f:
            sent = await loop.sendfile(tr, f, offset, count)
            pos = f.tell()
        expected = PAYLOAD[offset:offset + count if count else None]
        got = await peer.wait_data(len(expected))
        tr.write(b"after")  # the transport works normally afterwards
        got2 = await peer.wait_data(len(expected) + 5)
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, pos, got, got2, expected

    sent, pos, got, got2, expected = run(loop, main())
    assert sent == len(expected)
    assert pos == offset + len(expected)
    assert got == expected and got2 == expected + b"after"


def test_sendfile_waits_for_pending_writes_and_keeps_order(any_loop, data_file):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        peer.transport.pause_reading()
        head = b"H" * (3 * 1024 * 1024)  # queued behind a paused reader
        tr.write(head)
        task = loop.create_task(loop.sendfile(tr, open(data_file, "rb")))
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            tr.write(b"x")
        peer.transport.resume_reading()
        sent = await task
        got = await peer.wait_data(len(head) + len(PAYLOAD))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, got, head

    sent, got, head = run(loop, main())
    assert sent == len(PAYLOAD)
    assert got == head + PAYLOAD


def test_sendfile_reading_resumes_afterwards(any_loop, data_file):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        with open(data_file, "rb") as f:
            await loop.sendfile(tr, f, 0, 100)
        reading = tr.is_reading()
        peer.transport.write(b"back")
        got = await pr.wait_data(4)
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return reading, got

    assert run(loop, main()) == (True, b"back")


def test_sendfile_empty_file_returns_zero(any_loop, tmp_path):
    loop = any_loop
    empty = tmp_path / "empty"
    empty.write_bytes(b"")

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        with open(empty, "rb") as f:
            sent = await loop.sendfile(tr, f)
        tr.close()
        server.close()
        await server.wait_closed()
        return sent

    assert run(loop, main()) == 0


def test_sendfile_non_regular_file_falls_back_or_raises(any_loop):
    loop = any_loop
    import io

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        try:
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sendfile(tr, io.BytesIO(b"abc"), fallback=False)
            sent = await loop.sendfile(tr, io.BytesIO(b"memory file"))
            got = await peer.wait_data(11)
            return sent, got
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    assert run(loop, main()) == (11, b"memory file")


def test_sendfile_argument_checks(any_loop, data_file):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        try:
            with open(data_file, "rb") as f:
                with pytest.raises(ValueError, match="offset must be"):
                    await loop.sendfile(tr, f, -1)
                with pytest.raises(ValueError, match="count must be"):
                    await loop.sendfile(tr, f, 0, 0)
                with pytest.raises(TypeError):
                    await loop.sendfile(tr, f, "0")
            with open(data_file, "r") as f:
                with pytest.raises(ValueError, match="binary mode"):
                    await loop.sendfile(tr, f)
            tr.close()
            with open(data_file, "rb") as f:
                with pytest.raises(RuntimeError, match="Transport is closing"):
                    await loop.sendfile(tr, f)
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    run(loop, main())


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or sys.platform == "win32",
                    reason="AF_UNIX")
def test_sendfile_over_unix_socket(any_loop, data_file, tmp_path):
    loop = any_loop
    path = str(tmp_path / "s")

    async def main():
        peers = []
        server = await loop.create_unix_server(
            lambda: peers.append(Recorder(loop)) or peers[-1], path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop),
                                                   path)
        with open(data_file, "rb") as f:
            sent = await loop.sendfile(tr, f)
        while not peers:
            await asyncio.sleep(0.01)
        got = await peers[0].wait_data(len(PAYLOAD))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(PAYLOAD) and got == PAYLOAD


def test_sendfile_from_server_side_transport(any_loop, data_file):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        with open(data_file, "rb") as f:
            sent = await loop.sendfile(peer.transport, f)
        got = await pr.wait_data(len(PAYLOAD))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(PAYLOAD) and got == PAYLOAD


def test_sendfile_to_vanished_peer_raises(any_loop, data_file):
    loop = any_loop

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        peer.transport.abort()
        await peer.lost
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        with open(data_file, "rb") as f:
            for _ in range(50):
                await loop.sendfile(tr, f, 0)
                await asyncio.sleep(0.01)

    with pytest.raises((ConnectionError, RuntimeError, OSError)):
        run(loop, main())


def test_uvffi_takes_the_native_path(loop, data_file, monkeypatch):
    async def no_fallback(*args, **kwargs):
        raise AssertionError("fallback used")
    monkeypatch.setattr(loop, "_sendfile_fallback", no_fallback)

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        with open(data_file, "rb") as f:
            sent = await loop.sendfile(tr, f, fallback=False)
        got = await peer.wait_data(len(PAYLOAD))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, got == PAYLOAD

    assert run(loop, main()) == (len(PAYLOAD), True)


def test_transport_closed_during_sendfile(loop, tmp_path):
    # uvffi only: asyncio's selector loop itself breaks here (its writer
    # stays registered on the closed fd: FileNotFoundError from epoll and
    # InvalidStateError), so there is no behaviour to conform to.
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * (32 * 1024 * 1024))

    async def main():
        server, tr, pr, peer = await _pair(loop, [])
        peer.transport.pause_reading()  # so that sendfile has to wait
        with open(big, "rb") as f:
            task = loop.create_task(loop.sendfile(tr, f))
            await asyncio.sleep(0.1)
            tr.abort()
            outcome = None
            try:
                await asyncio.wait_for(task, 10)
            except (OSError, RuntimeError) as exc:
                outcome = type(exc)
        exc = await pr.lost
        peer.transport.abort()
        # the loop is healthy: a new connection works
        server2, tr2, pr2, peer2 = await _pair(loop, [])
        tr2.write(b"again")
        got = await peer2.wait_data(5)
        tr2.close()
        for s in (server, server2):
            s.close()
            await s.wait_closed()
        return outcome, exc, got

    outcome, exc, got = run(loop, main())
    assert got == b"again"
    assert outcome is not None and issubclass(outcome, (OSError, RuntimeError))
