# Type information for uvffi.embedding (docs/embedding.md).
import asyncio
from typing import Any, Coroutine, Generic, Optional, TypeVar

from . import Loop

_T = TypeVar("_T")

def uv_loop_address(uv_loop: object) -> int: ...
def pending_close_count() -> int: ...

class GuestRun(Generic[_T]):
    """A main coroutine in guest mode on a host's loop."""

    loop: Loop
    task: asyncio.Task[_T]
    def __init__(self, loop: Loop, main: Coroutine[Any, Any, _T], *,
                 keep_alive: bool = ..., debug: Optional[bool] = ...) -> None: ...
    @property
    def done(self) -> bool: ...
    def shutdown(self) -> None: ...
    def finish(self) -> _T: ...

def start(uv_loop: object, main: Coroutine[Any, Any, _T], *,
          keep_alive: bool = ..., debug: Optional[bool] = ...) -> GuestRun[_T]: ...
