"""``python -m uvffi``: what this uvffi is built on, and a one-second
self-check of the loop (a loopback echo, a timer, a subprocess).

Exit status 0 when every check passed, 1 otherwise."""
import asyncio
import platform
import sys
import time

import uvffi
from uvffi._uv import ffi, lib

_TIMEOUT = 5.0


def libuv_origin():
    """'vendored' when libuv was built from a source tree and linked into
    the extension (UVFFI_LIBUV=VENDOR), 'system' when the build used the
    system's shared libuv (pkg-config), 'host' when it binds to the libuv
    of the process that loaded it (UVFFI_LIBUV=HOST).  The build says so itself: a flag
    compiled into the shim, since what is mapped into the process can be
    another module's libuv."""
    if lib.UVFFI_LIBUV_VENDORED:
        return "vendored"
    try:
        from . import _libuv_host  # noqa: F401 - written by HOST builds only
    except ImportError:
        return "system"
    return "host"


async def _echo():
    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname()[:2])
        writer.write(b"uvffi self-check")
        got = await reader.readexactly(16)
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    return got == b"uvffi self-check"


async def _timer():
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    start = loop.time()
    loop.call_later(0.05, fired.set_result, None)
    await fired
    return loop.time() - start >= 0.049


async def _subprocess():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print(6 * 7)",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return proc.returncode == 0 and out.strip() == b"42"


CHECKS = (("loopback echo", _echo), ("timer", _timer),
          ("subprocess", _subprocess))


async def _run_checks(report):
    ok = True
    for name, check in CHECKS:
        t0 = time.perf_counter()
        try:
            passed = await asyncio.wait_for(check(), _TIMEOUT)
            detail = ""
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            passed = False
            detail = " (%s: %s)" % (type(exc).__name__, exc)
        report("  %-14s %s in %.0f ms%s" % (
            name, "pass" if passed else "FAIL",
            (time.perf_counter() - t0) * 1000, detail))
        ok = ok and passed
    return ok


def main(report=print):
    report("uvffi %s" % uvffi.__version__)
    report("libuv %s (%s)" % (ffi.string(lib.uv_version_string()).decode(),
                              libuv_origin()))
    report("Python %s %s on %s" % (platform.python_implementation(),
                                   platform.python_version(),
                                   platform.platform()))
    report("self-check:")
    ok = uvffi.run(_run_checks(report))
    report("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
