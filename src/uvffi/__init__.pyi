# Type information for uvffi's public API (PEP 561: see py.typed).
import asyncio
import asyncio.events
import sys
from typing import Any, Coroutine, Optional, TypeVar

from . import embedding as embedding

_T = TypeVar("_T")

__version__: str
__all__ = ("Loop", "EventLoopPolicy", "install", "new_event_loop", "run",
           "uv_loop_address", "__version__")

class Loop(asyncio.BaseEventLoop):
    """An asyncio event loop whose engine is libuv."""

    def __init__(self) -> None: ...
    @classmethod
    def from_uv_loop(cls, uv_loop: object) -> Loop:
        """A guest loop over a host's ``uv_loop_t`` (int address, PyCapsule
        named "uv_loop_t", or cffi pointer)."""
    @property
    def uv_loop_t(self) -> int:
        """This loop's ``uv_loop_t *`` as an int."""
    @property
    def uv_loop_capsule(self) -> object:
        """This loop's ``uv_loop_t *`` in a PyCapsule named "uv_loop_t"."""
    def start_guest(self, *, keep_alive: bool = ...) -> None: ...
    def stop_guest(self) -> None: ...
    def is_guest_running(self) -> bool: ...
    @property
    def guest_exception(self) -> Optional[BaseException]: ...

if sys.version_info >= (3, 14):
    _PolicyBase = asyncio.events._BaseDefaultEventLoopPolicy
else:
    _PolicyBase = asyncio.events.BaseDefaultEventLoopPolicy

class EventLoopPolicy(_PolicyBase):
    """An asyncio policy whose loops are uvffi loops."""

    if sys.platform != "win32" and sys.version_info < (3, 14):
        # asyncio's Unix policy's (a ThreadedChildWatcher by default);
        # uvffi's own subprocesses (uv_spawn) do not use it.
        def get_child_watcher(self) -> asyncio.AbstractChildWatcher: ...
        def set_child_watcher(
            self, watcher: Optional[asyncio.AbstractChildWatcher]) -> None: ...

def new_event_loop() -> Loop: ...
def install() -> None: ...
def run(main: Coroutine[Any, Any, _T], *, debug: Optional[bool] = ...) -> _T: ...
def uv_loop_address(uv_loop: object) -> int: ...
