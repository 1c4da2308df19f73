"""Child processes on ``uv_spawn``: the translation of
``subprocess.Popen``'s arguments into ``uv_process_options_t``, and the
spawn that returns a ``ChildProcess`` (child.py), the
Popen-like object that asyncio's ``BaseSubprocessTransport`` keeps as its
``_proc``.

libuv reaps its children itself (a SIGCHLD watcher on the loop, in whatever
thread runs it) and reports the exit through the exit callback; uvffi calls
``waitpid`` only when the user asks ``ChildProcess.wait``/``poll`` to (as
Popen does), and then closes the handle first thing (``reaped``).

On Linux/glibc the child is started with ``posix_spawn`` (vfork-based) and
watched through a pidfd polled by libuv (``PidfdChild``; the
``uv_process_t`` wrapper is handle.py's ``ProcessHandle``): libuv 1.44's
``uv_spawn`` forks, which costs time in proportion to the interpreter's
memory (0.6 ms for a small CPython, 4 ms with a 200 MB heap, against
0.1 ms for CPython's vfork).  ``uv_spawn`` remains the path everywhere else
and for what posix_spawn cannot do (user/group, low-fd shuffles, bare
program names not found on PATH).  ``FAST_SPAWN = False`` forces uv_spawn.

What neither path can do in a POSIX child (``preexec_fn``, ``umask``,
supplementary groups; ``process_group`` and ``restore_signals=False``
where posix_spawn cannot be used) is left to ``subprocess.Popen``
(popenspawn.py), as on CPython's loop.  The children that libuv did not
spawn are watched by pid (pidwatch.py).
"""
import errno
import inspect
import os
import subprocess
import sys
import warnings

from .._uv import ffi, lib
from ..handles.errors import exception_from_uv
from .child import ChildProcess
from .handle import ProcessHandle
from .pidwatch import PidfdChild, ThreadWatchedChild
from .popenspawn import spawn_with_popen

_WINDOWS = sys.platform == "win32"
_new = ffi.new

# Popen's keyword arguments in this Python version (user/group/... appeared
# in 3.9, pipesize in 3.10, process_group in 3.11): an argument Popen does not
# know is a TypeError, as it is with asyncio's loop.
_POPEN_PARAMS = frozenset(inspect.signature(subprocess.Popen).parameters)
_POPEN_NAME = ("Popen.__init__" if sys.version_info >= (3, 10) else "__init__")

# posix_spawn + pidfd (see the module docstring); a stale build of the
# extension without the shim functions simply lacks the fast path.
_fast_spawn = getattr(lib, "uvffi_fast_spawn", None)
_pidfd_open = getattr(lib, "uvffi_pidfd_open", None)
FAST_SPAWN = bool(_fast_spawn is not None and lib.uvffi_fast_spawn_available()
                  and _pidfd_open is not None and hasattr(os, "waitstatus_to_exitcode"))

# Where the open fds of this process are listed (close_fds support).
_FD_DIR = next((d for d in ("/proc/self/fd", "/dev/fd") if os.path.isdir(d)), None)


def _fast_spawn_child(loop, file_c, argv_c, env_c, cwd_c, stdio_fds,
                      new_session, pgroup, restore_signals, pass_fds):
    """posix_spawn the child; returns (rc, PidfdChild or None)."""
    global FAST_SPAWN
    stdio = _new("int[3]", stdio_fds)
    keep = _new("int[]", pass_fds or [0])
    pid_out = _new("int *")
    rc = _fast_spawn(file_c, argv_c, env_c, cwd_c, stdio, 1 if new_session else 0,
                     pgroup, 1 if restore_signals else 0,
                     keep, len(pass_fds), pid_out)
    if rc < 0:
        return rc, None
    pid = pid_out[0]
    pidfd = _pidfd_open(pid)
    if pidfd < 0:
        # The kernel (or a seccomp filter) refuses pidfds: watch this child
        # with a thread and use uv_spawn from now on.
        FAST_SPAWN = False
        return 0, ThreadWatchedChild(loop, pid)
    return 0, PidfdChild(loop, pid, pidfd)


class ChildPipe:
    """The parent's end of a pipe to a child's stdin/stdout/stderr: what
    Popen's ``stdin``/``stdout``/``stderr`` are for asyncio's transport.

    ``connect_read_pipe``/``connect_write_pipe`` take the fd itself
    (``_uvffi_take_fd``) instead of a duplicate: libuv then owns and closes
    it, and ``close()`` only marks this object closed.  An fd nobody took is
    closed by ``close()`` or the garbage collector."""

    __slots__ = ("_fd", "mode", "_taken", "__weakref__")

    def __init__(self, fd, mode):
        self._fd = fd
        self.mode = mode
        self._taken = False

    def fileno(self):
        if self._fd < 0:
            raise ValueError("I/O operation on closed file")
        return self._fd

    @property
    def closed(self):
        return self._fd < 0

    def _uvffi_take_fd(self):
        self._taken = True
        return self.fileno()

    def close(self):
        fd, self._fd = self._fd, -1
        if fd >= 0 and not self._taken:
            os.close(fd)

    def __del__(self):
        self.close()

    def __repr__(self):
        return "<ChildPipe fd=%d mode=%r>" % (self._fd, self.mode)


# -- Popen arguments -> uv_process_options_t ------------------------------------

def _unsupported(what):
    return NotImplementedError(
        "uvffi: %s is not supported: libuv's uv_spawn cannot do it in the "
        "child process" % what)


def _cstr(value, keep):
    """A NUL-terminated C copy of *value* (str/bytes/PathLike), kept alive in
    *keep* for the duration of uv_spawn."""
    data = os.fsencode(value)
    if b"\0" in data:
        raise ValueError("embedded null byte")
    buf = _new("char[]", data)
    keep.append(buf)
    return buf


def _cstr_array(items, keep):
    ptrs = [_cstr(item, keep) for item in items]
    ptrs.append(ffi.NULL)
    arr = _new("char *[]", ptrs)
    keep.append(arr)
    return arr


def _check_kwargs(kwargs):
    """Popen's own checks of the arguments we do not map one to one.
    Returns (uid, gid, popen_only): popen_only when a POSIX child needs
    what neither uv_spawn nor posix_spawn does (preexec_fn, umask,
    supplementary groups), so that Popen must start it (popenspawn.py)."""
    for name in kwargs:
        if name not in _POPEN_PARAMS:
            raise TypeError("%s() got an unexpected keyword argument %r"
                            % (_POPEN_NAME, name))
    get = kwargs.get
    pipesize = get("pipesize", -1)
    if pipesize is None:
        pipesize = -1
    if not isinstance(pipesize, int):
        raise TypeError("pipesize must be an integer")
    if _WINDOWS:
        if get("preexec_fn") is not None:
            raise ValueError("preexec_fn is not supported on Windows platforms")
        if get("startupinfo") is not None:
            raise _unsupported("startupinfo")
        if get("creationflags", 0):
            raise _unsupported("creationflags")
        if get("pass_fds"):
            raise _unsupported("pass_fds on Windows")
    else:
        if get("pass_fds") and not get("close_fds", True):
            warnings.warn("pass_fds overriding close_fds.", RuntimeWarning)
        if get("startupinfo") is not None:
            raise ValueError("startupinfo is only supported on Windows platforms")
        if get("creationflags", 0) != 0:
            raise ValueError("creationflags is only supported on Windows platforms")
    # Popen ignores umask on Windows, as it does process_group and
    # restore_signals there.
    popen_only = not _WINDOWS and (get("preexec_fn") is not None
                                   or get("umask", -1) >= 0)

    gid = uid = None
    group = get("group")
    if group is not None:
        if _WINDOWS or not hasattr(os, "setregid"):
            raise ValueError("The 'group' parameter is not supported on the "
                             "current platform")
        if isinstance(group, str):
            import grp
            gid = grp.getgrnam(group).gr_gid
        elif isinstance(group, int):
            gid = group
        else:
            raise TypeError("Group must be a string or an integer, not {}"
                            .format(type(group)))
        if gid < 0:
            raise ValueError(f"Group ID cannot be negative, got {gid}")
    user = get("user")
    if user is not None:
        if _WINDOWS or not hasattr(os, "setreuid"):
            raise ValueError("The 'user' parameter is not supported on "
                             "the current platform")
        if isinstance(user, str):
            import pwd
            uid = pwd.getpwnam(user).pw_uid
        elif isinstance(user, int):
            uid = user
        else:
            raise TypeError("User must be a string or an integer")
        if uid < 0:
            raise ValueError(f"User ID cannot be negative, got {uid}")
    extra_groups = get("extra_groups")
    if extra_groups is not None:
        if _WINDOWS or not hasattr(os, "setgroups"):
            raise ValueError("The 'extra_groups' parameter is not "
                             "supported on the current platform")
        if isinstance(extra_groups, str):
            raise ValueError("Groups must be a list, not a string")
        # libuv calls setgroups(0, NULL) when it changes uid/gid: exactly
        # extra_groups=[]; any other groups list is Popen's to set (it
        # checks the items itself).
        if list(extra_groups) or (uid is None and gid is None):
            popen_only = True
    return uid, gid, popen_only


def _normalize_args(args, shell, executable):
    """(file, argv, error filename) as Popen computes them."""
    if isinstance(args, (str, bytes)):
        args = [args]
    elif isinstance(args, os.PathLike):
        if shell:
            raise TypeError("path-like args is not allowed when shell is true")
        args = [args]
    else:
        args = list(args)
    verbatim = False
    if shell:
        if _WINDOWS:
            comspec = os.environ.get("COMSPEC", "cmd.exe")
            command = " ".join(os.fsdecode(a) for a in args)
            args = [comspec, "/c", '"%s"' % command]
            verbatim = True  # cmd.exe parses the line itself
        else:
            unix_shell = ("/system/bin/sh" if hasattr(sys, "getandroidapilevel")
                          else "/bin/sh")
            args = [unix_shell, "-c"] + args
        if executable:
            args[0] = executable
    if executable is None:
        executable = args[0]
    return executable, args, verbatim


def _set_pipe_size(fd, pipesize):
    if pipesize == -1 or _WINDOWS:
        return
    import fcntl
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, pipesize)


def _fast_spawn_file(file, env, stdio):
    """The path posix_spawn should run, or None when uv_spawn must do it."""
    for index, src in enumerate(stdio):
        # posix_spawn applies the dup2s in order: a source among 0-2 must
        # not have been replaced by an earlier one (libuv shuffles these)
        if 0 <= src < 3 and src < index and stdio[src] != -1:
            return None
    name = os.fsencode(file)
    if b"/" in name:
        return name
    # Popen and libuv search the PATH of the child's environment
    for folder in os.get_exec_path(env):
        candidate = os.path.join(os.fsencode(folder), name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None  # let uv_spawn report the error exactly


def _inheritable_fds(keep):
    """fds >= 3 that the child would inherit (close_fds=True hides them)."""
    if _FD_DIR is None:
        return []
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        if fd < 3 or fd in keep:
            continue
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            pass  # the directory's own fd, closed since
    return found


def _hide_fds(fds):
    """Mark *fds* close-on-exec; returns those that were (closed ones are
    skipped: another thread may close an fd at any time)."""
    hidden = []
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            continue
        hidden.append(fd)
    return hidden


def spawn(loop, args, shell, stdin, stdout, stderr, kwargs):
    """Start a child (posix_spawn + pidfd where possible, else uv_spawn);
    returns a ChildProcess (its ``_handle`` has no exit callback set yet).
    Raises what Popen raises."""
    uid, gid, popen_only = _check_kwargs(kwargs)
    get = kwargs.get
    file, argv, verbatim = _normalize_args(args, shell, get("executable"))
    cwd = get("cwd")
    env = get("env")
    pass_fds = sorted({int(fd) for fd in get("pass_fds", ()) or ()})
    close_fds = get("close_fds", True) or bool(pass_fds)
    pipesize = get("pipesize", -1)
    if pipesize is None:
        pipesize = -1

    keep = []  # C memory uv_spawn reads: alive until it returns
    opts = _new("uv_process_options_t *")
    opts.exit_cb = lib._uvffi_exit_cb
    opts.file = _cstr(file, keep)
    opts.args = _cstr_array(argv, keep)
    if env is not None:
        entries = []
        for key, value in env.items():
            key = os.fsencode(key)
            if b"=" in key:
                raise ValueError("illegal environment variable name")
            entries.append(key + b"=" + os.fsencode(value))
        opts.env = _cstr_array(entries, keep)
    if cwd is not None:
        opts.cwd = _cstr(cwd, keep)
    flags = 0
    if get("start_new_session"):
        flags |= lib.UV_PROCESS_DETACHED
    if uid is not None:
        flags |= lib.UV_PROCESS_SETUID
        opts.uid = uid
    if gid is not None:
        flags |= lib.UV_PROCESS_SETGID
        opts.gid = gid
    if _WINDOWS:
        flags |= lib.UV_PROCESS_WINDOWS_HIDE
        if verbatim:
            flags |= lib.UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS
    opts.flags = flags

    count = max(3, pass_fds[-1] + 1) if pass_fds else 3
    stdio = _new("uv_stdio_container_t[]", count)
    keep.append(stdio)
    opts.stdio = stdio
    opts.stdio_count = count
    for fd in pass_fds:
        if fd >= 3:
            stdio[fd].flags = lib.UV_INHERIT_FD
            stdio[fd].data.fd = fd

    child_ends = []    # closed in the parent once the child has them
    parent_ends = [None, None, None]
    fast_stdio = [-1, -1, -1]  # the same plan for posix_spawn
    popen_stdio = [stdin, stdout, stderr]  # and for Popen (our pipes' fds)
    try:
        for index, spec in enumerate((stdin, stdout, stderr)):
            box = stdio[index]
            if spec is None:
                box.flags = lib.UV_INHERIT_FD
                box.data.fd = index
                fast_stdio[index] = -1
            elif spec == subprocess.PIPE:
                rfd, wfd = os.pipe()
                if index == 0:
                    child, parent, mode = rfd, wfd, "wb"
                else:
                    child, parent, mode = wfd, rfd, "rb"
                child_ends.append(child)
                parent_ends[index] = ChildPipe(parent, mode)
                _set_pipe_size(parent, pipesize)
                popen_stdio[index] = child
                box.flags = lib.UV_INHERIT_FD
                box.data.fd = child
                fast_stdio[index] = child
            elif spec == subprocess.DEVNULL:
                # libuv opens /dev/null (NUL) in the child for 0-2
                box.flags = lib.UV_IGNORE
                fast_stdio[index] = -2
            elif spec == subprocess.STDOUT and index == 2:
                box.flags = stdio[1].flags
                box.data.fd = stdio[1].data.fd
                fast_stdio[2] = 1 if fast_stdio[1] == -1 else fast_stdio[1]
            else:
                fd = spec if isinstance(spec, int) else spec.fileno()
                if fd < 0:
                    raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                box.flags = lib.UV_INHERIT_FD
                box.data.fd = fd
                fast_stdio[index] = -1 if fd == index else fd

        fast_file = None
        if FAST_SPAWN and uid is None and gid is None and not popen_only:
            fast_file = _fast_spawn_file(file, env, fast_stdio)
        pgroup = get("process_group")
        pgroup = -1 if pgroup is None else int(pgroup)
        restore_signals = get("restore_signals", True)
        if fast_file is None and not _WINDOWS and (pgroup >= 0 or not restore_signals):
            # uv_spawn has no setpgid in the child, and it resets every
            # signal disposition (restore_signals=True and more)
            popen_only = True
        if popen_only:
            handle = spawn_with_popen(loop, args, shell, popen_stdio, kwargs,
                                      _pidfd_open)
            return ChildProcess(handle, args, *parent_ends)
        hidden = ()
        if close_fds and not _WINDOWS:
            # libuv closes nothing in the child: it relies on O_CLOEXEC,
            # which Python sets on every fd it creates.  Inheritable fds
            # (os.set_inheritable, C libraries) are hidden the same way
            # for the duration of the spawn.
            hidden = _hide_fds(_inheritable_fds(set(pass_fds)))
        try:
            if fast_file is not None:
                rc, handle = _fast_spawn_child(
                    loop, _cstr(fast_file, keep), opts.args, opts.env, opts.cwd,
                    fast_stdio, get("start_new_session"), pgroup,
                    restore_signals, [fd for fd in pass_fds if fd >= 3])
            else:
                handle = ProcessHandle(loop)
                rc = handle.spawn(opts)
        finally:
            for fd in hidden:
                try:
                    os.set_inheritable(fd, True)
                except OSError:
                    pass
        if rc < 0:
            filename = file
            if cwd is not None and not os.path.isdir(cwd):
                filename = cwd  # Popen names the directory chdir failed on
            raise exception_from_uv(rc, filename)
    except BaseException:
        for end in parent_ends:
            if end is not None:
                end.close()
        raise
    finally:
        for fd in child_ends:
            os.close(fd)
    return ChildProcess(handle, args, *parent_ends)
