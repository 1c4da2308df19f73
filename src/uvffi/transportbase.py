"""What uvffi's transports share, as asyncio's own transports behave.

Stream, datagram and pipe transports each keep their I/O engine; the
reading switch and the closing protocol are the same everywhere and live
here once.  A class using these mixins provides ``_loop``, ``_protocol``,
``_closing``, ``_paused``, ``_conn_lost``, ``_start_reading()``,
``_stop_reading()`` and ``_call_connection_lost(exc)``.
"""
import logging

logger = logging.getLogger("asyncio")


def report_fatal(transport, exc, message, quiet):
    """How asyncio's transports report a fatal error: *quiet* ones (an
    OSError, usually: the peer went away) only in a debug log, the rest to
    the loop's exception handler."""
    loop = transport._loop
    if quiet:
        if loop.get_debug():
            logger.debug("%r: %s", transport, message, exc_info=True)
    else:
        loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": transport,
            "protocol": transport._protocol,
        })


class ReadingMixin:
    """is_closing / is_reading / pause_reading / resume_reading."""

    def is_closing(self):
        return self._closing

    def is_reading(self):
        return not self._closing and not self._paused

    def pause_reading(self):
        if not self.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)


class ClosingMixin:
    """close / abort / _fatal_error / _force_close of asyncio's selector
    transports.  Hooks: ``_has_pending()`` (data still queued to send: close
    waits for it) and ``_drop_pending()`` (abort forgets it)."""

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._has_pending():
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)
        # else: the engine calls _call_connection_lost once the queue drained

    def abort(self):
        self._force_close(None)

    def _fatal_error(self, exc, message="Fatal error on transport"):
        report_fatal(self, exc, message, isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc):
        if self._conn_lost:
            return
        self._drop_pending()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)
