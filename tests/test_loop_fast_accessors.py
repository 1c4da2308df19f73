"""get_debug() and create_future() are the calls every Future makes of its
loop; uvffi answers them without a Python frame on CPython.  They must
still say and do what BaseEventLoop's methods do."""
import asyncio

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
