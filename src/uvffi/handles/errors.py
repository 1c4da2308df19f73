"""libuv error codes -> the exceptions Python's socket layer raises.

libuv reports failures as negative codes.  On Unix they are ``-errno``; on
Windows they are libuv's own numbers, so we translate through the error's
*name* (``uv_err_name``: "ECONNREFUSED" ...) to the platform's ``errno``.
``OSError(errno, msg)`` then picks the right subclass by itself
(ConnectionRefusedError, BrokenPipeError, ...), exactly as a failing
``socket`` call would.
"""
import errno as _errno
import os
import socket

from .._uv import ffi, lib

_errno_by_code = {}


def uv_errno(code):
    """The platform errno for libuv error *code* (negative)."""
    try:
        return _errno_by_code[code]
    except KeyError:
        pass
    name = ffi.string(lib.uv_err_name(code)).decode("ascii", "replace")
    value = getattr(_errno, name, None)
    if value is None:
        value = -code
    _errno_by_code[code] = value
    return value


def uv_strerror(code):
    return ffi.string(lib.uv_strerror(code)).decode("utf-8", "replace")


def uv_error_name(code):
    return ffi.string(lib.uv_err_name(code)).decode("ascii", "replace")


def exception_from_uv(code, filename=None):
    """An OSError (of the right subclass) for libuv error *code*."""
    err = uv_errno(code)
    msg = os.strerror(err) if err > 0 else uv_strerror(code)
    if filename is not None:
        return OSError(err, msg, filename)
    return OSError(err, msg)


# getaddrinfo/getnameinfo failures: UV_EAI_* -> socket.EAI_* -> gaierror
_EAI_NAMES = (
    "EAI_ADDRFAMILY", "EAI_AGAIN", "EAI_BADFLAGS", "EAI_BADHINTS",
    "EAI_CANCELED", "EAI_FAIL", "EAI_FAMILY", "EAI_MEMORY", "EAI_NODATA",
    "EAI_NONAME", "EAI_OVERFLOW", "EAI_PROTOCOL", "EAI_SERVICE",
    "EAI_SOCKTYPE", "EAI_SYSTEM",
)


def gaierror_from_uv(code):
    """socket.gaierror for a UV_EAI_* code, worded as socket.getaddrinfo
    words it (the C library's gai_strerror)."""
    name = uv_error_name(code)
    value = getattr(socket, name, None) if name in _EAI_NAMES else None
    if value is None:
        return exception_from_uv(code)
    return socket.gaierror(value, ffi.string(lib.gai_strerror(value)).decode("utf-8", "replace"))

