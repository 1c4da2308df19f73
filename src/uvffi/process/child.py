"""``ChildProcess``: what ``transport.get_extra_info('subprocess')`` returns
for a uvffi subprocess, the object asyncio's ``BaseSubprocessTransport``
keeps as its ``_proc``.

On CPython's loop that is a ``subprocess.Popen``; this has the parts of it
that asyncio and its users call, with Popen's behaviour:

- ``poll()`` and ``wait(timeout=None)`` give the exit status as soon as the
  child has exited, before the loop has noticed, as Popen's do under
  asyncio's loop.  Where the platform has ``waitid`` they read it without
  reaping the child (``WNOWAIT``): the loop still reaps it and the
  transport gets the same status, with no race between threads.  Without
  ``waitid`` (macOS) they reap it as Popen does; the child's handle then
  stops watching at once, so libuv forgets the pid, and the transport
  hears of the exit one loop iteration later, as from asyncio's child
  watcher.  (Under asyncio, a Popen.wait() racing its child watcher may
  get 0 and leave the transport 255.)
- ``send_signal``/``terminate``/``kill`` do nothing once the exit is known.
- On Windows nothing is reaped: ``poll``/``wait`` read the exit code
  through a handle of the process, and libuv reports the exit as usual.
"""
import os
import signal
import subprocess
import sys
import threading
import time

_WINDOWS = sys.platform == "win32"
# CPython leaves os.waitid out on macOS
_HAVE_WAITID = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")


class ChildProcess:

    def __init__(self, handle, args, stdin, stdout, stderr):
        self._handle = handle  # ProcessHandle (handle.py) or PidfdChild (pidwatch.py)
        self.args = args
        self.pid = handle.pid
        self.returncode = None
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr

    def poll(self):
        if self.returncode is None:
            self._check_exit(block=False)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            self._check_exit(block=True)
            return self.returncode
        # Popen's way with a timeout: polls, at growing intervals
        end = time.monotonic() + timeout
        delay = 0.0005
        while not self._check_exit(block=False):
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            delay = min(delay * 2, remaining, 0.05)
            time.sleep(delay)
        return self.returncode

    def _check_exit(self, block):
        """Whether the child has exited; sets returncode when it has."""
        if self.returncode is not None:
            return True
        if _WINDOWS:
            code = _windows_exit_code(self.pid, block)
        elif _HAVE_WAITID:
            code = self._peek_exit(block)
        else:
            code = self._reap(block)
        if code is None:
            return False
        self.returncode = code
        return True

    def _peek_exit(self, block):
        """The exit status, read without reaping (WNOWAIT): the child stays
        a zombie, its pid cannot be reused, and the loop reaps it and tells
        the transport as usual.  Safe from any thread."""
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        try:
            info = os.waitid(os.P_PID, self.pid, flags)
        except ChildProcessError:
            return self._status_reaped_elsewhere()
        if info is None:
            return None  # still running
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # killed by a signal (subprocess's convention)

    def _reap(self, block):
        """Popen's waitpid, where there is no waitid (macOS): the child's
        handle is then told at once, so that libuv forgets the pid."""
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            code = self._status_reaped_elsewhere()
            self._tell_handle(255)  # what asyncio's child watchers report
            return code
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        self._tell_handle(code)
        return code

    def _status_reaped_elsewhere(self):
        # The loop reaped it meanwhile (another thread) and knows the status;
        # else someone else did (SIGCHLD ignored, a waitpid(-1)...), and
        # Popen says 0 then.
        code = self._handle.returncode
        return 0 if code is None else code

    def _tell_handle(self, returncode):
        handle = self._handle
        loop = handle.loop
        owner = getattr(loop, "_thread_id", None)
        if owner is None or owner == threading.get_ident():
            handle.reaped(returncode)
        else:  # libuv handles are the loop thread's
            try:
                loop.call_soon_threadsafe(handle.reaped, returncode)
            except RuntimeError:
                pass  # the loop closed meanwhile: nothing left to tell

    def send_signal(self, sig):
        # As Popen: a child known to have exited is not signalled (its pid
        # may belong to another process by now).
        if self.returncode is not None:
            return
        try:
            self._handle.kill(sig)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGTERM if _WINDOWS else signal.SIGKILL)

    def __repr__(self):
        return "<%s: returncode: %s args: %r>" % (
            self.__class__.__name__, self.returncode, self.args)


def _windows_exit_code(pid, block):
    """The exit code of process *pid*, or None while it runs.  libuv keeps
    its own handle of the process open until the exit is reported, so the
    pid still names this child."""
    import _winapi
    synchronize, query_limited_information = 0x00100000, 0x1000
    process = _winapi.OpenProcess(synchronize | query_limited_information,
                                  False, pid)
    try:
        wait = _winapi.WaitForSingleObject(
            process, _winapi.INFINITE if block else 0)
        if wait != _winapi.WAIT_OBJECT_0:
            return None
        return _winapi.GetExitCodeProcess(process)
    finally:
        _winapi.CloseHandle(process)
