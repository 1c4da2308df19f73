"""Embedding: asyncio on a libuv loop that someone else runs, and our own
``uv_loop_t`` handed to other C code.

Guest mode (``Loop.from_uv_loop(ptr)`` + ``loop.start_guest()``): the host
keeps calling ``uv_run`` on its own loop and asyncio makes progress inside
it.  For all of guest mode the guest is this thread's running loop, with
its async-generator hooks installed, as during ``run_forever``.  Four
handles of ours on the host's loop (handles/guest.py):

* a ``uv_prepare_t`` runs one asyncio step (CPython's own
  ``BaseEventLoop._run_once`` with a selector that never blocks) before the
  host polls for I/O;
* a ``uv_check_t`` runs one more step right after the poll, so callbacks
  queued by I/O run in the same host iteration;
* a ``uv_idle_t`` (C no-op callback) is active only while asyncio's ready
  queue is not empty, so that the host's poll does not block;
* a ``uv_timer_t`` is armed for the earliest ``call_later`` deadline, so
  that the poll wakes up in time; the due callbacks run in the next step.

The prepare and check callbacks are C functions that call Python only when
the guest's "wanted" flag is set: an idle guest costs the host's
iterations no Python call.  A step that leaves asyncio idle clears the flag
and listens for work arriving from outside the steps (_guest_listen); each
way it can arrive sets the flag.

The contract (ownership, threading, lifetime) is in docs/embedding.md.
"""
import math
import sys
import threading
from asyncio import events

from ._uv import ffi, lib
from .handles.guest import GuestHandles
from . import guestrun

try:  # the C-API side of PyCapsule support (see _binding/capsule.c)
    from . import _capsule
except ImportError:  # pragma: no cover - only in a half-built tree
    _capsule = None

# the life-cycle API (asyncio.run for a guest), public here
GuestRun = guestrun.GuestRun
start = guestrun.start

# asyncio caps a poll at one day (base_events.MAXIMUM_SELECT_TIMEOUT)
_MAX_TIMEOUT = 24 * 3600

# Strong references that outlive Loop objects on purpose: the host's loop
# points into memory of ours, so GC must not free it behind the host's back.
_foreign_loops = set()   # loops over a host's uv_loop_t, until close()
_guest_loops = set()     # loops in guest mode (owned ones included)
_draining = set()        # closed loops whose handles wait for the host's uv_run

_get_ident = threading.get_ident
_local = threading.local()  # .guest: the loop in guest mode in this thread

_POINTER_LIMIT = 1 << (8 * ffi.sizeof("void *"))


def uv_loop_address(uv_loop):
    """The address of a ``uv_loop_t`` given as an int, a PyCapsule named
    ``"uv_loop_t"`` or a cffi pointer (of any FFI instance), as an int.

    Raises ValueError for a NULL or out-of-range pointer or a capsule with
    another name, TypeError for anything else.  Whether the loop is open is
    checked by :meth:`Loop.from_uv_loop`.
    """
    if isinstance(uv_loop, int) and not isinstance(uv_loop, bool):
        address = uv_loop
    elif isinstance(uv_loop, ffi.CData):
        if ffi.typeof(uv_loop).kind != "pointer":
            raise TypeError("expected a pointer to uv_loop_t, got cdata %r"
                            % (ffi.typeof(uv_loop).cname,))
        address = int(ffi.cast("uintptr_t", uv_loop))
    elif _capsule is not None and _capsule.is_capsule(uv_loop):
        address = _capsule.address(uv_loop)  # ValueError on another name
    else:
        raise TypeError("expected a uv_loop_t pointer as an int, a PyCapsule "
                        "named 'uv_loop_t' or a cffi pointer, got %s"
                        % type(uv_loop).__name__)
    if address == 0:
        raise ValueError("uv_loop_t pointer is NULL")
    if not 0 < address < _POINTER_LIMIT:
        raise ValueError("%r is not a valid pointer" % (address,))
    return address


def pending_close_count():
    """Handles and requests of closed loops that still wait for their host
    to run its loop (their memory is kept until libuv is done with it)."""
    return sum(len(d.handles) + len(d.requests) for d in list(_draining))


class _GuestThreadError(RuntimeError):
    """The host ran the loop in another thread than start_guest()'s."""


class _GuestSelector:
    """``loop._selector`` during guest mode: the host does the polling, so
    ``_run_once`` must never block or call ``uv_run`` (libuv forbids
    re-entering it)."""

    __slots__ = ()

    def select(self, timeout=None):
        return ()

    def close(self):
        pass


_GUEST_SELECTOR = _GuestSelector()


def _class_defining(cls, name):
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    raise TypeError("%s has no %s" % (cls.__name__, name))


class EmbeddingMixin:
    """Loop methods for guest mode and for handing out our uv_loop_t."""

    _LOOP_STATE = {  # the loop's slots for this concern (loop.py)
        "_guest": None,
        "_guest_exc": None,
        "_uv_source": None,
    }

    # -- construction over a foreign loop -------------------------------------

    @classmethod
    def from_uv_loop(cls, uv_loop):
        """A loop over the host's ``uv_loop_t`` (int address, PyCapsule
        named ``"uv_loop_t"`` or cffi pointer).  The host keeps owning it:
        ``close()`` closes only this loop's handles.

        The new loop is idle until :meth:`start_guest` (the host runs it) or
        ``run_until_complete``/``run_forever`` (uvffi runs it; the host must
        not be inside ``uv_run`` then).  ``cls.__init__`` is not called.
        """
        address = uv_loop_address(uv_loop)
        ptr = ffi.cast("uv_loop_t *", address)
        if not lib.uvffi_loop_looks_open(ptr):
            raise ValueError("the uv_loop_t at 0x%x is closed" % address)
        self = cls.__new__(cls)
        # Loop.__init__ minus the creation of an owned uv_loop_t.
        super(_class_defining(cls, "_uv_setup"), self).__init__()
        self._uv_setup(ptr)
        self._uv_source = uv_loop  # a capsule may keep its owner alive
        # The threadsafe wake-up must not keep the host's uv_run(DEFAULT)
        # alive forever; run_forever and guest mode take a reference.
        self._uv_async.ref(False)
        _foreign_loops.add(self)
        return self

    # -- pointers for other C extensions ---------------------------------------

    @property
    def uv_loop_capsule(self):
        """This loop's ``uv_loop_t *`` in a PyCapsule named ``"uv_loop_t"``
        (``loop.uv_loop_t`` is the same pointer as an int).  The capsule
        keeps this Loop object, hence the ``uv_loop_t`` memory, alive."""
        self._check_uv_open()
        if _capsule is None:
            raise RuntimeError("uvffi._capsule was not built; "
                               "use loop.uv_loop_t (an int) instead")
        return _capsule.new(int(ffi.cast("uintptr_t", self._uv_loop)), self)

    # -- guest mode: public API -------------------------------------------------

    def start_guest(self, *, keep_alive=True):
        """Run this loop inside whoever calls ``uv_run`` on its uv_loop_t,
        from this thread, until :meth:`stop_guest` or ``loop.stop()``.

        With ``keep_alive`` (the default) guest mode keeps the host's
        ``uv_run(UV_RUN_DEFAULT)`` from returning, as a server handle would;
        without it only pending timers, ready callbacks and I/O handles do.
        """
        self._check_closed()
        self._check_uv_open()
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        other = getattr(_local, "guest", None)
        if other is not None and other is not self:
            raise RuntimeError("another uvffi loop is in guest mode in this "
                               "thread; only one loop can run per thread")
        if self._guest_exc is not None or self._fatal is not None:
            raise RuntimeError("stop_guest() must report the previous "
                               "guest-mode error first")
        if events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another "
                               "loop is running")
        g = self._guest
        if g is None:
            g = self._guest = GuestHandles(self)
        thread_id = threading.get_ident()
        g.saved_selector = self._selector
        self._selector = _GUEST_SELECTOR
        self._uv_nowait = None  # _run_once must not poll libuv itself either
        self._thread_id = thread_id
        self._stopping = False
        self._set_coroutine_origin_tracking(self._debug)
        _local.guest = self
        _guest_loops.add(self)
        # The async-generator hooks stay installed for all of guest mode,
        # as run_forever installs them for its whole run: swapping them at
        # every host iteration was most of a guest step's cost on PyPy.
        g.prev_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        g.active = True
        g.paused = False
        if not self._uv_owned:
            self._uv_async.ref(keep_alive)
        try:
            self._guest_enter()
            g.start(keep_alive)
            # Ctrl-C while the host sleeps in its poll (main thread only).
            g.signals = self._signals_enter_run()
            self._guest_arm()
            # the host's first iteration runs Python, idle or not: it is
            # where a host that runs uv_run in another thread is caught
            g.wanted[0] = 1
        except BaseException:
            self._guest_leave()
            raise

    def stop_guest(self):
        """Leave guest mode; re-raise a KeyboardInterrupt/SystemExit (or
        other BaseException) that a callback raised while the host was
        running the loop.  Called from one of this loop's own callbacks it
        acts like ``loop.stop()``: guest mode ends after the current step.
        No-op (apart from re-raising) when guest mode is off."""
        g = self._guest
        if g is not None and g.active:
            if threading.get_ident() != self._thread_id:
                raise RuntimeError("stop_guest() must be called from the "
                                   "thread that called start_guest()")
            if g.in_step:
                self.stop()
                return
            self._guest_leave()
        exc = self._guest_exc or self._fatal
        self._guest_exc = self._fatal = None
        if exc is not None:
            raise exc

    def is_guest_running(self):
        """True between start_guest() and the end of guest mode (also while
        guest mode is paused by an error that stop_guest() will raise)."""
        return self._guest is not None and self._guest.active

    @property
    def guest_exception(self):
        """The KeyboardInterrupt/SystemExit/... that stopped guest mode, or
        None; :meth:`stop_guest` raises and clears it."""
        return self._guest_exc or self._fatal

    # -- run_forever on a foreign loop --------------------------------------------

    def run_forever(self):
        if self.is_guest_running():
            raise RuntimeError("This event loop is already running")
        if self._uv_owned or self._uv_loop is None:
            return super().run_forever()
        # Our async handle is unreferenced on a host's loop; while we drive
        # it ourselves it must keep uv_run(ONCE) blocking, or an idle
        # run_forever would spin.
        self._uv_async.ref(True)
        try:
            return super().run_forever()
        finally:
            self._uv_async.ref(False)

    # -- guest mode: callbacks from the host's uv_run ------------------------------
    # (their C side calls them only while the wanted flag is set)

    def _guest_on_prepare(self):
        # Runs only while asyncio was idle at the end of the last step (the
        # prepare handle is stopped while it is busy, see _guest_arm): work
        # that arrived since (a timer, host code between uv_run calls) runs
        # before the poll can block.
        g = self._guest
        try:
            if g.active and not g.paused and self._guest_in_thread():
                self._guest_step()
                # The host polls next: what it reads for us waits behind
                # the callbacks queued by now, as _run_once orders a poll
                # (the check step delivers it).
                self._uv_defer_io = bool(self._ready)
        except BaseException as exc:  # noqa: BLE001 - cannot cross the host
            self._uv_defer_io = False
            self._guest_fail(exc)

    def _guest_on_check(self):
        self._uv_defer_io = False
        g = self._guest
        try:
            if g.active and not g.paused and self._guest_in_thread():
                self._guest_step()
                if g.busy and g.active and self._ready:
                    # the step the stopped prepare handle would run before
                    # the next poll: one poll per two steps, as with
                    # prepare, for one crossing instead of two
                    self._guest_step()
                if g.busy and g.active:
                    self._uv_defer_io = bool(self._ready)
        except BaseException as exc:  # noqa: BLE001 - cannot cross the host
            self._uv_defer_io = False
            self._guest_fail(exc)

    def _guest_in_thread(self):
        if _get_ident() != self._thread_id:
            raise _GuestThreadError(
                "guest mode was started in thread %s but the host ran the "
                "loop in thread %s" % (self._thread_id, _get_ident()))
        return True

    def _guest_enter(self):
        """Become the running loop of this thread, for all of guest mode.
        (uvffi's error routing finds the guest as the running loop: no
        driving loop is recorded.)"""
        g = self._guest
        if g.entered:
            return
        g.prev_loop = events._get_running_loop()
        events._set_running_loop(self)
        g.entered = True

    def _guest_exit(self):
        g = self._guest
        if g is None or not g.entered:
            return
        g.entered = False
        events._set_running_loop(g.prev_loop)
        g.prev_loop = None

    def _guest_step(self):
        """One asyncio iteration without blocking, then arm idle/timer."""
        g = self._guest
        if self._fatal is not None:  # e.g. Ctrl-C seen by an I/O callback
            self._guest_raise_fatal()
        g.in_step = True
        if g.listening:  # within a step, the step's end looks at the queues
            self._guest_unlisten()
        try:
            self._run_once()
        finally:
            g.in_step = False
        if self._fatal is not None:
            self._guest_raise_fatal()
        if self._stopping:  # loop.stop(): guest mode ends, like run_forever
            self._guest_leave()
            return
        self._guest_arm()

    def _guest_raise_fatal(self):
        # A BaseException that uvffi's callback error routing stored on the
        # loop (it has already called uv_stop) ends the step like one raised
        # by the step itself.
        fatal = self._fatal
        if fatal is not None:
            self._fatal = None
            raise fatal

    def _guest_arm(self):
        """Make the host's next poll return when asyncio has work, and
        its iterations run Python only then."""
        g = self._guest
        ready = self._ready
        if not ready:
            # Listen first, then clear the flag, then look again: another
            # thread's call_soon_threadsafe either lands before the look
            # or sets the flag after it was cleared.
            if not g.listening:
                self._guest_listen()
            g.wanted[0] = 0
        if ready:
            if not g.busy:  # (busy, the flag stays 1 and nobody listens)
                g.wanted[0] = 1
                if g.listening:
                    self._guest_unlisten()
                lib.uvffi_idle_start_noop(g.idle.ptr)
                g.prepare.stop()
                g.busy = True
            return
        if g.busy:
            g.idle.stop()
            g.prepare.start()
            g.busy = False
        q = self._scheduled
        when = q.peek_when()
        if when is not None:
            delay = min(when - self.time(), _MAX_TIMEOUT)
            ms = math.ceil(delay * 1000.0) if delay > 0 else 0
            g.timer.start(ms)
            g.timer_on = True
        elif g.timer_on:
            g.timer.stop()
            g.timer_on = False

    def _guest_listen(self):
        """Idle: every way work can reach asyncio outside its steps sets
        the wanted flag.  call_soon (the loop's own appends), appends to
        ``loop._ready`` by anyone (asyncio's call_soon_threadsafe, foreign
        handles) and timers added set it here; stop() and a fatal error in
        a callback set it themselves (_guest_want)."""
        g = self._guest
        wanted = g.wanted
        self._uv_ready_append = g.append_and_want
        self._ready.wake = wanted
        self._scheduled.set_watch(wanted)
        g.listening = True

    def _guest_unlisten(self):
        g = self._guest
        g.listening = False
        self._uv_ready_append = g.plain_append
        self._ready.wake = None
        self._scheduled.clear_watch()

    def _guest_want(self):
        """Have the host's next iteration run an asyncio step."""
        g = self._guest
        if g is not None and g.active:
            g.wanted[0] = 1

    def stop(self):
        super().stop()
        self._guest_want()

    def _guest_rearm(self):
        """After work was queued from outside the guest's steps (host code
        between uv_run calls): make the host's next iteration run it even
        when nothing else keeps the host's loop alive."""
        g = self._guest
        if g is not None and g.active and not g.paused and not g.in_step:
            self._guest_arm()

    def _guest_fail(self, exc):
        """A BaseException cannot propagate through the host's C code: keep
        it for stop_guest(), pause guest mode and ask the host's uv_run to
        return (uv_stop).  Exceptions of Exception type that escaped the
        step (bugs of ours) go to the exception handler instead."""
        if isinstance(exc, Exception) and not isinstance(exc, _GuestThreadError):
            try:
                self.call_exception_handler({
                    "message": "Unhandled exception in a uvffi guest step",
                    "exception": exc})
                return
            except BaseException as again:  # noqa: BLE001
                exc = again
        if self._guest_exc is None:
            self._guest_exc = exc
        self._uv_defer_io = False
        g = self._guest
        if g is not None:
            g.paused = True
            g.pause()
            if g.listening:
                self._guest_unlisten()
            if g.entered and threading.get_ident() == self._thread_id:
                self._guest_exit()
        if self._uv_loop is not None:
            lib.uv_stop(self._uv_loop)

    def _guest_leave(self):
        """End guest mode (idempotent); handles stay for a later start."""
        g = self._guest
        if g is None or not g.active:
            return
        g.active = False
        g.paused = False
        g.pause()
        if g.listening:
            self._guest_unlisten()
        self._uv_defer_io = False  # (set between prepare and check)
        self._guest_exit()
        if g.prev_hooks is not None:
            sys.set_asyncgen_hooks(*g.prev_hooks)
            g.prev_hooks = None
        if g.saved_selector is not None:
            self._selector = g.saved_selector
            self._uv_nowait = self._uv_loop if self._uv_owned else None
            g.saved_selector = None
        if not self._uv_owned and self._uv_loop is not None:
            self._uv_async.ref(False)
        self._signals_leave_run(g.signals)
        g.signals = False
        self._stopping = False
        self._thread_id = None
        self._set_coroutine_origin_tracking(False)
        if getattr(_local, "guest", None) is self:
            _local.guest = None
        _guest_loops.discard(self)

    # -- close -----------------------------------------------------------------------

    def _embedding_teardown(self):
        """Close-time work for a loop over a host's uv_loop_t: our handles
        have been asked to close, but their close callbacks run only when the
        host runs its loop again.  Until then their memory must stay alive
        whatever happens to this Loop object, so the sets that hold them move
        to a module-level registry that empties itself as the callbacks fire.
        The host's loop itself is never closed or freed here."""
        self._guest = None
        if self._uv_handles or self._uv_requests:
            drain = _Drain(self)
            self._uv_handles = drain.handles
            self._uv_requests = drain.requests
            _draining.add(drain)
        _foreign_loops.discard(self)


class _DrainSet(set):
    """``loop._uv_handles``/``_uv_requests`` of a closed foreign loop: tells
    its _Drain when the last close/completion callback has run."""

    def __init__(self, items, drain):
        super().__init__(items)
        self.drain = drain

    def discard(self, item):
        set.discard(self, item)
        if not self:
            self.drain.check()

    def remove(self, item):
        set.remove(self, item)
        if not self:
            self.drain.check()


class _Drain:
    __slots__ = ("loop", "handles", "requests", "__weakref__")

    def __init__(self, loop):
        self.loop = loop
        self.handles = _DrainSet(loop._uv_handles, self)
        self.requests = _DrainSet(loop._uv_requests, self)

    def check(self):
        if not self.handles and not self.requests:
            _draining.discard(self)
