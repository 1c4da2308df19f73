"""getaddrinfo's and getnameinfo's arguments as the socket module takes
them: the C strings it hands the resolver, the ints it parses, the errors it
raises (dns.py does the lookups).

The fast path (a name as str/bytes, the port as an int, str or bytes, the
other arguments as ints) memoizes the encoded host and port strings; the
numeric probe asks the socket module itself, so that literal addresses and
argument errors come out exactly as on this interpreter.
"""
import operator
import socket

from .._uv import ffi, lib

_type = type  # getaddrinfo's parameter named "type" shadows it
_NULL = ffi.NULL


def c_uint_wrap(value):
    """An argument parsed as "I": unsigned int, silently truncated."""
    return operator.index(value) & 0xffffffff


def encode_host(host):
    """Host argument of socket.getaddrinfo -> bytes or None, same checks."""
    if host is None:
        return None
    if isinstance(host, str):
        return host.encode("idna")
    if isinstance(host, bytes):
        return host
    raise TypeError("getaddrinfo() argument 1 must be string or None")


def encode_port(port):
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


def as_c_int(value):
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
        return not encode_host(host).split(b"\0", 1)[0]
    except (TypeError, UnicodeError):
        return False


def numeric_probe(host, port, family, type, proto, flags):
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


# -- the fast path's forms of arguments ------------------------------------------

# Argument classes the fast path hands to C as they are: the socket module
# takes them as the C int they hold ("i"), and cffi refuses values a C int
# cannot hold (OverflowError before any call), which then take the probe.
C_INTS = frozenset((int, socket.AddressFamily, socket.SocketKind,
                     socket.AddressInfo))

# host/port -> the C string the socket module hands the resolver, for
# those the fast path takes.  Pure functions of the argument (the idna
# codec), memoized; bounded so that a stream of distinct names cannot grow
# them without end.
MEMO_MAX = 1024
str_nodes = {}
bytes_nodes = {}
str_services = {}
int_services = {}


def _name_node(node):
    """Whether *node* (host bytes) is a name the fast path may queue without
    the probe: not empty, not possibly a literal (those start with a digit
    or contain a colon), no NUL (where the C resolver stops reading)."""
    return (node != b"" and not node[:1].isdigit() and b":" not in node and
            b"\0" not in node)


def _memo(table, key, value):
    if len(table) >= MEMO_MAX:
        table.clear()
    table[key] = value
    return value


def fast_node(host):
    """*host* as the bytes socket.getaddrinfo would resolve, or None when it
    takes the probe (a possible literal, an encoding error to raise ...)."""
    if _type(host) is str:
        try:
            node = host.encode("idna")
        except UnicodeError:
            return None
        if _name_node(node):
            return _memo(str_nodes, host, node)
    elif _type(host) is bytes and _name_node(host):
        return _memo(bytes_nodes, host, host)
    return None


def fast_service(port):
    """*port* as socket.getaddrinfo passes it to the resolver, when it does
    so without a word (no error, no cut at a NUL); else None."""
    cls = _type(port)
    if cls is int:
        if 0 <= port <= 0xffff:
            return _memo(int_services, port, b"%d" % port)
        return None
    if cls is str:
        if port.isascii() and "\0" not in port:
            return _memo(str_services, port, port.encode("ascii"))
        return None
    if port is None:
        return _NULL
    if cls is bytes and b"\0" not in port:
        return port
    return None


_host_styles = []


def host_style():
    """How this interpreter's socket module writes an address: CPython
    with inet_ntop(), PyPy with getnameinfo(), which adds the IPv6 scope.
    Asked of the socket module itself, with a literal (no lookup)."""
    if not _host_styles:
        try:
            infos = socket.getaddrinfo("::1%1", 0, socket.AF_INET6,
                                       socket.SOCK_STREAM, 0,
                                       socket.AI_NUMERICHOST)
            scoped = "%" in infos[0][4][0]
        except (OSError, IndexError):  # no IPv6: nothing to tell apart
            scoped = False
        _host_styles.append(lib.UVFFI_HOST_GETNAMEINFO if scoped
                            else lib.UVFFI_HOST_INET_NTOP)
    return _host_styles[0]
