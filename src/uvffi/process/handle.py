"""``uv_process_t``: a child started by ``uv_spawn`` (spawn.py), reaped by
libuv, with libuv's exit callback."""
import sys
import threading

from .._uv import ffi, lib
from ..handles.callbacks import def_extern, report
from ..handles.core import UVHandle
from ..handles.errors import exception_from_uv
from .pidwatch import _reap, _report_later

_WINDOWS = sys.platform == "win32"
_from_handle = ffi.from_handle


class ProcessHandle(UVHandle):
    """One ``uv_process_t``.  uv_spawn initialises it; from then on it lives
    in ``loop._uv_handles`` until its close callback, even if the spawn
    failed.  It is closed as soon as libuv has reported the exit."""

    __slots__ = ("pid", "returncode", "on_exit")
    CTYPE = "uv_process_t *"

    def __init__(self, loop):
        super().__init__(loop)
        self.pid = None
        self.returncode = None
        self.on_exit = None

    def spawn(self, options):
        """uv_spawn; returns libuv's code (0 or a negative error)."""
        # libuv may open fds (its SIGCHLD pipe) without its duplicate check
        self.loop._fdwatch_flush_idle()
        rc = lib.uv_spawn(self.loop._uv_loop, self.ptr, options)
        if ffi.cast("uv_handle_t *", self.ptr).type == lib.UV_PROCESS:
            # Initialised (even when the spawn failed): libuv has it in its
            # handle queue, so it must be closed before the loop can close.
            self.closing = False
            self.loop._uv_handles.add(self)
        if rc < 0:
            self.close()
            return rc
        self.pid = int(self.ptr.pid)
        return 0

    def _exited(self, exit_status, term_signal):
        # subprocess's convention: -N for a child killed by signal N
        self.returncode = -term_signal if term_signal else int(exit_status)
        self.close()  # libuv has reaped the child: nothing more to watch
        callback, self.on_exit = self.on_exit, None
        if callback is not None:
            callback(self.returncode)

    def reaped(self, returncode):
        """The child was reaped outside libuv (ChildProcess.wait/poll, as
        Popen does): closing the handle makes libuv forget the pid at once
        (it may be reused from now on), and the exit is reported one
        iteration later, as asyncio's child watcher would report it."""
        if self.closing or self.returncode is not None:
            return
        self.returncode = returncode
        self.close()
        _report_later(self, returncode)

    def kill(self, signum):
        """Signal the child while libuv still watches it (so the pid cannot
        have been reused).  Returns False once the child has been reaped."""
        if self.closing or self.returncode is not None:
            return False
        rc = lib.uv_process_kill(self.ptr, signum)
        if rc < 0:
            raise exception_from_uv(rc)
        return True

    def _close_for_loop_shutdown(self):
        pid = self.pid
        if self.returncode is None and pid is not None and not _WINDOWS:
            # Once closed, libuv no longer reaps this child: a thread does,
            # so that no zombie is left (asyncio's threaded watcher would).
            threading.Thread(target=_reap, args=(pid,), daemon=True,
                             name="uvffi-reaper-%d" % pid).start()
        self.close()


@def_extern("_uvffi_exit_cb")
def _exit_cb(handle, exit_status, term_signal):
    obj = _from_handle(handle.data)
    try:
        obj._exited(exit_status, term_signal)
    except Exception as exc:
        report(obj.loop, exc)
