"""Loop methods for Unix-socket connections and servers on uv_pipe_t."""


class UnixMixin:
    pass
