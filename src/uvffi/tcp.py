"""Loop methods for TCP connections and servers on uv_tcp_t."""


class TCPMixin:
    pass
