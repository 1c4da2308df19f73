"""``uv_udp_t``: the handle under the UDP transport (transports/udp.py),
with libuv's receive and send callbacks."""
from .._uv import ffi, lib
from .callbacks import def_extern, report_failure
from .core import UVHandle
from .errors import exception_from_uv

_from_handle = ffi.from_handle


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


@def_extern("_uvffi_udp_recv_cb")
def _recv_cb(handle, nread, buf, addr, flags):
    udp = _from_handle(handle.data)
    try:
        udp.on_recv(nread, buf, addr, flags)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(udp, exc, "Fatal error in a datagram receive callback")


@def_extern("_uvffi_udp_send_cb")
def _send_cb(req, status):
    obj = _from_handle(req.handle.data)
    keep = obj.release_request(req)
    if keep is not None:
        try:
            obj.on_send(status, keep[1])
        except Exception as exc:  # noqa: BLE001 - BaseException: onerror
            report_failure(obj, exc, "Fatal error in a datagram send callback")
