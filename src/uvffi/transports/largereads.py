"""How a stream transport hands a plain Protocol its large reads.

asyncio's selector transport makes ``data_received``'s bytes with
``sock.recv(max_size)``: CPython allocates the bytes object and the kernel
copies the data straight into it.  libuv reads into the loop's buffer
instead, and the bytes are then a second copy (``ffi.unpack``).  For small
reads that copy is nothing next to what batching them saves
(handles/streamreads.py), but at 100 KiB it was most of the user time.

So while a plain protocol's reads are large (the stream decides:
handles/streamreads.py, ``LARGE_READS_FROM``/``LARGE_READS_UNTIL``, as for
bufferedreads.py's direct reads), the stream reads in *self* mode (shim:
``uvffi__alloc_self_cb``): when libuv sees the fd readable, its alloc
callback makes one C->Python call, ``_read_self_data``, which
``os.read``s the fd into a new bytes object and calls ``data_received``.

How much one read asks for: ``SELF_READ_MAX``, under glibc's mmap
threshold (128 KiB).  ``os.read`` makes a bytes object of that size and
shrinks it to what was read; a heap chunk shrinks in place, but asyncio's
256 KiB is an mmap'd chunk, and every read then cost an mmap, an mremap and
a munmap and faulted its pages in afresh.  What is left in the socket comes
in the next poll, as with asyncio.  Asking the kernel for the exact size
first (FIONREAD) costs a syscall per read and faults no fewer pages.  With
an allocator whose realloc moves a shrinking block, the copy comes back, no
larger than the one this saves.  Figures: docs/performance-notes.md,
"Large reads of a plain Protocol".

CPython on POSIX only: PyPy's ``os.read`` copies out of a raw buffer
anyway, and libuv's streams are no fds elsewhere.
"""
import os

from .._uv import lib
from ..handles.streamreads import SELF_READ_MAX

_os_read = os.read
_UV_EOF = lib.UV_EOF


class LargeReadsMixin:
    """StreamTransport's self reads for a plain Protocol (module docstring):
    the stream (handles/streamreads.py) decides when to read this way and
    calls ``_read_self_data`` for each read."""

    _rfd = -1  # streamreads.read_fd(): valid while libuv reads the stream

    def _self_read_failed(self, exc):
        """A self read's read(2) failed (both kinds: also bufferedreads.py):
        asyncio's fatal read error."""
        self._stop_reading()
        self._fatal_error(exc, "Fatal read error on socket transport")

    def _read_self_data(self):
        # From libuv's alloc callback: what is done to the stream's reading
        # in here reaches libuv once the callback is over (StreamReads.in_alloc).
        # Never in a poll that defers I/O: the stream holds that read itself
        # (Stream.hold_self_read).  Returns how much the protocol got (the
        # stream's mode follows it).
        try:
            data = _os_read(self._rfd, SELF_READ_MAX)
        except (BlockingIOError, InterruptedError):
            return 0  # nothing there after all: libuv polls on
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._self_read_failed(exc)
            return 0
        if not data:
            self._on_read_status(_UV_EOF)
            return 0
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._data_received_failed(exc)
        return len(data)
