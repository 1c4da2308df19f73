"""Loop methods for subprocesses on uv_spawn.

``BaseEventLoop.subprocess_exec``/``subprocess_shell`` check their arguments
and call ``_make_subprocess_transport``; ours starts the child with
``uv_spawn`` (``process.py``) instead of ``subprocess.Popen`` plus a child
watcher.  The transport is asyncio's ``BaseSubprocessTransport``: it connects
the pipes through ``connect_read_pipe``/``connect_write_pipe`` and orders
``connection_made``, ``pipe_data_received``, ``pipe_connection_lost``,
``process_exited`` and ``connection_lost`` exactly as on CPython's loop.
libuv's exit callback stands in for the child watcher.
"""
from asyncio import base_subprocess

from . import process as _process


class UVSubprocessTransport(base_subprocess.BaseSubprocessTransport):

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
