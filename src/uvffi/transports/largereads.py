"""How a stream transport hands a plain Protocol its large reads.

asyncio's selector transport makes ``data_received``'s bytes with
``sock.recv(max_size)``: CPython allocates the bytes object and the kernel
copies the data straight into it.  libuv reads into the loop's buffer
instead, and the bytes are then a second copy (``ffi.unpack``).  For small
reads that copy is nothing next to what batching them saves
(handles/stream.py), but at 100 KiB it was most of the user time.

So while a plain protocol's reads are large (handles/stream.py's
``LARGE_READS_FROM``/``LARGE_READS_UNTIL``, as for bufferedreads.py's
direct reads), the stream reads in *self* mode (shim:
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
import sys

from .._uv import lib
from ..handles.stream import _READ_SELF, LARGE_READS_UNTIL, SELF_READ_MAX

_os_read = os.read
_UV_EOF = lib.UV_EOF
SELF_READS = os.name == "posix" and sys.implementation.name != "pypy"


def _nothing_to_reconcile(nread):
    # libuv's read callback after a self read (UV_ENOBUFS): Stream.after_alloc
    # has already brought libuv up to date; there is no data in it
    pass


def read_fd(stream):
    """The fd that self reads read (here and in bufferedreads.py), or -1
    where libuv's streams are no fds."""
    if os.name != "posix":
        return -1
    try:
        return stream.fileno()
    except OSError:
        return -1


class LargeReadsMixin:
    """StreamTransport's self reads for a plain Protocol (module docstring).
    ``_route_large_reads`` hooks the stream up when the protocol is set."""

    _rfd = -1  # read_fd(): valid while libuv reads the stream

    def _route_large_reads(self, stream):
        stream.on_self_read = self._read_self_data
        stream.on_filled = _nothing_to_reconcile
        stream.on_large_read = (self._start_large_reads
                                if SELF_READS and self._rfd >= 0 else None)

    def _start_large_reads(self):
        # (streamcallbacks._on_read, after the large read's data_received)
        self._set_read_mode(_READ_SELF)

    def _self_read_failed(self, exc):
        """A self read's read(2) failed (both kinds: also bufferedreads.py):
        asyncio's fatal read error."""
        self._stop_reading()
        self._fatal_error(exc, "Fatal read error on socket transport")

    def _read_self_data(self):
        # From libuv's alloc callback: what is done to the stream's reading
        # in here reaches libuv once the callback is over (Stream.in_alloc).
        # Never in a poll that defers I/O: the stream holds that read itself
        # (Stream.hold_self_read).
        try:
            data = _os_read(self._rfd, SELF_READ_MAX)
        except (BlockingIOError, InterruptedError):
            return  # nothing there after all: libuv polls on
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._self_read_failed(exc)
            return
        if not data:
            self._on_read_status(_UV_EOF)
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._data_received_failed(exc)
        if len(data) < LARGE_READS_UNTIL:
            self._set_read_mode(None)
