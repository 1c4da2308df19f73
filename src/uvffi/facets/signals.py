"""Signals: waking a loop that sleeps inside libuv.

Python runs signal handlers only between bytecodes, and libuv retries
``epoll_wait`` after EINTR, so a loop asleep in ``uv_run`` would not notice
Ctrl-C.  As asyncio does, we give Python a wake-up socket
(``signal.set_wakeup_fd``); libuv polls its other end.  When a signal
arrives the poll callback runs Python code, Python's own handler runs (the
default SIGINT handler raises KeyboardInterrupt, which the callback machinery
stores and re-raises from ``run_forever``), and the signal numbers read from
the socket are dispatched to ``add_signal_handler`` callbacks.

libuv's ``uv_signal_t`` is not used for this on purpose: it would install
its own C handler and fight Python's over the same signals.
SIGCHLD is the exception: libuv already owns it (its handler reaps the
children ``uv_spawn`` started, for every loop of the process), so a
user's SIGCHLD handler is one more libuv watcher of it (``SignalWatch``)
instead of Python's handler, which would replace libuv's and silence those
exit reports.
"""
import errno
import signal
import socket
import sys
import threading
import warnings
from asyncio import coroutines, events
from asyncio.log import logger

from ..handles import poll as _poll
from .._uv import ffi, lib
from ..handles.callbacks import def_extern, report
from ..handles.errors import exception_from_uv
from ..handles.core import UVHandle

_SIGCHLD = getattr(signal, "SIGCHLD", None)


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


class SignalWakeup:
    """The wake-up socket pair of one loop and its libuv poll handle."""

    def __init__(self, loop):
        self._loop = loop
        self.rsock, self.wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self.wsock.setblocking(False)
        self._poll = _poll.Poll(loop, self.rsock.fileno(), self._on_readable)
        self._poll.ref(False)  # must not keep uv_run(DEFAULT) alive
        self._poll.start(_poll.READABLE)
        self._installs = 0
        self._saved_fd = -1

    def install(self):
        """Make our socket Python's wake-up fd (main thread only).  Nested
        calls are counted; the previous fd comes back on the last uninstall."""
        if self._installs == 0:
            self._saved_fd = signal.set_wakeup_fd(self.wsock.fileno(),
                                                  warn_on_full_buffer=False)
        self._installs += 1

    def uninstall(self):
        if self._installs == 0:
            return
        self._installs -= 1
        if self._installs == 0:
            try:
                signal.set_wakeup_fd(self._saved_fd)
            except ValueError:  # not the main thread any more, or fd gone
                pass
            self._saved_fd = -1

    def _on_readable(self, status, events):
        signums = []
        while True:
            try:
                data = self.rsock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not data:
                break
            signums.extend(data)
        dispatch = self._loop._dispatch_signal
        for signum in signums:
            dispatch(signum)

    def close(self):
        while self._installs:
            self.uninstall()
        self._poll.close()
        self.rsock.close()
        self.wsock.close()


class SignalWatch(UVHandle):
    """A ``uv_signal_t``: libuv's handler of *signum* tells this loop of
    each delivery (its callback gets the signal number).  Unreferenced: a
    handler does not keep ``uv_run`` alive, as with asyncio's loop."""

    __slots__ = ("callback",)
    CTYPE = "uv_signal_t *"

    def __init__(self, loop, signum, callback):
        super().__init__(loop)
        self.callback = callback
        self._init_done(lib.uv_signal_init(loop._uv_loop, self.ptr))
        rc = lib.uv_signal_start(self.ptr, lib._uvffi_signal_cb, signum)
        if rc < 0:
            self.close()
            raise exception_from_uv(rc)
        self.ref(False)


@def_extern("_uvffi_signal_cb")
def _signal_cb(handle, signum):
    obj = ffi.from_handle(handle.data)
    try:
        obj.callback(signum)
    except Exception as exc:
        report(obj.loop, exc)


def _sighandler_noop(signum, frame):
    """Python-level handler of a signal given to add_signal_handler: the
    C-level handler has already written the number to the wake-up fd, which
    is all we need."""


class SignalMixin:
    """Loop methods for signals: the wake-up fd while running (or while
    handlers exist), and asyncio's ``add_signal_handler`` API."""

    _LOOP_STATE = {  # the loop's slots for this concern (loop.py)
        "_signal_wakeup": None,
        "_signal_handlers": None,     # signum -> asyncio.Handle
        "_signal_wakeup_held": False,  # one install() on behalf of the handlers
        "_sigchld_watch": None,  # SignalWatch of a user's SIGCHLD handler
    }

    def _signals_enter_run(self):
        if not _in_main_thread():
            return False
        if self._signal_wakeup is None:
            self._signal_wakeup = SignalWakeup(self)
        self._signal_wakeup.install()
        return True

    def _signals_leave_run(self, installed):
        if installed and self._signal_wakeup is not None:
            self._signal_wakeup.uninstall()

    # -- add_signal_handler API (behaviour of asyncio's _UnixSelectorEventLoop)

    def add_signal_handler(self, sig, callback, *args):
        """Add a handler for a signal.  UNIX only.

        Raise ValueError if the signal number is invalid or uncatchable.
        Raise RuntimeError if there is a problem setting up the handler.
        """
        if sys.platform == "win32":
            raise NotImplementedError  # as asyncio's loops on Windows
        if (coroutines.iscoroutine(callback) or
                coroutines.iscoroutinefunction(callback)):
            raise TypeError("coroutines cannot be used "
                            "with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        # The wake-up fd must stay set while a handler exists, even when the
        # loop is not running: Python only writes the signal number there.
        # Doing it first also refuses other threads, as asyncio does.
        try:
            self._signals_hold_wakeup()
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))

        handle = events.Handle(callback, args, self, None)
        handlers = self._signal_handlers
        if handlers is None:
            handlers = self._signal_handlers = {}
        handlers[sig] = handle
        if sig == _SIGCHLD:
            self._sigchld_watch_start()
            return
        try:
            signal.signal(sig, _sighandler_noop)
            # SA_RESTART: fewer EINTRs in code that does not expect them
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del handlers[sig]
            if not handlers:
                self._signals_release_wakeup()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise

    def remove_signal_handler(self, sig):
        """Remove a handler for a signal.  UNIX only.

        Return True if a signal handler was removed, False if not.
        """
        if sys.platform == "win32":
            raise NotImplementedError
        self._check_signal(sig)
        handlers = self._signal_handlers
        if not handlers or sig not in handlers:
            return False
        del handlers[sig]
        if sig == _SIGCHLD:
            # libuv restores SIG_DFL when its last SIGCHLD watcher goes,
            # and keeps its handler while a loop still watches children
            self._sigchld_watch_stop()
            if not handlers:
                self._signals_release_wakeup()
            return True
        handler = (signal.default_int_handler if sig == signal.SIGINT
                   else signal.SIG_DFL)
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        if not handlers:
            self._signals_release_wakeup()
        return True

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _signals_hold_wakeup(self):
        if not _in_main_thread():
            # what set_wakeup_fd says off the main thread; asyncio turns it
            # into RuntimeError
            raise ValueError("set_wakeup_fd only works in main thread "
                             "of the main interpreter")
        if self._signal_wakeup_held:
            return
        if self._signal_wakeup is None:
            self._signal_wakeup = SignalWakeup(self)
        self._signal_wakeup.install()
        self._signal_wakeup_held = True

    def _signals_release_wakeup(self):
        if self._signal_wakeup_held:
            self._signal_wakeup_held = False
            if self._signal_wakeup is not None:
                try:
                    self._signal_wakeup.uninstall()
                except (ValueError, OSError) as exc:
                    logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _sigchld_watch_start(self):
        if self._sigchld_watch is None:
            try:
                self._sigchld_watch = SignalWatch(self, _SIGCHLD,
                                                  self._dispatch_signal)
            except BaseException:
                del self._signal_handlers[_SIGCHLD]
                if not self._signal_handlers:
                    self._signals_release_wakeup()
                raise

    def _sigchld_watch_stop(self):
        watch, self._sigchld_watch = self._sigchld_watch, None
        if watch is not None:
            watch.close()

    def _dispatch_signal(self, signum):
        """A signal number arrived on the wake-up socket, or from libuv
        for SIGCHLD (loop thread)."""
        handlers = self._signal_handlers
        if not handlers or not signum:
            return
        handle = handlers.get(signum)
        if handle is None:
            return  # not ours (or removed since it was raised)
        if handle._cancelled:
            self.remove_signal_handler(signum)
        else:
            self._uv_ready_append(handle)

    def _signals_close(self):
        # Loop.close: our handlers go first (asyncio does this in close()),
        # then the wake-up socket.
        if self._signal_handlers:
            if sys.is_finalizing():
                warnings.warn(f"Closing the loop {self!r} "
                              f"on interpreter shutdown "
                              f"stage, skipping signal handlers removal",
                              ResourceWarning, source=self)
                self._signal_handlers.clear()
            else:
                for sig in list(self._signal_handlers):
                    try:
                        self.remove_signal_handler(sig)
                    except (ValueError, OSError, RuntimeError) as exc:
                        # e.g. closed outside the main thread: asyncio would
                        # raise here, but Loop.close must still release the
                        # libuv handles, so report instead
                        self._signal_handlers.pop(sig, None)
                        self.call_exception_handler({
                            "message": f"cannot restore the handler of "
                                       f"signal {sig} on loop close",
                            "exception": exc})
                if not self._signal_handlers:
                    self._signals_release_wakeup()
        self._sigchld_watch_stop()
        self._signal_wakeup_held = False
        if self._signal_wakeup is not None:
            self._signal_wakeup.close()
            self._signal_wakeup = None
