"""Children that only ``subprocess.Popen`` can start as asked.

libuv's ``uv_spawn`` has no hook between fork and exec, and posix_spawn
(process/spawn.py's fast path) has no file actions for these, so a POSIX child
that needs any of them is started by Popen, exactly as CPython's loop
starts every child:

- ``preexec_fn`` and ``umask``;
- supplementary groups (``extra_groups``), other than the empty list that
  libuv sets when it changes user or group;
- ``process_group`` and ``restore_signals=False`` where posix_spawn cannot
  be used (uv_spawn resets every signal disposition and never calls
  setpgid).

Popen only forks and execs here: the pipes are process/spawn.py's own (their
child ends are handed over as plain fds), and the pid is then watched by
pidwatch.py like a posix_spawn child, so the transport, ``ChildProcess``
and the reaping are the same whichever way the child was started.  Popen
raises what it raises on CPython's loop (``SubprocessError`` when
preexec_fn fails, ``FileNotFoundError`` naming the program, ...).
"""
import subprocess

from .pidwatch import watch_pid


def spawn_with_popen(loop, args, shell, stdio, kwargs, pidfd_open):
    """Start the child with Popen; returns its pid watcher.  *stdio* is what
    Popen gets for stdin/stdout/stderr: None, DEVNULL, STDOUT or an fd
    (our pipes' child ends among them)."""
    popen_kwargs = dict(kwargs)
    # process/spawn.py made and sized the pipes, and already warned that
    # pass_fds overrides close_fds: Popen would warn a second time.
    popen_kwargs.pop("pipesize", None)
    if popen_kwargs.get("pass_fds"):
        popen_kwargs["close_fds"] = True
    popen = subprocess.Popen(args, shell=shell, bufsize=0,
                             stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                             **popen_kwargs)
    pid = popen.pid
    # The Popen object is dropped here and the child is ours to reap.  A
    # Popen with no returncode would, when collected, warn that the child
    # still runs and queue its pid on subprocess._active, and the next
    # Popen anywhere in the process would reap our child through it.
    popen.returncode = 0
    return watch_pid(loop, pid, pidfd_open)
