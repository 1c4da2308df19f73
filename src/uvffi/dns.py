"""Loop methods for getaddrinfo/getnameinfo on uv_getaddrinfo/uv_getnameinfo."""


class DnsMixin:
    pass
