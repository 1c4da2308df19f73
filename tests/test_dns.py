"""loop.getaddrinfo/getnameinfo through libuv's resolver return exactly what
socket.getaddrinfo/getnameinfo return (loopback names and numeric
addresses only: no network)."""
import asyncio
import logging
import socket

import pytest

from uvffi.facets import dns as uvdns
from _dnsspy import spy_submit

HAS_IPV6 = socket.has_ipv6
try:
    socket.getaddrinfo("::1", 0)
except (OSError, socket.gaierror):
    HAS_IPV6 = False


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, 30))


def outcome(fn, *args, **kwargs):
    """Result or (exception type, args) of a call, for comparisons."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return type(exc), exc.args


def loop_outcome(loop, coro_fn, *args, **kwargs):
    try:
        return run(loop, coro_fn(*args, **kwargs))
    except Exception as exc:
        return type(exc), exc.args


GAI_CASES = [
    (("localhost", 80), {}),
    (("localhost", 80), {"type": socket.SOCK_STREAM}),
    (("localhost", "80"), {"family": socket.AF_INET, "proto": socket.IPPROTO_TCP}),
    (("localhost", b"80"), {"type": socket.SOCK_DGRAM}),
    ((b"localhost", None), {}),
    (("LOCALHOST", 0), {"flags": socket.AI_CANONNAME}),
    ((None, 8080), {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
    ((None, 8080), {}),
    (("localhost", 80), {"family": "x"}),
    (("localhost", 80), {"flags": 1 << 40}),
    (("localhost", "http"), {"type": socket.SOCK_STREAM}),
    (("127.0.0.1", 443), {}),
    (("127.0.0.1", None), {"type": socket.SOCK_STREAM}),
    (("127.0.0.1", "7"), {"family": socket.AF_INET6}),
    (("::1", 22), {}),
    (("::1", 22), {"family": socket.AF_INET}),
    (("localhost", 80), {"family": socket.AF_INET6, "flags": socket.AI_CANONNAME}),
    (("localhost", 80), {"family": socket.AF_INET6, "flags": socket.AI_V4MAPPED}),
    (("localhost", 80), {"flags": socket.AI_NUMERICHOST}),
    (("localhost", "999999"), {}),
    (("localhost", -1), {}),
]


@pytest.mark.parametrize("args,kwargs", GAI_CASES,
                         ids=[f"{a}-{k}" for a, k in GAI_CASES])
def test_getaddrinfo_matches_socket_getaddrinfo(any_loop, args, kwargs):
    expected = outcome(socket.getaddrinfo, *args, **kwargs)
    got = loop_outcome(any_loop, any_loop.getaddrinfo, *args, **kwargs)
    assert got == expected


def test_getaddrinfo_returns_enum_family_and_kind(loop):
    infos = run(loop, loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))
    assert infos
    for family, kind, proto, canon, addr in infos:
        assert type(family) is socket.AddressFamily
        assert type(kind) is socket.SocketKind
        assert type(proto) is int and canon == ""


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
def test_getaddrinfo_ipv6_sockaddr_is_a_4_tuple(loop):
    # a service name keeps the literal on the libuv path
    infos = run(loop, loop.getaddrinfo("::1", "ssh", family=socket.AF_INET6))
    assert infos and all(len(info[4]) == 4 for info in infos)
    assert infos[0][4] == ("::1", 22, 0, 0)
    assert infos == socket.getaddrinfo("::1", "ssh", family=socket.AF_INET6)


def test_getaddrinfo_resolves_names_through_libuv(loop, monkeypatch):
    # 'localhost' is not a literal: it goes to libuv's thread pool
    started = spy_submit(monkeypatch)
    run(loop, loop.getaddrinfo("localhost", 80))
    assert len(started) == 1
    assert not loop._uv_requests  # released after libuv's callback


def test_getaddrinfo_numeric_host_skips_the_resolver(loop, monkeypatch):
    def fail(*args):
        raise AssertionError("uv_getaddrinfo used for a literal")

    monkeypatch.setattr(uvdns, "_submit", fail)
    assert run(loop, loop.getaddrinfo("127.0.0.1", 80)) == \
        socket.getaddrinfo("127.0.0.1", 80)


def test_getaddrinfo_unknown_host_raises_gaierror_with_socket_code(any_loop):
    with pytest.raises(socket.gaierror) as ref:
        socket.getaddrinfo("nonexistent.invalid", 80)
    with pytest.raises(socket.gaierror) as ei:
        run(any_loop, any_loop.getaddrinfo("nonexistent.invalid", 80))
    assert ei.value.errno == ref.value.errno
    assert ei.value.args == ref.value.args


def test_getaddrinfo_unknown_service_raises_gaierror(any_loop):
    expected = outcome(socket.getaddrinfo, "localhost", "no-such-service-xyz")
    assert expected[0] is socket.gaierror
    assert loop_outcome(any_loop, any_loop.getaddrinfo,
                        "localhost", "no-such-service-xyz") == expected


@pytest.mark.parametrize("host,port", [(1, 80), ("localhost", 1.5),
                                       ("a..b", 80), (None, None)])
def test_getaddrinfo_bad_arguments_raise_as_socket_does(any_loop, host, port):
    expected = outcome(socket.getaddrinfo, host, port)
    assert isinstance(expected, tuple) and isinstance(expected[0], type)
    assert loop_outcome(any_loop, any_loop.getaddrinfo, host, port) == expected


def test_getaddrinfo_on_closed_loop_raises_runtime_error(any_loop):
    coro = any_loop.getaddrinfo("localhost", 80)
    any_loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        coro.send(None)


def test_getaddrinfo_debug_mode_logs_lookup(any_loop, caplog):
    any_loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(any_loop, any_loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))
    text = caplog.text
    assert "Get address info localhost:80, type=<SocketKind.SOCK_STREAM: 1>" in text
    assert "Getting address info localhost:80" in text


def test_cancelled_getaddrinfo_cancels_the_libuv_request(loop, monkeypatch):
    cancels = []
    orig = uvdns._Lookup.cancel

    def spy(self):
        cancels.append(self)
        return orig(self)

    monkeypatch.setattr(uvdns._Lookup, "cancel", spy)

    async def main():
        t = asyncio.ensure_future(loop.getaddrinfo("localhost", 80))
        await asyncio.sleep(0)  # request submitted to libuv
        assert len(loop._uv_requests) == 1
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        # libuv calls back (cancelled or finished) and the request goes
        for _ in range(1000):
            if not loop._uv_requests:
                break
            await asyncio.sleep(0.01)

    run(loop, main())
    assert len(cancels) == 1
    assert not loop._uv_requests


def test_loop_close_with_lookups_in_flight_releases_requests():
    import uvffi
    lp = uvffi.new_event_loop()
    futs = [asyncio.ensure_future(lp.getaddrinfo("localhost", p), loop=lp)
            for p in range(2000, 2050)]
    lp.run_until_complete(asyncio.sleep(0))  # submitted; some may be done
    lp.close()  # cancels what libuv still holds, waits for the callbacks
    assert not lp._uv_requests
    for f in futs:
        f._log_destroy_pending = False


def test_concurrent_lookups_all_complete(any_loop):
    async def main():
        return await asyncio.gather(*[any_loop.getaddrinfo("localhost", p)
                                      for p in range(1000, 1020)])

    results = run(any_loop, main())
    assert [r for r in results] == [socket.getaddrinfo("localhost", p)
                                    for p in range(1000, 1020)]


# -- getnameinfo ------------------------------------------------------------------

GNI_CASES = [
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 53), socket.NI_DGRAM),
    (("127.0.0.1", 65000), socket.NI_NAMEREQD),
    (("::1", 22), 0),
    (("::1", 22, 0, 0), socket.NI_NUMERICHOST),
    (("127.0.0.1", 80, 0), 0),
    (("localhost", 80), 0),
    (("nonexistent.invalid", 80), 0),
    (["127.0.0.1", 80], 0),
    (("127.0.0.1",), 0),
    (("127.0.0.1", "80"), 0),
    (("::1", 22, 1 << 20, 0), 0),
    (("::1", 22, -1), 0),
    (("::1", 22, 0, 1 << 33), socket.NI_NUMERICHOST),
    (("127.0.0.1", 80.0), 0),
    ((1, 80), 0),
    (("127.0.0.1", 1 << 40), 0),
    (("127.0.0.1", -1), 0),
    (("127.0.0.1", 80), "x"),
    (("127.0.0.1", 80), 1 << 40),
]


@pytest.mark.parametrize("sockaddr,flags", GNI_CASES,
                         ids=[f"{a}-{f}" for a, f in GNI_CASES])
def test_getnameinfo_matches_socket_getnameinfo(any_loop, sockaddr, flags):
    expected = outcome(socket.getnameinfo, sockaddr, flags)
    got = loop_outcome(any_loop, any_loop.getnameinfo, sockaddr, flags)
    assert got == expected


def test_getnameinfo_goes_through_libuv_request(loop, monkeypatch):
    started = []
    orig = uvdns._submit_nameinfo

    def spy(*args):
        r = orig(*args)
        started.append(type(r).__name__)
        return r

    monkeypatch.setattr(uvdns, "_submit_nameinfo", spy)
    assert run(loop, loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV)) == \
        socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV)
    assert started == ["_Request"]
    assert not loop._uv_requests
