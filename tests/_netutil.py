"""Helpers shared by the TCP/Unix/TLS/sendfile tests."""
import asyncio
import os
import ssl

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
CERT = os.path.join(DATA_DIR, "uvffi_test.crt")
KEY = os.path.join(DATA_DIR, "uvffi_test.key")


def server_ssl_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


def client_ssl_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CERT)
    return ctx


class Recorder(asyncio.Protocol):
    """Records what the transport does to it, in order."""

    def __init__(self, loop, echo=False, keep_open_on_eof=False):
        self.loop = loop
        self.echo = echo
        self.keep_open_on_eof = keep_open_on_eof
        self.transport = None
        self.events = []
        self.data = bytearray()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self.paused = 0
        self.resumed = 0
        self._data_waiters = []

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        assert type(data) is bytes
        self.data += data
        if self.echo:
            self.transport.write(data)
        self._wake()

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open_on_eof

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)
        self._wake()

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def _wake(self):
        for n, fut in list(self._data_waiters):
            if (len(self.data) >= n or self.lost.done()) and not fut.done():
                fut.set_result(None)
                self._data_waiters.remove((n, fut))

    async def wait_data(self, n, timeout=10):
        if len(self.data) < n:
            fut = self.loop.create_future()
            self._data_waiters.append((n, fut))
            await asyncio.wait_for(fut, timeout)
        return bytes(self.data)


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))
