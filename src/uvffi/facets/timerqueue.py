"""The timer queue behind ``loop._scheduled``: deadline buckets, not a heap.

A heap of ``(when, seq, handle)`` tuples spent most of a timer's cost in
tuple comparisons and cache misses (cancelled entries are popped too) and
made one GC-tracked tuple per timer, so the collector ran more often and
walked more objects (docs/performance-notes.md, "Timers").  Here a timer is appended to the list of its millisecond
(``int(when * 1000.0)``), a dict maps millisecond -> list, and a heap holds
the milliseconds that have a list.  Only the earliest list is ever sorted
(``list.sort`` by ``_when``, in C): once, when it becomes the head, and
again only if a timer was added to it since.  Pushing is a dict lookup and
an append; the ready side takes whole lists at a time.

Order is exactly "by deadline, then by scheduling order": the key function
never decreases as ``when`` grows (int() truncates, ±inf and overflows get
±inf keys), so every timer in an earlier list is due no later than any in a
later one; within a list, timers that were appended later were scheduled
later and ``list.sort`` is stable, so equal deadlines keep FIFO order.

A deadline that cannot be ordered as a number (NaN, a str, a Decimal...)
switches the queue to asyncio's own heap of handles until it drains, so that
such timers behave as on asyncio's loop (where NaN compares false with
everything and stays wherever the heap put it; a str raises on the next
push).  ``heap`` is None while buckets are in use.

Someone may ask to hear of the next push (guest mode, idle, must know when
a timer is added outside its steps: embedding.py): ``watch`` holds a cffi
``int *`` set to 1 by that push.  call_later pushes inline only while
``plain`` (buckets in use, nobody watching); else it calls push().
"""
import collections
import heapq
from operator import attrgetter

_heappush = heapq.heappush
# deque's own methods: the loop's ReadyQueue overrides append/extend for
# handles queued by other code; the loop's timers need no such check
_deque_append = collections.deque.append
_deque_extend = collections.deque.extend
_heappop = heapq.heappop
_when_of = attrgetter("_when")
_INF = float("inf")


def bucket_key(when):
    """The millisecond list a deadline goes to, or None if it has no place
    in ordered buckets (the callers inline the first line: it is the fast
    path of every call_later)."""
    try:
        return int(when * 1000.0)
    except OverflowError:  # ±inf, or beyond float range
        return _INF if when > 0 else -_INF
    except Exception:  # noqa: BLE001 - NaN, or not a number we can scale
        return None


class TimerQueue:
    """``loop._scheduled``.  asyncio itself only calls ``clear()`` on it
    (BaseEventLoop.close); ``len()``, truth and iteration (over the handles,
    in no particular order) are there for introspection and tests."""

    __slots__ = ("buckets", "keys", "n", "head", "head_len", "heap",
                 "watch", "plain")

    def __init__(self):
        self.buckets = {}     # millisecond key -> list of TimerHandles
        self.keys = []        # heap of the keys of ``buckets``
        self.n = 0            # timers queued, cancelled ones included
        self.head = None      # the head list as last sorted ...
        self.head_len = 0     # ... and its length then (an append changes it)
        self.heap = None      # asyncio's heap of handles, in fallback mode
        self.watch = None     # an int * the next push sets to 1, or None
        self.plain = True     # heap is None and watch is None

    def __len__(self):
        return self.n

    def __bool__(self):
        return self.n > 0

    def __iter__(self):
        if self.heap is not None:
            return iter(list(self.heap))
        return iter([t for bucket in self.buckets.values() for t in bucket])

    def clear(self):
        self.buckets = {}
        self.keys = []
        self.n = 0
        self.head = None
        self._buckets_again()

    def _buckets_again(self):
        self.heap = None
        self.plain = self.watch is None

    def set_watch(self, flag):
        """Have the next push set ``flag[0] = 1`` (then forget *flag*)."""
        self.watch = flag
        self.plain = False

    def clear_watch(self):
        self.watch = None
        self.plain = self.heap is None

    # -- pushing -----------------------------------------------------------

    def push(self, timer):
        """Queue *timer* (call_later inlines the common case and comes here
        for the deadlines ``int(when * 1000.0)`` refuses, and while
        someone watches)."""
        watch = self.watch
        if watch is not None:
            self.watch = None
            self.plain = self.heap is None
            watch[0] = 1
        if not self.heap:  # buckets mode, or the fallback heap has drained
            self._buckets_again()
            key = bucket_key(timer._when)
            if key is not None:
                bucket = self.buckets.get(key)
                if bucket is None:
                    self.buckets[key] = [timer]
                    _heappush(self.keys, key)
                else:
                    bucket.append(timer)
                self.n += 1
                return
            self._to_heap()
        # asyncio's push: may raise TypeError for an incomparable deadline,
        # leaving the handle in the heap exactly as asyncio's heappush does
        heap = self.heap
        try:
            _heappush(heap, timer)
        finally:
            self.n = len(heap)

    def _to_heap(self):
        """Switch to asyncio's heap of handles.  The queued timers, in
        order, are already a valid heap."""
        heap = []
        for key in sorted(self.keys):
            heap.extend(sorted(self.buckets[key], key=_when_of))
        self.clear()
        self.heap = heap
        self.plain = False
        self.n = len(heap)

    # -- the earliest timers -------------------------------------------------

    def _head_bucket(self):
        """The earliest list, sorted by deadline (needs n > 0, buckets mode)."""
        bucket = self.buckets[self.keys[0]]
        if bucket is not self.head or len(bucket) != self.head_len:
            bucket.sort(key=_when_of)
            self.head = bucket
            self.head_len = len(bucket)
        return bucket

    def _pop_head_bucket(self):
        del self.buckets[_heappop(self.keys)]
        self.head = None

    def peek_when(self):
        """Deadline of the earliest queued timer (cancelled or not), or None."""
        if not self.n:
            return None
        if self.heap is not None:
            return self.heap[0]._when
        return self._head_bucket()[0]._when

    def drop_cancelled_heads(self):
        """Remove the cancelled timers at the front; return how many were
        removed and the earliest live deadline (None if none is left)."""
        dropped = 0
        heap = self.heap
        if heap is not None:  # asyncio's loop, on its heap
            while heap and heap[0]._cancelled:
                dropped += 1
                _heappop(heap)._scheduled = False
            self.n = len(heap)
            if heap:
                return dropped, heap[0]._when
            self._buckets_again()  # drained: back to buckets
            return dropped, None
        while self.n:
            bucket = self._head_bucket()
            i = 0
            for timer in bucket:
                if not timer._cancelled:
                    break
                timer._scheduled = False
                i += 1
            self.n -= i
            dropped += i
            if i == len(bucket):
                self._pop_head_bucket()
                continue
            if i:
                del bucket[:i]
                self.head_len -= i
            return dropped, bucket[0]._when
        return dropped, None

    def move_due(self, ready, end_time):
        """Append to *ready* (a deque) the timers with ``when < end_time``,
        in order (cancelled ones too, as asyncio does: the run loop skips them)."""
        heap = self.heap
        if heap is not None:
            # "not >=" as asyncio's loop writes it: a NaN deadline at the
            # head is due at once rather than never.
            while heap and not heap[0]._when >= end_time:
                timer = _heappop(heap)
                timer._scheduled = False
                _deque_append(ready, timer)
            self.n = len(heap)
            if not heap:
                self._buckets_again()
            return
        while self.n:
            bucket = self._head_bucket()
            if bucket[-1]._when < end_time:  # the whole list is due
                for timer in bucket:
                    timer._scheduled = False
                _deque_extend(ready, bucket)
                self.n -= len(bucket)
                self._pop_head_bucket()
                continue
            i = 0
            for timer in bucket:
                if timer._when >= end_time:
                    break
                timer._scheduled = False
                i += 1
            if i:
                _deque_extend(ready, bucket[:i])
                del bucket[:i]
                self.head_len -= i
                self.n -= i
            return

    def drop_cancelled(self):
        """asyncio's periodic cleanup: rebuild without the cancelled timers."""
        heap = self.heap
        if heap is not None:
            live = []
            for timer in heap:
                if timer._cancelled:
                    timer._scheduled = False
                else:
                    live.append(timer)
            heapq.heapify(live)
            if live:
                self.heap = live
            else:
                self._buckets_again()
            self.n = len(live)
            return
        buckets = {}
        n = 0
        for key, bucket in self.buckets.items():
            live = []
            keep = live.append
            for timer in bucket:
                if timer._cancelled:
                    timer._scheduled = False
                else:
                    keep(timer)
            if live:  # filtering keeps the order, so FIFO ties stay FIFO
                buckets[key] = live
                n += len(live)
        keys = list(buckets)
        heapq.heapify(keys)
        self.buckets = buckets
        self.keys = keys
        self.n = n
        self.head = None
