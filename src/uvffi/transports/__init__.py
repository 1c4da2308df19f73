"""Layer 3: asyncio transports over the handles (stream, socket stream and
TLS, pipes, datagrams), with the read strategies of the stream transport.
A module whose transport needs a few loop methods to be created (pipes,
named pipes, UDP) holds that facet too."""
