"""get_debug() and create_future() are the calls every Future makes of its
loop; uvffi answers them without a Python frame on CPython.  They must
still say and do what BaseEventLoop's methods do."""
import asyncio
import signal
import socket
import sys

import pytest

import uvffi


def test_get_debug_follows_set_debug(loop):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_create_future_gives_a_future_of_this_loop(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    loop.set_debug(True)
    assert loop.create_future()._source_traceback  # debug mode seen at once
    loop.set_debug(False)


def test_a_subclass_keeps_its_own_methods():
    class Custom(uvffi.Loop):
        def get_debug(self):
            return "custom"

        def create_future(self):
            return "custom future"

    lp = Custom()
    try:
        assert lp.get_debug() == "custom"
        assert lp.create_future() == "custom future"
    finally:
        lp.close()


_SHARED_KEYS_MAX = 30  # CPython's limit for a dict of shared keys


@pytest.mark.skipif(sys.implementation.name != "cpython"
                    or not (3, 11) <= sys.version_info < (3, 13),
                    reason="uvffi's state is in slots on CPython 3.11/3.12 only")
def test_loop_state_stays_out_of_the_instance_dict_after_use():
    # Over 30 names, CPython stops caching the loop's attribute and method
    # lookups (see Loop's docstring): use every concern that keeps state on
    # the loop, then count.
    lp = uvffi.new_event_loop()
    rsock, wsock = socket.socketpair()

    async def main():
        async def echo(reader, writer):
            writer.write(await reader.read(10))
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        assert await reader.read(10) == b"ping"
        writer.close()
        server.close()
        await server.wait_closed()
        got = lp.create_future()
        lp.add_reader(rsock, got.set_result, "readable")
        wsock.send(b"x")
        assert await got == "readable"
        lp.remove_reader(rsock)
        if hasattr(signal, "SIGUSR1"):  # (no signal handlers on Windows)
            lp.add_signal_handler(signal.SIGUSR1, lambda: None)
            lp.remove_signal_handler(signal.SIGUSR1)
        wsock.send(b"y" * 100_000)
        assert await lp.sock_recv(rsock, 70_000)
        await lp.getaddrinfo("127.0.0.1", 80)
    try:
        lp.run_until_complete(main())
        base = asyncio.base_events.BaseEventLoop()
        own = set(vars(lp)) - set(vars(base))
        base.close()
        assert len(vars(lp)) <= _SHARED_KEYS_MAX, sorted(vars(lp))
        assert own <= {"get_debug", "create_future"}, sorted(own)
    finally:
        rsock.close()
        wsock.close()
        lp.close()


def test_a_subclass_can_keep_attributes_and_arguments_of_its_own():
    class WithState(uvffi.Loop):
        def __init__(self, name, *, tag=None):
            super().__init__()
            self.name = name
            self.tag = tag
            self._uv_in_run = self._uv_in_run  # a uvffi name: still settable

    lp = WithState("mine", tag=3)
    try:
        assert (lp.name, lp.tag) == ("mine", 3)
        assert lp.run_until_complete(asyncio.sleep(0, "done")) == "done"
    finally:
        lp.close()
