"""Guest mode's prepare, check and timer handles on the host's loop, whose
C callbacks test the guest's "wanted" flag before any Python runs
(shim/uvffi_embed.c): an idle guest costs the host's iterations no Python
call.  Each handle's memory is the libuv handle followed by the flag's
address; the handle object keeps the flag alive as long as libuv may read
it."""
from .._uv import ffi, lib
from .errors import exception_from_uv
from .core import Check, Idle, Prepare, Timer


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


class GuestHandles:
    """The handles and state of guest mode (``loop._guest``), created on
    the first start_guest() and closed with the loop; embedding.py drives
    them."""

    __slots__ = ("prepare", "check", "idle", "timer", "wanted",
                 "plain_append", "append_and_want", "listening", "active", "paused",
                 "entered", "in_step", "busy", "timer_on",
                 "prev_loop", "prev_hooks", "saved_selector",
                 "signals")

    def __init__(self, loop):
        # 1: the next host iteration runs an asyncio step (the C callbacks
        # of prepare and check test it; the timer sets it)
        wanted = self.wanted = new_wanted_flag()
        self.prepare = GuestPrepare(loop, loop._guest_on_prepare, wanted)
        self.check = GuestCheck(loop, loop._guest_on_check, wanted)
        self.idle = Idle(loop, None)       # started with a C no-op callback
        self.timer = GuestTimer(loop, wanted)
        self.prepare.ref(False)  # the check handle carries keep_alive
        self.active = self.paused = self.entered = self.in_step = False
        # busy: asyncio had callbacks ready after the last step; then the
        # idle handle keeps the host's poll from blocking, the prepare
        # handle is stopped (the check step runs two steps instead) and
        # wanted stays 1
        self.busy = self.timer_on = False
        # idle: call_soon's append sets wanted (see _guest_listen)
        plain_append = self.plain_append = loop._uv_ready_append

        def append_and_want(handle):
            plain_append(handle)
            wanted[0] = 1
        self.append_and_want = append_and_want
        self.listening = False
        self.prev_loop = self.prev_hooks = None
        self.saved_selector = None
        self.signals = False

    def start(self, keep_alive):
        self.check.ref(keep_alive)
        self.prepare.start()
        self.check.start()

    def pause(self):
        """Stop every guest handle: no Python code runs from the host's
        loop any more (handles stay initialised for a later start)."""
        self.wanted[0] = 0
        self.prepare.stop()
        self.check.stop()
        if self.busy:
            self.idle.stop()
            self.busy = False
        if self.timer_on:
            self.timer.stop()
            self.timer_on = False
