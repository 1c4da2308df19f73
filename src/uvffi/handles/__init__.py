"""Layer 2: one wrapper per libuv primitive (timer, async, idle/check/
prepare, poll, stream, UDP, process, guest-mode handles), the C->Python
callback routing they share (callbacks.py) and libuv's error codes as
Python exceptions (errors.py).  Nothing here knows asyncio's protocols."""
