"""uvffi's event loop: asyncio's scheduling core over a libuv loop.

``Loop`` keeps CPython's ``BaseEventLoop`` for everything that is pure
scheduling and argument handling (the ready queue, the timer heap, tasks,
futures, the exception-handler API, debug mode, executors, the logic of
``create_connection``/``create_server``), so that behaviour and error
messages are CPython's by construction.  What touches the operating system
is libuv's: the poll step (``facets/driver.py``), the threadsafe wake-up
(``uv_async_t``), and the I/O primitives in the mixin modules, one per
concern.
"""
import contextvars
import os
import sys
import threading
import weakref
from asyncio import base_events

from ._uv import ffi, lib
from .handles import callbacks as _callbacks
from .facets.driver import UVSelector
from .handles.errors import exception_from_uv
from .handles.core import Async, Timer
from .handles.readbatch import ReadBatches
from .facets.scheduler import SchedulerMixin
from .facets.signals import SignalMixin
from .facets.fdwatch import FdWatchMixin
from .facets.sockmethods import SockMethodsMixin
from .facets.dns import DnsMixin
from .facets.servers import ServingMixin
from .facets.unix import UnixMixin
from .transports.namedpipes import NamedPipeMixin
from .transports.udp import UDPMixin
from .transports.pipes import PipeMixin
from .process.transport import SubprocessMixin
from .embedding import EmbeddingMixin

_PYPY = sys.implementation.name == "pypy"
# the read buffer is written by the kernel before anyone reads it: zeroing
# its 1 MiB on every new loop would be wasted work



def _warm_up_glibc_heap():
    """Let glibc raise its malloc thresholds once, as asyncio's loop makes
    it do with the first ``sock.recv(256 KiB)`` of a transport.

    glibc gives the top of the heap back to the kernel whenever more than
    M_TRIM_THRESHOLD is free there (128 KiB until it adjusts it), so a
    server that allocates and frees ~100 KiB objects in turn (a stream's
    buffer, the bytes of its reads) gets fresh pages, and their page
    faults, on every message (docs/performance-notes.md, "glibc's heap
    thresholds").  glibc raises the
    threshold (to twice the mmap threshold, which becomes the block's size)
    the first time it frees an mmap'd block (mallopt(3), M_MMAP_THRESHOLD).
    asyncio's 256 KiB receive buffers do that by the way; uvffi's reads
    allocate no such block, so the shim mallocs and frees one, larger than
    all free heap memory so that it is mmap'd (a Python bytearray of 256
    KiB sometimes came out of the heap, and did nothing).  Once per
    process; nothing where the C library is not glibc 2.33+.  Not on PyPy,
    where it was not measured."""
    global _heap_warmed_up
    if not _heap_warmed_up:
        _heap_warmed_up = True
        if not _PYPY:
            lib.uvffi_malloc_warm_up(_ASYNCIO_MAX_RECV, _WARM_UP_CAP)


_ASYNCIO_MAX_RECV = 256 * 1024  # selector_events' max_size
# a heap with more free memory than this is left as it is: the thresholds
# would be raised further than asyncio's reads raise them
_WARM_UP_CAP = 1024 * 1024
_heap_warmed_up = False

# uv_loop_t memory that libuv refused to let go of (uv_loop_close said
# EBUSY, or the loop was inherited across fork): never freed, since
# something may still point into it.
_leaked_loops = []


_MIXINS = (SchedulerMixin, SignalMixin, FdWatchMixin, SockMethodsMixin, DnsMixin,
           NamedPipeMixin, UnixMixin, ServingMixin, UDPMixin, PipeMixin, SubprocessMixin,
           EmbeddingMixin)

# The loop's own state, attribute -> initial value.  Each concern's module
# declares its part (``_LOOP_STATE`` on its mixin or a base of it).
_LOOP_STATE = {
    "_pid": None,
    "_fatal": None,  # a KeyboardInterrupt/SystemExit from a libuv callback
    "_uv_handles": None, "_uv_requests": None,
    "_transports": None,
    "_uv_loop": None, "_uv_loop_mem": None, "_uv_owned": False,
    "_uv_nowait": None,
    "_read_batches": None,
    "_uv_wakeup": None, "_uv_wakeup_ptr": None,
    "_uv_async": None, "_uv_async_lock": None, "_uv_async_ptr": None,
    "_selector": None,
    # True while run_forever runs, kept by uvffi itself: a nested
    # run_forever() is refused here, before asyncio's own code, whose
    # cleanup after that refusal cleared the running state in CPython
    # 3.13.0 (is_running() False, no running loop, and a close() let
    # through that would tear libuv down under the running uv_run).
    "_uv_in_run": False,
}
_STATE_IN_SLOTS = sys.version_info < (3, 13)  # see Loop's docstring
for _cls in reversed([c for m in _MIXINS for c in m.__mro__]):
    _LOOP_STATE.update(_cls.__dict__.get("_LOOP_STATE", {}))


class Loop(*_MIXINS, base_events.BaseEventLoop):
    """An asyncio event loop running on libuv.

    On CPython 3.11 and 3.12, uvffi's own attributes are slots, and only
    BaseEventLoop's live in the instance dict: the interpreter's attribute
    caches (LOAD_ATTR/LOAD_METHOD specialisation) only work while an
    instance dict keeps to its class's shared keys, at most 30 names.  Not
    on 3.13+: there, any slot takes the instance's inline values away and
    costs more than it saves (docs/performance-notes.md, "The loop's
    attributes")."""

    __slots__ = tuple(_LOOP_STATE) if _STATE_IN_SLOTS else ()

    def __new__(cls, *args, **kwargs):
        # here, not in __init__: from_uv_loop() builds loops without it
        self = super().__new__(cls)
        for name, value in _LOOP_STATE.items():
            setattr(self, name, value)
        return self

    def __init__(self):
        super().__init__()
        self._uv_setup(None)

    # -- libuv loop lifetime ---------------------------------------------------

    def _uv_setup(self, foreign_ptr):
        _warm_up_glibc_heap()
        self._pid = os.getpid()
        self._fatal = None
        self._io_context = contextvars.Context()
        self._uv_handles = set()
        self._uv_requests = set()
        # fd -> transport, as asyncio's selector loop keeps it: add_reader
        # refuses fds that belong to a transport of this loop.
        self._transports = weakref.WeakValueDictionary()
        if foreign_ptr is None:
            # uvffi_loop_t: the uv_loop_t, then the state of the streams'
            # batched reads (handles/readbatch.py)
            mem = ffi.new("uvffi_loop_t *")
            batches = self._read_batches = ReadBatches(self, mem)
            self._uv_loop_mem = mem
            self._uv_loop = ffi.cast("uv_loop_t *", mem)
            rc = lib.uv_loop_init(self._uv_loop)
            if rc < 0:
                raise exception_from_uv(rc)
            batches.start(self._uv_loop)
            self._uv_owned = True
        else:
            self._uv_loop_mem = None
            self._uv_loop = foreign_ptr
            self._read_batches = None  # reads one by one (readbatch.py)
            self._uv_owned = False
        self._uv_wakeup = Timer(self)
        self._uv_wakeup_ptr = self._uv_wakeup.ptr
        if self._uv_owned:
            lib.uvffi_loop_set_wakeup(self._uv_loop, self._uv_wakeup_ptr)
        self._uv_async = Async(self)
        self._uv_async_lock = threading.Lock()
        self._uv_async_ptr = self._uv_async.ptr
        self._selector = UVSelector(self)
        if self._uv_owned:
            self._uv_sleep_setup(ffi.addressof(self._uv_loop_mem, "wanted"))
        # _run_once's zero-timeout poll (facets/scheduler.py: uvffi_run_nowait needs
        # the uvffi_loop_t); None: a host's loop, guest mode, or closed
        self._uv_nowait = self._uv_loop if self._uv_owned else None

    def _check_uv_open(self):
        if self._uv_loop is None:
            raise RuntimeError("Event loop is closed")

    def _store_fatal(self, exc):
        """A KeyboardInterrupt/SystemExit raised in a libuv callback: stop
        libuv now, re-raise from run_forever (first one wins)."""
        if self._fatal is None:
            self._fatal = exc
        self._guest_want()  # a guest step raises it (embedding.py)
        self._uv_want()
        if self._uv_loop is not None:
            lib.uv_stop(self._uv_loop)

    def _uv_teardown(self):
        ptr = self._uv_loop
        if ptr is None:
            return
        if os.getpid() != self._pid:
            # Inherited across fork: the epoll instance is shared with the
            # parent, so touching it would break the parent's loop.
            _leaked_loops.append((self._uv_loop_mem, self._uv_handles,
                                  self._read_batches))
            self._read_batches = None
            self._uv_loop = None
            self._uv_nowait = None
            self._uv_wanted = self._ready.wake = None
            return
        self._signals_close()
        with self._uv_async_lock:
            self._uv_async_ptr = None
        prev = _callbacks.set_driving_loop(self)
        try:
            for handle in list(self._uv_handles):
                try:
                    handle._close_for_loop_shutdown()
                except Exception as exc:
                    _callbacks.report(self, exc)
            for req in list(self._uv_requests):
                req.cancel()
            if self._uv_owned:
                # handles other C extensions put on our loop
                lib.uvffi_close_all(ptr)
                contextvars.Context().run(lib.uv_run, ptr, lib.UV_RUN_DEFAULT)
                rc = lib.uv_loop_close(ptr)
                if rc < 0:
                    _leaked_loops.append((self._uv_loop_mem, self._uv_handles,
                                          self._read_batches))
                self._read_batches = None
            else:
                self._embedding_teardown()
        finally:
            _callbacks.set_driving_loop(prev)
            self._fatal = None
            self._uv_loop = None
            self._uv_nowait = None
            self._uv_wanted = self._ready.wake = None

    # -- asyncio hooks ---------------------------------------------------------

    def _process_events(self, event_list):
        pass  # I/O callbacks already ran inside uv_run

    def _write_to_self(self):
        # call_soon_threadsafe: wake a loop that sleeps in uv_run.
        with self._uv_async_lock:
            ptr = self._uv_async_ptr
            if ptr is not None:
                lib.uv_async_send(ptr)

    def run_forever(self):
        if self._uv_in_run:
            self._check_closed()
            raise RuntimeError('This event loop is already running')
        installed = self._signals_enter_run()
        self._uv_in_run = True
        try:
            # libuv's callbacks run in an empty context of the loop's own
            # (handles/streamreads.py: plain), entered once here rather than
            # around every poll
            self._io_context = contextvars.Context()
            self._io_dirty = False
            self._io_context.run(super().run_forever)
        finally:
            self._uv_in_run = False
            self._signals_leave_run(installed)

    def close(self):
        if self.is_running() or self._uv_in_run:
            raise RuntimeError("Cannot close a running event loop")
        if self._uv_loop is None and self.is_closed():
            return
        try:
            super().close()
        finally:
            self._uv_teardown()

    # -- pointers for other C extensions ---------------------------------------

    @property
    def uv_loop_t(self):
        """Address of this loop's ``uv_loop_t`` as an int."""
        self._check_uv_open()
        return int(ffi.cast("uintptr_t", self._uv_loop))

    def __repr__(self):
        return "<%s running=%s closed=%s debug=%s>" % (
            self.__class__.__name__, self.is_running(), self.is_closed(),
            self.get_debug())
