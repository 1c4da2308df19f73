"""getaddrinfo/getnameinfo on libuv's resolver (uv_getaddrinfo/uv_getnameinfo).

libuv runs the C library's resolver on its thread pool, as asyncio runs
``socket.getaddrinfo`` in the default executor; the results are converted
exactly as ``socket.getaddrinfo``/``socket.getnameinfo`` convert them, so a
caller cannot tell the two apart (``AddressFamily``/``SocketKind`` enums,
IPv6 4-tuples, ``gaierror`` codes and messages).

Before a lookup goes to the thread pool, the socket module itself is asked
with AI_NUMERICHOST (getnameinfo: NI_NUMERICHOST|NI_NUMERICSERV), which
never leaves the process.  That answers literal addresses at once (as
asyncio's ``_ipaddr_info`` shortcut does, but with the full, identical
result list), and makes argument errors exactly those of this
interpreter's socket module (CPython and PyPy word them differently).

libuv converts the host name before the C resolver sees it (IDNA for
non-ASCII bytes, and a 256-byte buffer: older libuv truncated there, which
turned a long name into a different one, newer ones refuse it with EINVAL).
The socket module hands the bytes over untouched, so such names are looked
up by ``socket.getaddrinfo`` in the default executor, as asyncio does.

A request stays referenced (``loop._uv_requests``) until libuv's callback:
libuv writes into the request until then, even when we gave up on it.
"""
import logging
import operator
import socket

from ._uv import ffi, lib
from ._callbacks import def_extern, report
from .errors import gaierror_from_uv

logger = logging.getLogger("asyncio")  # where BaseEventLoop logs this too

_from_handle = ffi.from_handle
_AddressFamily = socket.AddressFamily
_SocketKind = socket.SocketKind


def _to_enum(value, enum_cls):
    try:
        return enum_cls(value)
    except ValueError:
        return value


def _c_uint_wrap(value):
    """An argument parsed as "I": unsigned int, silently truncated."""
    return operator.index(value) & 0xffffffff


def _encode_host(host):
    """Host argument of socket.getaddrinfo -> bytes or None, same checks."""
    if host is None:
        return None
    if isinstance(host, str):
        return host.encode("idna")
    if isinstance(host, bytes):
        return host
    raise TypeError("getaddrinfo() argument 1 must be string or None")


def _encode_port(port):
    if port is None:
        return None
    if isinstance(port, int):
        if not -(1 << 63) <= port < (1 << 63):  # PyLong_AsLong, LP64
            raise OverflowError("Python int too large to convert to C long")
        return b"%d" % port
    if isinstance(port, str):
        return port.encode("utf-8")
    if isinstance(port, bytes):
        return port
    raise OSError("Int or String expected")


def _as_c_int(value):
    """An int already accepted by the socket module, as the C int it became
    (PyPy's socket truncates where CPython raises)."""
    return ((value + 0x80000000) & 0xffffffff) - 0x80000000


def _with_flag(flags, flag):
    try:
        # int(flag): or-ing an int into an IntFlag member masks unknown
        # bits away (flags=-1 became valid flags instead of EAI_BADFLAGS)
        return operator.index(flags) | int(flag)
    except TypeError:
        return flags  # not an int: the socket module raises its own error


def _c_string_empty(host):
    """Whether *host* is the empty string once seen as a C string."""
    try:
        return not _encode_host(host).split(b"\0", 1)[0]
    except (TypeError, UnicodeError):
        return False


# The longest name (without its NUL) that libuv's host buffer holds.
_UV_MAX_HOST = 255


def _libuv_keeps_host(node):
    """Whether libuv passes *node* (encoded host, or None) to the C resolver
    unchanged: ASCII (libuv would IDNA-encode other bytes, or refuse bytes
    that are not UTF-8) and short enough for its buffer.  The C resolver
    sees the name up to its first NUL, as with the socket module."""
    if node is None:
        return True
    name = node.split(b"\0", 1)[0]
    return len(name) <= _UV_MAX_HOST and name.isascii()


def _numeric_probe(host, port, family, type, proto, flags):
    """Ask the C resolver with AI_NUMERICHOST, which never leaves the
    process.  Returns its answer when *host* is a literal (or None): the
    same answer as without the flag.  Returns None when a real lookup is
    needed.  Argument errors come out exactly as socket.getaddrinfo raises
    them on this interpreter."""
    try:
        return socket.getaddrinfo(host, port, family, type, proto,
                                  _with_flag(flags, socket.AI_NUMERICHOST))
    except socket.gaierror:
        if host is None or _c_string_empty(host):
            # no name to resolve: the real call answers the same.  (An empty
            # name, or one starting with NUL, which the socket module cuts
            # there, is refused by the C resolver; libuv would say EINVAL.)
            raise
        return None  # a name (or bad hints, which libuv reports in turn)


def _convert_sockaddr(addr):
    """struct sockaddr -> the tuple the socket module makes of it."""
    ip = ffi.new("char[]", 64)
    port = ffi.new("int *")
    flowinfo = ffi.new("unsigned int *")
    scope_id = ffi.new("unsigned int *")
    family = lib.uvffi_sockaddr_unpack(addr, ip, 64, port, flowinfo, scope_id)
    host = ffi.string(ip).decode("ascii")
    if family == socket.AF_INET:
        return (host, port[0])
    if family < 0:  # neither IPv4 nor IPv6 (does not happen for AF_INET*)
        return (lib.uvffi_sockaddr_family(addr), b"")
    return (host, port[0], flowinfo[0], scope_id[0])


def _convert_addrinfo(res):
    out = []
    while res != ffi.NULL:
        canon = res.ai_canonname
        out.append((
            _to_enum(res.ai_family, _AddressFamily),
            _to_enum(res.ai_socktype, _SocketKind),
            res.ai_protocol,
            ffi.string(canon).decode("utf-8") if canon != ffi.NULL else "",
            _convert_sockaddr(res.ai_addr),
        ))
        res = res.ai_next
    return out


class _Request:
    """One getaddrinfo/getnameinfo request: cdata, future, keep-alives."""

    __slots__ = ("loop", "req", "fut", "_self_ref", "_keep", "__weakref__")

    CTYPE = None

    def __init__(self, loop, keep):
        self.loop = loop
        self.req = ffi.new(self.CTYPE)
        self._self_ref = ffi.new_handle(self)
        self.req.data = self._self_ref
        self._keep = keep  # buffers libuv may read until the callback
        self.fut = loop.create_future()

    def started(self, rc):
        if rc < 0:
            raise gaierror_from_uv(rc)
        self.loop._uv_requests.add(self)
        self.fut.add_done_callback(self._on_fut_done)

    def _on_fut_done(self, fut):
        if fut.cancelled():
            self.cancel()

    def cancel(self):
        """Ask libuv to drop the request (Loop.close, or our caller gave up).
        uv_cancel fails once the lookup runs; the callback comes anyway."""
        if self in self.loop._uv_requests and self.loop._uv_loop is not None:
            # only while libuv owns it: after the callback (or uv_loop_close)
            # uv_cancel would touch a finished request / a dead loop
            lib.uv_cancel(self.req)
        loop = self.loop
        if not loop.is_closed() and not self.fut.done():
            self.fut.cancel()

    def finish(self, status, make_result):
        """libuv is done with the request: it may be freed after this."""
        loop = self.loop
        loop._uv_requests.discard(self)
        fut = self.fut
        if fut.done() or loop.is_closed():
            return
        if status == lib.UV_EAI_CANCELED or status == lib.UV_ECANCELED:
            fut.cancel()
        elif status < 0:
            fut.set_exception(gaierror_from_uv(status))
        else:
            try:
                fut.set_result(make_result())
            except Exception as exc:  # decoding trouble: the caller hears of it
                fut.set_exception(exc)


class _GetAddrInfo(_Request):
    __slots__ = ()
    CTYPE = "uv_getaddrinfo_t *"


class _GetNameInfo(_Request):
    __slots__ = ()
    CTYPE = "uv_getnameinfo_t *"


@def_extern("_uvffi_getaddrinfo_cb")
def _getaddrinfo_cb(req, status, res):
    obj = _from_handle(req.data)
    try:
        obj.finish(status, lambda: _convert_addrinfo(res))
    except Exception as exc:
        report(obj.loop, exc)
    finally:
        if res != ffi.NULL:
            lib.uv_freeaddrinfo(res)


@def_extern("_uvffi_getnameinfo_cb")
def _getnameinfo_cb(req, status, hostname, service):
    obj = _from_handle(req.data)
    try:
        obj.finish(status, lambda: (ffi.string(hostname).decode("utf-8"),
                                    ffi.string(service).decode("utf-8")))
    except Exception as exc:
        report(obj.loop, exc)


def _getnameinfo_sockaddr(sockaddr, flags):
    """Validate as socket.getnameinfo does; returns (sockaddr_storage,
    flags as a C int)."""
    # The socket module itself checks the arguments and resolves the numeric
    # host, without any lookup (NI_NUMERICHOST|NI_NUMERICSERV): its errors,
    # on this interpreter, are ours.  The real lookup goes to libuv below.
    try:
        probe_flags = ((operator.index(flags) | socket.NI_NUMERICHOST |
                        socket.NI_NUMERICSERV) & ~socket.NI_NAMEREQD)
    except TypeError:
        probe_flags = flags  # not an int: the socket module raises
    socket.getnameinfo(sockaddr, probe_flags)
    flags = _as_c_int(operator.index(flags))
    host = sockaddr[0]
    port = operator.index(sockaddr[1])
    flowinfo = _c_uint_wrap(sockaddr[2]) if len(sockaddr) > 2 else 0
    scope_id = _c_uint_wrap(sockaddr[3]) if len(sockaddr) > 3 else 0
    # What CPython does next: resolve the *numeric* host (no lookup leaves
    # the process), requiring exactly one address.
    infos = socket.getaddrinfo(host, "%d" % _as_c_int(port), socket.AF_UNSPEC,
                               socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    family, _, _, _, addr = infos[0]
    out = ffi.new("struct sockaddr_storage *")
    if family == socket.AF_INET:
        rc = lib.uvffi_sockaddr_in(out, addr[0].encode("ascii"), addr[1])
    else:
        # the scope is the tuple's (as CPython sets it); PyPy's socket
        # module leaves a textual "%scope" in the address, which libuv's
        # parser would take instead
        ip = addr[0].split("%", 1)[0]
        rc = lib.uvffi_sockaddr_in6(out, ip.encode("ascii"), addr[1],
                                    flowinfo, scope_id)
    if rc < 0:
        raise gaierror_from_uv(rc)
    return out, flags


class DnsMixin:
    """loop.getaddrinfo / loop.getnameinfo."""

    async def getaddrinfo(self, host, port, *,
                          family=0, type=0, proto=0, flags=0):
        if self._debug:
            return await self._getaddrinfo_logged(host, port, family, type,
                                                  proto, flags)
        return await self._uv_getaddrinfo(host, port, family, type, proto,
                                          flags)

    async def _getaddrinfo_logged(self, host, port, family, type, proto,
                                  flags):
        # the same two log lines as BaseEventLoop._getaddrinfo_debug
        msg = [f"{host}:{port!r}"]
        if family:
            msg.append(f"family={family!r}")
        if type:
            msg.append(f"type={type!r}")
        if proto:
            msg.append(f"proto={proto!r}")
        if flags:
            msg.append(f"flags={flags!r}")
        msg = ", ".join(msg)
        logger.debug("Get address info %s", msg)
        t0 = self.time()
        addrinfo = await self._uv_getaddrinfo(host, port, family, type,
                                              proto, flags)
        dt = self.time() - t0
        msg = f"Getting address info {msg} took {dt * 1e3:.3f}ms: {addrinfo!r}"
        if dt >= self.slow_callback_duration:
            logger.info(msg)
        else:
            logger.debug(msg)
        return addrinfo

    async def _uv_getaddrinfo(self, host, port, family, type, proto, flags):
        self._check_closed()
        infos = _numeric_probe(host, port, family, type, proto, flags)
        if infos is not None:
            return infos
        # arguments the socket module accepted; convert them as it does
        node = _encode_host(host)
        if not _libuv_keeps_host(node):
            return await self.run_in_executor(
                None, socket.getaddrinfo, host, port, family, type, proto,
                flags)
        service = _encode_port(port)
        hints = ffi.new("struct addrinfo *")
        hints.ai_family = _as_c_int(operator.index(family))
        hints.ai_socktype = _as_c_int(operator.index(type))
        hints.ai_protocol = _as_c_int(operator.index(proto))
        hints.ai_flags = _as_c_int(operator.index(flags))
        c_node = ffi.new("char[]", node) if node is not None else ffi.NULL
        c_service = ffi.new("char[]", service) if service is not None else ffi.NULL
        r = _GetAddrInfo(self, (hints, c_node, c_service))
        r.started(lib.uv_getaddrinfo(self._uv_loop, r.req,
                                     lib._uvffi_getaddrinfo_cb,
                                     c_node, c_service, hints))
        return await r.fut

    async def getnameinfo(self, sockaddr, flags=0):
        self._check_closed()
        addr, flags = _getnameinfo_sockaddr(sockaddr, flags)
        r = _GetNameInfo(self, (addr,))
        r.started(lib.uv_getnameinfo(self._uv_loop, r.req,
                                     lib._uvffi_getnameinfo_cb,
                                     ffi.cast("struct sockaddr *", addr), flags))
        return await r.fut
