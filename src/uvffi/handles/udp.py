"""``uv_udp_t``: the handle under the UDP transport (transports/udp.py),
with libuv's receive and send callbacks."""
from .._uv import ffi, lib
from .callbacks import def_extern, report_failure
from .core import UVHandle
from .errors import exception_from_uv

_from_handle = ffi.from_handle
_new = ffi.new
_cast = ffi.cast
_memmove = ffi.memmove
_NULL = ffi.NULL
_SOCKADDR_STORAGE = ffi.sizeof("struct sockaddr_storage")


class UDPHandle(UVHandle):
    """A ``uv_udp_t``.  The owner sets ``on_recv(nread, buf, addr, flags)``
    and ``on_send(status, charged)``, and ``on_failure(exc, message)`` for
    what they raise."""

    __slots__ = ("on_recv", "on_send", "on_failure")
    CTYPE = "uv_udp_t *"

    def __init__(self, loop):
        super().__init__(loop)
        self.on_recv = self.on_send = self.on_failure = None
        # in-flight uv_udp_send_t -> (C copy of the datagram, bytes charged)
        self.reqs = {}
        self._init_done(lib.uv_udp_init(loop._uv_loop, self.ptr))

    def open(self, fd):
        rc = lib.uv_udp_open(self.ptr, fd)
        if rc < 0:
            raise exception_from_uv(rc)

    def recv_start(self):
        rc = lib.uvffi_udp_recv_start(self.ptr)
        if rc < 0:
            raise exception_from_uv(rc)

    def recv_stop(self):
        if not self.closing:
            lib.uv_udp_recv_stop(self.ptr)

    # A poll that began with callbacks already queued (``loop._uv_defer_io``)
    # calls no owner: on asyncio's loop those callbacks run before the
    # poll's I/O callbacks, which it queues behind them.  libuv has already
    # received the datagram, so a copy of it waits in the ready queue (and
    # a send's completion with it, in the order libuv reported them).

    def hold_recv(self, nread, buf, addr, flags):
        held_buf = _new("uv_buf_t *")
        data = None
        if nread >= 0:  # (0: an empty datagram, or nothing: see on_recv's addr)
            data = _new("char[]", nread or 1)
            if nread:
                _memmove(data, buf.base, nread)
            held_buf.base = data
            held_buf.len = nread
        held_addr = _NULL
        if addr != _NULL:
            storage = _new("struct sockaddr_storage *")
            _memmove(storage, addr, _SOCKADDR_STORAGE)
            held_addr = _cast("struct sockaddr *", storage)
        else:
            storage = None
        self.loop.call_soon(self._held_recv, nread, held_buf, held_addr, flags,
                            (data, storage))

    def _held_recv(self, nread, buf, addr, flags, _keep):
        if self.closing:
            return  # nothing after close(), as on asyncio's loop
        try:
            self.on_recv(nread, buf, addr, flags)
        except Exception as exc:  # noqa: BLE001
            report_failure(self, exc, "Fatal error in a datagram receive callback")

    def held_send(self, status, charged):
        """A send's completion (its request released), to the owner."""
        try:
            self.on_send(status, charged)
        except Exception as exc:  # noqa: BLE001 - BaseException: onerror
            report_failure(self, exc, "Fatal error in a datagram send callback")


@def_extern("_uvffi_udp_recv_cb")
def _recv_cb(handle, nread, buf, addr, flags):
    udp = _from_handle(handle.data)
    if udp.loop._uv_defer_io:
        udp.hold_recv(nread, buf, addr, flags)
        return
    try:
        udp.on_recv(nread, buf, addr, flags)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(udp, exc, "Fatal error in a datagram receive callback")


@def_extern("_uvffi_udp_send_cb")
def _send_cb(req, status):
    obj = _from_handle(req.handle.data)
    keep = obj.release_request(req)
    if keep is None:
        return
    if obj.loop._uv_defer_io:
        obj.loop.call_soon(obj.held_send, status, keep[1])
        return
    obj.held_send(status, keep[1])
