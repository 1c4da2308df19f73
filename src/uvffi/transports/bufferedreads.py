"""How a stream transport feeds a BufferedProtocol.

asyncio's selector transport calls ``get_buffer()``, ``recv_into()`` the
buffer and calls ``buffer_updated()``.  uvffi has two ways to do that,
chosen per read by size (``Stream.mode``):

- **copy** (small reads): libuv reads into the loop's buffer with the
  other streams' reads of the same poll phase (one C->Python call per
  batch); the bytes are copied into the protocol's buffer, with as many
  get_buffer()/buffer_updated() rounds as its buffers need.
- **direct** (large reads): the data goes straight into get_buffer()'s
  buffer, as recv_into does, with no copy.  From a read of
  ``LARGE_READS_FROM`` bytes (those come on their own, not batched) until
  one under ``LARGE_READS_UNTIL`` (the stream decides:
  handles/streamreads.py).  On POSIX the read is a *self read*
  (``_read_self``): when libuv sees the fd readable, one C->Python call
  asks get_buffer(), reads the fd into that buffer (``os.readv`` on
  CPython) and calls buffer_updated(), asyncio's recv_into round.
  Elsewhere libuv reads into the buffer (``_get_read_buffer``/``_read_buffer_filled``), which
  costs two C->Python calls per read.
  Why by size: a large read's copy costs more than the batch saves, a small
  one's less (docs/performance-notes.md, "BufferedProtocol reads").

get_buffer() (and, for self reads, buffer_updated()) runs inside libuv's
alloc callback in direct mode; see ``StreamReads.in_alloc`` for why whatever it
does to the stream's reading reaches libuv only afterwards.
"""
import os
import sys

from .._uv import ffi, lib

_PYPY = sys.implementation.name == "pypy"
_from_buffer = ffi.from_buffer
_CHAR_ARRAY = ffi.typeof("char[]")
_memmove = ffi.memmove
_stream_read = lib.uvffi_stream_read
# Self reads' read on CPython: os.readv into the protocol's buffer, one C
# call that takes the buffer as recv_into does, where ffi.from_buffer and a
# cffi call would parse keywords and make a cdata per read.  PyPy has no
# os.readv, and its JIT makes the cffi pair cheap.
_readv = None if _PYPY else getattr(os, "readv", None)
_UV_EOF = lib.UV_EOF
# socket.recv_into()'s words for a buffer it cannot write into
_NOT_WRITABLE = ("a read-write bytes-like object is required, not %s" if _PYPY else
                 "recv_into() argument 1 must be read-write bytes-like object, not %s")


class BufferedReadsMixin:
    """StreamTransport's reading for a BufferedProtocol: ``set_protocol``
    routes the stream's ``on_read`` to ``_read_into_buffered``, its
    ``on_self_read`` to ``_read_self`` and its ``on_alloc``/``on_filled`` to
    ``_get_read_buffer``/``_read_buffer_filled``.  The large-read ones
    return how much the protocol got: the stream's mode follows it."""

    # get_buffer()/buffer_updated() with asyncio's error reporting, for the
    # piecewise copy and libuv's direct reads; the two hot paths (the
    # small-read copy, self reads) repeat them inline on purpose: two
    # Python calls less per read (see _read_self for what that measures)
    def _ask_buffer(self, protocol):
        """get_buffer(-1) and its size, or None after a fatal error."""
        try:
            target = protocol.get_buffer(-1)
            size = len(target)
            if not size:
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.get_buffer() call failed.")
            return None
        return target, size

    def _tell_updated(self, protocol, n):
        """buffer_updated(n); False after a fatal error."""
        try:
            protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.buffer_updated() call failed.")
            return False
        return True

    def _read_into_buffered(self, nread, data):
        # libuv read into the loop's buffer; copy into the protocol's,
        # asking for more buffers while data is left: what asyncio's
        # recv_into loop gives the protocol, in one callback.
        if nread <= 0:
            self._on_read_status(nread)
            return
        if self._conn_lost:
            return
        protocol = self._protocol
        try:
            target = protocol.get_buffer(-1)
            size = len(target)
            if not size:
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            self._unread(nread, data)
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        if size < nread or _PYPY:
            self._copy_in_pieces(protocol, target, size, nread, data)
        else:
            # the common case: all of it fits the first buffer
            try:
                # CPython: slice assignment is the cheaper copy (PyPy:
                # ffi.memmove, see _copy_in_pieces)
                target[:nread] = data
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                self._copy_in_pieces(protocol, target, size, nread, data)
                return
            try:
                protocol.buffer_updated(nread)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _copy_in_pieces(self, protocol, target, size, nread, data):
        """_read_into_buffered's general case: as many get_buffer() and
        buffer_updated() calls as the protocol's buffers need, the first
        buffer (target, of size items) already asked for."""
        offset = 0
        while True:
            n = nread - offset
            if n > size:
                n = size
            try:
                if _PYPY:
                    # PyPy: ffi.memmove, its slice assignment copies item by item
                    _memmove(target, data[offset:] if offset else data, n)
                else:
                    try:
                        target[:n] = data[offset:offset + n] if n != nread else data
                    except (TypeError, ValueError):
                        # other writable buffers (another item format, ...)
                        _memmove(target, bytes(data[offset:offset + n]), n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on socket transport")
                return
            offset += n
            try:
                if not self._tell_updated(protocol, n):
                    return
                if offset >= nread or self._conn_lost or self._protocol is not protocol:
                    return
                asked = self._ask_buffer(protocol)
            except (SystemExit, KeyboardInterrupt):
                if offset < nread:
                    self._unread(nread - offset, data[offset:])
                raise
            if asked is None:
                return
            target, size = asked

    def _unread(self, nread, data):
        """What the protocol did not get of a read, kept for its next
        get_buffer() (Stream.hold): asyncio leaves it in the socket."""
        stream = self._stream
        if stream is not None and not self._conn_lost and not stream.closing:
            stream.hold(nread, bytes(data), first=True)

    def _buffer_refused(self, target, exc):
        """get_buffer() gave what cannot be read into: for what recv_into()
        refuses (read-only, not contiguous) the error it raises in
        asyncio's loop."""
        if isinstance(exc, (TypeError, BufferError)):
            exc = TypeError(_NOT_WRITABLE % type(target).__name__)
        self._fatal_error(exc, "Fatal read error on socket transport")

    def _get_read_buffer(self):
        # Direct reads through libuv (not POSIX): asyncio's
        # _read_ready__get_buffer up to the recv_into, from libuv's alloc
        # callback; returns the buffer for libuv to read into, or None.
        # What the protocol does here to the stream's reading (pause,
        # close, another protocol) reaches libuv only afterwards, and any
        # of it means that nothing is read now (Stream.lend_buffer).
        # (Never in a poll that defers I/O: Stream.lend_hold_buffer.)
        asked = self._ask_buffer(self._protocol)
        if asked is None:
            return None
        target = asked[0]
        try:
            return _from_buffer(_CHAR_ARRAY, target, True)  # positional: cheaper
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._buffer_refused(target, exc)
            return None

    def _read_self(self):
        # Self reads (POSIX), from libuv's alloc callback (see
        # _get_read_buffer): get_buffer(), the read, buffer_updated();
        # returns how much the protocol got.
        # The hot path of large reads, so get_buffer()/buffer_updated() are
        # called inline, not through _ask_buffer/_tell_updated as the other
        # two paths: four helper frames per read showed in the per-request
        # cost.
        # (never in a poll that defers I/O: Stream.hold_self_read)
        stream = self._stream
        protocol = self._protocol
        try:
            target = protocol.get_buffer(-1)
            if not len(target):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.get_buffer() call failed.")
            return 0
        if stream.reconcile:
            return 0  # paused, closed or switched in get_buffer(): no read
        if _readv is not None:
            try:
                nread = _readv(self._rfd, [target])
            except (BlockingIOError, InterruptedError):
                return 0  # nothing there after all: libuv polls on
            except (SystemExit, KeyboardInterrupt):
                raise
            except (TypeError, BufferError) as exc:
                self._buffer_refused(target, exc)
                return 0
            except BaseException as exc:
                self._self_read_failed(exc)
                return 0
            if not nread:
                self._on_read_status(_UV_EOF)
                return 0
        else:
            try:
                cbuf = _from_buffer(_CHAR_ARRAY, target, True)  # positional: cheaper
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._buffer_refused(target, exc)
                return 0
            nread = _stream_read(stream.ptr, cbuf, len(cbuf))
            # released now: buffer_updated() may resize a bytearray it exported
            cbuf = None
            if nread <= 0:
                self._on_read_status(nread)  # EOF, an error (UV_EAGAIN: nothing)
                return 0
        try:
            protocol.buffer_updated(nread)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.buffer_updated() call failed.")
            return 0
        return nread

    def _read_buffer_filled(self, nread):
        # libuv read into _get_read_buffer's buffer (the stream calls this
        # only when one was lent)
        if nread <= 0:
            self._on_read_status(nread)  # EOF, an error (UV_EAGAIN: nothing)
            return 0
        if not self._tell_updated(self._protocol, nread):
            return 0
        return nread
