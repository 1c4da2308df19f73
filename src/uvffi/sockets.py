"""Loop methods for the sock_* methods on uv_poll_t."""


class SockMethodsMixin:
    pass
