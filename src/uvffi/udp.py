"""Loop methods for datagram endpoints on uv_udp_t."""


class UDPMixin:
    pass
