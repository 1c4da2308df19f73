"""Set signal handlers for SIGINT and SIGTERM (the asyncio documentation's
example, on uvffi).  To run unattended it sends itself SIGTERM after a
moment; press Ctrl+C before that to see the SIGINT handler instead."""
import asyncio
import functools
import os
import signal

import uvffi


def ask_exit(signame, done):
    print("got signal %s: exit" % signame)
    if not done.done():
        done.set_result(signame)


async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    for signame in ("SIGINT", "SIGTERM"):
        loop.add_signal_handler(getattr(signal, signame),
                                functools.partial(ask_exit, signame, done))
    print("pid %d: send SIGINT or SIGTERM to exit; SIGTERM comes by itself "
          "in 1 second." % os.getpid(), flush=True)
    loop.call_later(1.0, os.kill, os.getpid(), signal.SIGTERM)
    try:
        await done
    finally:
        for signame in ("SIGINT", "SIGTERM"):
            loop.remove_signal_handler(getattr(signal, signame))


if __name__ == "__main__":
    uvffi.run(main())
