"""The Python side of examples/embedding/host.c: asyncio code that runs on
the C host's libuv loop in uvffi's guest mode.

``start(uv_loop)`` is called by the host with its ``uv_loop_t *`` (a
PyCapsule named "uv_loop_t"); it starts guest mode and a task, and returns
at once.  The host then runs ``uv_run`` and the task progresses inside it.
When the task ends it calls ``loop.stop()``, which ends guest mode, so that
the host's ``uv_run(UV_RUN_DEFAULT)`` can return.  ``finish()`` reports the
result and closes the Python loop (never the host's).
"""
import asyncio

import uvffi

_loop = None
_task = None


async def main():
    loop = asyncio.get_running_loop()
    for i in range(1, 4):
        await asyncio.sleep(0.04)
        print("python: tick %d (running loop is the guest loop: %s)"
              % (i, loop is _loop), flush=True)
    # a worker thread hands its result back through call_soon_threadsafe,
    # which wakes the host's poll
    total = await loop.run_in_executor(None, sum, range(10))
    print("python: executor returned %d" % total, flush=True)
    return "ok"


def start(uv_loop):
    global _loop, _task
    _loop = uvffi.Loop.from_uv_loop(uv_loop)
    _loop.start_guest()
    _task = _loop.create_task(main())
    _task.add_done_callback(lambda task: _loop.stop())  # ends guest mode
    print("python: guest mode started", flush=True)


def finish():
    try:
        _loop.stop_guest()  # re-raises Ctrl-C etc. caught in guest mode
    finally:
        _loop.close()
    print("python: task result %s" % _task.result(), flush=True)
