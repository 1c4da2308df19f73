"""Loop methods for subprocesses on uv_spawn."""


class SubprocessMixin:
    pass
