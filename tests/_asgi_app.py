"""A small ASGI app for the uvicorn integration tests (no framework).

/          -> the running loop's class, e.g. "uvffi.loop.Loop"
/stream    -> a streamed (chunked) body in 5 parts, with pauses between
/slow      -> answers after 1 s (graceful-shutdown test)
/echo      -> the request body, read in chunks
"""
import asyncio
import sys


def _loop_name():
    loop = asyncio.get_running_loop()
    return "%s.%s" % (type(loop).__module__, type(loop).__qualname__)


async def _body(receive):
    data = b""
    while True:
        msg = await receive()
        data += msg.get("body", b"")
        if not msg.get("more_body"):
            return data


async def _lifespan(receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            print("lifespan-shutdown on", _loop_name(), file=sys.stderr, flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    path = scope["path"]
    headers = [(b"content-type", b"text/plain")]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": headers})
        for i in range(5):
            await send({"type": "http.response.body",
                        "body": b"part %d\n" % i, "more_body": True})
            await asyncio.sleep(0.02)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/slow":
        print("slow-started", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)
        body = b"slow done"
    elif path == "/echo":
        body = await _body(receive)
    else:
        body = _loop_name().encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": headers + [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
