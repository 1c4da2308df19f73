"""Loop methods for connect_read_pipe/connect_write_pipe on uv_pipe_t."""


class PipeMixin:
    pass
