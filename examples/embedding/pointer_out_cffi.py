"""Our uv_loop_t out, to C code reached through cffi (ABI mode, an FFI of
its own): a libuv timer that is not uvffi's runs on a uvffi loop, inside
the loop's own uv_run.

libuv is opened from uvffi's extension module itself, which is linked to
the system's libuv: C code that touches the loop must use the same libuv as
the loop, never a second copy.  (A vendored build keeps its static libuv
private, so this needs the system build: docs/install.md.)

    python examples/embedding/pointer_out_cffi.py
"""
import asyncio

import cffi

import uvffi
from uvffi import _uv

if _uv.lib.UVFFI_LIBUV_VENDORED:
    raise SystemExit("this uvffi links a private copy of libuv (UVFFI_LIBUV="
                     "VENDOR): C code cannot share it; use the system build")

ffi = cffi.FFI()
ffi.cdef("""
    typedef struct uv_loop_s uv_loop_t;
    typedef struct uv_timer_s uv_timer_t;
    typedef struct uv_handle_s uv_handle_t;
    typedef enum { UV_TIMER = 13 } uv_handle_type;   /* from uv.h */
    size_t uv_handle_size(uv_handle_type type);
    int uv_timer_init(uv_loop_t *loop, uv_timer_t *handle);
    int uv_timer_start(uv_timer_t *handle, void (*cb)(uv_timer_t *),
                       uint64_t timeout, uint64_t repeat);
    int uv_timer_stop(uv_timer_t *handle);
    void uv_close(uv_handle_t *handle, void (*close_cb)(uv_handle_t *));
""")
libuv = ffi.dlopen(_uv.__file__)


async def main():
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    closed = loop.create_future()
    ticks = []

    uv_loop = ffi.cast("uv_loop_t *", loop.uv_loop_t)
    # the handle's memory must outlive its close callback: keep it here
    memory = ffi.new("char[]", libuv.uv_handle_size(libuv.UV_TIMER))
    timer = ffi.cast("uv_timer_t *", memory)

    @ffi.callback("void(uv_timer_t *)")
    def on_tick(handle):  # runs inside the uvffi loop's uv_run
        ticks.append(loop.time())
        if len(ticks) == 3:
            libuv.uv_timer_stop(handle)
            fired.set_result(len(ticks))

    @ffi.callback("void(uv_handle_t *)")
    def on_close(handle):
        closed.set_result(None)

    assert libuv.uv_timer_init(uv_loop, timer) == 0
    assert libuv.uv_timer_start(timer, on_tick, 10, 10) == 0
    print("cffi timer fired %d times" % await asyncio.wait_for(fired, 5))
    libuv.uv_close(ffi.cast("uv_handle_t *", timer), on_close)
    await asyncio.wait_for(closed, 5)  # only now may `memory` be freed
    print("cffi timer closed")


if __name__ == "__main__":
    uvffi.run(main())
