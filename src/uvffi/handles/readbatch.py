"""The loop-level half of the read path: read batches.

On a loop uvffi created, every stream reads into one buffer of the loop's
(``uvffi_loop_t.read_buffer``, shim ``uvffi_stream.c``), and the shim hands
the reads to Python together, after libuv's poll phase: one C->Python call
per batch, not per read (``streamcallbacks._on_reads``).  ``ReadBatches``
owns what that takes: the buffer, the table the C side fills with one
(stream key, end offset) pair per read, and the key -> ``Stream`` map.  The
per-stream half -- reading mode, re-entrancy, held reads -- is ``Stream``'s
(stream.py).

A host's loop (embedding) has no batches: reads come one callback each,
through a per-thread C buffer.
"""
import functools
import sys

from .._uv import ffi, lib
from .core import new_unzeroed as _new_unzeroed
from .errors import exception_from_uv

_PYPY = sys.implementation.name == "pypy"


def _batch_reader(events):
    """A function giving the first n numbers of a read batch as a list:
    a memoryview's tolist() on CPython, ffi.unpack on PyPy, the cheaper
    one on each (docs/performance-notes.md, "Read batches")."""
    if _PYPY:
        return functools.partial(ffi.unpack, events)
    view = memoryview(ffi.buffer(events)).cast("q")
    return lambda n: view[:n].tolist()


class ReadBatches:
    """The read batches of *loop*, whose ``uvffi_loop_t`` is *mem*.

    ``view`` (a cffi buffer: slicing it gives ``bytes``, cheaper than
    ``bytes()`` of a memoryview slice) and ``mv`` (a memoryview of it:
    slices are views) address the buffer; ``numbers(n)`` is the first n
    numbers of the table, as a list; ``streams[key]`` is the stream a read
    belongs to (None once closed)."""

    __slots__ = ("loop", "ref", "memory", "view", "mv", "numbers", "streams",
                 "free_keys")

    def __init__(self, loop, mem):
        self.loop = loop
        buffer = _new_unzeroed("char[]", lib.uvffi_batch_buffer_size())
        events = ffi.new("int64_t[]", 2 * lib.uvffi_read_events_size())
        mem.read_buffer = buffer
        mem.read_events = events
        self.memory = (buffer, events)
        self.view = ffi.buffer(buffer)
        self.mv = memoryview(self.view)
        self.numbers = _batch_reader(events)
        self.streams = []
        self.free_keys = []  # keys of closed streams, for reuse
        # the shim's way back to us (its check handle's data); dropped when
        # the loop closes, so that a closed loop is not kept alive by it
        self.ref = ffi.new_handle(self)

    def start(self, uv_loop):
        """Start delivering batches (after uv_loop_init)."""
        rc = lib.uvffi_loop_reads_init(uv_loop, self.ref)
        if rc < 0:
            raise exception_from_uv(rc)

    def add(self, stream):
        """The key of a new reading *stream*: a small int, reused once its
        handle has closed, when no batch can hold it any more."""
        free = self.free_keys
        if free:
            key = free.pop()
            self.streams[key] = stream
        else:
            key = len(self.streams)
            self.streams.append(stream)
        return key

    def remove(self, key):
        """The handle of *key*'s stream has closed (libuv's close callback)."""
        self.streams[key] = None
        self.free_keys.append(key)
