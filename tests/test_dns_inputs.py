"""Whatever host/port socket.getaddrinfo accepts (or refuses), loop.getaddrinfo
answers the same, on asyncio's loop and on uvffi's: long names, hex-prefixed
labels longer than libuv's host buffer, embedded NULs, non-ASCII str and
bytes, ports as int/str/bytes/None.  getnameinfo likewise.

Only names that never need the network: loopback, literals, names the C
resolver refuses locally (labels over 63 bytes), and names under the
reserved ``.invalid`` domain (NXDOMAIN wherever a resolver is reachable).
"""
import asyncio
import socket

import pytest

from _dnsspy import spy_submit

# A 256-character label, hex-prefixed: libuv's 256-byte host buffer once
# truncated it into "0x00...07f000001", which inet_aton reads as 127.0.0.1
# (uv_getaddrinfo; the lookup queue passes names on untouched).
HEX_LABEL = "0x" + "0" * 246 + "7f000001.example.com"

HOSTS = [
    HEX_LABEL,
    HEX_LABEL.encode("ascii"),
    "localhost",
    b"localhost",
    None,
    "",
    b"",
    "127.0.0.1",
    b"a" * 255,                      # the longest name libuv's buffer holds
    b"a" * 256,                      # one byte more
    b"a" * 5000,
    "a" * 254,                       # one label over 63: idna refuses it
    ("a" * 63 + ".") * 4,            # idna accepts, 256 characters
    (b"a" * 63 + b".") * 4 + b"a",
    "localhost\0",                   # the C resolver sees "localhost"
    b"localhost\0trailing",
    "127.0.0.1\0junk",
    "x\0y",
    b"\0",
    "b\u00fccher.invalid",           # str: the idna codec makes it ASCII
    "b\u00fccher.invalid".encode("utf-8"),  # bytes go to the resolver as is
    b"\xff\xfe.invalid",             # not UTF-8
    "\u2603" * 100,
    "a\udcff.invalid",               # not encodable
    "localhost..",
    bytearray(b"localhost"),         # refused by the socket module
    12,
]

PORTS = [80, "80", b"80", "http", None, "p\0q", b"x" * 300, 1.5, -1]


def outcome(fn, *args, **kwargs):
    """Result or (exception type, args) of a call, for comparisons."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return type(exc), exc.args


def loop_outcome(loop, fn, *args, **kwargs):
    async def bounded():
        return await asyncio.wait_for(fn(*args, **kwargs), 30)
    try:
        return loop.run_until_complete(bounded())
    except Exception as exc:
        return type(exc), exc.args


def _id(value):
    text = repr(value)
    return text if len(text) < 30 else "%s...len%d" % (text[:20], len(value))


@pytest.mark.parametrize("host", HOSTS, ids=[_id(h) for h in HOSTS])
@pytest.mark.parametrize("kind", [0, socket.SOCK_STREAM])
def test_getaddrinfo_host_as_socket_module(any_loop, host, kind):
    expected = outcome(socket.getaddrinfo, host, 80, type=kind)
    got = loop_outcome(any_loop, any_loop.getaddrinfo, host, 80, type=kind)
    assert got == expected


@pytest.mark.parametrize("port", PORTS, ids=[_id(p) for p in PORTS])
@pytest.mark.parametrize("host", ["localhost", HEX_LABEL.encode(), None],
                         ids=["localhost", "hexlabel", "None"])
def test_getaddrinfo_port_as_socket_module(any_loop, host, port):
    expected = outcome(socket.getaddrinfo, host, port,
                       type=socket.SOCK_STREAM)
    got = loop_outcome(any_loop, any_loop.getaddrinfo, host, port,
                       type=socket.SOCK_STREAM)
    assert got == expected


def test_hex_label_is_not_read_as_an_address(any_loop):
    # whatever the libuv version: never 127.0.0.1 from a truncated name
    for host in (HEX_LABEL, HEX_LABEL.encode()):
        got = loop_outcome(any_loop, any_loop.getaddrinfo, host, 80)
        assert isinstance(got, tuple) and isinstance(got[0], type)
        assert issubclass(got[0], (socket.gaierror, UnicodeError))


UNTOUCHED = [
    b"localhost",
    b"a" * 255,
    b"a" * 256,                               # past libuv's host buffer
    "b\u00fccher.invalid".encode("utf-8"),    # libuv would IDNA-encode it
    b"localhost\0" + b"\xff" * 300,            # the C string ends at the NUL
]


@pytest.mark.parametrize("host", UNTOUCHED, ids=[_id(h) for h in UNTOUCHED])
def test_names_reach_the_resolver_as_the_socket_module_passes_them(
        loop, monkeypatch, host):
    # the lookup queue hands getaddrinfo() the bytes as they are (no IDNA,
    # no host buffer, as uv_getaddrinfo would have): no executor detour
    started = spy_submit(monkeypatch)
    monkeypatch.setattr(loop, "run_in_executor", None)
    expected = outcome(socket.getaddrinfo, host, 80)
    assert loop_outcome(loop, loop.getaddrinfo, host, 80) == expected
    assert len(started) == 1


GNI_CASES = [
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("localhost", 80), 0),
    ((b"127.0.0.1", 80), 0),
    (("127.0.0.1\0x", 80), 0),
    (("a" * 300, 80), 0),
    ((HEX_LABEL, 80), 0),
    (("\u00fc", 80), 0),
    (("127.0.0.1", "80"), 0),
    (("127.0.0.1", -1), 0),
    (("127.0.0.1",), 0),
    (("127.0.0.1", 80), "x"),
    (("127.0.0.1", 80), -1),
    (("127.0.0.1", 80, 1, 2, 3), 0),
    (("127.0.0.1", 80, 1 << 40), 0),
    ("127.0.0.1", 0),
    (None, 0),
]
HAS_IPV6 = socket.has_ipv6
try:
    socket.getaddrinfo("::1", 0)
except OSError:
    HAS_IPV6 = False
if HAS_IPV6:
    GNI_CASES += [
        (("::1", 80, 0, 0), 0),
        (("::1", 80, 0, 1), 0),
        (("fe80::1%1", 80), 0),  # the tuple's scope id wins, as in CPython
        (("fe80::1%1", 80, 0, 1), 0),
    ]


@pytest.mark.parametrize("sockaddr,flags", GNI_CASES,
                         ids=[_id(c) for c in GNI_CASES])
def test_getnameinfo_as_socket_module(any_loop, sockaddr, flags):
    expected = outcome(socket.getnameinfo, sockaddr, flags)
    got = loop_outcome(any_loop, any_loop.getnameinfo, sockaddr, flags)
    assert got == expected
