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
its own C handler and fight Python's over the same signals (GUIDE §3.3).
"""
import signal
import socket
import threading

from . import poll as _poll


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


class SignalMixin:
    """Loop methods for signals: the wake-up fd while running, and the
    ``add_signal_handler`` API (filled in by the signals issue)."""

    _signal_wakeup = None

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

    def _dispatch_signal(self, signum):
        """A signal number arrived on the wake-up socket."""

    def _signals_close(self):
        if self._signal_wakeup is not None:
            self._signal_wakeup.close()
            self._signal_wakeup = None
