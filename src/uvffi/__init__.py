"""uvffi: an asyncio event loop whose engine is libuv, bound through cffi."""
from .loop import Loop
from .embedding import uv_loop_address
from .runner import EventLoopPolicy, install, new_event_loop, run

__version__ = "0.1.0"

__all__ = ("Loop", "EventLoopPolicy", "install", "new_event_loop", "run",
           "uv_loop_address", "__version__")
