"""Loop methods for subprocesses on uv_spawn.

``BaseEventLoop.subprocess_exec``/``subprocess_shell`` check their arguments
and call ``_make_subprocess_transport``; ours starts the child with
``uv_spawn`` (``process/spawn.py``) instead of ``subprocess.Popen`` plus a child
watcher.  The transport is asyncio's ``BaseSubprocessTransport``: it connects
the pipes through ``connect_read_pipe``/``connect_write_pipe`` and orders
``connection_made``, ``pipe_data_received``, ``pipe_connection_lost``,
``process_exited`` and ``connection_lost`` exactly as on CPython's loop.
libuv's exit callback stands in for the child watcher.

Every call into the ``SubprocessProtocol`` runs in the context that was
current when the transport was created (``subprocess_exec``/``_shell``), as
uvloop does: asyncio schedules each with ``call_soon`` from wherever it was
triggered (a pipe's callback, the child watcher), so ``process_exited`` and
``connection_lost`` lose the caller's context variables there.
"""
import contextvars
from asyncio import base_subprocess

from . import spawn as _process

_PIPES = ((0, "connect_write_pipe", base_subprocess.WriteSubprocessPipeProto),
          (1, "connect_read_pipe", base_subprocess.ReadSubprocessPipeProto),
          (2, "connect_read_pipe", base_subprocess.ReadSubprocessPipeProto))


class UVSubprocessTransport(base_subprocess.BaseSubprocessTransport):

    def __init__(self, *args, **kwargs):
        self._context = contextvars.copy_context()
        super().__init__(*args, **kwargs)

    def _start(self, args, shell, stdin, stdout, stderr, bufsize, **kwargs):
        proc = _process.spawn(self._loop, args, shell, stdin, stdout, stderr,
                              kwargs)
        self._proc = proc
        proc._handle.on_exit = self._on_exit

    def _on_exit(self, returncode):
        # Called from libuv's exit callback; _process_exited defers the
        # protocol calls itself (call_soon / pending calls).
        if self._returncode is None:
            self._process_exited(returncode)

    # All protocol calls but connection_made go through _call (asyncio's
    # pipe_data_received, pipe_connection_lost, process_exited and
    # connection_lost): while the pipes connect they wait in _pending_calls.
    def _call(self, cb, *data):
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data, context=self._context)

    async def _connect_pipes(self, waiter):
        # asyncio's sequence (the pipes, then connection_made and the calls
        # that waited for it), with the protocol calls in our context
        try:
            proc = self._proc
            loop = self._loop
            for fd, connect, proto in _PIPES:
                pipe = (proc.stdin, proc.stdout, proc.stderr)[fd]
                if pipe is not None:
                    _, self._pipes[fd] = await getattr(loop, connect)(
                        lambda proto=proto, fd=fd: proto(self, fd), pipe)
            context = self._context
            loop.call_soon(self._protocol.connection_made, self,
                           context=context)
            for callback, data in self._pending_calls:
                loop.call_soon(callback, *data, context=context)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)


class SubprocessMixin:

    async def _make_subprocess_transport(self, protocol, args, shell,
                                         stdin, stdout, stderr, bufsize,
                                         extra=None, **kwargs):
        waiter = self.create_future()
        transp = UVSubprocessTransport(self, protocol, args, shell,
                                       stdin, stdout, stderr, bufsize,
                                       waiter=waiter, extra=extra, **kwargs)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp
