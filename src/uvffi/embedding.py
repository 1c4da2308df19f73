"""Loop methods for running as a guest on a foreign uv_loop_t."""


class EmbeddingMixin:
    def _embedding_teardown(self):
        """Close-time work for a loop over a host's uv_loop_t."""
