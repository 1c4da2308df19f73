"""Layer 2: one wrapper per libuv primitive (timer, async, idle/check/
prepare, poll, stream, UDP, process, guest-mode handles), the C->Python
callback routing they share (callbacks.py) and libuv's error codes as
Python exceptions (errors.py).  Nothing here knows asyncio's transports;
the one protocol method called from here is a plain Protocol's
``data_received``, a stream's fast path (streamreads.py: ``live``)."""
