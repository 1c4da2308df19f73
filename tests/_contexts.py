"""Helpers of the protocol-context tests (test_protocol_context_*.py): a
ContextVar, a way to call something from another context, and a protocol
base that records the variable's value at each callback."""
import asyncio
import contextvars

TIMEOUT = 10
cvar = contextvars.ContextVar("cvar", default="outer")


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def in_other_context(fn, *args):
    """fn(*args) where cvar is 'other', not in the creator's context."""
    ctx = contextvars.copy_context()
    ctx.run(cvar.set, "other")
    return ctx.run(fn, *args)


class Recorder:
    """Records cvar's value at each callback (note); wait(name) until a
    callback of that name came."""

    def __init__(self):
        self.seen = {}
        self.waiters = {}

    def note(self, name):
        self.seen.setdefault(name, []).append(cvar.get())
        waiter = self.waiters.get(name)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, name):
        if name in self.seen:
            return
        loop = asyncio.get_running_loop()
        waiter = self.waiters.setdefault(name, loop.create_future())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("no %s() within %d s" % (name, TIMEOUT))

    async def drain_until_resumed(self, drain_once):
        """Call drain_once() (it empties the peer's side without blocking)
        until resume_writing() came."""
        for _ in range(TIMEOUT * 100):
            try:
                drain_once()
            except BlockingIOError:
                pass
            if "resume_writing" in self.seen:
                break
            await asyncio.sleep(0.01)
        await self.wait("resume_writing")
