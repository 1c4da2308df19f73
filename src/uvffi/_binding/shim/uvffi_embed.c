/* Embedding shim: helpers for guest mode (see uvffi/embedding.py).  No
 * Python C-API here; the PyCapsule side lives in the separate extension
 * module uvffi._capsule. */

/* A pointer handed to us by a host is only checked as far as libuv lets
 * us: uv_loop_close() leaves backend_fd at -1 (and debug builds of libuv
 * fill the whole struct with 0xff, which reads as -1 too).  Windows has no
 * such field behind uv_backend_fd, so nothing can be checked there. */
static int uvffi_loop_looks_open(uv_loop_t *loop)
{
    if (loop == NULL)
        return 0;
#ifdef _WIN32
    return 1;
#else
    return uv_backend_fd(loop) >= 0;
#endif
}

/* Guest mode's idle handle exists only so that the host's poll does not
 * block while asyncio's ready queue has work; the work itself is done by
 * the check handle, so the idle callback does nothing (no Python call). */
static void uvffi__noop_idle_cb(uv_idle_t *h) { (void)h; }

static int uvffi_idle_start_noop(uv_idle_t *idle)
{
    return uv_idle_start(idle, uvffi__noop_idle_cb);
}

/* Guest mode's timer only bounds the host's poll at asyncio's earliest
 * call_later deadline; the due callbacks run in the check handle.  The
 * host's cached time may be stale by the time Python arms the timer. */
static void uvffi__noop_guest_timer_cb(uv_timer_t *t) { (void)t; }

static int uvffi_timer_start_noop(uv_timer_t *timer, uint64_t timeout_ms)
{
    uv_update_time(timer->loop);
    return uv_timer_start(timer, uvffi__noop_guest_timer_cb, timeout_ms, 0);
}
