"""Datagram endpoints: ``create_datagram_endpoint`` on ``uv_udp_t``.

``BaseEventLoop.create_datagram_endpoint`` (CPython's own code) checks the
arguments, resolves, creates, binds and connects the socket, then calls our
``_make_datagram_transport``.  IP sockets get a ``UDPTransport`` on a libuv
``uv_udp_t``; other families (AF_UNIX datagram sockets) the poll-based
transport of ``datagram.py``.  Both share ``DatagramTransportBase``, which
carries asyncio's behaviour; this module is only the libuv engine.

Who owns the fd: libuv closes the fd of a ``uv_udp_t`` when the handle is
closed, and asyncio's transports close their socket object.  The handle
therefore gets a duplicate of the socket's fd; each side closes its own
copy, and ``get_extra_info('socket')`` stays the socket the caller knows.

Fast paths:
- datagrams land in the shim's per-thread buffer (a C alloc callback): one
  C->Python crossing and one ``bytes`` per datagram; the sender's address
  tuple comes from a per-transport cache keyed by the raw sockaddr bytes;
- ``sendto`` first tries ``uv_udp_try_send`` straight from the caller's
  buffer, with the ``sockaddr`` of the destination cached per transport;
  only a datagram the kernel would not take now is copied into C memory
  and queued with ``uv_udp_send`` (request and copy alive until its
  callback), so nothing is dropped and the order is kept.
"""
import ipaddress
import socket

from .._uv import ffi, lib
from ..handles.errors import exception_from_uv
from ..handles.udp import UDPHandle
from .datagram import DatagramTransportBase, PollDatagramTransport, HEADER_SIZE

_from_handle = ffi.from_handle
_from_buffer = ffi.from_buffer
_unpack = ffi.unpack
_buffer = ffi.buffer
_new = ffi.new
_memmove = ffi.memmove
_NULL = ffi.NULL
_try_send = lib.uvffi_udp_try_send
_UV_EAGAIN = lib.UV_EAGAIN
_UV_ECANCELED = lib.UV_ECANCELED
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6

_CACHE_MAX = 256  # addresses remembered per transport, each way
_CONNECTED = (None, _NULL)  # destination of a connected socket: none

# Options that uv_udp_open() switches on by itself (SO_REUSEADDR on Linux,
# SO_REUSEPORT on the BSDs and macOS).  asyncio refuses reuse_address for
# UDP because it lets other sockets bind the same port: we put them back.
_REUSE_OPTIONS = tuple(getattr(socket, name) for name in ("SO_REUSEADDR", "SO_REUSEPORT")
                       if hasattr(socket, name))


def _open_on_dup(udp, sock):
    """``uv_udp_open`` on a duplicate of *sock*'s fd, leaving the socket's
    options as the caller set them."""
    saved = []
    for opt in _REUSE_OPTIONS:
        try:
            saved.append((opt, sock.getsockopt(socket.SOL_SOCKET, opt)))
        except OSError:
            pass
    dup = sock.dup()
    try:
        try:
            udp.open(dup.fileno())
        except FileExistsError:
            # see FdWatchMixin._fdwatch_evict_stale
            if not udp.loop._fdwatch_evict_stale(dup.fileno()):
                raise
            udp.open(dup.fileno())
    except BaseException:
        dup.close()
        raise
    dup.detach()  # the fd is libuv's now: uv_close closes it
    for opt, value in saved:
        try:
            if sock.getsockopt(socket.SOL_SOCKET, opt) != value:
                sock.setsockopt(socket.SOL_SOCKET, opt, value)
        except OSError:
            pass


def _is_link_local6(host):
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return ip.is_link_local or (ip.is_multicast and (ip.packed[1] & 0x0F) == 2)


class UDPTransport(DatagramTransportBase):
    """The datagram transport of AF_INET/AF_INET6 sockets, on ``uv_udp_t``."""

    _udp = None

    def _engine_open(self, loop, sock):
        family = sock.family
        self._family = family
        self._pending = 0  # uv_udp_send requests not completed yet
        self._addr_cache = {}  # destination tuple -> (storage, sockaddr *)
        self._peer_cache = {}  # raw sender sockaddr -> recvfrom()-style tuple
        # a socket's peers are of its own family (IPv4 peers of an IPv6
        # socket arrive as IPv4-mapped IPv6 addresses)
        self._peer_len = 16 if family == _AF_INET else 28
        self._ipbuf = _new("char[]", 64)
        self._out = _new("unsigned int[3]")  # flowinfo, scope_id, unused
        self._port = _new("int *")
        udp = UDPHandle(loop)
        try:
            _open_on_dup(udp, sock)
        except BaseException:
            udp.close()
            raise
        udp.on_recv = self._on_recv
        udp.on_send = self._on_send_done
        udp.on_failure = self._fatal_error
        self._udp = udp
        self._ptr = udp.ptr

    # -- engine hooks of DatagramTransportBase ----------------------------------

    def _engine_start_reading(self):
        udp = self._udp
        if udp is not None and not udp.closing:
            udp.recv_start()

    def _engine_stop_reading(self):
        if self._udp is not None:
            self._udp.recv_stop()

    def _has_pending(self):
        return self._pending > 0

    def _engine_drop_pending(self):
        # libuv cannot unqueue a request: they are cancelled (ECANCELED)
        # when the handle closes, right after connection_lost().
        pass

    def _engine_release(self):
        udp = self._udp
        if udp is not None:
            udp.close()

    # -- receiving ------------------------------------------------------------------

    def _on_recv(self, nread, buf, addr, flags):
        if nread >= 0:
            # (an empty datagram has nread 0; libuv's "nothing more to
            # read" calls end in the shim: uvffi_udp.c)
            if self._conn_lost:
                return
            data = _unpack(buf.base, nread)
            self._deliver(data, self._peer(addr))
        elif not self._conn_lost:
            # e.g. ECONNREFUSED: an ICMP error for an earlier send
            self._error_received(exception_from_uv(nread))

    def _peer(self, addr):
        key = _buffer(addr, self._peer_len)[:]
        cache = self._peer_cache
        try:
            return cache[key]
        except KeyError:
            pass
        ipbuf, out, port = self._ipbuf, self._out, self._port
        fam = lib.uvffi_sockaddr_unpack(addr, ipbuf, 64, port, out, out + 1)
        host = ffi.string(ipbuf).decode("ascii")
        if fam == _AF_INET:
            peer = (host, port[0])
        elif fam == _AF_INET6:
            scope_id = out[1]
            if scope_id and _is_link_local6(host):
                # socket.recvfrom() names the zone, as getnameinfo does
                try:
                    host = "%s%%%s" % (host, socket.if_indextoname(scope_id))
                except OSError:
                    host = "%s%%%d" % (host, scope_id)
            peer = (host, port[0], out[0], scope_id)
        else:
            peer = None
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = peer
        return peer

    # -- sending ----------------------------------------------------------------------

    def _sockaddr(self, addr):
        """``(storage, struct sockaddr *)`` for a plain numeric address tuple
        of our family, or None when Python's socket module must interpret *addr*
        (host names, '<broadcast>', zones, wrong types or ranges)."""
        if type(addr) is not tuple or type(addr[0] if addr else None) is not str:
            return None
        n = len(addr)
        if self._family == _AF_INET:
            if n != 2 or type(addr[1]) is not int:
                return None
        elif not 2 <= n <= 4 or any(type(x) is not int for x in addr[1:]):
            return None
        # types are exact from here: a cache hit is the same address
        entry = self._addr_cache.get(addr)
        if entry is None:
            entry = self._build_sockaddr(addr)
            if entry is None:
                return None
            cache = self._addr_cache
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[addr] = entry
        return entry

    def _build_sockaddr(self, addr):
        host, port = addr[0], addr[1]
        if not 0 <= port <= 0xFFFF or "\0" in host or "%" in host:
            return None
        try:
            hb = host.encode("ascii")
        except UnicodeEncodeError:
            return None
        storage = _new("struct sockaddr_storage *")
        if self._family == _AF_INET:
            rc = lib.uvffi_sockaddr_in(storage, hb, port)
        else:
            flowinfo = addr[2] if len(addr) > 2 else 0
            scope_id = addr[3] if len(addr) > 3 else 0
            if not 0 <= flowinfo <= 0xFFFFF or not 0 <= scope_id <= 0xFFFFFFFF:
                return None
            rc = lib.uvffi_sockaddr_in6(storage, hb, port, flowinfo, scope_id)
        if rc < 0:
            return None
        return (storage, ffi.cast("struct sockaddr *", storage))

    def _resolve(self, addr):
        """sockaddr for an address Python's sendto() accepted but that is no
        plain numeric tuple (a host name...): resolved as sendto() does."""
        host, port = addr[0], addr[1]
        if host == "":
            host = "0.0.0.0" if self._family == _AF_INET else "::"
        elif host == "<broadcast>":
            host = "255.255.255.255"
        info = socket.getaddrinfo(host, port, self._family, socket.SOCK_DGRAM)
        resolved = info[0][4]
        if len(addr) > 2:
            resolved = resolved[:2] + tuple(addr[2:])
        host = resolved[0]
        if "%" in host:  # a zone: the scope id is in the tuple already
            resolved = (host.partition("%")[0],) + tuple(resolved[1:])
        dest = self._sockaddr(resolved)
        if dest is None:
            raise OSError(22, "Invalid argument")
        return dest

    def _send_now(self, data, addr):
        if self._udp.closing:
            # The loop was closed under the open transport, and the handle
            # with it: the socket is still there, as with asyncio.
            if not self._sock_send(data, addr):
                self._loop._check_closed()  # asyncio's _add_writer raises so
            return
        if type(data) is bytes:
            buf = data
            size = len(data)
        else:
            try:
                buf = _from_buffer(data)
                size = len(buf)
            except (TypeError, ValueError, BufferError):
                buf = None  # not contiguous: socket.sendto() may refuse it
        # (storage, sockaddr *): the storage must outlive the C call
        dest = _CONNECTED if self._connected else self._sockaddr(addr)
        if not self._pending:
            if dest is None or buf is None:
                # Python's socket parses (or resolves) the address and
                # raises exactly what asyncio's transport would see.
                if self._sock_send(data, addr):
                    return
            else:
                n = _try_send(self._ptr, buf, size, dest[1])
                if n >= 0:
                    return
                if n != _UV_EAGAIN:
                    self._write_failed(exception_from_uv(n))
                    return
        # The kernel will not take it now, or earlier datagrams are queued:
        # queue it behind them.
        if buf is None:
            buf = bytes(data)  # asyncio queues bytes(data) as well
            size = len(buf)
        if dest is None:
            try:
                dest = self._resolve(addr)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._write_failed(exc)
                return
        self._queue(buf, size, dest[1])

    def _sock_send(self, data, addr):
        """Send with the socket object; False if it would block."""
        try:
            if self._connected:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._write_failed(exc)
        return True

    def _queue(self, buf, size, sa):
        """Queue one datagram with uv_udp_send: libuv keeps sending in order,
        after the ones already queued, as the socket becomes writable."""
        cbuf = _new("char[]", size or 1)
        _memmove(cbuf, buf, size)
        req = _new("uv_udp_send_t *")
        rc = lib.uvffi_udp_send(req, self._ptr, cbuf, size, sa)
        if rc < 0:
            self._write_failed(exception_from_uv(rc))
            return
        charged = size + HEADER_SIZE
        self._udp.hold_request(req, (cbuf, charged))
        self._pending += 1
        self._buffer_size += charged
        self._maybe_pause_protocol()

    def _on_send_done(self, status, charged):
        self._pending -= 1
        if self._conn_lost or self._loop is None:
            return  # aborted: asyncio forgets queued datagrams
        self._buffer_size -= charged
        if status < 0 and status != _UV_ECANCELED:
            self._write_failed(exception_from_uv(status))
            if self._conn_lost:
                return
        self._maybe_resume_protocol()  # may queue more
        if not self._pending:
            self._drained()


class UDPMixin:
    """Loop hook under ``BaseEventLoop.create_datagram_endpoint``."""

    def _make_datagram_transport(self, sock, protocol, address=None,
                                 waiter=None, extra=None):
        if sock.family in (_AF_INET, _AF_INET6):
            cls = UDPTransport
        else:
            cls = PollDatagramTransport
        return cls(self, sock, protocol, address, waiter, extra)
