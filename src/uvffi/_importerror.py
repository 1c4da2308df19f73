"""Why the extension module ``uvffi._uv`` did not import, in words.

A uvffi built with ``UVFFI_LIBUV=HOST`` (cmake/HostLibuv.cmake) carries no
libuv: its ``uv_*`` symbols are bound when it is loaded, to the libuv of a
host process that embeds Python (Node.js, see examples/node).  In a plain
``python`` the dynamic loader refuses it ("undefined symbol: uv_...");
:func:`explain` turns that into an ImportError that says what happened.
"""


def _host_build():
    try:
        from . import _libuv_host  # written by the HOST build only
    except ImportError:
        return None
    return _libuv_host


def explain(exc):
    """The ImportError to raise instead of ``exc`` (``exc`` itself when it
    is not about a HOST build's missing libuv)."""
    text = str(exc)
    host = _host_build()
    # Linux: "undefined symbol: uv_foo"; macOS: "symbol not found ... _uv_foo"
    missing_uv = ("undefined symbol: uv_" in text
                  or ("_uv_" in text and "ymbol not found" in text))
    if host is None and not missing_uv:
        return exc
    if host is not None:
        built = ("this uvffi was built with UVFFI_LIBUV=HOST (libuv %s headers "
                 "from %s)" % (host.VERSION, host.INCLUDE))
    else:
        built = ("this uvffi was apparently built with UVFFI_LIBUV=HOST")
    return ImportError(
        "uvffi cannot be imported here: %s, so it has no libuv of its own and "
        "takes libuv's uv_* functions from the process that loads it -- a host "
        "program that runs libuv and embeds Python, such as the Node.js addon "
        "of examples/node. In this process the loader finds no libuv to bind "
        "them to (%s). For a plain Python, "
        "install uvffi built with UVFFI_LIBUV=AUTO, SYSTEM or VENDOR."
        % (built, text), name=getattr(exc, "name", None),
        path=getattr(exc, "path", None))
