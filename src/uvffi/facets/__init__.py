"""Layer 4: the loop's facets, one mixin (or helper) per asyncio concern:
scheduling and its timer queue, the uv_run driver, fd watching, the sock_*
methods, DNS, servers and signals.  loop.py assembles them (with the
transports' facets and embedding.py's guest mode) into the Loop class."""
