"""Set signal handlers for SIGINT and SIGTERM (the asyncio documentation's
example, on uvffi).  To run unattended it sends itself SIGTERM after a
moment; press Ctrl+C before that to see the SIGINT handler instead."""
import asyncio
import functools
import os
import signal

import uvffi


def ask_exit(signame, loop):
    print("got signal %s: exit" % signame)
    loop.stop()


async def main():
    loop = asyncio.get_running_loop()
    for signame in ("SIGINT", "SIGTERM"):
        loop.add_signal_handler(getattr(signal, signame),
                                functools.partial(ask_exit, signame, loop))
    print("Event loop running; sending SIGTERM to pid %d in 1 second."
          % os.getpid())
    loop.call_later(1.0, os.kill, os.getpid(), signal.SIGTERM)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    loop = uvffi.new_event_loop()
    try:
        loop.run_until_complete(main())
    except RuntimeError:
        pass  # "Event loop stopped before Future completed.": ask_exit stopped it
    finally:
        loop.close()
