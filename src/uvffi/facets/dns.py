"""getaddrinfo/getnameinfo on libuv's thread pool.

The C library's resolver runs on libuv's thread pool, as asyncio runs
``socket.getaddrinfo`` in the default executor; the results are converted
exactly as ``socket.getaddrinfo``/``socket.getnameinfo`` convert them, so a
caller cannot tell the two apart (``AddressFamily``/``SocketKind`` enums,
IPv6 4-tuples, ``gaierror`` codes and messages).

getaddrinfo: a call of the common form -- a name as str/bytes, the port as
an int, str or bytes, the other arguments as ints -- goes straight to the
loop's lookup queue (shim/uvffi_dns.c), which hands getaddrinfo() the very
C strings the socket module would.  Anything else first asks the socket
module itself with AI_NUMERICHOST, which never leaves the process: that
answers literal addresses at once (as asyncio's ``_ipaddr_info`` shortcut
does, but with the full, identical result list), and raises argument errors
exactly as this interpreter's socket module does (CPython and PyPy word
them differently).  The fast path takes only what that probe provably lets
through without an answer: a literal starts with a digit (IPv4, in every C
library's inet_aton/inet_pton) or contains a colon (IPv6).

The queue's runners answer through one async handle per loop; the C side
flattens each answer into fixed records, which one ``struct.iter_unpack``
turns into tuples.  getnameinfo uses uv_getnameinfo as it is.

A request stays referenced (``loop._uv_requests``) until its answer comes:
the C side writes into it until then, even when we gave up on it.
Cancellation goes through the awaiting coroutine (a done-callback on every
future would cost a call_soon per lookup).
"""
import logging
import operator
import os
import socket
import struct
from asyncio import CancelledError

from .._uv import ffi, lib
from ..handles.callbacks import def_extern, report
from ..handles.errors import gaierror_from_uv
from ..handles.core import UVHandle
from .dnsargs import (C_INTS, as_c_int, bytes_nodes, c_uint_wrap,
                      encode_host, encode_port, fast_node, fast_service,
                      host_style, int_services, numeric_probe, str_nodes)

logger = logging.getLogger("asyncio")  # where BaseEventLoop logs this too

_type = type  # getaddrinfo's parameter named "type" shadows it
_from_handle = ffi.from_handle
_new_handle = ffi.new_handle
_new = ffi.new
_unpack = ffi.unpack
_NULL = ffi.NULL
_gai_submit = lib.uvffi_gai_submit
_AddressFamily = socket.AddressFamily
_SocketKind = socket.SocketKind
_AF_INET = socket.AF_INET
_EAI_SYSTEM = getattr(socket, "EAI_SYSTEM", None)

# uvffi_ai_rec (shim/uvffi_dns.c): ai_family, socktype, protocol, canon,
# sa_family, port, flowinfo, scope_id, iplen, ip
_REC = struct.Struct("6i2Ii64s")
assert _REC.size == ffi.sizeof("uvffi_ai_rec"), "uvffi_ai_rec layout"
_iter_records = _REC.iter_unpack


# -- requests ---------------------------------------------------------------------

class _Resolver(UVHandle):
    """A loop's lookup queue (shim/uvffi_dns.c), wrapped as the async
    handle through which its answers come back to the loop.  It lives while
    lookups are outstanding, and closes once the loop has gone an iteration
    without any: the loop holds no handle of its own for DNS when idle.
    The C side frees the queue once the handle is closed and its last
    runner has ended."""

    __slots__ = ("queue", "outstanding")

    def __init__(self, loop):
        super().__init__(loop)
        self.outstanding = 0
        self._init_done(lib.uvffi_gaiq_init(loop._uv_loop, self.queue))

    def _new_memory(self):
        self.queue = queue = lib.uvffi_gaiq_new(host_style())
        if queue == _NULL:
            raise MemoryError
        return ffi.cast("uv_async_t *", queue)

    def lookup_done(self):
        self.outstanding -= 1
        if not self.outstanding and not self.loop.is_closed():
            # not at once: the task that got this answer may ask again
            self.loop.call_soon(self._close_if_idle)

    def _close_if_idle(self):
        if not self.outstanding:
            self.close()

    def close(self):
        if not self.closing:
            self.closing = True
            lib.uvffi_gaiq_close(self.queue)


class _Request:
    """A getnameinfo request in flight: its libuv memory, its future, and
    the handle libuv's callback finds it by (None once libuv is done with
    the request)."""

    __slots__ = ("loop", "req", "fut", "handle", "__weakref__")

    def cancel(self):
        """Ask libuv to drop the request (Loop.close, or our caller gave up).
        uv_cancel fails once the lookup runs; the callback comes anyway."""
        loop = self.loop
        if self.handle is not None and loop._uv_loop is not None:
            # only while libuv owns it: after the callback (or uv_loop_close)
            # uv_cancel would touch a finished request / a dead loop
            lib.uv_cancel(self.req)
        if not loop.is_closed() and not self.fut.done():
            self.fut.cancel()


class _Lookup(_Request):
    """A getaddrinfo lookup in its loop's queue (req: the uvffi_gai_t, which
    the C side frees after the answer)."""

    __slots__ = ("resolver",)

    def cancel(self):
        """Take the lookup back while no runner has it; else its answer
        still comes (and is dropped)."""
        loop = self.loop
        if (self.handle is not None and
                lib.uvffi_gai_cancel(self.resolver.queue, self.req) == 0):
            self.handle = None
            loop._uv_requests.discard(self)
            if not loop.is_closed() and not self.fut.done():
                self.fut.cancel()
            self.resolver.lookup_done()
        elif not loop.is_closed() and not self.fut.done():
            self.fut.cancel()


def _submit(loop, node, service, family, socktype, proto, flags):
    """Queue a lookup; None when an int argument does not fit a C int
    (nothing queued: the probe path raises as the socket module does)."""
    resolver = loop._uv_dns
    if resolver is None or resolver.closing:
        resolver = loop._uv_dns = _Resolver(loop)
    r = _Lookup()
    r.loop = loop
    r.fut = loop.create_future()
    r.resolver = resolver
    r.handle = handle = _new_handle(r)
    try:
        r.req = _gai_submit(resolver.queue, handle, node, service, family,
                            socktype, proto, flags)
    except OverflowError:
        r.handle = None
        return None
    if r.req == _NULL:
        r.handle = None
        raise MemoryError
    resolver.outstanding += 1
    loop._uv_requests.add(r)
    return r


def _fast_submit(loop, host, port, family, socktype, proto, flags):
    """The request for a call of the common form, or None: take the probe.
    (One function: a Python call is a good part of what a lookup costs.)"""
    loop._check_closed()
    cls = _type(host)
    if cls is str:
        node = str_nodes.get(host) or fast_node(host)
    elif cls is bytes:
        node = bytes_nodes.get(host) or fast_node(host)
    else:
        return None
    service = int_services.get(port) if _type(port) is int else None
    if service is None:
        service = fast_service(port)
    if (node is None or service is None or _type(family) not in C_INTS or
            _type(socktype) not in C_INTS or _type(proto) not in C_INTS or
            _type(flags) not in C_INTS):
        return None
    return _submit(loop, node, service, family, socktype, proto, flags)


def _submit_nameinfo(loop, addr, flags):
    r = _Request()
    r.loop = loop
    r.fut = loop.create_future()
    r.req = _new("uv_getnameinfo_t *")
    r.req.data = r.handle = _new_handle(r)
    # libuv copies the address into the request before it returns
    rc = lib.uv_getnameinfo(loop._uv_loop, r.req, lib._uvffi_getnameinfo_cb,
                            ffi.cast("struct sockaddr *", addr), flags)
    if rc < 0:
        r.handle = None
        raise gaierror_from_uv(rc)
    loop._uv_requests.add(r)
    return r


async def _wait(r):
    try:
        return await r.fut
    except CancelledError:
        r.cancel()
        raise


def _gai_error(rc, err):
    """What socket.getaddrinfo raises for getaddrinfo()'s *rc* (CPython's
    set_gaierror: errno's OSError for EAI_SYSTEM)."""
    if rc == _EAI_SYSTEM:  # PyErr_SetFromErrno
        return OSError(err, os.strerror(err) if err else "Error")
    return socket.gaierror(rc, ffi.string(lib.gai_strerror(rc)).decode(
        "utf-8", "replace"))


# -- results --------------------------------------------------------------------

_families = {}
_kinds = {}


def _enum_memo(table, value, enum_cls):
    # enum_cls(value), or the int when no member has that value (as the
    # socket module does); the enums never change, so neither does this
    try:
        member = enum_cls(value)
    except ValueError:
        member = value
    if len(table) < 256:
        table[value] = member
    return member


def _records(data, res):
    """uvffi_ai_rec records -> the socket module's tuples."""
    out = []
    for (family, kind, proto, canon, sa_family, port, flowinfo, scope_id,
         iplen, ip) in _iter_records(data):
        try:
            family = _families[family]
        except KeyError:
            family = _enum_memo(_families, family, _AddressFamily)
        try:
            kind = _kinds[kind]
        except KeyError:
            kind = _enum_memo(_kinds, kind, _SocketKind)
        host = ip[:iplen].decode("ascii")
        if sa_family == _AF_INET:
            addr = (host, port)
        else:
            addr = (host, port, flowinfo, scope_id)
        out.append((family, kind, proto,
                    _canonname(res, len(out)) if canon else "", addr))
    return out


def _canonname(res, index):
    for _ in range(index):
        res = res.ai_next
    return ffi.string(res.ai_canonname).decode("utf-8")


def _convert_addrinfo(res):
    """The general path, entry by entry: too many entries for the C side's
    records, or an address other than IPv4/IPv6."""
    out = []
    rec = _new("uvffi_ai_rec *")
    buf = ffi.buffer(rec)
    while res != _NULL:
        if lib.uvffi_ai_rec_fill(res, rec, host_style()) == 0:
            out.extend(_records(bytes(buf), res))
        else:
            canon = res.ai_canonname
            out.append((
                _enum_memo(_families, res.ai_family, _AddressFamily),
                _enum_memo(_kinds, res.ai_socktype, _SocketKind),
                res.ai_protocol,
                ffi.string(canon).decode("utf-8") if canon != _NULL else "",
                # (the socket module: None for no address at all)
                (lib.uvffi_sockaddr_family(res.ai_addr), b"")
                if res.ai_addr != _NULL else None,
            ))
        res = res.ai_next
    return out


@def_extern("_uvffi_gai_done")
def _gai_done(data, rc, err, recs, nbytes, res):
    r = _from_handle(data)
    r.handle = None
    loop = r.loop
    try:
        loop._uv_requests.discard(r)
        fut = r.fut
        if fut.done() or loop.is_closed():
            return
        if rc:
            fut.set_exception(_gai_error(rc, err))
            return
        try:
            if nbytes >= 0:
                result = _records(_unpack(recs, nbytes), res)
            else:
                result = _convert_addrinfo(res)
        except Exception as exc:  # decoding trouble: the caller hears of it
            fut.set_exception(exc)
            return
        fut.set_result(result)
    except Exception as exc:
        report(loop, exc)
    finally:
        # after the answer: its task runs before the queue's idle check
        r.resolver.lookup_done()


@def_extern("_uvffi_getnameinfo_cb")
def _getnameinfo_cb(req, status, hostname, service):
    r = _from_handle(req.data)
    r.handle = None
    loop = r.loop
    try:
        loop._uv_requests.discard(r)
        fut = r.fut
        if fut.done() or loop.is_closed():
            return
        if status == lib.UV_EAI_CANCELED or status == lib.UV_ECANCELED:
            fut.cancel()
        elif status < 0:
            fut.set_exception(gaierror_from_uv(status))
        else:
            try:
                fut.set_result((ffi.string(hostname).decode("utf-8"),
                                ffi.string(service).decode("utf-8")))
            except Exception as exc:
                fut.set_exception(exc)
    except Exception as exc:
        report(loop, exc)


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
    flags = as_c_int(operator.index(flags))
    host = sockaddr[0]
    port = operator.index(sockaddr[1])
    flowinfo = c_uint_wrap(sockaddr[2]) if len(sockaddr) > 2 else 0
    scope_id = c_uint_wrap(sockaddr[3]) if len(sockaddr) > 3 else 0
    # What CPython does next: resolve the *numeric* host (no lookup leaves
    # the process), requiring exactly one address.
    infos = socket.getaddrinfo(host, "%d" % as_c_int(port), socket.AF_UNSPEC,
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

    _LOOP_STATE = {"_uv_dns": None}  # the loop's slot for this concern (loop.py)

    async def getaddrinfo(self, host, port, *,
                          family=0, type=0, proto=0, flags=0):
        if self._debug:
            return await self._getaddrinfo_logged(host, port, family, type,
                                                  proto, flags)
        r = _fast_submit(self, host, port, family, type, proto, flags)
        if r is None:
            return await self._uv_getaddrinfo(host, port, family, type, proto,
                                              flags)
        try:  # _wait(r), inlined: one coroutine less per lookup
            return await r.fut
        except CancelledError:
            r.cancel()
            raise

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
        r = _fast_submit(self, host, port, family, type, proto, flags)
        if r is not None:
            return await _wait(r)
        infos = numeric_probe(host, port, family, type, proto, flags)
        if infos is not None:
            return infos
        # arguments the socket module accepted; convert them as it does
        node = encode_host(host)
        service = encode_port(port)
        r = _submit(
            self, _NULL if node is None else node,
            _NULL if service is None else service,
            as_c_int(operator.index(family)), as_c_int(operator.index(type)),
            as_c_int(operator.index(proto)), as_c_int(operator.index(flags)))
        return await _wait(r)

    async def getnameinfo(self, sockaddr, flags=0):
        self._check_closed()
        addr, flags = _getnameinfo_sockaddr(sockaddr, flags)
        return await _wait(_submit_nameinfo(self, addr, flags))
