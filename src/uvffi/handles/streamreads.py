"""The read side of a stream handle: one state machine per stream.

``StreamReads`` is the base of ``handles.stream.Stream``; it owns every
decision about how and when a stream reads, and its owner (a transport)
supplies only the protocol calls: ``on_read``, ``on_self_read``,
``on_alloc``/``on_filled`` and, for a plain Protocol, the protocol itself.
libuv's callbacks that drive it are in streamcallbacks.py; the context the
owner is called in is Stream's (``context``, ``context_settled``).

State:
- **stopped** (``reading`` False): libuv is not reading.
- **reading**: libuv reads in ``mode`` (below).  While the stream has a
  plain protocol, its owner is called directly and the stream is *live*
  (``live`` is that protocol: the fast path of streamcallbacks.py).
- **held** (``backlog``): reads that could not be delivered when they came
  wait on the stream: a poll that defers I/O (``loop._uv_defer_io``, see
  the methods below ``hold``), a read that was in the batch when its
  stream stopped, a read the protocol did not take.  While reads are held
  and the stream reads, libuv is stopped; they are delivered from the
  ready queue, in order and before anything newer, and then libuv starts
  again.  Closing drops them, as asyncio delivers nothing after close().
- **in alloc** (``in_alloc``): inside libuv's alloc callback, where a
  direct or self read calls the owner.  libuv must not be told to stop
  reading or to close there: its uv__read goes on to read into the
  buffer and to call read_cb, which uv_read_stop has set to NULL (a
  crash).  So meanwhile read_stop/read_start/set_read_mode/close only
  change the state (``reconcile``), and the read callback that always
  follows the alloc callback makes libuv's match (``after_alloc``).
- **closing** (``closing``, the handle's): nothing is read or delivered.

Mode (``mode``; shim ``uvffi_stream.c``), the way libuv's reads reach us:
- ``UVFFI_READ_BATCH``, on a loop uvffi created: into the loop's read
  buffer, handed to Python in batches after libuv's poll phase
  (readbatch.py; ``streamcallbacks._on_reads``); large reads, EOF and
  errors one at a time (``_on_read``);
- ``UVFFI_READ_PLAIN``, on a host's loop (embedding): into a per-thread C
  buffer, one callback per read (``_on_read``);
- ``UVFFI_READ_SELF`` (POSIX): when the fd is readable, libuv's alloc
  callback calls ``on_self_read()``, which reads the fd itself;
- ``UVFFI_READ_DIRECT``: libuv reads into the buffer ``on_alloc()`` returns,
  and reports the read with ``on_filled(nread)``.
A stream reads in its loop's default mode until a read of
``LARGE_READS_FROM`` bytes or more, then in ``large_mode`` (self or direct
reads, which skip the copy out of the loop's buffer) until a read under
``LARGE_READS_UNTIL``.  ``large_mode`` follows the protocol
(``set_protocol``): a BufferedProtocol's large reads go into its buffers
(transports/bufferedreads.py), a plain Protocol's (CPython on POSIX) are
``os.read`` into their bytes (transports/largereads.py); elsewhere there
is none.
"""
import collections
import errno
import os
import sys

from .._uv import ffi, lib
from .core import UVHandle, new_unzeroed as _new_unzeroed
from .errors import exception_from_uv

_unpack = ffi.unpack
_READ_PLAIN = lib.UVFFI_READ_PLAIN
_READ_BATCH = lib.UVFFI_READ_BATCH
_READ_DIRECT = lib.UVFFI_READ_DIRECT
_READ_SELF = lib.UVFFI_READ_SELF
# The thresholds of large reads (module docstring).  The C read path hands
# reads of LARGE_READS_FROM bytes over on their own, not batched: one
# definition, the shim's.
LARGE_READS_FROM = lib.UVFFI_LARGE_READ
LARGE_READS_UNTIL = 8 * 1024
# The most one self read asks for: the bytes object os.read makes must stay
# under glibc's mmap threshold (128 KiB, with the object's header and
# malloc's; transports/largereads.py says why).
SELF_READ_MAX = 127 * 1024
# A BufferedProtocol's large reads: read by us where streams are fds (one
# C->Python call per read), through libuv elsewhere (two)
BUFFERED_LARGE_MODE = _READ_SELF if os.name == "posix" else _READ_DIRECT
# A plain Protocol's: self reads on CPython on POSIX; PyPy's os.read copies
# out of a raw buffer anyway, so there the loop's buffer is as good
PLAIN_SELF_READS = os.name == "posix" and sys.implementation.name != "pypy"
_UV_EOF = lib.UV_EOF
_os_read = os.read


def read_fd(stream):
    """The fd that self reads read, or -1 where libuv's streams are no fds."""
    if os.name != "posix":
        return -1
    try:
        return stream.fileno()
    except OSError:
        return -1


class StreamReads(UVHandle):
    """A stream handle's read state (module docstring).  The owner sets
    ``on_read(nread, data)`` (data: a buffer of exactly nread bytes when
    nread > 0, valid during the call only: copy what must outlive it; else
    None; nread < 0: EOF or the read's error), ``on_data_failed(exc)`` for
    what a plain protocol's data_received raised on the fast path, and for
    large reads ``on_self_read()`` and ``on_alloc()``/``on_filled(nread)``
    (each returns how many bytes the protocol got, or 0)."""

    __slots__ = ("on_read", "on_data_failed", "on_alloc", "on_filled",
                 "on_self_read", "protocol", "live", "plain", "reading",
                 "mode", "_default_mode", "large_mode", "in_alloc",
                 "reconcile", "backlog", "_backlog_due", "_in_backlog",
                 "_hold_buffer", "_read_target")

    def __init__(self, loop):
        super().__init__(loop)
        self.on_read = self.on_data_failed = None
        self.on_alloc = self.on_filled = self.on_self_read = None
        self.protocol = self.live = None
        # the owner may be called directly (Stream.use_context)
        self.plain = False
        self.reading = False
        self.mode = self._default_mode = (
            _READ_BATCH if loop._read_batches is not None else _READ_PLAIN)
        self.large_mode = None
        self.in_alloc = self.reconcile = False
        self.backlog = None
        # a _deliver_backlog is scheduled / running: libuv is not reading
        # then, and only the end of _deliver_backlog starts it again
        self._backlog_due = self._in_backlog = False
        # a direct read's buffer of our own, while libuv reads into it for
        # a read to be held (lend_hold_buffer)
        self._hold_buffer = None
        # the owner's buffer (cdata) libuv reads into (lend_buffer)
        self._read_target = None

    def _relive(self):
        # the one place that decides whether reads take the fast path
        self.live = (self.protocol if self.plain and self.reading
                     and not self.backlog and not self.closing else None)

    # -- what the owner asks for -----------------------------------------------

    def set_protocol(self, protocol, buffered=False):
        """Who takes the reads: a plain Protocol (its data_received is
        called straight from the read callbacks while the stream is
        live), a BufferedProtocol (*buffered*: reads go to on_read, large
        ones to on_self_read or on_alloc+on_filled), or None (on_read
        only: a read pipe, or a transport letting go).  Raises OSError if
        libuv cannot switch its reading."""
        if buffered:
            self.protocol = None
            self.large_mode = BUFFERED_LARGE_MODE
            self._relive()
            return
        self.protocol = protocol
        self._relive()
        if protocol is None:
            self.large_mode = None  # (the mode is left as it is: closing)
            return
        self.large_mode = (_READ_SELF if PLAIN_SELF_READS and read_fd(self) >= 0
                           else None)
        # a buffered protocol's direct reads end here
        self.set_read_mode(None)

    def set_read_mode(self, mode=None):
        """Read in *mode* (UVFFI_READ_*; None: this loop's default) from
        the next read on, also when called from inside a read callback.
        Raises OSError if libuv cannot switch (the stream then stops)."""
        rc = self._switch(mode)
        if rc < 0:
            raise exception_from_uv(rc)

    def _switch(self, mode):
        if mode is None:
            mode = self._default_mode
        if mode == self.mode:
            return 0
        self.mode = mode
        if self.in_alloc:
            self.reconcile = True
        elif (self.reading and not self.backlog and not self._in_backlog
              and not self.closing):
            rc = lib.uvffi_read_restart(self.ptr, mode)
            if rc < 0:
                self.reading = False
                self._relive()
                return rc
        return 0

    def read_start(self):
        self.reading = True
        if self.in_alloc:
            self.reconcile = True
            self._relive()
            return
        if self._in_backlog:
            # resumed by a held read's protocol call: the delivery goes on,
            # and starts libuv when it is done
            self._relive()
            return
        if self.backlog:
            # held reads first: libuv resumes once they are delivered
            self._relive()
            self._schedule_backlog()
            return
        rc = self._read_start()
        if rc < 0:
            raise exception_from_uv(rc)

    def _read_start(self):
        rc = lib.uvffi_read_start(self.ptr, self.mode)
        if rc < 0:
            self.reading = False
        self._relive()
        return rc

    def read_stop(self):
        self.reading = False
        self.live = None
        if self.in_alloc:
            self.reconcile = True
        elif not self.closing:
            lib.uv_read_stop(self.ptr)

    def _end_reads(self):
        # (Stream.close) True: close now; False: after_alloc closes
        self.reading = False
        self.live = None
        self.backlog = None
        if self.in_alloc:
            if not self.closing:
                self.closing = True
                self.reconcile = True
            return False
        return True

    # -- large reads: the mode follows the size of the reads ---------------------

    def large_read(self):
        """A read of LARGE_READS_FROM bytes or more was delivered the
        copying way: the next ones skip the copy, if the protocol can."""
        mode = self.large_mode
        if mode is not None and mode != self.mode:
            rc = self._switch(mode)
            if rc < 0:
                self.on_read(rc, None)  # reported as a read error

    def small_read(self):
        """A large-mode read under LARGE_READS_UNTIL was delivered: back to
        the loop's default mode."""
        if self.mode != self._default_mode:
            rc = self._switch(self._default_mode)
            if rc < 0:
                self.on_read(rc, None)  # reported as a read error

    # -- libuv's alloc callback and the read callback after it ------------------

    def lend_buffer(self, buf, target):
        """Direct reads: libuv reads into *target* (the cdata on_alloc
        returned, kept alive until on_filled), unless the owner declined
        (None) or changed the stream's reading in on_alloc (then libuv
        reads nothing: UV_ENOBUFS)."""
        if target is not None and not self.reconcile:
            self._read_target = target
            buf.base = target
            buf.len = len(target)

    def after_alloc(self):
        """The read callback after an alloc callback: make libuv's reading
        state what was asked for meanwhile (see in_alloc)."""
        self.in_alloc = False
        if not self.reconcile:
            return
        self.reconcile = False  # (before anything that may raise)
        if self.closing:
            lib.uvffi_close(self.ptr)  # close() came in the alloc callback
        elif not self.reading:
            lib.uv_read_stop(self.ptr)
        elif self.backlog:
            # held reads go first (as read_start does them)
            lib.uv_read_stop(self.ptr)
            self._schedule_backlog()
        else:
            rc = lib.uvffi_read_restart(self.ptr, self.mode)
            if rc < 0:
                self.reading = False
                self._relive()
                self.on_read(rc, None)  # reported as a read error

    def take_read_target(self):
        """The buffer libuv read into (lend_buffer), or None if none was
        lent: a self read's reconciling callback, or a declined one."""
        target, self._read_target = self._read_target, None
        return target

    # -- held reads ------------------------------------------------------------

    def hold(self, nread, data, first=False):
        """Keep a read for later (module docstring).  *first*: a read the
        protocol did not take (its get_buffer(), or the buffer_updated() of
        an earlier piece, raised SystemExit or KeyboardInterrupt): asyncio
        would still have it in the socket for the next poll, so it goes
        back ahead of any held read."""
        if self.backlog is None:
            self.backlog = collections.deque()
        if first:
            self.backlog.appendleft((nread, data))
        else:
            self.backlog.append((nread, data))
        self.live = None
        if self.reading and len(self.backlog) == 1 and not self._in_backlog:
            # still reading (its delivery was interrupted): deliver from the
            # ready queue, libuv paused so that nothing newer overtakes it
            # (a delivery in progress schedules the rest itself)
            if self.in_alloc:
                self.reconcile = True  # after_alloc stops libuv for it
            else:
                lib.uv_read_stop(self.ptr)
                self._schedule_backlog()

    def hold_self_read(self):
        """A self read (the fd is readable) in a poll that began with
        callbacks already queued (``loop._uv_defer_io``): on asyncio's loop
        those run before the poll's I/O callbacks, so the owner is not
        called now.  The fd is read here, as the owner's self read would,
        and what came -- data, EOF or the read's error -- is held, delivered
        through ``on_read`` (for a BufferedProtocol, the copy path)."""
        try:
            data = _os_read(self.fileno(), SELF_READ_MAX)
        except (BlockingIOError, InterruptedError):
            return  # nothing there after all: libuv polls on
        except OSError as exc:
            # libuv's codes are negated errnos on POSIX, the only place
            # streams self-read
            self.hold(-(exc.errno or errno.EIO), None)
            return
        if data:
            self.hold(len(data), data)
        else:
            self.hold(_UV_EOF, None)

    def lend_hold_buffer(self, buf):
        """A direct read in a poll that defers I/O: as for hold_self_read,
        the owner, get_buffer() included, is not asked now; libuv reads
        into the stream's own buffer, and the read callback holds what
        came (hold_filled)."""
        cbuf = self._hold_buffer = _new_unzeroed("char[]", SELF_READ_MAX)
        buf.base = cbuf
        buf.len = SELF_READ_MAX

    def hold_filled(self, nread):
        """libuv's read callback after lend_hold_buffer."""
        cbuf, self._hold_buffer = self._hold_buffer, None
        if nread > 0:
            self.hold(nread, _unpack(cbuf, nread))
        elif nread < 0:
            self.hold(nread, None)  # EOF or the read's error
        # 0: nothing was there after all

    def _schedule_backlog(self):
        # once: a second delivery would start libuv reading twice (EALREADY)
        if not self._backlog_due:
            self._backlog_due = True
            self.loop.call_soon(self._deliver_backlog, context=self.context)

    def _deliver_backlog(self):
        self._backlog_due = False
        backlog = self.backlog
        self._in_backlog = True
        try:
            while backlog and self.reading and not self.closing:
                nread, data = backlog.popleft()
                protocol = self.protocol
                if protocol is not None and nread > 0:
                    try:
                        protocol.data_received(data)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self.on_data_failed(exc)
                else:
                    self.on_read(nread, data)
                if nread >= LARGE_READS_FROM:
                    self.large_read()
                elif 0 < nread < LARGE_READS_UNTIL and self.mode == self.large_mode:
                    self.small_read()
        finally:
            # Also when a protocol call raised SystemExit/KeyboardInterrupt
            # out of here: libuv was stopped for the backlog (hold), so a
            # stream still reading must get the rest later or libuv back,
            # or it would never read again (its EOF included).
            self._in_backlog = False
            self.context_settled()
            if self.reading and not self.closing and not self._backlog_due:
                # (a delivery scheduled meanwhile, by a pause and resume in
                # a callback above, restarts libuv itself)
                if backlog:
                    self._schedule_backlog()  # left early: the rest later
                else:
                    rc = self._read_start()
                    if rc < 0:
                        self.on_read(rc, None)  # reported as a read error
