"""A libuv host played from Python, for the guest-mode tests: a raw
``uv_loop_t`` made with uvffi's own cffi ``ffi``/``lib`` and driven by
calling ``lib.uv_run`` directly, as a C host would."""
import time

from uvffi import embedding
from uvffi._uv import ffi, lib

WATCHDOG_MS = 20000  # a hung host fails the test instead of hanging it


class Host:
    """A libuv loop that the test owns and runs, as a C host would."""

    def __init__(self):
        self.ptr = ffi.new("uv_loop_t *")
        assert lib.uv_loop_init(self.ptr) == 0
        self.address = int(ffi.cast("uintptr_t", self.ptr))
        self.watchdog_fired = False
        # Unreferenced: wakes a stuck uv_run and stops it, but never keeps
        # uv_run(DEFAULT) alive by itself.
        self._watchdog = ffi.new("uv_timer_t *")
        self._watchdog_cb = ffi.callback("void(uv_timer_t *)", self._on_watchdog)
        lib.uv_timer_init(self.ptr, self._watchdog)
        lib.uv_timer_start(self._watchdog, self._watchdog_cb, WATCHDOG_MS, 0)
        lib.uv_unref(self._watchdog)
        # bounds each uv_run(ONCE) of run_until(): work done before the host
        # polls does not wake the poll, as with any libuv host
        self._tick = ffi.new("uv_timer_t *")
        lib.uv_timer_init(self.ptr, self._tick)
        self.closed = False
        self.errors = []  # what the guest loops' exception handlers saw

    def _on_watchdog(self, timer):
        self.watchdog_fired = True
        lib.uv_stop(self.ptr)

    def run(self, mode=lib.UV_RUN_DEFAULT):
        rc = lib.uv_run(self.ptr, mode)
        assert not self.watchdog_fired, "the host's uv_run hung"
        return rc

    def run_until(self, predicate, timeout=15.0):
        """uv_run(ONCE) until predicate() holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            lib.uvffi_timer_start_noop(self._tick, 50)
            self.run(lib.UV_RUN_ONCE)
            lib.uv_timer_stop(self._tick)

    def handle_count(self):
        # our watchdog and tick timers are two of them
        return lib.uvffi_count_handles(self.ptr) - (0 if self.closed else 2)

    def close(self):
        if not self.closed:
            lib.uv_close(self._watchdog, ffi.NULL)
            lib.uv_close(self._tick, ffi.NULL)
            self.closed = True
        lib.uv_run(self.ptr, lib.UV_RUN_DEFAULT)
        return lib.uv_loop_close(self.ptr)


def close_host(h):
    """Close what guest loops a failing test left behind, then the host's
    loop; fails when the host's loop still has handles or a guest loop's
    exception handler saw errors."""
    for lp in list(embedding._foreign_loops):
        if int(ffi.cast("uintptr_t", lp._uv_loop)) == h.address:
            if lp.is_guest_running():
                try:
                    lp.stop_guest()
                except BaseException:
                    pass
            lp.close()
    assert h.close() == 0, "the host's loop still has handles"
    assert h.errors == [], "errors reached the exception handler"
