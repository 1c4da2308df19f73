"""TLS over uvffi's transports: asyncio's own ``SSLProtocol``, with the few
changes that keep a connection from failing or hanging where asyncio's
(3.11+) one does.

``TLSProtocol`` is what every TLS path builds (``create_connection``,
servers, ``start_tls``, named pipes: socketstream.new_ssl_protocol).  It
differs from asyncio's class only here:

* application data the peer sends after our close_notify went out is read
  and dropped before ``unwrap()``: OpenSSL otherwise fails the shutdown
  with APPLICATION_DATA_AFTER_CLOSE_NOTIFY (bpo-39951), and it is data the
  application said it no longer wants (it closed the transport);
* that also lets a shutdown started while the application paused reading
  finish: the peer's close_notify behind the unread data is reached;
* a transport-level EOF while the application paused reading: what
  arrived is delivered on ``resume_reading()``, then ``eof_received()``,
  as asyncio does (uvloop drops it); but a ``close()`` before the resume
  finishes the connection, where asyncio's (3.11+) waits for a resume that
  will not come;
* a transport-level EOF that comes after the application resumed but
  before the TLS protocol delivered what was held: that data is delivered
  too (``_do_flush`` drops arriving data only after the application's own
  ``close()``);
* our last handshake message is sent as soon as the handshake completes,
  even if connection_made() paused reading (asyncio sends it with the
  next read or write);
* the first application data, when it arrives with the last handshake
  message, is passed on only after the handshake's waiter has woken its
  awaiter: ``start_tls()``'s caller has the TLS transport before its
  protocol sees data it might answer on the plain one;
* a protocol with ``get_buffer``/``buffer_updated`` that does not subclass
  ``asyncio.BufferedProtocol`` (and is not an ``asyncio.Protocol``) is fed
  through them, as the loop's plain transports feed it.

Python 3.9/3.10 have the older sslproto (a different state machine): there
only the duck-typed buffered protocol change applies.
"""
import logging
from asyncio import exceptions as asyncio_exceptions, protocols, sslproto

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without ssl
    ssl = None

from .base import is_buffered_protocol

__all__ = ["TLSProtocol"]

logger = logging.getLogger("asyncio")

_SSL_SHUTDOWN_TIMEOUT = 30.0  # asyncio's constants.SSL_SHUTDOWN_TIMEOUT (3.11+)


def _in_transport_context(protocol, fn):
    """fn() in (a copy of) the context of the TLS protocol's transport,
    where the application protocol is called (transports/stream.py): for user calls
    (resume_reading(), write()) made from another context, or from inside
    that one (hence the copy)."""
    ctx = getattr(protocol._transport, "_context", None)
    return fn() if ctx is None else ctx.copy().run(fn)


def _drop_app_data(sslobj, size):
    """Decrypt and drop what has arrived, up to the peer's close_notify."""
    try:
        while sslobj.read(size):
            pass
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
        pass


if ssl is None:  # pragma: no cover - SSLProtocol() raises RuntimeError
    TLSProtocol = sslproto.SSLProtocol
elif not hasattr(sslproto, "SSLProtocolState"):  # 3.9/3.10, PyPy 3.9
    class _DroppingPipe(sslproto._SSLPipe):
        """asyncio's _SSLPipe, except that once our shutdown has begun,
        application data still arriving is read and dropped before
        ``unwrap()``, which otherwise fails with
        APPLICATION_DATA_AFTER_CLOSE_NOTIFY (bpo-39951): the application
        closed its transport."""

        peer_closed = False  # the peer's close_notify came
        on_early_data = None  # takes what came with the handshake's end

        def feed_ssldata(self, data, only_handshake=False):
            if self._state == sslproto._SHUTDOWN and self._sslobj is not None:
                if data:
                    self._incoming.write(data)
                    data = b""
                _drop_app_data(self._sslobj, self.max_size)
            handshaking = self._state == sslproto._DO_HANDSHAKE
            ssldata, appdata = super().feed_ssldata(data, only_handshake)
            if appdata and not appdata[-1] and self._state == sslproto._WRAPPED:
                self.peer_closed = True
            if (handshaking and appdata and self._state == sslproto._WRAPPED
                    and self.on_early_data is not None):
                # passed on later, not by the caller (see TLSProtocol)
                self.on_early_data(appdata)
                appdata = []
            return ssldata, appdata

    class _SSLAppTransport(sslproto._SSLProtocolTransport):
        """asyncio's application transport, except that pausing reading
        holds what arrives in the TLS protocol instead of pausing the
        socket (as the newer sslproto does): a TCP EOF is still seen.
        ("SSL" in the name: code tells TLS transports by their class name,
        CPython's test_events among it.)"""

        def is_reading(self):
            return (not self._ssl_protocol._app_paused
                    and super().is_reading())

        def pause_reading(self):
            self._ssl_protocol._app_paused = True

        def resume_reading(self):
            self._ssl_protocol._app_resume()

    class TLSProtocol(sslproto.SSLProtocol):
        """The older sslproto has no shutdown timeout: a peer that never
        answers our close_notify kept the connection open for ever.  Here
        it is ``ssl_shutdown_timeout`` as in 3.11+ (30 s by default).
        Reading paused by the application holds the TLS records that
        arrive (up to ``max_size``, then the socket pauses too): at a TCP
        EOF meanwhile, what arrived is kept for ``resume_reading()`` (and,
        where the peer did not end the stream with close_notify, the EOF
        after it), as asyncio's paused socket keeps it; a close() before
        the resume drops it and closes."""

        _shutdown_timer = None
        _app_paused = False
        _held_raw = ()  # TLS records received while the app paused
        _held_size = 0
        _held_app = None  # data that came before an EOF, for resume_reading()
        _held_eof = False  # ... and the EOF, not after the peer's close_notify
        max_size = 256 * 1024

        def __init__(self, *args, ssl_shutdown_timeout=None, **kwargs):
            if ssl_shutdown_timeout is None:
                ssl_shutdown_timeout = _SSL_SHUTDOWN_TIMEOUT
            elif ssl_shutdown_timeout <= 0:
                raise ValueError(
                    f"ssl_shutdown_timeout should be a positive number, "
                    f"got {ssl_shutdown_timeout}")
            super().__init__(*args, **kwargs)
            self._ssl_shutdown_timeout = ssl_shutdown_timeout
            self._app_transport.__class__ = _SSLAppTransport

        # -- reading paused by the application ----------------------------

        def data_received(self, data):
            if (self._app_paused and not self._in_handshake
                    and not self._in_shutdown):
                if not self._held_raw:
                    self._held_raw = []
                self._held_raw.append(data)
                self._held_size += len(data)
                if self._held_size > self.max_size and self._transport:
                    self._transport.pause_reading()
                return
            super().data_received(data)

        def eof_received(self):
            if not (self._app_paused and self._held_raw):
                return super().eof_received()
            raw, self._held_raw, self._held_size = self._held_raw, (), 0
            try:
                _, appdata = self._sslpipe.feed_ssldata(b"".join(raw))
            except (ssl.SSLError, AttributeError):
                appdata = []
            # what arrived waits for resume_reading(), as on asyncio's
            # loop, whose paused socket sees the EOF only then; a stream
            # the peer did not end with close_notify then gets
            # eof_received() and closes, as asyncio's EOF does
            self._held_app = appdata
            self._held_eof = not (appdata and not appdata[-1])
            return True

        def _app_resume(self):
            if not self._app_paused:
                return
            self._app_paused = False
            if self._transport is not None:
                self._transport.resume_reading()
            if self._held_raw or self._held_app or self._held_eof:
                _in_transport_context(
                    self, lambda: self._loop.call_soon(self._deliver_held))

        def _deliver_held(self):
            if self._app_paused or self._transport is None:
                return
            raw, self._held_raw, self._held_size = self._held_raw, (), 0
            if raw:
                super().data_received(b"".join(raw))
            held, self._held_app = self._held_app, None
            if held:
                self._deliver_chunks(held)
            if self._held_eof and self._transport is not None:
                self._held_eof = False
                super().eof_received()

        def _set_app_protocol(self, app_protocol):
            super()._set_app_protocol(app_protocol)
            if is_buffered_protocol(app_protocol):
                self._app_protocol_is_buffer = True

        def _start_handshake(self):
            super()._start_handshake()
            # the pipe is made there; ours only adds to feed_ssldata
            if type(self._sslpipe) is sslproto._SSLPipe:
                self._sslpipe.__class__ = _DroppingPipe
                self._sslpipe.on_early_data = self._early_data

        def _early_data(self, chunks):
            # Application data that came with the end of the handshake: as
            # the newer sslproto does, it reaches the application only after
            # the handshake's waiter has woken its awaiter, so start_tls()'s
            # caller has the TLS transport before its protocol sees data it
            # might answer on the plain one.
            self._loop.call_soon(self._deliver_early_data, chunks)

        def _deliver_early_data(self, chunks):
            self._deliver_chunks(chunks)

        def _deliver_chunks(self, chunks):
            """Application data the way data_received() passes it on; an
            empty chunk is the peer's close_notify."""
            for chunk in chunks:
                if self._sslpipe is None or self._transport is None:
                    return  # closed meanwhile
                if not chunk:  # close_notify
                    self._start_shutdown()
                    return
                try:
                    if self._app_protocol_is_buffer:
                        protocols._feed_data_to_buffered_proto(
                            self._app_protocol, chunk)
                    else:
                        self._app_protocol.data_received(chunk)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(
                        exc, "application protocol failed to receive SSL data")
                    return

        def _start_shutdown(self):
            if self._held_eof:
                # closed after a TCP EOF that came while the application
                # paused reading: the data kept for it is dropped, and no
                # close_notify can come any more
                self._held_eof = False
                self._held_app = None
                if self._transport is not None:
                    self._transport.close()
                return
            pipe = self._sslpipe
            if (not self._in_shutdown and pipe is not None
                    and getattr(pipe, "peer_closed", False)):
                # the peer closed the TLS stream: the application hears of
                # it first, as from the newer sslproto (this one only shut
                # down and lost the connection)
                self._tell_eof()
            if (not self._in_shutdown and not self._in_handshake
                    and self._transport is not None):
                # The peer's close_notify must be read for the shutdown to
                # complete, also if the socket was paused (records held
                # over max_size while the application paused): what comes
                # before it is dropped (_DroppingPipe).
                self._transport.resume_reading()
            super()._start_shutdown()
            if self._in_shutdown and self._held_raw and self._sslpipe:
                # held while paused: fed now, to be dropped up to the
                # peer's close_notify (_DroppingPipe)
                raw, self._held_raw, self._held_size = self._held_raw, (), 0
                super().data_received(b"".join(raw))
            if (self._in_shutdown and self._shutdown_timer is None
                    and not self._loop.is_closed()):
                # (not from the __del__ of a transport left open after its
                # loop closed)
                self._shutdown_timer = self._loop.call_later(
                    self._ssl_shutdown_timeout, self._shutdown_timed_out)

        def _tell_eof(self):
            try:
                if self._app_protocol.eof_received():
                    logger.warning("returning true from eof_received() "
                                   "has no effect when using ssl")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Error calling eof_received()")

        def _shutdown_timed_out(self):
            self._shutdown_timer = None
            transport = self._transport
            if transport is not None and not getattr(transport, "_conn_lost", 0):
                transport._force_close(
                    asyncio_exceptions.TimeoutError("SSL shutdown timed out"))

        def _finalize(self):
            if self._shutdown_timer is not None:
                self._shutdown_timer.cancel()
                self._shutdown_timer = None
            super()._finalize()

        def connection_lost(self, exc):
            if self._shutdown_timer is not None:
                self._shutdown_timer.cancel()
                self._shutdown_timer = None
            super().connection_lost(exc)

else:
    _State = sslproto.SSLProtocolState
    _WRAPPED = _State.WRAPPED
    _FLUSHING = _State.FLUSHING
    _SHUTDOWN = _State.SHUTDOWN
    _AGAIN = sslproto.SSLAgainErrors

    class TLSProtocol(sslproto.SSLProtocol):
        _completing_handshake = False
        _first_read_scheduled = False
        _held = None  # decrypted data kept for a paused app at EOF
        _peer_eof = False  # the transport's EOF came while the app read

        def _set_app_protocol(self, app_protocol):
            super()._set_app_protocol(app_protocol)
            if not self._app_protocol_is_buffer and \
                    is_buffered_protocol(app_protocol):
                self._app_protocol_get_buffer = app_protocol.get_buffer
                self._app_protocol_buffer_updated = app_protocol.buffer_updated
                self._app_protocol_is_buffer = True

        # -- the application's context ------------------------------------
        # The application protocol is called in its transport's context
        # (transports/stream.py), also when the user's call that triggers it comes
        # from another one: resume_reading() schedules the read that feeds
        # it, write() may pause it.  A copy: the user may call from inside
        # that context.

        def _resume_reading(self):
            if self._app_reading_paused:
                _in_transport_context(self, super()._resume_reading)

        def _control_app_writing(self):
            size = self._get_write_buffer_size()
            if self._app_writing_paused:
                change = size <= self._outgoing_low_water
            else:
                change = size >= self._outgoing_high_water
            if change:
                _in_transport_context(self, super()._control_app_writing)

        # -- the first data after the handshake ---------------------------

        def _on_handshake_complete(self, handshake_exc):
            # asyncio reads the first data right after waking the waiter,
            # before the awaiter (start_tls' caller) runs: see _do_read
            self._completing_handshake = True
            try:
                super()._on_handshake_complete(handshake_exc)
            finally:
                self._completing_handshake = False
            if self._state is _WRAPPED and self._transport is not None:
                # our last handshake message (TLS 1.3: the client's
                # Finished) goes out now: asyncio leaves it to the read
                # above, which sends nothing if connection_made() paused
                # reading, and the peer waits for it
                self._process_outgoing()

        def _do_read(self):
            if self._state is _WRAPPED:
                if self._completing_handshake:
                    self._first_read_scheduled = True
                    self._loop.call_soon(self._first_read)
                    return
                if self._first_read_scheduled:
                    return  # the scheduled read takes whatever is there
            if self._held and not self._app_reading_paused and \
                    self._state is _FLUSHING:
                try:
                    self._deliver_held()
                except Exception as exc:
                    self._fatal_error(exc, "Fatal error on SSL protocol")
                    return
            super()._do_read()

        def _first_read(self):
            self._first_read_scheduled = False
            self._do_read()

        # -- shutdown -----------------------------------------------------

        def _do_flush(self):
            if self._held is not None or self._peer_eof:
                # the peer ended the stream (an EOF while paused left the
                # application its data, _eof_while_paused): what arrived
                # is delivered on the way out, as asyncio does
                super()._do_flush()
                return
            # The application closed its transport: what arrives from now
            # on is no longer passed to it, as a plain transport reads
            # nothing after close() (asyncio delivers it meanwhile).
            try:
                self._read_app_data(None)
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            except Exception as exc:
                self._fatal_error(exc, "Fatal error on SSL protocol")
                return
            self._set_state(_SHUTDOWN)
            self._do_shutdown()

        def _do_shutdown(self):
            try:
                self._read_app_data(None)
            except ssl.SSLError as exc:
                self._on_shutdown_complete(exc)
                return
            if self._transport is not None:
                # the read buffer may have paused the socket's reading
                self._control_ssl_reading()
            super()._do_shutdown()

        def _start_shutdown(self):
            if self._state is _FLUSHING and self._held is not None:
                # the application closes after an EOF that came while it
                # paused reading: the data kept for it is dropped and the
                # shutdown goes on (asyncio's waits for a resume_reading()
                # that will not come)
                self._held = None
                self._set_state(_SHUTDOWN)
                try:
                    self._sslobj.unwrap()  # our close_notify
                except ssl.SSLError:  # (SSLWantReadError: no close_notify came)
                    pass
                self._process_outgoing()
                self._on_shutdown_complete(None)
                return
            super()._start_shutdown()

        def _read_app_data(self, keep):
            """Decrypt what has arrived; append it to the list *keep*, or
            drop it if None.  True once the peer's close_notify is read."""
            read = self._sslobj.read
            size = self.max_size
            try:
                while True:
                    chunk = read(size)
                    if not chunk:
                        return True
                    if keep is not None:
                        keep.append(chunk)
            except _AGAIN:
                return False
            except ssl.SSLZeroReturnError:
                return True

        # -- transport EOF while the app paused reading -------------------

        def eof_received(self):
            if self._state is _WRAPPED:
                if self._app_reading_paused:
                    return self._eof_while_paused()
                # asyncio's _do_flush comes next: it delivers what is left
                self._peer_eof = True
            return super().eof_received()

        def _eof_while_paused(self):
            self._eof_received = True
            held = []
            try:
                self._read_app_data(held)
            except ssl.SSLError as exc:
                self._set_state(_SHUTDOWN)
                self._on_shutdown_complete(exc)
                return True
            # what arrived, ended by the peer's close_notify or not, is
            # delivered when the app resumes (_do_read), as asyncio
            # delivers it; a close() before that finishes at once
            # (_start_shutdown)
            self._set_state(_FLUSHING)
            self._held = held
            return True

        def _deliver_held(self):
            data = b"".join(self._held)
            self._held = None
            if not self._app_protocol_is_buffer:
                self._app_protocol.data_received(data)
                return
            view = memoryview(data)
            while view:
                buf = self._app_protocol_get_buffer(len(view))
                n = min(len(buf), len(view))
                if not n:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buf[:n] = view[:n]
                self._app_protocol_buffer_updated(n)
                view = view[n:]
