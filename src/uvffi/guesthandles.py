"""Guest mode's prepare, check and timer handles on the host's loop, whose
C callbacks test the guest's "wanted" flag before any Python runs
(shim/uvffi_embed.c): an idle guest costs the host's iterations no Python
call.  Each handle's memory is the libuv handle followed by the flag's
address; the handle object keeps the flag alive as long as libuv may read
it."""
from ._uv import ffi, lib
from .errors import exception_from_uv
from .handles import Check, Prepare, Timer


def new_wanted_flag():
    """The flag: 1 when asyncio has work for the next host iteration."""
    return ffi.new("int *")


class _Gated:
    """Mixin: allocate ``MEMORY`` (handle first, then ``int *wanted``) and
    hand libuv the handle part."""

    __slots__ = ()
    MEMORY = None

    def _new_memory(self):
        mem = ffi.new(self.MEMORY)
        mem.wanted = self.wanted
        self.mem = mem
        return ffi.cast(self.CTYPE, mem)


class GuestPrepare(_Gated, Prepare):
    __slots__ = ("mem", "wanted")
    MEMORY = "uvffi_guest_prepare_t *"

    def __init__(self, loop, callback, wanted):
        self.wanted = wanted
        super().__init__(loop, callback)

    def start(self):
        rc = lib.uvffi_guest_prepare_start(self.ptr)
        if rc < 0:
            raise exception_from_uv(rc)


class GuestCheck(_Gated, Check):
    __slots__ = ("mem", "wanted")
    MEMORY = "uvffi_guest_check_t *"

    def __init__(self, loop, callback, wanted):
        self.wanted = wanted
        super().__init__(loop, callback)

    def start(self):
        rc = lib.uvffi_guest_check_start(self.ptr)
        if rc < 0:
            raise exception_from_uv(rc)


class GuestTimer(_Gated, Timer):
    """Fires at asyncio's earliest deadline: sets the flag (no Python)."""

    __slots__ = ("mem", "wanted")
    MEMORY = "uvffi_guest_timer_t *"

    def __init__(self, loop, wanted):
        self.wanted = wanted
        super().__init__(loop, None)

    def start(self, timeout_ms):
        rc = lib.uvffi_guest_timer_start(self.ptr, timeout_ms)
        if rc < 0:
            raise exception_from_uv(rc)
