"""Loop methods for TCP connections and servers on uv_tcp_t.

``BaseEventLoop.create_connection``/``create_server``/
``connect_accepted_socket``/``start_tls``/``sendfile`` keep CPython's
argument handling, resolution, happy eyeballs and error combining; they
reach libuv through the hooks implemented in ``transports/socketstream.py``
(``_make_socket_transport``, ``_make_ssl_transport``, ``_sendfile_native``)
and ``servers.py`` (``_start_serving``, ``_stop_serving``).  The connect
step is the loop's ``sock_connect`` (facets/sockmethods.py), as in asyncio.
"""
from .servers import ServingMixin


class TCPMixin(ServingMixin):
    """TCP needs nothing beyond the shared socket-transport hooks."""
