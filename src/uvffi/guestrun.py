"""``asyncio.run`` for a host's loop: guest mode with a main coroutine, and
the ending ``asyncio.run`` gives a program (leftover tasks cancelled and
awaited, async generators finalized, the default executor shut down).

The ending runs inside the host's own ``uv_run`` iterations, as a task of
the guest loop: a host must never be made to nest ``uv_run``.  Only when the
host can no longer iterate (it is exiting) does :meth:`GuestRun.finish` end
things itself, with asyncio steps that never poll.
"""
import asyncio
from asyncio import tasks

# bounds finish()'s steps without polling: a task that keeps rescheduling
# itself after cancellation must not hang a host that is exiting
_MAX_STEPS_WITHOUT_POLLING = 1000


def start(uv_loop, main, *, keep_alive=True, debug=None):
    """Start guest mode on the host's ``uv_loop_t`` with ``main`` (a
    coroutine) as its main task, and return the :class:`GuestRun`.

    The host then keeps calling ``uv_run``.  When ``main`` ends (or after
    :meth:`GuestRun.shutdown`) the guest ends the way ``asyncio.run`` does,
    in the host's next iterations, and guest mode stops: a host in
    ``uv_run(UV_RUN_DEFAULT)`` gets control back once its own handles are
    done too.  Then the host calls :meth:`GuestRun.finish`.
    """
    if not asyncio.iscoroutine(main):
        raise ValueError("a coroutine was expected, got {!r}".format(main))
    from .loop import Loop  # (loop.py imports the embedding facet)
    try:
        loop = Loop.from_uv_loop(uv_loop)
    except BaseException:
        main.close()  # no "coroutine was never awaited" warning
        raise
    return GuestRun(loop, main, keep_alive=keep_alive, debug=debug)


class GuestRun:
    """A main coroutine in guest mode on a host's loop (see :func:`start`)."""

    def __init__(self, loop, main, *, keep_alive=True, debug=None):
        self.loop = loop
        self._ending = None      # the task that ends the guest
        self._finished = False
        if debug is not None:
            loop.set_debug(debug)
        try:
            loop.start_guest(keep_alive=keep_alive)
        except BaseException:
            main.close()
            raise
        self.task = loop.create_task(main)
        self.task.add_done_callback(self._main_done)

    def __repr__(self):
        state = ("finished" if self._finished else "done" if self.done
                 else "ending" if self._ending is not None else "running")
        return "<GuestRun %s task=%r>" % (state, self.task)

    @property
    def done(self):
        """True once the ending is complete and guest mode is off: the host
        may stop iterating and call :meth:`finish`."""
        return (self._ending is not None and self._ending.done()
                and not self.loop.is_guest_running())

    def shutdown(self):
        """Ask the guest to end: the main task is cancelled if it is still
        pending, then the ending runs in the host's next iterations.
        Returns at once; idempotent."""
        if self._finished or self.loop.is_closed():
            return
        if not self.task.done():
            self.task.cancel()  # _main_done starts the ending
        else:
            self._begin_ending()
        self.loop._guest_rearm()

    def finish(self):
        """Close the guest loop (never the host's) and return the main
        coroutine's result, or raise its exception (``CancelledError`` when
        :meth:`shutdown` cancelled it).  A ``KeyboardInterrupt`` or
        ``SystemExit`` that stopped guest mode is raised instead.

        Called before the ending is done (the host is exiting and will not
        iterate again), it cancels what is left and runs what is ready
        without polling, shuts the default executor down and closes."""
        loop = self.loop
        stopped_by = None
        if not self._finished:
            self._finished = True
            try:
                loop.stop_guest()  # ends guest mode; raises what stopped it
            except BaseException as exc:  # noqa: BLE001 - raised below
                stopped_by = exc
            try:
                if not (self._ending is not None and self._ending.done()):
                    self._end_without_polling()
            finally:
                loop.close()
        if stopped_by is not None:
            if self.task.done() and not self.task.cancelled():
                self.task.exception()  # seen: no "never retrieved" log
            raise stopped_by
        return self.task.result()

    # -- the ending ----------------------------------------------------------------

    def _main_done(self, task):
        if not self.loop.is_closed():
            self._begin_ending()

    def _begin_ending(self):
        if self._ending is None:
            self._ending = self.loop.create_task(self._end())

    async def _end(self):
        loop = self.loop
        try:
            await _cancel_leftover_tasks(loop, tasks.current_task(loop))
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()
        finally:
            loop.stop()  # guest mode ends after this step

    def _end_without_polling(self):
        loop = self.loop
        loop.start_guest(keep_alive=False)
        try:
            if self._ending is None:
                self._ending = loop.create_task(self._end())
            # the executor's threads report back through the host's poll,
            # which no longer runs: wait for them here instead
            executor = loop._default_executor
            if executor is not None:
                loop._default_executor = None
                executor.shutdown(wait=True)
            budget = _run_ready_without_polling(loop, _MAX_STEPS_WITHOUT_POLLING)
            if not self._ending.done():  # it waits for I/O that cannot come
                self._ending.cancel()
                _run_ready_without_polling(loop, budget)
        finally:
            loop.stop_guest()


def _run_ready_without_polling(loop, budget):
    """asyncio steps (in guest mode, whose selector never blocks, and
    where the guest is the running loop) while callbacks are ready; returns
    the steps left of the budget."""
    while loop._ready and budget > 0:
        loop._run_once()
        budget -= 1
    return budget


async def _cancel_leftover_tasks(loop, ending):
    """What asyncio.run does with the tasks its main coroutine left."""
    leftovers = [t for t in tasks.all_tasks(loop) if t is not ending]
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    await tasks.gather(*leftovers, return_exceptions=True)
    for task in leftovers:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during guest shutdown",
                "exception": task.exception(),
                "task": task,
            })

