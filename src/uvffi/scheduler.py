"""The hot scheduling paths: call_soon, call_at/call_later and one loop
iteration, with BaseEventLoop's behaviour and fewer Python steps.

Measured (see benchmarks/): with BaseEventLoop's own versions, a chain of
call_soon ran at 0.77x asyncio's speed, because every iteration paid for the
generic ``_run_once`` body, a ``select`` wrapper and thread-local
bookkeeping.  What differs from CPython's code, and why:

- Timers wait in a ``TimerQueue`` (timerqueue.py: millisecond buckets) and
  not in a heap of handles: asyncio's heap calls ``TimerHandle.__lt__`` in
  Python ~log2(n) times per push and pop.  Timers with equal deadlines run
  in the order they were scheduled.
- Debug-mode checks (thread, callback type, slow callbacks, source
  tracebacks) are exactly BaseEventLoop's, but cost nothing when debug is off.
"""
import contextvars
import functools
import heapq
import math
import sys
import time
from asyncio import base_events, events, format_helpers, futures

from ._uv import lib
from .timerqueue import TimerQueue

_heappush = heapq.heappush
_monotonic = time.monotonic
_run_nowait = lib.uvffi_run_nowait
_copy_context = contextvars.copy_context
_new_object = object.__new__
_PYPY = sys.implementation.name == "pypy"
_MAXIMUM_SELECT_TIMEOUT = base_events.MAXIMUM_SELECT_TIMEOUT
_MIN_SCHEDULED = base_events._MIN_SCHEDULED_TIMER_HANDLES
_MIN_CANCELLED_FRACTION = base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION
_format_handle = base_events._format_handle
logger = base_events.logger


# Lean handles for the non-debug fast path.  asyncio's __init__ asks the loop
# for its debug flag on every handle; these are only made when debug is off,
# so they skip that (and keep asyncio's class names in their repr).
class Handle(events.Handle):
    __slots__ = ()

    def __init__(self, callback, args, loop, context=None):
        if context is None:
            context = _copy_context()
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class TimerHandle(events.TimerHandle):
    # Repeats Handle's assignments instead of calling Handle.__init__: one
    # Python call less for every call_later.
    __slots__ = ()

    def __init__(self, when, callback, args, loop, context=None):
        if context is None:
            context = _copy_context()
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False


def _debug_timer_handle(when, callback, args, loop, context):
    """A TimerHandle with asyncio's full (debug-mode) initialisation."""
    timer = TimerHandle.__new__(TimerHandle)
    events.TimerHandle.__init__(timer, when, callback, args, loop, context)
    return timer


_LEAN = (Handle, TimerHandle)


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

    def __init__(self):
        super().__init__()
        self._scheduled = TimerQueue()  # instead of BaseEventLoop's list
        # Every Future asks its loop get_debug() (the C Future's __init__
        # does), and most come from create_future(): as partials of C
        # callables these two cost no Python frame.  Same results, read
        # live (set_debug still works).  Measured: create_future() 257 ->
        # 149 ns on CPython; on PyPy the partials are slower than the JIT'd
        # methods (157 against 65 ns).  Not where a subclass overrides them.
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
            return super().call_soon(callback, *args, context=context)
        # Handle.__init__, inlined: creating the handle through its class
        # would enter the interpreter again for __init__ (a C->Python call,
        # also when call_soon itself is called from C, by a Future or Task)
        handle = _new_object(Handle)
        handle._context = _copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        self._ready.append(handle)
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
        timer = _new_object(TimerHandle)
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
        if q.heap is None:
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
            timer = TimerHandle(when, callback, args, self, context)
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
        ready = self._ready
        q = self._scheduled
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

        if timeout == 0 and self._uv_nowait is not None:
            # UVSelector.select(0), inlined: one frame less per iteration
            _run_nowait(self._uv_nowait)
            if self._fatal is not None:
                exc, self._fatal = self._fatal, None
                raise exc
        else:
            self._selector.select(timeout)

        if q.n:
            q.move_due(ready, _monotonic() + self._clock_resolution)

        # Run the callbacks that are ready now; those they schedule wait for
        # the next iteration (after another poll), as in asyncio.
        ntodo = len(ready)
        if self._debug:
            self._run_ready_debug(ntodo)
            return
        popleft = ready.popleft
        for _ in range(ntodo):
            handle = popleft()
            if handle._cancelled:
                continue
            if handle.__class__ not in _LEAN:
                handle._run()
                continue
            # Handle._run, inlined: one Python frame less per callback
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

    def _run_ready_debug(self, ntodo):
        ready = self._ready
        for _ in range(ntodo):
            handle = ready.popleft()
            if handle._cancelled:
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


def timeout_to_ms(timeout):
    """asyncio's poll timeout (seconds or None) as libuv milliseconds."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return math.ceil(timeout * 1000.0)
