"""Shared pieces of the datagram tests (test_udp.py, test_udp_engine.py)."""
import asyncio
import socket
import sys

import pytest

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
