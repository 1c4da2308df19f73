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

/* An idle guest must cost the host's iterations next to nothing, so its
 * prepare and check handles call into Python only when asyncio has work:
 * each handle's memory is the libuv handle, then a pointer to the guest's
 * "wanted" flag.  Python sets the flag wherever work can reach an idle
 * guest (callbacks queued, timers added, stop(), a fatal error; another
 * thread's call_soon_threadsafe before its uv_async_send) and clears it
 * when a step leaves asyncio idle; the guest timer sets it here.  The
 * handle stays the first member: the memory is handed to libuv as the
 * handle. */
typedef struct { uv_prepare_t handle; int *wanted; } uvffi_guest_prepare_t;
typedef struct { uv_check_t handle; int *wanted; } uvffi_guest_check_t;
typedef struct { uv_timer_t handle; int *wanted; } uvffi_guest_timer_t;

static void _uvffi_prepare_cb(uv_prepare_t *handle);  /* extern "Python" */
static void _uvffi_check_cb(uv_check_t *handle);      /* extern "Python" */

static void uvffi__guest_prepare_cb(uv_prepare_t *h)
{
    if (*((uvffi_guest_prepare_t *)h)->wanted)
        _uvffi_prepare_cb(h);
}

static void uvffi__guest_check_cb(uv_check_t *h)
{
    if (*((uvffi_guest_check_t *)h)->wanted)
        _uvffi_check_cb(h);
}

static int uvffi_guest_prepare_start(uv_prepare_t *prepare)
{
    return uv_prepare_start(prepare, uvffi__guest_prepare_cb);
}

static int uvffi_guest_check_start(uv_check_t *check)
{
    return uv_check_start(check, uvffi__guest_check_cb);
}

/* Guest mode's timer bounds the host's poll at asyncio's earliest
 * call_later deadline and asks for a step; the due callbacks run in it. */
static void uvffi__guest_timer_cb(uv_timer_t *t)
{
    *((uvffi_guest_timer_t *)t)->wanted = 1;
}

/* The host's cached time may be stale by the time Python arms the timer. */
static int uvffi_guest_timer_start(uv_timer_t *timer, uint64_t timeout_ms)
{
    uv_update_time(timer->loop);
    return uv_timer_start(timer, uvffi__guest_timer_cb, timeout_ms, 0);
}

/* A timer that does nothing when it fires: it only wakes a poll (tests'
 * hosts use it as host work of their own). */
static void uvffi__noop_timer_cb(uv_timer_t *t) { (void)t; }

static int uvffi_timer_start_noop(uv_timer_t *timer, uint64_t timeout_ms)
{
    uv_update_time(timer->loop);
    return uv_timer_start(timer, uvffi__noop_timer_cb, timeout_ms, 0);
}
