"""A spy on uvffi's DNS lookups, for the DNS tests."""
from uvffi.facets import dns as uvdns


def spy_submit(monkeypatch):
    """The lookups the loop queues for libuv's thread pool."""
    started = []
    orig = uvdns._submit

    def spy(*args):
        r = orig(*args)
        started.append(r)
        return r

    monkeypatch.setattr(uvdns, "_submit", spy)
    return started
