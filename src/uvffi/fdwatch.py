"""Loop methods for add_reader/remove_reader/add_writer/remove_writer on uv_poll_t."""


class FdWatchMixin:
    pass
