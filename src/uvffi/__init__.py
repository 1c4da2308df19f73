"""uvffi: an asyncio event loop whose engine is libuv, bound through cffi."""
try:
    from . import _uv  # noqa: F401 - the libuv binding, first of all
except ImportError as _exc:  # e.g. a UVFFI_LIBUV=HOST build outside its host
    from ._importerror import explain as _explain
    raise _explain(_exc) from _exc
from .loop import Loop
from .embedding import uv_loop_address
from .runner import EventLoopPolicy, install, new_event_loop, run

__version__ = "0.1.0"

__all__ = ("Loop", "EventLoopPolicy", "install", "new_event_loop", "run",
           "uv_loop_address", "__version__")
