"""create_datagram_endpoint and the datagram transport, IP endpoints.

The tests run on ``any_loop`` (asyncio's SelectorEventLoop and uvffi's Loop)
and assert the same observable results on both: the datagrams, the
addresses, the exceptions and their messages, the order of protocol
callbacks.  test_udp_engine.py has the libuv specifics (the uv_udp_send
queue, closing the loop under an open transport), AF_UNIX datagram
endpoints and the example.

Everything binds to 127.0.0.1 / ::1; multicast joins a group on the
loopback interface only.
"""
import asyncio
import errno
import gc
import inspect
import os
import socket
import struct
import sys
import warnings

import pytest

from _udp_helpers import (
    PY313, TIMEOUT, Recorder, closed, endpoint, free_udp_port, get, needs_ipv6,
    recv_from, run, udp_peer)

# -- local_addr / receiving ----------------------------------------------------

def test_local_addr_binds_and_sets_extra_info(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        sockname = t.get_extra_info("sockname")
        sock = t.get_extra_info("socket")
        result = (sockname[0], sockname[1] > 0, t.get_extra_info("peername"),
                  sock.family, sock.type, sock.getsockname() == sockname,
                  t.get_extra_info("nonexistent", "default"), t.is_closing(),
                  list(p.events), t.get_write_buffer_size())
        await closed(t, p)
        return result

    assert run(any_loop, main()) == (
        "127.0.0.1", True, None, socket.AF_INET, socket.SOCK_DGRAM, True,
        "default", False, ["made"], 0)


def test_datagram_received_with_sender_address(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            peer.sendto(b"hello", t.get_extra_info("sockname"))
            got = await get(p.datagrams)
            assert got == (b"hello", peer.getsockname())
        await closed(t, p)
        return p.events

    assert run(any_loop, main()) == ["made", "data", "lost"]


def test_empty_datagram_is_delivered_as_empty_bytes(any_loop):
    # libuv reports "nothing more to read" as nread == 0 without an address;
    # an empty datagram is nread == 0 with one.
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            peer.sendto(b"", t.get_extra_info("sockname"))
            peer.sendto(b"after", t.get_extra_info("sockname"))
            first = await get(p.datagrams)
            second = await get(p.datagrams)
            expected = [(b"", peer.getsockname()), (b"after", peer.getsockname())]
        await closed(t, p)
        return [first, second] == expected

    assert run(any_loop, main())


def test_large_datagram_arrives_intact(any_loop):
    payload = bytes(range(256)) * 250 + b"end"  # 64003 bytes
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.sendto(payload, peer.getsockname())
            data, _ = await recv_from(peer)
            peer.sendto(payload, t.get_extra_info("sockname"))
            back, _ = await get(p.datagrams)
        await closed(t, p)
        return data == payload, back == payload

    assert run(any_loop, main()) == (True, True)


def test_local_addr_host_name_is_resolved(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("localhost", 0),
                              family=socket.AF_INET)
        host = t.get_extra_info("sockname")[0]
        await closed(t, p)
        return host

    assert run(any_loop, main()) == "127.0.0.1"


def test_local_addr_in_use_raises_address_in_use(any_loop):
    async def main():
        with udp_peer() as taken:
            with pytest.raises(OSError) as info:
                await endpoint(any_loop, local_addr=taken.getsockname())
        return info.value.errno

    assert run(any_loop, main()) == errno.EADDRINUSE


def test_local_addr_must_be_a_2_tuple(any_loop):
    # create_datagram_endpoint's own check (asyncio's code on both loops):
    # a TypeError on 3.11+ and late 3.9 releases, an assert on 3.10
    src = inspect.getsource(asyncio.BaseEventLoop.create_datagram_endpoint)
    error = TypeError if "raise TypeError('2-tuple is expected')" in src else AssertionError

    async def main():
        with pytest.raises(error, match="2-tuple is expected"):
            await endpoint(any_loop, local_addr="127.0.0.1:0")
        return True

    assert run(any_loop, main())


# -- sendto ----------------------------------------------------------------------

def test_sendto_sends_bytes_bytearray_and_memoryview(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        got = []
        with udp_peer() as peer:
            dest = peer.getsockname()
            for data in (b"bytes", bytearray(b"bytearray"),
                         memoryview(b"xxmemoryview")[2:],
                         memoryview(b"abcd").cast("B", (2, 2))):
                t.sendto(data, dest)
                msg, src = await recv_from(peer)
                got.append(msg)
                assert src == t.get_extra_info("sockname")
        await closed(t, p)
        return got

    assert run(any_loop, main()) == [b"bytes", b"bytearray", b"memoryview", b"abcd"]


def test_sendto_non_contiguous_memoryview_behaves_as_socket_sendto(any_loop):
    # CPython's socket.sendto() refuses it with BufferError, which asyncio's
    # transport treats as fatal; PyPy's socket sends it.
    def view():
        return memoryview(bytearray(b"a-b-c"))[::2]

    async def main():
        handled = []
        any_loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.sendto(view(), peer.getsockname())
            if expected is BufferError:
                lost = await asyncio.wait_for(p.lost, TIMEOUT)
                return type(lost), [c["message"] for c in handled]
            data = (await recv_from(peer))[0]
        await closed(t, p)
        return data

    with udp_peer() as a, udp_peer() as b:
        try:
            a.sendto(view(), b.getsockname())
            expected = b.recvfrom(10)[0]
        except BufferError:
            expected = BufferError
    result = run(any_loop, main())
    if expected is BufferError:
        assert result == (BufferError, ["Fatal write error on datagram transport"])
    else:
        assert result == expected == b"abc"


def test_sendto_rejects_data_that_is_not_bytes_like(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with pytest.raises(TypeError) as info:
            t.sendto("text", ("127.0.0.1", 9))
        await closed(t, p)
        return str(info.value)

    assert run(any_loop, main()) == "data argument must be a bytes-like object, not 'str'"


def test_sendto_empty_data_follows_the_interpreters_asyncio(any_loop):
    # Python < 3.13 drops b"" in sendto(); 3.13 sends an empty datagram.
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.sendto(b"", peer.getsockname())
            t.sendto(b"marker", peer.getsockname())
            first, _ = await recv_from(peer)
        await closed(t, p)
        return first

    assert run(any_loop, main()) == (b"" if PY313 else b"marker")


def test_sendto_host_name_address_is_resolved(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.sendto(b"by name", ("localhost", peer.getsockname()[1]))
            msg, _ = await recv_from(peer)
        await closed(t, p)
        return msg

    assert run(any_loop, main()) == b"by name"


def _plain_sendto_outcome(addr):
    """What socket.sendto() of this interpreter does with *addr*."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            s.sendto(b"x", addr)
        except OSError as exc:
            return ("error_received", type(exc))
        except Exception as exc:
            return ("fatal", type(exc), str(exc))
    return ("sent",)


@pytest.mark.parametrize("addr", [
    None, "127.0.0.1", ("127.0.0.1",), ("127.0.0.1", 70000),
    ("127.0.0.1", "port"), ["127.0.0.1", 9], ("127.0.0.1", 9.0),
])
def test_sendto_odd_address_fails_as_socket_sendto_does(any_loop, addr):
    # asyncio's transport: a non-OSError from socket.sendto() goes to the
    # exception handler and closes the transport.  What counts as an error
    # is the interpreter's socket module's call (PyPy accepts a list).
    expected = _plain_sendto_outcome(addr)

    async def main():
        handled = []
        any_loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", addr)
        if expected[0] != "fatal":
            await asyncio.sleep(0.05)
            result = (t.is_closing(), list(p.events), handled)
            await closed(t, p)
            return result
        lost = await asyncio.wait_for(p.lost, TIMEOUT)
        ctx = handled[0]
        return (ctx["message"], type(ctx["exception"]), str(ctx["exception"]),
                type(lost), str(lost), t.is_closing(), len(handled))

    result = run(any_loop, main())
    if expected[0] == "fatal":
        exc_type, text = expected[1:]
        assert result == ("Fatal write error on datagram transport", exc_type,
                          text, exc_type, text, True, 1)
    else:
        assert expected == ("sent",)  # an OSError would need a real network
        assert result == (False, ["made"], [])


def test_sendto_os_error_of_a_named_address_goes_to_error_received(any_loop):
    # '<broadcast>' is parsed by Python's socket module; without SO_BROADCAST
    # the kernel refuses it: an OSError, for error_received().
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("<broadcast>", 9))
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return type(exc), closing

    assert run(any_loop, main()) == (PermissionError, False)


def test_sendto_broadcast_without_allow_broadcast_reports_permission_error(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("255.255.255.255", 9))
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return type(exc), exc.errno, closing

    assert run(any_loop, main()) == (PermissionError, errno.EACCES, False)


# -- remote_addr -----------------------------------------------------------------

def test_remote_addr_connects_and_sendto_uses_the_peer(any_loop):
    async def main():
        with udp_peer() as peer:
            dest = peer.getsockname()
            t, p = await endpoint(any_loop, remote_addr=dest)
            sockname = t.get_extra_info("sockname")
            t.sendto(b"one")
            t.sendto(b"two", dest)
            got = [await recv_from(peer), await recv_from(peer)]
            with pytest.raises(ValueError) as info:
                t.sendto(b"three", ("127.0.0.1", dest[1] + 1))
            peer.sendto(b"reply", sockname)
            reply = await get(p.datagrams)
            result = (t.get_extra_info("peername") == dest, sockname[1] > 0,
                      got == [(b"one", sockname), (b"two", sockname)],
                      str(info.value) == f"Invalid address: must be None or {dest}",
                      reply == (b"reply", dest))
            await closed(t, p)
        return result

    assert run(any_loop, main()) == (True, True, True, True, True)


def test_connected_transport_reports_connection_refused(any_loop):
    # An ICMP port unreachable for an earlier datagram surfaces as
    # error_received(ConnectionRefusedError); the transport stays open.
    port = free_udp_port()

    async def main():
        t, p = await endpoint(any_loop, remote_addr=("127.0.0.1", port))
        for _ in range(100):
            t.sendto(b"anyone?")
            if not p.errors.empty():
                break
            await asyncio.sleep(0.05)
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return type(exc), closing

    assert run(any_loop, main()) == (ConnectionRefusedError, False)


def test_sendto_on_lost_connected_transport_is_ignored(any_loop):
    async def main():
        with udp_peer() as peer:
            t, p = await endpoint(any_loop, remote_addr=peer.getsockname())
            await closed(t, p)
            t.sendto(b"late")  # asyncio counts it and returns
            peer.settimeout(0.2)
            with pytest.raises(socket.timeout):
                peer.recvfrom(10)
        return p.events

    assert run(any_loop, main()) == ["made", "lost"]


def test_remote_addr_host_name_is_resolved_through_the_loop(any_loop):
    async def main():
        with udp_peer() as peer:
            t, p = await endpoint(any_loop, family=socket.AF_INET,
                                  remote_addr=("localhost", peer.getsockname()[1]))
            t.sendto(b"hi")
            msg = (await recv_from(peer))[0]
            peername = t.get_extra_info("peername")
            await closed(t, p)
            return msg, peername == peer.getsockname()

    assert run(any_loop, main()) == (b"hi", True)


# -- family / proto / flags -------------------------------------------------------

def test_family_alone_creates_an_unbound_socket_that_can_send(any_loop):
    async def main():
        t, p = await endpoint(any_loop, family=socket.AF_INET)
        before = t.get_extra_info("sockname")
        with udp_peer() as peer:
            t.sendto(b"autobind", peer.getsockname())
            msg, src = await recv_from(peer)
            peer.sendto(b"back", src)
            back = await get(p.datagrams)
        await closed(t, p)
        return before, msg, back[0]

    assert run(any_loop, main()) == (("0.0.0.0", 0), b"autobind", b"back")


def test_no_address_and_no_family_raises_value_error(any_loop):
    async def main():
        with pytest.raises(ValueError, match="unexpected address family"):
            await endpoint(any_loop)
        return True

    assert run(any_loop, main())


def test_proto_and_flags_are_used_for_resolution(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("localhost", 0),
                              family=socket.AF_INET, proto=socket.IPPROTO_UDP,
                              flags=socket.AI_PASSIVE)
        sock = t.get_extra_info("socket")
        result = (t.get_extra_info("sockname")[0], sock.proto)
        await closed(t, p)
        return result

    assert run(any_loop, main()) == ("127.0.0.1", socket.IPPROTO_UDP)


# -- reuse_address / reuse_port / allow_broadcast ------------------------------------

def test_reuse_address_true_is_refused(any_loop):
    # 3.8-3.10: ValueError (SO_REUSEADDR is unsafe for UDP); 3.11+: the
    # argument is gone (TypeError).  Either way as asyncio does.
    async def main():
        with pytest.raises((ValueError, TypeError)) as info:
            await any_loop.create_datagram_endpoint(
                Recorder, local_addr=("127.0.0.1", 0), reuse_address=True)
        return type(info.value)

    expected = TypeError if sys.version_info >= (3, 11) else ValueError
    assert run(any_loop, main()) is expected


def test_bound_port_is_not_shared_with_reuseaddr_sockets(any_loop):
    # libuv's uv_udp_open() turns SO_REUSEADDR on; uvffi turns it back off so
    # that, as with asyncio, nobody else can bind the endpoint's port.
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        sock = t.get_extra_info("socket")
        reuse = sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            with pytest.raises(OSError) as info:
                intruder.bind(t.get_extra_info("sockname"))
        finally:
            intruder.close()
        await closed(t, p)
        return reuse, info.value.errno

    assert run(any_loop, main()) == (0, errno.EADDRINUSE)


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_endpoints_bind_one_port(any_loop):
    async def main():
        t1, p1 = await endpoint(any_loop, local_addr=("127.0.0.1", 0), reuse_port=True)
        addr = t1.get_extra_info("sockname")
        t2, p2 = await endpoint(any_loop, local_addr=addr, reuse_port=True)
        opts = [t.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                for t in (t1, t2)]
        same = t2.get_extra_info("sockname") == addr
        await closed(t1, p1)
        await closed(t2, p2)
        return [bool(o) for o in opts], same

    assert run(any_loop, main()) == ([True, True], True)


def test_allow_broadcast_sets_so_broadcast_and_does_not_connect(any_loop):
    async def main():
        with udp_peer() as peer:
            t, p = await endpoint(any_loop, remote_addr=peer.getsockname(),
                                  allow_broadcast=True)
            sock = t.get_extra_info("socket")
            bcast = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
            t.sendto(b"to remote")  # goes to remote_addr with sendto()
            msg = (await recv_from(peer))[0]
            with pytest.raises(ValueError):
                t.sendto(b"x", ("127.0.0.1", 9))
            peername = t.get_extra_info("peername")
            await closed(t, p)
        return bool(bcast), peername, msg

    assert run(any_loop, main()) == (True, None, b"to remote")


# -- sock ------------------------------------------------------------------------------

def test_sock_is_used_as_is_and_made_non_blocking(any_loop):
    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        t, p = await endpoint(any_loop, sock=sock)
        tsock = t.get_extra_info("socket")
        result = (tsock.fileno() == sock.fileno(), sock.getblocking(),
                  t.get_extra_info("sockname") == sock.getsockname())
        with udp_peer() as peer:
            peer.sendto(b"via sock", sock.getsockname())
            result += ((await get(p.datagrams))[0],)
        await closed(t, p)
        return result + (sock.fileno(),)

    # the transport owns the socket: closing it closes the socket
    assert run(any_loop, main()) == (True, False, True, b"via sock", -1)


def test_sock_with_socket_modifiers_raises_value_error(any_loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with pytest.raises(ValueError) as info:
                await endpoint(any_loop, sock=sock, local_addr=("127.0.0.1", 0),
                               allow_broadcast=True)
        return str(info.value)

    # Python < 3.11 also lists its reuse_address sentinel
    message = run(any_loop, main())
    assert message.startswith(
        "socket modifier keyword arguments can not be used when sock is "
        "specified. (local_addr=('127.0.0.1', 0), ")
    assert message.endswith("allow_broadcast=True)")


def test_sock_of_stream_type_raises_value_error(any_loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # "A UDP Socket..." / "A datagram socket..." (3.13)
            with pytest.raises(ValueError, match="[sS]ocket was expected, got"):
                await endpoint(any_loop, sock=sock)
        return True

    assert run(any_loop, main())


# -- IPv6 ---------------------------------------------------------------------------------

@needs_ipv6
def test_ipv6_endpoints_exchange_with_4_tuple_addresses(any_loop):
    async def main():
        ts, ps = await endpoint(any_loop, local_addr=("::1", 0))
        server = ts.get_extra_info("sockname")
        tc, pc = await endpoint(any_loop, remote_addr=server[:2])
        client = tc.get_extra_info("sockname")
        tc.sendto(b"ping6")
        data, addr = await get(ps.datagrams)
        ts.sendto(b"pong6", addr)
        back = await get(pc.datagrams)
        await closed(tc, pc)
        await closed(ts, ps)
        return data, addr == client, len(addr), back == (b"pong6", server)

    assert run(any_loop, main()) == (b"ping6", True, 4, True)


@needs_ipv6
def test_ipv6_sendto_accepts_2_and_4_tuples(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("::1", 0))
        with udp_peer(socket.AF_INET6, "::1") as peer:
            port = peer.getsockname()[1]
            t.sendto(b"a", ("::1", port))
            t.sendto(b"b", ("::1", port, 0, 0))
            got = [(await recv_from(peer))[0], (await recv_from(peer))[0]]
        await closed(t, p)
        return got

    assert run(any_loop, main()) == [b"a", b"b"]


# -- multicast -------------------------------------------------------------------------

def test_multicast_through_the_transport_socket(any_loop):
    group = "239.255.77.%d" % (os.getpid() % 200 + 20)

    async def main():
        # a receiver bound to the group address, member on loopback only
        t, p = await endpoint(any_loop, local_addr=(group, 0))
        port = t.get_extra_info("sockname")[1]
        sock = t.get_extra_info("socket")
        mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1"))
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            await closed(t, p)
            return "skip: cannot join a multicast group on loopback here: %s" % exc
        ts, ps = await endpoint(any_loop, family=socket.AF_INET)
        ssock = ts.get_extra_info("socket")
        ssock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         socket.inet_aton("127.0.0.1"))
        ssock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        ts.sendto(b"to the group", (group, port))
        try:
            data = await asyncio.wait_for(p.datagrams.get(), 3)
        except asyncio.TimeoutError:
            data = "skip: multicast on loopback is not delivered here"
        await closed(ts, ps)
        await closed(t, p)
        return data

    result = run(any_loop, main())
    if isinstance(result, str):
        pytest.skip(result[6:])
    assert result[0] == b"to the group"


# -- close / abort / flow control --------------------------------------------------------

def test_close_calls_connection_lost_once_and_closes_the_socket(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        sock = t.get_extra_info("socket")
        fd = sock.fileno()
        registered = any_loop._transports.get(fd) is t
        t.close()
        t.close()  # no-op
        closing = t.is_closing()
        exc = await asyncio.wait_for(p.lost, TIMEOUT)
        await asyncio.sleep(0)
        return registered, closing, exc, p.events, sock.fileno()

    assert run(any_loop, main()) == (True, True, None, ["made", "lost"], -1)


def test_abort_calls_connection_lost_with_none(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.abort()
        closing = t.is_closing()
        exc = await asyncio.wait_for(p.lost, TIMEOUT)
        return closing, exc, p.events

    assert run(any_loop, main()) == (True, None, ["made", "lost"])


def test_no_datagram_is_delivered_after_close(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.close()
            peer.sendto(b"too late", t.get_extra_info("sockname"))
            await asyncio.wait_for(p.lost, TIMEOUT)
            await asyncio.sleep(0.05)
        return p.events

    assert run(any_loop, main()) == ["made", "lost"]


def test_pause_reading_holds_datagrams_until_resume_reading(any_loop):
    if sys.version_info < (3, 11):
        pytest.skip("datagram transports pause reading since Python 3.11")

    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.pause_reading()
        paused = (t.is_reading(),)
        with udp_peer() as peer:
            peer.sendto(b"held", t.get_extra_info("sockname"))
            await asyncio.sleep(0.2)
            paused += (p.datagrams.qsize(),)
            t.resume_reading()
            data = (await get(p.datagrams))[0]
        await closed(t, p)
        return paused, t.is_reading(), data

    assert run(any_loop, main()) == ((False, 0), False, b"held")


def test_exception_in_datagram_received_is_reported_and_transport_stays_open(any_loop):
    class Failing(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            if data == b"boom":
                raise RuntimeError("protocol bug")

    async def main():
        handled = []
        any_loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
        t, p = await any_loop.create_datagram_endpoint(
            Failing, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            peer.sendto(b"boom", t.get_extra_info("sockname"))
            await get(p.datagrams)
            peer.sendto(b"still open", t.get_extra_info("sockname"))
            data = (await get(p.datagrams))[0]
        await asyncio.sleep(0)
        result = (data, t.is_closing(), [type(c["exception"]) for c in handled],
                  "Exception in callback" in handled[0]["message"])
        await closed(t, p)
        return result

    assert run(any_loop, main()) == (b"still open", False, [RuntimeError], True)


def test_get_write_buffer_limits_defaults_and_setter(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        default = t.get_write_buffer_limits()
        t.set_write_buffer_limits(high=1000, low=10)
        result = default, t.get_write_buffer_limits()
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=10)
        await closed(t, p)
        return result

    assert run(any_loop, main()) == ((16384, 65536), (10, 1000))


def test_add_reader_on_the_transport_fd_is_refused(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        fd = t.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="is used by transport"):
            any_loop.add_reader(fd, lambda: None)
        await closed(t, p)
        return True

    assert run(any_loop, main())



@pytest.mark.skipif(sys.version_info >= (3, 11), reason="Python < 3.11 only")
def test_pause_reading_is_not_implemented_before_python_3_11(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        raised = []
        for method in (t.is_reading, t.pause_reading, t.resume_reading):
            try:
                method()
            except NotImplementedError:
                raised.append(method.__name__)
        await closed(t, p)
        return raised

    assert run(any_loop, main()) == ["is_reading", "pause_reading", "resume_reading"]




def test_sendto_after_the_loop_is_closed_still_sends(any_loop):
    # Closing the loop does not close an open transport's socket (asyncio);
    # a datagram the kernel takes at once still goes out.
    async def main():
        return await endpoint(any_loop, local_addr=("127.0.0.1", 0))

    t, p = run(any_loop, main())
    any_loop.close()
    with udp_peer() as peer:
        t.sendto(b"after close", peer.getsockname())
        msg = peer.recvfrom(100)[0]
    sock = t.get_extra_info("socket")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "unclosed transport"
        del t, p
        for _ in range(5):  # the unclosed transport's finaliser closes its socket
            gc.collect()
            if sock.fileno() == -1:
                break
    assert msg == b"after close"
    assert sock.fileno() == -1


def test_connected_sock_sends_to_its_peer_whatever_the_address(any_loop):
    # With sock= there is no remote_addr to check against: asyncio's
    # transport calls send() on a connected socket and ignores addr.
    async def main():
        with udp_peer() as peer, udp_peer() as other:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(peer.getsockname())
            t, p = await endpoint(any_loop, sock=sock)
            t.sendto(b"to the peer", other.getsockname())
            got = (await recv_from(peer))[0]
            peername = t.get_extra_info("peername")
            await closed(t, p)
            return got, peername == peer.getsockname()

    assert run(any_loop, main()) == (b"to the peer", True)


def test_get_protocol_and_set_protocol(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        first = t.get_protocol() is p
        other = Recorder()
        t.set_protocol(other)
        with udp_peer() as peer:
            peer.sendto(b"to the new protocol", t.get_extra_info("sockname"))
            data = (await get(other.datagrams))[0]
        t.close()
        await asyncio.wait_for(other.lost, TIMEOUT)
        return first, t.get_protocol() is None or t.get_protocol() is other, data, p.events

    assert run(any_loop, main()) == (True, True, b"to the new protocol", ["made"])


def test_debug_mode_logs_the_new_endpoint(any_loop, caplog):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        text = repr(t)
        await closed(t, p)
        return text

    any_loop.set_debug(True)
    with caplog.at_level("DEBUG", logger="asyncio"):
        text = run(any_loop, main())
    messages = [r.getMessage() for r in caplog.records]
    logged = [m for m in messages if m.startswith(
        "Datagram endpoint local_addr=('127.0.0.1', 0) remote_addr=None created: (<")]
    assert len(logged) == 1 and " fd=" in logged[0]
    assert " fd=" in text and "write=<idle, bufsize=0>" in text


def test_datagram_transport_is_an_asyncio_transport(any_loop):
    # asyncio's datagram transport is an asyncio.Transport (whose stream
    # methods raise NotImplementedError); ours is that and a DatagramTransport.
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        with pytest.raises(NotImplementedError):
            t.write(b"x")
        result = isinstance(t, asyncio.Transport)
        await closed(t, p)
        return result

    assert run(any_loop, main())
