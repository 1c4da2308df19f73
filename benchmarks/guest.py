"""Guest mode against uvffi's own run loop (docs/embedding.md).

    python guest.py    -> prints one JSON object of figures
(uvffi from the environment, e.g. PYTHONPATH=src after tools/devbuild.sh;
run.py's micro group has the same measures as rows: micro.py)

- sleep0_chain: a chain of await asyncio.sleep(0), under run_until_complete
  and in guest mode on a host's loop that Python drives with one
  uv_run(UV_RUN_DEFAULT) (CPU seconds of this process, best of --repeat);
- host_iterations: uv_run(UV_RUN_NOWAIT) calls per second on a host's loop
  that has work of its own (an idle handle), with no guest, and with an
  idle guest (guest mode on, asyncio waiting for nothing).
CPU time (time.process_time) is the steadier figure on a shared machine."""
import argparse
import asyncio
import json
import sys
import time

import uvffi
import uvffi.embedding
from uvffi._uv import ffi, lib


async def _chain(n):
    for _ in range(n):
        await asyncio.sleep(0)


def _host():
    host = ffi.new("uv_loop_t *")
    assert lib.uv_loop_init(host) == 0
    return host, int(ffi.cast("uintptr_t", host))


def _close_host(host):
    lib.uv_run(host, lib.UV_RUN_DEFAULT)
    assert lib.uv_loop_close(host) == 0


def chain_run_until_complete(n):
    loop = uvffi.new_event_loop()
    t = time.process_time()
    loop.run_until_complete(_chain(n))
    took = time.process_time() - t
    loop.close()
    return took


def chain_guest(n):
    host, address = _host()
    run = uvffi.embedding.start(address, _chain(n))
    t = time.process_time()
    lib.uv_run(host, lib.UV_RUN_DEFAULT)
    took = time.process_time() - t
    run.finish()
    _close_host(host)
    return took


def host_iterations(n, guest):
    host, address = _host()
    # the host's own work: an idle handle (C no-op callback) that makes
    # every uv_run(NOWAIT) a full loop iteration, guest handles included
    busy = ffi.new("uv_idle_t *")
    lib.uv_idle_init(host, busy)
    lib.uvffi_idle_start_noop(busy)
    run = None
    if guest:
        async def idle():
            await asyncio.Event().wait()
        run = uvffi.embedding.start(address, idle(), keep_alive=False)
        lib.uv_run(host, lib.UV_RUN_NOWAIT)  # the first step
    uv_run, nowait = lib.uv_run, lib.UV_RUN_NOWAIT
    t = time.process_time()
    for _ in range(n):
        uv_run(host, nowait)
    took = time.process_time() - t
    if run is not None:
        run.shutdown()
        while not run.done:
            uv_run(host, nowait)
        try:
            run.finish()
        except asyncio.CancelledError:
            pass
    lib.uv_close(ffi.cast("uv_handle_t *", busy), ffi.NULL)
    _close_host(host)
    return n / took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ruc = min(chain_run_until_complete(args.n) for _ in range(args.repeat))
    guest = min(chain_guest(args.n) for _ in range(args.repeat))
    bare = max(host_iterations(args.n * 2, False) for _ in range(args.repeat))
    idle = max(host_iterations(args.n * 2, True) for _ in range(args.repeat))
    print(json.dumps({
        "python": "%s %s" % (sys.implementation.name, sys.version.split()[0]),
        "sleep0_chain_n": args.n,
        "run_until_complete_s": round(ruc, 4),
        "guest_s": round(guest, 4),
        "guest_over_run_until_complete": round(guest / ruc, 3),
        "host_iterations_per_s_no_guest": round(bare),
        "host_iterations_per_s_idle_guest": round(idle),
    }))


if __name__ == "__main__":
    main()
