"""aiohttp server and client, both on one uvffi loop: keep-alive, chunked
bodies both ways, websockets, TLS (tests/data's self-signed certificate)."""
import asyncio
import os
import ssl

import pytest

aiohttp = pytest.importorskip(
    "aiohttp", reason="aiohttp not installed (pip install .[integration])")
from aiohttp import web  # noqa: E402

from _integration import CERT, KEY  # noqa: E402

import uvffi  # noqa: E402


def _app():
    async def index(request):
        loop = asyncio.get_running_loop()
        peer = request.transport.get_extra_info("peername")
        return web.json_response({"loop": type(loop).__name__,
                                  "is_uvffi": isinstance(loop, uvffi.Loop),
                                  "peer": list(peer),
                                  "cipher": request.transport.get_extra_info(
                                      "cipher")})

    async def upload(request):
        te = request.headers.get("Transfer-Encoding")
        total = b""
        async for chunk in request.content.iter_any():
            total += chunk
        return web.json_response({"te": te, "size": len(total),
                                  "ok": total == _payload()})

    async def stream(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(20):
            await resp.write(b"%d:" % i + b"y" * 10000 + b"\n")
            if i % 5 == 0:
                await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close":
                    await ws.close()
                else:
                    await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_post("/upload", upload)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", ws_echo)
    return app


def _payload():
    return b"".join(b"%05d" % i for i in range(40000))  # 200 kB


async def _serve(ssl_context=None):
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


def _run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, 30))


def test_aiohttp_keep_alive_reuses_one_connection_on_uvffi(loop):
    async def main():
        runner, port = await _serve()
        try:
            conn = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=conn) as s:
                out = []
                for _ in range(5):
                    async with s.get("http://127.0.0.1:%d/" % port) as r:
                        out.append(await r.json())
                return out
        finally:
            await runner.cleanup()

    out = _run(loop, main())
    assert all(o["is_uvffi"] and o["loop"] == "Loop" for o in out)
    assert len({tuple(o["peer"]) for o in out}) == 1  # same client socket


def test_aiohttp_chunked_upload_and_chunked_download(loop):
    async def gen():
        data = _payload()
        for i in range(0, len(data), 16384):
            yield data[i:i + 16384]
            await asyncio.sleep(0)

    async def main():
        runner, port = await _serve()
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post("http://127.0.0.1:%d/upload" % port,
                                  data=gen()) as r:
                    up = await r.json()
                async with s.get("http://127.0.0.1:%d/stream" % port) as r:
                    te = r.headers.get("Transfer-Encoding")
                    parts = []
                    async for chunk in r.content.iter_chunked(4096):
                        parts.append(chunk)
                return up, te, b"".join(parts)
        finally:
            await runner.cleanup()

    up, te, body = _run(loop, main())
    assert up == {"te": "chunked", "size": len(_payload()), "ok": True}
    assert te == "chunked"
    lines = body.split(b"\n")[:-1]
    assert [ln.split(b":")[0] for ln in lines] == [b"%d" % i for i in range(20)]
    assert all(len(ln.split(b":")[1]) == 10000 for ln in lines)


def test_aiohttp_websocket_echo_text_binary_and_close(loop):
    async def main():
        runner, port = await _serve()
        try:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect("http://127.0.0.1:%d/ws" % port) as ws:
                    got = []
                    for i in range(10):
                        await ws.send_str("m%d" % i)
                        got.append((await ws.receive()).data)
                    big = os.urandom(200000)
                    await ws.send_bytes(big)
                    rev = (await ws.receive()).data
                    await ws.send_str("close")
                    closing = await ws.receive()
                    return got, rev == big[::-1], closing.type, ws.closed
        finally:
            await runner.cleanup()

    got, rev_ok, closing_type, closed = _run(loop, main())
    assert got == ["echo:m%d" % i for i in range(10)]
    assert rev_ok
    assert closing_type == aiohttp.WSMsgType.CLOSE and closed


def test_aiohttp_tls_server_and_client(loop):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(CERT, KEY)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(CERT)

    async def main():
        runner, port = await _serve(server_ctx)
        try:
            async with aiohttp.ClientSession() as s:
                base = "https://localhost:%d" % port
                async with s.get(base + "/", ssl=client_ctx) as r:
                    idx = await r.json()
                async with s.post(base + "/upload", data=_payload(),
                                  ssl=client_ctx) as r:
                    up = await r.json()
                # an unverified certificate is refused
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    async with s.get(base + "/", ssl=ssl.create_default_context()):
                        pass
                return idx, up
        finally:
            await runner.cleanup()

    idx, up = _run(loop, main())
    assert idx["is_uvffi"]
    assert idx["cipher"] is not None  # the server saw a TLS connection
    assert up["ok"] and up["size"] == len(_payload())


def test_aiohttp_file_response_full_and_range(loop, tmp_path):
    data = os.urandom(1500000)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    async def send_file(request):
        return web.FileResponse(path)

    async def main():
        app = web.Application()
        app.router.add_get("/f", send_file)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = "http://127.0.0.1:%d/f" % runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url) as r:
                    full = (r.status, await r.read())
                async with s.get(url, headers={"Range": "bytes=100-199"}) as r:
                    part = (r.status, await r.read())
            return full, part
        finally:
            await runner.cleanup()

    full, part = _run(loop, main())
    assert full == (200, data)
    assert part == (206, data[100:200])


def test_aiohttp_large_upload_to_a_slow_reader_is_flow_controlled(loop):
    size = 8 * 1024 * 1024

    async def slow_reader(request):
        n = 0
        async for chunk in request.content.iter_chunked(65536):
            n += len(chunk)
            await asyncio.sleep(0)
        return web.json_response({"n": n})

    async def main():
        app = web.Application(client_max_size=2 * size)
        app.router.add_post("/u", slow_reader)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = "http://127.0.0.1:%d/u" % runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(url, data=b"z" * size) as r:
                    return await r.json()
        finally:
            await runner.cleanup()

    assert _run(loop, main()) == {"n": size}
