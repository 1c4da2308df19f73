"""A minimal HTTP/1.1 server (httptools parser, keep-alive) for the HTTP
benchmark.    python http_server.py LOOP PORT   -- prints READY."""
import asyncio
import sys

import httptools

from loops import new_loop

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!")


class HttpProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self):
        self.transport.write(RESPONSE)
        if not self.parser.should_keep_alive():
            self.transport.close()


def main(loop_name, port):
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    loop.run_until_complete(loop.create_server(HttpProtocol, "127.0.0.1", int(port), backlog=1024))
    print("READY", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
