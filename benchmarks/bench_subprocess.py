"""Spawn cost: N short children in a row, asyncio's loop vs uvffi (vs uvloop
when it is importable), measured side by side in one run.

Two scenarios:
  wait         create_subprocess_exec(/bin/true) + wait()            (no pipes)
  communicate  create_subprocess_exec(/bin/echo, stdout=PIPE) + communicate()

uvffi starts children with posix_spawn + a pidfd on Linux/glibc and with
libuv's uv_spawn elsewhere; "uvffi/uv_spawn" forces the latter, to show what
libuv's fork-based spawn costs.  --heap-mb grows the interpreter's heap
first: fork() copies page tables, vfork/posix_spawn do not.

Rounds alternate between the loops so that machine noise (other jobs on a
shared box) hits every loop alike; the median and the best round are shown,
and ratios are asyncio's time divided by the other loop's (> 1: faster than
asyncio).

    PYTHONPATH=src python benchmarks/bench_subprocess.py [-n 100] [-r 7] [--heap-mb 200]
"""
import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import uvffi  # noqa: E402
from uvffi.process import spawn as uvprocess  # noqa: E402

try:
    import uvloop
except ImportError:
    uvloop = None

TRUE = shutil.which("true") or "/bin/true"
ECHO = shutil.which("echo") or "/bin/echo"


async def spawn_wait(n):
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(TRUE)
        await proc.wait()


async def spawn_communicate(n):
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(
            ECHO, "hello", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"hello\n"


SCENARIOS = {"wait": spawn_wait, "communicate": spawn_communicate}


def loop_factories():
    factories = {"asyncio": asyncio.new_event_loop, "uvffi": uvffi.new_event_loop}
    if uvprocess.FAST_SPAWN:
        factories["uvffi/uv_spawn"] = "uv_spawn"
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


def one_round(factory, scenario, n):
    fast = uvprocess.FAST_SPAWN
    if factory == "uv_spawn":
        factory = uvffi.new_event_loop
        uvprocess.FAST_SPAWN = False
    loop = factory()
    try:
        asyncio.set_event_loop(loop)  # asyncio's child watcher (3.9-3.11)
        loop.run_until_complete(scenario(2))  # warm-up: lazily made fds, JIT
        start = time.perf_counter()
        loop.run_until_complete(scenario(n))
        return time.perf_counter() - start
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        uvprocess.FAST_SPAWN = fast


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="children per round")
    parser.add_argument("-r", "--rounds", type=int, default=7)
    parser.add_argument("-s", "--scenario", choices=sorted(SCENARIOS),
                        action="append", help="default: all")
    parser.add_argument("--heap-mb", type=int, default=0,
                        help="allocate (and touch) this much memory first")
    args = parser.parse_args()
    heap = bytearray(args.heap_mb * 1024 * 1024)  # noqa: F841 - kept alive
    factories = loop_factories()
    print("%s %s, %d children per round, %d rounds, heap +%d MB%s" % (
        sys.implementation.name, sys.version.split()[0], args.n, args.rounds,
        args.heap_mb, "" if uvloop else " (uvloop not importable)"))
    for name in args.scenario or sorted(SCENARIOS, reverse=True):
        scenario = SCENARIOS[name]
        times = {kind: [] for kind in factories}
        for _ in range(args.rounds):
            for kind, factory in factories.items():
                times[kind].append(one_round(factory, scenario, args.n))
        base = statistics.median(times["asyncio"])
        print("\n%s:" % name)
        for kind, values in times.items():
            med = statistics.median(values)
            print("  %-15s median %7.3f ms/child  best %7.3f ms/child  "
                  "asyncio/this = %.2fx" % (
                      kind, med / args.n * 1e3, min(values) / args.n * 1e3,
                      base / med))


if __name__ == "__main__":
    main()
