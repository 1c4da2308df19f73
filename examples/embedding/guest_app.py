"""The Python side of examples/embedding/host.c: asyncio code that runs on
the C host's libuv loop in uvffi's guest mode.

``start(uv_loop)`` is called by the host with its ``uv_loop_t *`` (a
PyCapsule named "uv_loop_t"): ``uvffi.embedding.start`` begins guest mode
with ``main()`` as the main task and returns at once.  The host then runs
``uv_run``; the task progresses inside it.  When ``main()`` returns, the
guest ends the way ``asyncio.run`` ends a program (leftover tasks cancelled,
async generators closed, the default executor shut down), still inside the
host's iterations, and guest mode stops, so that the host's
``uv_run(UV_RUN_DEFAULT)`` returns.  ``finish()`` closes the Python loop
(never the host's) and reports main's result.
"""
import asyncio

import uvffi.embedding

_run = None


async def background():
    # left running by main(): the ending cancels it, as asyncio.run would
    try:
        await asyncio.sleep(3600)
    finally:
        print("python: background task cancelled", flush=True)


async def main():
    loop = asyncio.get_running_loop()
    loop.create_task(background())
    for i in range(1, 4):
        await asyncio.sleep(0.04)
        print("python: tick %d (running loop is the guest loop: %s)"
              % (i, loop is _run.loop), flush=True)
    # a worker thread hands its result back through call_soon_threadsafe,
    # which wakes the host's poll
    total = await loop.run_in_executor(None, sum, range(10))
    print("python: executor returned %d" % total, flush=True)
    return "ok"


def start(uv_loop):
    global _run
    _run = uvffi.embedding.start(uv_loop, main())
    print("python: guest mode started", flush=True)


def finish():
    # re-raises main's exception, or a Ctrl-C that stopped guest mode
    result = _run.finish()
    print("python: task result %s" % result, flush=True)
