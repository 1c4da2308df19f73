"""uvicorn serving an ASGI app on uvffi: `--loop uvffi:new_event_loop` on the
command line, `uvicorn.Config(loop=...)` / `uvicorn.run(loop=...)` in
process, real HTTP requests from http.client (blocking sockets, no loop).

uvicorn resolves a `--loop` value that is not one of its names ("auto",
"asyncio", "uvloop", ...) with its importer, "module:attribute", and uses the
result as the loop factory of `asyncio.run(..., loop_factory=...)`
(0.36+)."""
import http.client
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

uvicorn = pytest.importorskip(
    "uvicorn", reason="uvicorn not installed (pip install .[integration])")

from _integration import child_env, start_uvicorn, wait_for_uvicorn  # noqa: E402

UVFFI_LOOP = "uvffi.loop.Loop"


def _get(conn, path, body=None):
    conn.request("POST" if body is not None else "GET", path, body=body)
    resp = conn.getresponse()
    return resp.status, resp.getheader("transfer-encoding"), resp.read()


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=10)[1]


@pytest.fixture
def uvicorn_cli():
    proc, port, lines = start_uvicorn(
        ["_asgi_app:app", "--loop", "uvffi:new_event_loop"])
    yield proc, port, lines
    _stop(proc)


def test_uvicorn_cli_loop_option_runs_the_app_on_uvffi(uvicorn_cli):
    proc, port, _ = uvicorn_cli
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        # keep-alive: three requests over one connection
        results = [_get(conn, "/") for _ in range(3)]
        sock_before = conn.sock
        echo = _get(conn, "/echo", body=b"x" * 300000)
        assert conn.sock is sock_before
    finally:
        conn.close()
    assert results == [(200, None, UVFFI_LOOP.encode())] * 3
    assert echo == (200, None, b"x" * 300000)


def test_uvicorn_streaming_response_is_chunked_and_complete(uvicorn_cli):
    proc, port, _ = uvicorn_cli
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, te, body = _get(conn, "/stream")
    finally:
        conn.close()
    assert (status, te) == (200, "chunked")
    assert body == b"".join(b"part %d\n" % i for i in range(5))


def _sigterm_exit_status():
    # Recent uvicorn re-raises the signal it caught once shutdown is complete
    # (default handler restored): a clean SIGTERM shutdown then ends with
    # -SIGTERM whatever the loop; versions without that return 0.
    import inspect
    import uvicorn.server
    if "raise_signal" in inspect.getsource(uvicorn.server):
        return -signal.SIGTERM
    return 0


def test_uvicorn_sigterm_finishes_in_flight_request_and_exits_cleanly(
        uvicorn_cli):
    proc, port, lines = uvicorn_cli
    result = {}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            result["slow"] = _get(conn, "/slow")
        except Exception as exc:  # reported by the assertion below
            result["slow"] = exc
        finally:
            conn.close()

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "slow-started" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    t.join(15)
    rc = proc.wait(timeout=15)
    err = "".join(lines) + proc.stderr.read()
    assert result.get("slow") == (200, None, b"slow done"), err
    assert rc == _sigterm_exit_status(), err
    assert "lifespan-shutdown on " + UVFFI_LOOP in err
    assert "Finished server process" in err


def test_uvicorn_config_loop_in_a_thread_serves_on_uvffi():
    from _asgi_app import app
    config = uvicorn.Config(app, host="127.0.0.1", port=0,
                            loop="uvffi:new_event_loop", log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            got = [_get(conn, p) for p in ("/", "/stream")]
        finally:
            conn.close()
    finally:
        server.should_exit = True
        t.join(15)
    assert not t.is_alive()
    assert got[0] == (200, None, UVFFI_LOOP.encode())
    assert got[1][2].startswith(b"part 0\n")


def test_uvicorn_run_with_loop_argument_in_a_script():
    script = textwrap.dedent("""
        import uvicorn
        from _asgi_app import app
        uvicorn.run(app, host="127.0.0.1", port=0, loop="uvffi:new_event_loop")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    proc, port, _ = wait_for_uvicorn(proc)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            got = _get(conn, "/")
        finally:
            conn.close()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
    finally:
        err = _stop(proc)
    assert got == (200, None, UVFFI_LOOP.encode())
    assert rc == 0, err
