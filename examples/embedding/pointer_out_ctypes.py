"""Our uv_loop_t out, to C code reached through ctypes: a libuv timer that
is not uvffi's runs on a uvffi loop, inside the loop's own uv_run.

libuv is taken from uvffi's extension module itself, which is linked to
the system's libuv: C code that touches the loop must use the same libuv as
the loop, never a second copy.  (A vendored build keeps its static libuv
private, so this needs the system build: docs/install.md.)

    python examples/embedding/pointer_out_ctypes.py
"""
import asyncio
import ctypes

import uvffi
from uvffi import _uv

if _uv.lib.UVFFI_LIBUV_VENDORED:
    raise SystemExit("this uvffi links a private copy of libuv (UVFFI_LIBUV="
                     "VENDOR): C code cannot share it; use the system build")

UV_TIMER = 13  # uv_handle_type in uv.h (stable across libuv 1.x)

libuv = ctypes.CDLL(_uv.__file__)
libuv.uv_handle_size.restype = ctypes.c_size_t
libuv.uv_handle_size.argtypes = [ctypes.c_int]
TIMER_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
CLOSE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
libuv.uv_timer_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
libuv.uv_timer_start.argtypes = [ctypes.c_void_p, TIMER_CB,
                                 ctypes.c_uint64, ctypes.c_uint64]
libuv.uv_timer_stop.argtypes = [ctypes.c_void_p]
libuv.uv_close.argtypes = [ctypes.c_void_p, CLOSE_CB]


async def main():
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    closed = loop.create_future()
    ticks = []

    # the handle's memory must outlive its close callback: keep it here
    timer = ctypes.create_string_buffer(libuv.uv_handle_size(UV_TIMER))

    @TIMER_CB
    def on_tick(handle):  # runs inside the uvffi loop's uv_run
        ticks.append(loop.time())
        if len(ticks) == 3:
            libuv.uv_timer_stop(handle)
            fired.set_result(len(ticks))

    @CLOSE_CB
    def on_close(handle):
        closed.set_result(None)

    assert libuv.uv_timer_init(loop.uv_loop_t, timer) == 0
    assert libuv.uv_timer_start(timer, on_tick, 10, 10) == 0
    print("ctypes timer fired %d times" % await asyncio.wait_for(fired, 5))
    libuv.uv_close(timer, on_close)
    await asyncio.wait_for(closed, 5)  # only now may `timer` be freed
    print("ctypes timer closed")


if __name__ == "__main__":
    uvffi.run(main())
