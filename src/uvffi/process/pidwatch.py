"""Children that libuv does not spawn: started by posix_spawn (process/spawn.py's
fast path) or by ``subprocess.Popen`` (popenspawn.py), and watched here by
pid, with the interface of process/handle.py's ``ProcessHandle`` (``pid``,
``returncode``, ``on_exit``, ``reaped``, ``kill``, ``loop``).

On Linux a pidfd, polled by libuv, becomes readable when the child exits
and we reap it then (``PidfdChild``); where there are no pidfds (macOS, old
kernels, seccomp filters) a thread blocks in ``waitpid`` instead
(``ThreadWatchedChild``), as asyncio's ThreadedChildWatcher does.
"""
import os
import threading

from ..handles.poll import Poll, READABLE


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def _report_later(child, returncode):
    """The on_exit callback of a child reaped by ChildProcess, next iteration."""
    callback, child.on_exit = child.on_exit, None
    if callback is not None and not child.loop.is_closed():
        child.loop.call_soon(callback, returncode)


class _PidfdPoll(Poll):
    """The poll handle on a child's pidfd; the pidfd is ours to close once
    libuv has let go of it."""

    __slots__ = ("child",)

    def _on_close(self):
        super()._on_close()
        os.close(self.fd)

    def _close_for_loop_shutdown(self):
        self.child._loop_closing()
        self.close()


class PidfdChild:
    """A child started by posix_spawn: its pidfd becomes readable when it
    exits; we reap it then.  Same interface as ProcessHandle."""

    __slots__ = ("loop", "pid", "returncode", "on_exit", "_poll")

    def __init__(self, loop, pid, pidfd):
        self.loop = loop
        self.pid = pid
        self.returncode = None
        self.on_exit = None
        try:
            poll = _PidfdPoll(loop, pidfd, self._on_ready)
        except BaseException:
            os.close(pidfd)
            raise
        poll.child = self
        self._poll = poll
        poll.start(READABLE)

    def _on_ready(self, status, events):
        try:
            wpid, wstatus = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # reaped behind our back (waitpid(-1) elsewhere in the process):
            # asyncio's child watchers report 255 then
            wpid, returncode = self.pid, 255
        else:
            if wpid == 0:
                return  # not an exit after all
            returncode = os.waitstatus_to_exitcode(wstatus)
        self.returncode = returncode
        self._poll.close()
        callback, self.on_exit = self.on_exit, None
        if callback is not None:
            callback(returncode)

    def reaped(self, returncode):
        """As ProcessHandle.reaped: ChildProcess has reaped the child."""
        if self.returncode is not None:
            return
        self.returncode = returncode
        if self._poll is not None:
            self._poll.close()
        _report_later(self, returncode)

    def kill(self, signum):
        # Not reaped yet, so the pid is still this child's (maybe a zombie).
        if self.returncode is not None:
            return False
        os.kill(self.pid, signum)
        return True

    def _loop_closing(self):
        if self.returncode is None:
            threading.Thread(target=_reap, args=(self.pid,), daemon=True,
                             name="uvffi-reaper-%d" % self.pid).start()


class ThreadWatchedChild(PidfdChild):
    """A child watched by a thread blocked in waitpid: where pidfd_open
    fails, or does not exist."""

    __slots__ = ()

    def __init__(self, loop, pid):
        self.loop = loop
        self.pid = pid
        self.returncode = None
        self.on_exit = None
        self._poll = None
        threading.Thread(target=self._wait, daemon=True,
                         name="uvffi-waitpid-%d" % pid).start()

    def _wait(self):
        try:
            _, status = os.waitpid(self.pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            returncode = 255
        try:
            self.loop.call_soon_threadsafe(self._done, returncode)
        except RuntimeError:
            pass  # loop closed: the child is reaped all the same

    def _done(self, returncode):
        if self.returncode is not None:
            return  # ChildProcess reaped it first (reaped())
        self.returncode = returncode
        callback, self.on_exit = self.on_exit, None
        if callback is not None:
            callback(returncode)

    def _loop_closing(self):
        pass


def watch_pid(loop, pid, pidfd_open):
    """The watcher of child *pid* (not reaped by anyone yet): a PidfdChild
    when *pidfd_open* (the shim's, or None) gives a pidfd, else a thread."""
    pidfd = pidfd_open(pid) if pidfd_open is not None else -1
    if pidfd < 0:
        return ThreadWatchedChild(loop, pid)
    return PidfdChild(loop, pid, pidfd)
