"""The base class of every libuv handle wrapper, and the callbacks that all
handle types share.

A wrapper owns its ``uv_*_t`` memory (``ffi.new``) and a ``ffi.new_handle``
back-pointer stored in ``handle->data``.  From the moment the handle is
initialised until libuv calls its close callback, the loop holds the wrapper
in ``loop._uv_handles``: libuv may touch the memory at any time before then,
so it must not be freed (docs/architecture.md, "Rules for code that
touches libuv").

Requests follow one model (docs/architecture.md, "Requests"): a request made
on a handle (write, shutdown, connect, UDP send) is held, with the memory it
points at, in that handle's ``reqs`` from submission until its callback
releases it.  Closing the handle ends every one of them: libuv calls each
back (``UV_ECANCELED``) before the handle's close callback, so ``reqs`` is
empty by then.  Requests made on the loop (getaddrinfo, getnameinfo) are
held in ``loop._uv_requests`` and cancelled by ``loop.close()``.
"""
from .._uv import ffi, lib
from .callbacks import def_extern, report
from .errors import exception_from_uv

_from_handle = ffi.from_handle
# C memory that is overwritten before it is read (read buffers, copies of
# data to write): zeroing it first is wasted work
new_unzeroed = ffi.new_allocator(should_clear_after_alloc=False)


class UVHandle:
    """One libuv handle.  Subclasses call ``_init_done(rc)`` right after their
    ``uv_*_init``; from then on only :meth:`close` ends its life."""

    __slots__ = ("loop", "ptr", "_self_ref", "closing", "reqs", "__weakref__")

    CTYPE = "uv_handle_t *"

    def __init__(self, loop):
        loop._check_uv_open()
        self.loop = loop
        self.ptr = self._new_memory()
        self._self_ref = ffi.new_handle(self)
        self.ptr.data = self._self_ref
        self.closing = True  # until initialised: nothing for libuv to close
        # in-flight requests on this handle -> what keeps their memory alive
        # (None for handle types that make no requests)
        self.reqs = None

    def _new_memory(self):
        return ffi.new(self.CTYPE)

    def _init_done(self, rc):
        if rc < 0:
            raise exception_from_uv(rc)
        self.closing = False
        self.loop._uv_handles.add(self)

    def close(self):
        """Ask libuv to close the handle; memory is kept until it is done."""
        if not self.closing:
            self.closing = True
            lib.uvffi_close(self.ptr)

    def _on_close(self):
        """libuv has finished with the handle: the memory may go."""
        self.loop._uv_handles.discard(self)

    def hold_request(self, req, keep=None):
        """Keep request *req* (and *keep*, the memory it points at) alive
        until :meth:`release_request`; call it only once libuv has accepted *req*."""
        self.reqs[req] = keep

    def release_request(self, req):
        """*req*'s callback has run: drop it; return what it kept."""
        return self.reqs.pop(req, None)

    def ref(self, on=True):
        if not self.closing:
            (lib.uv_ref if on else lib.uv_unref)(self.ptr)

    def fileno(self):
        out = ffi.new("int64_t *")
        rc = lib.uvffi_fileno(self.ptr, out)
        if rc < 0:
            raise exception_from_uv(rc)
        return int(out[0])

    # Called by Loop.close() for handles still open: the default is to close.
    def _close_for_loop_shutdown(self):
        self.close()


@def_extern("_uvffi_close_cb")
def _close_cb(handle):
    obj = _from_handle(handle.data)
    try:
        obj._on_close()
    except Exception as exc:
        report(obj.loop, exc)


class UVCallbackHandle(UVHandle):
    """A handle whose event just calls ``self.callback()`` (timer, idle,
    check, prepare, async): the callback must be set before the handle
    is started."""

    __slots__ = ("callback",)


def _dispatch(handle):
    obj = _from_handle(handle.data)
    try:
        obj.callback()
    except Exception as exc:
        report(obj.loop, exc)


for _name in ("_uvffi_timer_cb", "_uvffi_idle_cb", "_uvffi_check_cb",
              "_uvffi_prepare_cb", "_uvffi_async_cb"):
    def_extern(_name)(_dispatch)
del _name


class Timer(UVCallbackHandle):
    __slots__ = ()
    CTYPE = "uv_timer_t *"

    def __init__(self, loop, callback=None):
        super().__init__(loop)
        self.callback = callback
        self._init_done(lib.uv_timer_init(loop._uv_loop, self.ptr))

    def start(self, timeout_ms, repeat_ms=0):
        rc = lib.uv_timer_start(self.ptr, lib._uvffi_timer_cb, timeout_ms, repeat_ms)
        if rc < 0:
            raise exception_from_uv(rc)

    def stop(self):
        if not self.closing:
            lib.uv_timer_stop(self.ptr)


class Async(UVCallbackHandle):
    __slots__ = ()
    CTYPE = "uv_async_t *"

    def __init__(self, loop, callback=None):
        super().__init__(loop)
        self.callback = callback
        if callback is None:
            # wake-up only, with a C callback: on a loop uvffi created it
            # also ends the loop's sleep (scheduler.py: _uv_sleep)
            init = (lib.uvffi_async_init_wake if loop._uv_owned
                    else lib.uvffi_async_init_noop)
            rc = init(loop._uv_loop, self.ptr)
        else:
            rc = lib.uv_async_init(loop._uv_loop, self.ptr, lib._uvffi_async_cb)
        self._init_done(rc)

    def send(self):
        # Safe from any thread (libuv's contract for uv_async_send).
        lib.uv_async_send(self.ptr)


class _StartStopHandle(UVCallbackHandle):
    """idle / check / prepare: init, start(cb), stop."""

    __slots__ = ()
    _INIT = _START = _STOP = _CB = None

    def __init__(self, loop, callback):
        super().__init__(loop)
        self.callback = callback
        self._init_done(getattr(lib, self._INIT)(loop._uv_loop, self.ptr))

    def start(self):
        rc = getattr(lib, self._START)(self.ptr, getattr(lib, self._CB))
        if rc < 0:
            raise exception_from_uv(rc)

    def stop(self):
        if not self.closing:
            getattr(lib, self._STOP)(self.ptr)


class Idle(_StartStopHandle):
    __slots__ = ()
    CTYPE = "uv_idle_t *"
    _INIT, _START, _STOP, _CB = "uv_idle_init", "uv_idle_start", "uv_idle_stop", "_uvffi_idle_cb"


class Check(_StartStopHandle):
    __slots__ = ()
    CTYPE = "uv_check_t *"
    _INIT, _START, _STOP, _CB = "uv_check_init", "uv_check_start", "uv_check_stop", "_uvffi_check_cb"


class Prepare(_StartStopHandle):
    __slots__ = ()
    CTYPE = "uv_prepare_t *"
    _INIT, _START, _STOP, _CB = ("uv_prepare_init", "uv_prepare_start",
                                 "uv_prepare_stop", "_uvffi_prepare_cb")
