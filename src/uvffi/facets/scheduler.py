"""The hot scheduling paths: call_soon, call_at/call_later and one loop
iteration, with BaseEventLoop's behaviour and fewer Python steps.

With BaseEventLoop's own versions every iteration paid for the generic
``_run_once`` body, a ``select`` wrapper and thread-local bookkeeping
(docs/performance-notes.md, "Scheduling").  What differs from CPython's
code, and why:

- Timers wait in a ``TimerQueue`` (timerqueue.py: millisecond buckets) and
  not in a heap of handles: asyncio's heap calls ``TimerHandle.__lt__`` in
  Python ~log2(n) times per push and pop.  Timers with equal deadlines run
  in the order they were scheduled.
- Debug-mode checks (thread, callback type, slow callbacks, source
  tracebacks) are exactly BaseEventLoop's, but cost nothing when debug is off.
"""
import collections
import contextvars
import functools
import heapq
import math
import sys
import time
from asyncio import base_events, events, format_helpers, futures

from .._uv import lib
from .timerqueue import TimerQueue

_heappush = heapq.heappush
_monotonic = time.monotonic
_run_nowait = lib.uvffi_run_nowait
_run_sleep = lib.uvffi_run_sleep
_ceil = math.ceil
_copy_context = contextvars.copy_context
_deque_append = collections.deque.append
_deque_extend = collections.deque.extend
_PYPY = sys.implementation.name == "pypy"
_MAXIMUM_SELECT_TIMEOUT = base_events.MAXIMUM_SELECT_TIMEOUT
_MIN_SCHEDULED = base_events._MIN_SCHEDULED_TIMER_HANDLES
_MIN_CANCELLED_FRACTION = base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION
_format_handle = base_events._format_handle
logger = base_events.logger


# Lean handles for the non-debug fast path.  asyncio's __init__ asks the loop
# for its debug flag on every handle; these are only made when debug is off,
# and call_soon/call_later/call_at fill in their slots themselves.  They keep
# object's own __init__ so that creating one runs no Python code: Handle() is
# then a C-only call, cheaper than object.__new__(Handle) (which checks that
# the call is "safe" on every call).  Same class names as
# asyncio's, for their repr.
class Handle(events.Handle):
    __slots__ = ()
    __init__ = object.__init__


class TimerHandle(events.TimerHandle):
    __slots__ = ()
    __init__ = object.__init__


def _lean_timer(when, callback, args, loop, context):
    """A lean TimerHandle, as TimerHandle.__init__ would fill it in (call_at;
    call_later has this inline, being the common way to a timer)."""
    timer = TimerHandle()
    timer._context = _copy_context() if context is None else context
    timer._loop = loop
    timer._callback = callback
    timer._args = args
    timer._cancelled = False
    timer._repr = None
    timer._source_traceback = None
    timer._when = when
    return timer


def _debug_timer_handle(when, callback, args, loop, context):
    """A TimerHandle with asyncio's full (debug-mode) initialisation."""
    timer = TimerHandle.__new__(TimerHandle)
    events.TimerHandle.__init__(timer, when, callback, args, loop, context)
    if timer._source_traceback:
        # this helper's frame: call_at then drops its own, as asyncio's does
        del timer._source_traceback[-1]
    return timer


_STOCK_RUN = events.Handle._run


class ReadyQueue(collections.deque):
    """The loop's ``_ready``.  ``_run_once`` runs each handle with the body
    of asyncio's ``Handle._run`` inline (a Python frame less per callback),
    which is right for every handle whose class keeps that ``_run``: all
    the loop itself queues.  Code elsewhere that puts a handle of its own
    class here (``loop._ready.append`` is a known idiom) comes through these
    overrides; a class that overrides ``_run`` sets ``foreign``, and the loop
    then calls ``_run`` on each handle, as asyncio does, until the queue is
    empty.  The loop's own code appends with ``deque.append`` itself, with
    no Python frame; a class test per handle in the run loop would cost
    every callback (docs/performance-notes.md).

    ``wake``, when not None, is a cffi ``int *`` that every append through
    these methods sets to 1, after the handle is in: an idle guest loop
    listens so (embedding.py), call_soon_threadsafe's appends from other
    threads included."""
    __slots__ = ("foreign", "wake")

    def __init__(self, *args):
        super().__init__(*args)
        self.foreign = False
        self.wake = None
        self._note(self)

    def _woken(self):
        wake = self.wake
        if wake is not None:
            wake[0] = 1

    def _note(self, handles):
        if not self.foreign:
            for handle in handles:
                if getattr(type(handle), "_run", None) is not _STOCK_RUN:
                    self.foreign = True
                    break

    def append(self, handle):
        self._note((handle,))
        _deque_append(self, handle)
        if self.wake is not None:
            self._woken()

    def appendleft(self, handle):
        self._note((handle,))
        super().appendleft(handle)
        self._woken()

    def insert(self, i, handle):
        self._note((handle,))
        super().insert(i, handle)
        self._woken()

    def __setitem__(self, i, handle):
        self._note((handle,))
        super().__setitem__(i, handle)
        self._woken()

    def extend(self, handles):
        handles = list(handles)
        self._note(handles)
        _deque_extend(self, handles)
        self._woken()

    def extendleft(self, handles):
        handles = list(handles)
        self._note(handles)
        super().extendleft(handles)
        self._woken()

    def __iadd__(self, handles):
        self.extend(handles)
        return self


def report_callback_exception(loop, handle, exc):
    """What asyncio's Handle._run reports when its callback raises."""
    cb = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {
        'message': f'Exception in callback {cb}',
        'exception': exc,
        'handle': handle,
    }
    if handle._source_traceback:
        context['source_traceback'] = handle._source_traceback
    loop.call_exception_handler(context)


class SchedulerMixin:

    _LOOP_STATE = {  # the loop's slots for this concern (loop.py)
        # True while a poll runs with callbacks already in the ready queue:
        # the I/O it reports then waits behind them (as on asyncio's loop);
        # in guest mode, from our prepare step to our check step.
        "_uv_defer_io": False,
        "_uv_ready_append": None,
        # The empty contextvars context that libuv's callbacks on a loop
        # uvffi created run in (handles/streamreads.py: plain): the one
        # run_forever entered, or, once a protocol set a variable in that
        # one (_io_dirty, Stream.io_polluted), a fresh one entered
        # around each poll.
        "_io_context": None,
        "_io_dirty": False,
        # a loop uvffi created: the flag that ends its sleep (_uv_sleep),
        # the ready queue's own append, and the one that sets the flag
        "_uv_wanted": None,
        "_uv_plain_append": None,
        "_uv_append_and_want": None,
    }

    def __init__(self):
        super().__init__()
        self._scheduled = TimerQueue()  # instead of BaseEventLoop's list
        self._ready = ReadyQueue(self._ready)
        # bound C method: the loop's own appends skip ReadyQueue.append
        self._uv_ready_append = _deque_append.__get__(self._ready)
        # Every Future asks its loop get_debug() (the C Future's __init__
        # does), and most come from create_future(): as partials of C
        # callables these two cost no Python frame.  Same results, read
        # live (set_debug still works).  Not on PyPy, where the JIT'd
        # methods are the cheaper ones, nor where a subclass overrides them.
        cls = type(self)
        if not _PYPY and cls.get_debug is base_events.BaseEventLoop.get_debug:
            self.get_debug = functools.partial(getattr, self, "_debug")
        if not _PYPY and cls.create_future is base_events.BaseEventLoop.create_future:
            self.create_future = functools.partial(futures.Future, loop=self)

    # time() is asyncio's clock; a staticmethod saves a Python frame per call.
    time = staticmethod(_monotonic)

    def call_soon(self, callback, *args, context=None):
        if self._debug or self._closed:
            # full checks, and the closed-loop RuntimeError, from CPython
            handle = super().call_soon(callback, *args, context=context)
            if handle._source_traceback:
                # this frame: the traceback ends in call_soon's caller
                del handle._source_traceback[-1]
            return handle
        # Handle.__init__, inlined: creating the handle through its class
        # would enter the interpreter again for __init__ (a C->Python call,
        # also when call_soon itself is called from C, by a Future or Task)
        handle = Handle()
        handle._context = _copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        # (a slot's value loaded, then called: LOAD_METHOD does not
        # specialise for slots on 3.11)
        append = self._uv_ready_append
        append(handle)
        return handle

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError('delay must not be None')
        if self._debug or self._closed:
            timer = self.call_at(self.time() + delay, callback, *args, context=context)
            if timer._source_traceback:
                del timer._source_traceback[-1]
            return timer
        # call_at's fast path, inlined: one frame and one *args repack less
        when = _monotonic() + delay
        # TimerHandle.__init__, inlined as in call_soon
        timer = TimerHandle()
        timer._context = _copy_context() if context is None else context
        timer._loop = self
        timer._callback = callback
        timer._args = args
        timer._cancelled = False
        timer._repr = None
        timer._source_traceback = None
        timer._when = when
        # TimerQueue.push, inlined for the common case (a finite deadline)
        q = self._scheduled
        if q.plain:  # buckets in use and nobody watching pushes
            try:
                key = int(when * 1000.0)
            except Exception:  # noqa: BLE001 - inf, NaN...: push() sorts it out
                q.push(timer)
            else:
                bucket = q.buckets.get(key)
                if bucket is None:
                    q.buckets[key] = [timer]
                    _heappush(q.keys, key)
                else:
                    bucket.append(timer)
                q.n += 1
        else:
            q.push(timer)
        timer._scheduled = True
        return timer

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError('Event loop is closed')
        if self._debug:
            self._check_thread()
            self._check_callback(callback, 'call_at')
            timer = _debug_timer_handle(when, callback, args, self, context)
            if timer._source_traceback:
                del timer._source_traceback[-1]
        else:
            timer = _lean_timer(when, callback, args, self, context)
        self._scheduled.push(timer)
        timer._scheduled = True
        return timer

    def _next_timer_when(self):
        """Deadline of the earliest live timer, or None (cancelled heads dropped)."""
        dropped, when = self._scheduled.drop_cancelled_heads()
        if dropped:
            self._timer_cancelled_count -= dropped
        return when

    def _drop_cancelled_timers(self):
        # asyncio's heuristic: rebuild when over half of many timers are cancelled
        n = self._scheduled.n
        if n > _MIN_SCHEDULED and self._timer_cancelled_count / n > _MIN_CANCELLED_FRACTION:
            self._scheduled.drop_cancelled()
            self._timer_cancelled_count = 0

    def _run_once(self):
        """asyncio's loop iteration.  Inside run_forever (``_uv_in_run``)
        every iteration runs in this one frame until stop(), and
        BaseEventLoop.run_forever's own loop then ends at once: a call and
        the locals' set-up per iteration less.  Called from anywhere else
        (guest mode's steps, tests), one iteration."""
        ready = self._ready
        q = self._scheduled
        while True:
            if q.n:
                self._drop_cancelled_timers()
                when = self._next_timer_when()
            else:
                when = None
            if ready or self._stopping:
                timeout = 0
            elif when is not None:
                timeout = min(max(0, when - _monotonic()), _MAXIMUM_SELECT_TIMEOUT)
            else:
                timeout = None

            nowait = self._uv_nowait
            if timeout == 0 and nowait is not None and not self._io_dirty:
                # UVSelector.select(0), inlined: the poll of every busy iteration
                if ready:
                    # With callbacks already queued, what the poll reads waits
                    # behind them, as asyncio orders it (_on_reads in
                    # streamcallbacks.py).
                    self._uv_defer_io = True
                    try:
                        _run_nowait(nowait)
                    finally:
                        self._uv_defer_io = False
                else:
                    _run_nowait(nowait)
                if self._fatal is not None:
                    exc, self._fatal = self._fatal, None
                    raise exc
            else:
                self._poll(timeout, ready)

            if q.n:
                q.move_due(ready, _monotonic() + self._clock_resolution)

            # Run the callbacks that are ready now; those they schedule wait for
            # the next iteration (after another poll), as in asyncio.
            ntodo = len(ready)
            if self._debug or ready.foreign:
                self._run_ready_checked(ntodo)
                ntodo = 0
            # (a countdown, not a for loop: no range or iterator to make on
            # every iteration, which cost as much as running a handle)
            while ntodo:
                ntodo -= 1
                handle = ready.popleft()
                if handle._cancelled:
                    continue
                # Handle._run, inlined: one Python frame less per callback
                # (every handle here keeps asyncio's _run: see ReadyQueue)
                try:
                    args = handle._args
                    if args:
                        handle._context.run(handle._callback, *args)
                    else:  # no star-call: no argument tuple to build
                        handle._context.run(handle._callback)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    report_callback_exception(self, handle, exc)
            # BaseEventLoop.run_forever stops after an iteration that ends
            # with _stopping set: so do we.
            if self._stopping or not self._uv_in_run:
                return

    def _poll(self, timeout, queued):
        """The poll of an iteration that may wait, that runs on a host's
        loop, or whose I/O context a protocol changed (see
        Stream.io_polluted).  *queued*: the ready queue, not empty when
        callbacks wait (what the poll reads then waits behind them)."""
        nowait = self._uv_nowait
        if nowait is not None and not self._io_dirty:
            # A loop of our own with nothing queued (timeout is not 0):
            # it sleeps in libuv until asyncio has work (shim:
            # uvffi_run_sleep), at most until the earliest timer.  While it
            # sleeps, every way work reaches asyncio from a libuv callback
            # sets the loop's wanted flag: call_soon (the loop's own
            # appends: the first goes through _uv_append_and_want), appends
            # to loop._ready by other code (ReadyQueue.wake), timers added
            # (TimerQueue.watch), stop() and a fatal error (_uv_want);
            # another thread's call_soon_threadsafe wakes the loop through
            # a uv_async_t whose C callback sets it.
            q = self._scheduled
            self._uv_ready_append = self._uv_append_and_want
            q.watch = self._uv_wanted
            q.plain = False
            try:
                _run_sleep(nowait, -1 if timeout is None
                           else _ceil(timeout * 1000.0))
            finally:
                self._uv_ready_append = self._uv_plain_append
                q.watch = None
                q.plain = q.heap is None
                self._uv_defer_io = False  # (a protocol's io_polluted)
            if self._fatal is not None:
                exc, self._fatal = self._fatal, None
                raise exc
            return
        if queued:
            self._uv_defer_io = True
        try:
            self._selector.select(timeout)
        finally:
            self._uv_defer_io = False

    def _uv_sleep_setup(self, wanted):
        """A loop uvffi created: its wanted flag (an ``int *`` in its
        uvffi_loop_t, which uvffi_run_sleep clears as it begins) and the
        append that sets it.  Appends to the ready queue by other code set
        it at any time (harmless while the loop is awake)."""
        self._uv_wanted = wanted
        self._ready.wake = wanted
        plain = self._uv_plain_append = self._uv_ready_append

        def append_and_want(handle):
            plain(handle)
            wanted[0] = 1
            # the flag is set: the rest of this sleep's appends are plain
            self._uv_ready_append = plain
        self._uv_append_and_want = append_and_want

    def _uv_want(self):
        """Have a sleeping loop return to asyncio (stop(), a fatal error)."""
        wanted = self._uv_wanted
        if wanted is not None:
            wanted[0] = 1

    def stop(self):
        super().stop()
        self._uv_want()

    def _run_ready_checked(self, ntodo):
        """Each handle through its own _run, as asyncio's loop does: in
        debug mode (with the slow-callback warning), and while the queue
        holds a handle whose class overrides _run."""
        ready = self._ready
        debug = self._debug
        for _ in range(ntodo):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            if not debug:
                handle._run()
                continue
            try:
                self._current_handle = handle
                t0 = self.time()
                handle._run()
                dt = self.time() - t0
                if dt >= self.slow_callback_duration:
                    logger.warning('Executing %s took %.3f seconds',
                                   _format_handle(handle), dt)
            finally:
                self._current_handle = None
        if not ready:
            ready.foreign = False


def timeout_to_ms(timeout):
    """asyncio's poll timeout (seconds or None) as libuv milliseconds."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return math.ceil(timeout * 1000.0)
