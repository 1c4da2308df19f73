"""create_datagram_endpoint and the datagram transport.

Most tests run on ``any_loop`` (asyncio's SelectorEventLoop and uvffi's Loop)
and assert the same observable results on both: the datagrams, the
addresses, the exceptions and their messages, the order of protocol
callbacks.  The ``loop``-only tests pin down libuv specifics (the
uv_udp_send queue, closing the loop under an open transport).

Everything binds to 127.0.0.1 / ::1; multicast joins a group on the
loopback interface only.
"""
import asyncio
import gc
import os
import socket
import struct
import sys
import tempfile
import warnings

import pytest

from uvffi import udp as uvffi_udp
from uvffi._uv import lib

TIMEOUT = 10  # generous: two shared cores

HAS_IPV6 = socket.has_ipv6
try:
    _s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    _s.bind(("::1", 0))
    _s.close()
except OSError:
    HAS_IPV6 = False
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback (::1) here")
needs_unix = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX")
PY313 = sys.version_info >= (3, 13)


class Recorder(asyncio.DatagramProtocol):
    """Records every protocol callback, in order."""

    def __init__(self):
        self.events = []
        self.transport = None
        self.datagrams = asyncio.Queue()
        self.errors = asyncio.Queue()
        self.lost = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def datagram_received(self, data, addr):
        self.events.append("data")
        self.datagrams.put_nowait((data, addr))

    def error_received(self, exc):
        self.events.append("error")
        self.errors.put_nowait(exc)

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def udp_peer(family=socket.AF_INET, host="127.0.0.1"):
    """A plain socket to talk to the transport; blocking with a timeout so
    that it can wait for datagrams in the executor."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(TIMEOUT)
    return s


async def recv_from(sock, size=70000):
    return await asyncio.get_running_loop().run_in_executor(None, sock.recvfrom, size)


async def get(queue):
    return await asyncio.wait_for(queue.get(), TIMEOUT)


async def endpoint(loop, **kwargs):
    return await loop.create_datagram_endpoint(Recorder, **kwargs)


async def closed(transport, protocol):
    transport.close()
    return await asyncio.wait_for(protocol.lost, TIMEOUT)


def free_udp_port(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


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

    import errno
    assert run(any_loop, main()) == errno.EADDRINUSE


def test_local_addr_must_be_a_2_tuple(any_loop):
    async def main():
        with pytest.raises(TypeError, match="2-tuple is expected"):
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
                         memoryview(bytearray(b"a-b-c"))[::2]):  # not contiguous
                t.sendto(data, dest)
                msg, src = await recv_from(peer)
                got.append(msg)
                assert src == t.get_extra_info("sockname")
        await closed(t, p)
        return got

    assert run(any_loop, main()) == [b"bytes", b"bytearray", b"memoryview", b"abc"]


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


@pytest.mark.parametrize("addr", [
    None, "127.0.0.1", ("127.0.0.1",), ("127.0.0.1", 70000),
    ("127.0.0.1", "port"), ["127.0.0.1", 9], ("127.0.0.1", 9.0),
])
def test_sendto_bad_address_is_a_fatal_error_as_in_asyncio(any_loop, addr):
    # asyncio's transport: a non-OSError from socket.sendto() goes to the
    # exception handler and closes the transport.
    async def main():
        handled = []
        any_loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", addr)
        lost = await asyncio.wait_for(p.lost, TIMEOUT)
        ctx = handled[0]
        return (ctx["message"], type(ctx["exception"]), str(ctx["exception"]),
                type(lost), str(lost), t.is_closing(), len(handled))

    msg, exc_type, text, lost_type, lost_text, closing, n = run(any_loop, main())
    assert msg == "Fatal write error on datagram transport"
    assert exc_type in (TypeError, OverflowError)
    assert (lost_type, lost_text) == (exc_type, text)
    assert closing and n == 1
    # the message is the one socket.sendto() gives
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(exc_type) as info:
            s.sendto(b"x", addr)
    assert text == str(info.value)


def test_sendto_unresolvable_host_reports_gaierror_to_error_received(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("name.invalid", 9))
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return isinstance(exc, socket.gaierror), closing

    assert run(any_loop, main()) == (True, False)


def test_sendto_broadcast_without_allow_broadcast_reports_permission_error(any_loop):
    async def main():
        t, p = await endpoint(any_loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("255.255.255.255", 9))
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return type(exc), exc.errno, closing

    import errno
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


def test_proto_that_does_not_fit_udp_fails_as_in_asyncio(any_loop):
    async def main():
        with pytest.raises(OSError) as info:
            await endpoint(any_loop, local_addr=("127.0.0.1", 0),
                           proto=socket.IPPROTO_TCP)
        return type(info.value), str(info.value)

    result = run(any_loop, main())
    assert issubclass(result[0], OSError)
    with pytest.raises(OSError) as info:
        socket.getaddrinfo("127.0.0.1", 0, 0, socket.SOCK_DGRAM, socket.IPPROTO_TCP)
    assert result == (type(info.value), str(info.value)) or result[0] is ValueError


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

    import errno
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

    assert run(any_loop, main()) == (
        "socket modifier keyword arguments can not be used when sock is "
        "specified. (local_addr=('127.0.0.1', 0), allow_broadcast=True)")


def test_sock_of_stream_type_raises_value_error(any_loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            with pytest.raises(ValueError, match="A UDP Socket was expected"):
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
        with pytest.raises(ValueError, match="is used by transport"):
            any_loop.add_reader(fd, lambda: None)
        await closed(t, p)
        return True

    assert run(any_loop, main())


# -- the uv_udp_send queue (uvffi only: a UDP send on loopback never blocks,
# so "the kernel would not take it now" is simulated) -----------------------------------

@pytest.fixture
def send_would_block(monkeypatch):
    """uv_udp_try_send answers EAGAIN: every datagram takes the
    uv_udp_send queue, which then really sends it."""
    monkeypatch.setattr(uvffi_udp, "_try_send", lambda *args: lib.UV_EAGAIN)


def test_queued_datagrams_are_sent_in_order_with_flow_control(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        t.set_write_buffer_limits(high=250, low=100)
        with udp_peer() as peer:
            for i in range(10):
                t.sendto(b"%03d" % i + b"." * 97, peer.getsockname())
            queued = t.get_write_buffer_size()
            paused = p.events.count("pause")
            got = [(await recv_from(peer))[0][:3] for _ in range(10)]
        while t.get_write_buffer_size():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await closed(t, p)
        return queued, paused, got, p.events

    queued, paused, got, events = run(loop, main())
    assert queued == 10 * (100 + (8 if PY313 else 0))
    assert paused == 1
    assert got == [b"%03d" % i for i in range(10)]
    assert events == ["made", "pause", "resume", "lost"]


def test_close_waits_for_queued_datagrams(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            for i in range(3):
                t.sendto(b"q%d" % i, peer.getsockname())
            t.close()
            pending = t.get_write_buffer_size() > 0
            exc = await asyncio.wait_for(p.lost, TIMEOUT)
            got = [(await recv_from(peer))[0] for _ in range(3)]
        return pending, exc, got, t.get_write_buffer_size()

    assert run(loop, main()) == (True, None, [b"q0", b"q1", b"q2"], 0)


def test_abort_forgets_queued_datagrams(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("127.0.0.1", 9))
        t.sendto(b"y", ("127.0.0.1", 9))
        t.abort()
        size = t.get_write_buffer_size()
        exc = await asyncio.wait_for(p.lost, TIMEOUT)
        await asyncio.sleep(0.05)  # the cancelled requests complete
        return size, exc, p.events

    assert run(loop, main()) == (0, None, ["made", "lost"])


def test_queued_send_failure_goes_to_error_received(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        t.sendto(b"x", ("255.255.255.255", 9))  # EACCES, reported by uv_udp_send
        exc = await get(p.errors)
        closing = t.is_closing()
        await closed(t, p)
        return type(exc), closing

    assert run(loop, main()) == (PermissionError, False)


def test_queued_datagram_to_host_name_is_resolved(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            t.sendto(b"named", ("localhost", peer.getsockname()[1]))
            msg = (await recv_from(peer))[0]
        await closed(t, p)
        return msg

    assert run(loop, main()) == b"named"


def test_closing_the_loop_with_an_open_transport_and_queued_sends(send_would_block):
    import uvffi
    lp = uvffi.new_event_loop()

    async def main():
        t, p = await endpoint(lp, local_addr=("127.0.0.1", 0))
        for _ in range(5):
            t.sendto(b"z" * 1000, ("127.0.0.1", 9))
        return t, p

    t, p = lp.run_until_complete(main())
    sock = t.get_extra_info("socket")
    lp.close()  # closes the uv_udp_t; queued sends are cancelled
    assert lp.is_closed() and not lp._uv_handles
    assert p.events == ["made"]
    assert t.get_write_buffer_size() == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del t, p
        gc.collect()
    assert sock.fileno() == -1  # the unclosed transport closed its socket
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


def test_transport_repr_names_class_fd_and_state(loop):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        r1 = repr(t)
        await closed(t, p)
        return r1, repr(t), t.get_extra_info("socket").fileno()

    r1, r2, _ = run(loop, main())
    assert r1.startswith("<UDPTransport fd=") and "read=polling" in r1
    assert r2 == "<UDPTransport closed fd=%s>" % r1.split("fd=")[1].split()[0]


# -- AF_UNIX datagram sockets ---------------------------------------------------------------

@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="uvffi-udp-") as d:
        yield d


@needs_unix
def test_unix_datagram_paths_exchange(any_loop, sock_dir):
    server_path = os.path.join(sock_dir, "server")
    client_path = os.path.join(sock_dir, "client")

    async def main():
        ts, ps = await endpoint(any_loop, family=socket.AF_UNIX, local_addr=server_path)
        tc, pc = await endpoint(any_loop, family=socket.AF_UNIX,
                                local_addr=client_path, remote_addr=server_path)
        tc.sendto(b"unix ping")
        data, addr = await get(ps.datagrams)
        ts.sendto(b"unix pong", addr)
        back = await get(pc.datagrams)
        result = (data, addr, back, tc.get_extra_info("peername"),
                  ts.get_extra_info("sockname"))
        with pytest.raises(ValueError):
            tc.sendto(b"x", "/elsewhere")
        await closed(tc, pc)
        await closed(ts, ps)
        return result

    assert run(any_loop, main()) == (
        b"unix ping", client_path, (b"unix pong", server_path), server_path, server_path)


@needs_unix
def test_unix_datagram_from_unbound_sender(any_loop, sock_dir):
    path = os.path.join(sock_dir, "server")

    async def main():
        t, p = await endpoint(any_loop, family=socket.AF_UNIX, local_addr=path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"anonymous", path)
            got = await get(p.datagrams)
        await closed(t, p)
        return got

    expected_addr = None
    with tempfile.TemporaryDirectory() as d:  # what recvfrom() says here
        r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        r.bind(os.path.join(d, "r"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"?", os.path.join(d, "r"))
        expected_addr = r.recvfrom(10)[1]
        r.close()
    assert run(any_loop, main()) == (b"anonymous", expected_addr)


@needs_unix
def test_unix_datagram_stale_socket_file_is_replaced(any_loop, sock_dir):
    path = os.path.join(sock_dir, "stale")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # leaves the file behind

    async def main():
        t, p = await endpoint(any_loop, family=socket.AF_UNIX, local_addr=path)
        name = t.get_extra_info("sockname")
        await closed(t, p)
        return name

    assert run(any_loop, main()) == path


@needs_unix
def test_unix_datagram_address_must_be_a_string(any_loop):
    async def main():
        with pytest.raises(TypeError, match="string is expected"):
            await endpoint(any_loop, family=socket.AF_UNIX, local_addr=("x", 1))
        return True

    assert run(any_loop, main())


@needs_unix
def test_unix_datagrams_to_a_full_receiver_are_queued_not_dropped(any_loop, sock_dir):
    # An AF_UNIX receiver that does not read makes sendto() block for real.
    path = os.path.join(sock_dir, "slow")

    async def main():
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        receiver.setblocking(False)
        t, p = await endpoint(any_loop, family=socket.AF_UNIX, remote_addr=path)
        t.set_write_buffer_limits(high=4096, low=1024)
        n = 400
        for i in range(n):
            t.sendto(b"%05d" % i + b"-" * 495)
        queued = t.get_write_buffer_size()
        got = []
        while len(got) < n:
            try:
                got.append(receiver.recv(1000)[:5])
            except BlockingIOError:
                await asyncio.sleep(0.005)
        await closed(t, p)
        receiver.close()
        return queued > 0, got == [b"%05d" % i for i in range(n)], p.events

    queued, in_order, events = run(any_loop, main())
    assert queued and in_order
    assert events == ["made", "pause", "resume", "lost"]


# -- the example ----------------------------------------------------------------------------

def test_udp_echo_example_runs_to_completion():
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, os.pardir, "examples", "udp_echo.py")
    env = dict(os.environ)
    src = os.path.join(here, os.pardir, "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, example], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Received: Hello World!" in proc.stdout
    assert "Close the socket" in proc.stdout
