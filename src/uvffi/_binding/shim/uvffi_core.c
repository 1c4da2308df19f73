/* Core shim: the run-once driver and handle closing.  Nothing here calls
 * into Python except through the extern "Python" callbacks that cffi
 * generates, and nothing here uses the Python C-API. */

static void _uvffi_close_cb(uv_handle_t *handle);   /* extern "Python" */

/* The wake-up timer and the threadsafe async handle only have to make
 * uv_run return; the Python side does the work after it has returned. */
static void uvffi__noop_async_cb(uv_async_t *a) { (void)a; }
static void uvffi__noop_close_cb(uv_handle_t *h) { (void)h; }

/* The run-once wake-up timer stops uv_run.  libuv 1.44's UV_RUN_ONCE runs
 * due timers *before* it polls (uv_run updates loop->time again): when the
 * millisecond clock ticked between our uv_update_time and that one, a 1 ms
 * wake-up fired there, no timer was left, and the poll blocked forever
 * (seen as an intermittent hang of a loop of asyncio.sleep(0.0005) on PyPy).
 * uv_stop makes that poll not block; uv_run clears the flag on return. */
static void uvffi__wakeup_timer_cb(uv_timer_t *t) { uv_stop(t->loop); }

/* One iteration of the loop: sleep at most timeout_ms (-1: until an event,
 * 0: do not block), run what is due, return.  One Python->C crossing. */
static int uvffi_run_once(uv_loop_t *loop, uv_timer_t *wakeup, int64_t timeout_ms)
{
    int r;
    if (timeout_ms == 0) {
        if (uv_is_active((uv_handle_t *)wakeup))
            uv_timer_stop(wakeup);
        return uv_run(loop, UV_RUN_NOWAIT);
    }
    if (timeout_ms > 0) {
        /* loop->time was cached at the start of the last iteration; the
         * Python callbacks that ran since make it stale. */
        uv_update_time(loop);
        uv_timer_start(wakeup, uvffi__wakeup_timer_cb, (uint64_t)timeout_ms, 0);
    } else if (uv_is_active((uv_handle_t *)wakeup)) {
        uv_timer_stop(wakeup);
    }
    r = uv_run(loop, UV_RUN_ONCE);
    /* Woken by I/O first: the wake-up must not fire (and uv_stop) in a uv_run
     * of someone else's, e.g. a host loop in guest mode. */
    if (uv_is_active((uv_handle_t *)wakeup))
        uv_timer_stop(wakeup);
    return r;
}

/* uvffi_run_once(loop, wakeup, 0) for a loop uvffi created: one
 * argument, so cffi builds no argument tuple, which cost more than uv_run
 * itself per iteration (docs/performance-notes.md, "The C shim"). */
static int uvffi_run_nowait(uv_loop_t *loop)
{
    uv_timer_t *wakeup = ((uvffi_loop_t *)loop)->wakeup;
    if (uv_is_active((uv_handle_t *)wakeup))
        uv_timer_stop(wakeup);
    return uv_run(loop, UV_RUN_NOWAIT);
}

/* A loop uvffi created sleeps here while asyncio has nothing to do: libuv
 * iterations, without returning to Python, until the "wanted" flag is set
 * (Python sets it where work reaches asyncio from a callback: a callback
 * queued, a timer added, stop(), a fatal error; see scheduler.py:
 * _uv_sleep), the timeout expires, another thread's call_soon_threadsafe
 * wakes the loop, or libuv has nothing left to run.  I/O whose protocols
 * only write (an echo, an HTTP response) then costs no Python iteration
 * of asyncio's.  timeout_ms -1: no timeout. */
static void uvffi__sleep_timer_cb(uv_timer_t *t)
{
    ((uvffi_loop_t *)t->loop)->wanted = 1;
    uv_stop(t->loop);  /* see uvffi__wakeup_timer_cb */
}

static int uvffi_run_sleep(uv_loop_t *loop, int64_t timeout_ms)
{
    uvffi_loop_t *l = (uvffi_loop_t *)loop;
    uv_timer_t *wakeup = l->wakeup;
    int r;
    /* (a call_soon_threadsafe since Python looked at its ready queue has
     * sent the async as well: its callback sets the flag again) */
    l->wanted = 0;
    if (timeout_ms >= 0) {
        uv_update_time(loop);
        uv_timer_start(wakeup, uvffi__sleep_timer_cb, (uint64_t)timeout_ms, 0);
    } else if (uv_is_active((uv_handle_t *)wakeup)) {
        uv_timer_stop(wakeup);
    }
    do
        r = uv_run(loop, UV_RUN_ONCE);
    while (r != 0 && !l->wanted);
    if (uv_is_active((uv_handle_t *)wakeup))
        uv_timer_stop(wakeup);
    return r;
}

/* The threadsafe wake-up of a loop uvffi created also ends its sleep:
 * another thread queued a callback (asyncio's call_soon_threadsafe). */
static void uvffi__wake_async_cb(uv_async_t *a)
{
    ((uvffi_loop_t *)a->loop)->wanted = 1;
}

static int uvffi_async_init_wake(uv_loop_t *loop, uv_async_t *async)
{
    return uv_async_init(loop, async, uvffi__wake_async_cb);
}

static void uvffi_loop_set_wakeup(uv_loop_t *loop, uv_timer_t *wakeup)
{
    ((uvffi_loop_t *)loop)->wakeup = wakeup;
}

static int uvffi_close(void *handle)
{
    uv_handle_t *h = (uv_handle_t *)handle;
    if (uv_is_closing(h))
        return 0;
    uv_close(h, _uvffi_close_cb);
    return 1;
}

static int uvffi_async_init_noop(uv_loop_t *loop, uv_async_t *async)
{
    return uv_async_init(loop, async, uvffi__noop_async_cb);
}

static void _uvffi_poll_cb(uv_poll_t *handle, int status, int events);
static int uvffi_poll_start(uv_poll_t *handle, int events)
{
    return uv_poll_start(handle, events, _uvffi_poll_cb);
}

/* Whether fd is still the socket whose identity (st_dev, st_ino) is in
 * id[2]: 1 if so, 0 if not (id then takes the fd's current identity),
 * -errno if fstat fails (closed fd).  fdwatch.py keeps a poll started
 * across remove_reader/add_reader pairs; libuv then issues no epoll_ctl,
 * which is only right while the number still names the file registered.
 * Only sockets count as "the same": their inode belongs to one open file,
 * whereas a FIFO or tty reopened gets a new open file with the old inode. */
static int uvffi_fd_same(int fd, uint64_t *id)
{
#ifdef _WIN32
    (void)fd; (void)id;
    return 0;
#else
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISSOCK(st.st_mode) && id[0] == (uint64_t)st.st_dev
            && id[1] == (uint64_t)st.st_ino)
        return 1;
    id[0] = (uint64_t)st.st_dev;
    id[1] = (uint64_t)st.st_ino;
    return 0;
#endif
}

/* Parking a poll: an idle add_reader/add_writer poll (remove_reader
 * left it without callbacks, and the task usually adds one again within
 * the same batch) stays registered with epoll but silenced, while libuv's
 * bookkeeping keeps the poll started with its mask.  Silenced means
 * EPOLL_CTL_MOD to {EPOLLONESHOT, data.fd = -1}:
 *   - epoll reports nothing but EPOLLERR/EPOLLHUP for it (those it always
 *     reports), and with EPOLLONESHOT at most once, after which the entry
 *     is disabled: no busy loop on a hung-up socket;
 *   - libuv skips events whose data.fd is -1 (the mark its own
 *     uv__platform_invalidate_fd and uv__io_check_fd use), so such an event
 *     never reaches this poll or a later user of the fd number.
 * That keeps asyncio's contract that a file may be closed once its reader
 * is removed: if the file outlives the fd (a dup, a fork, SCM_RIGHTS),
 * the entry it leaves in epoll can fire once, into nothing.  Unparking is
 * one EPOLL_CTL_MOD back to (pevents, fd); it fails (ENOENT, EBADF) when
 * the number no longer names the file registered, and fdwatch.py then
 * starts over as a new add_reader.  Under load, EPOLL_CTL_DEL/ADD per
 * wait cost far more than one MOD (docs/performance-notes.md, "Parked
 * polls").
 * Linux only: the epoll_event is built as libuv's epoll backend builds it;
 * elsewhere UV_ENOSYS and fdwatch.py stops and restarts the poll through
 * libuv.  Recheck on libuv upgrades (the -1 mark, the uv__io_t fields).
 *
 * park: only for a settled poll (libuv registered its mask and has no change
 * queued; an empty queue node points to itself): else UV_EAGAIN. */
static int uvffi_poll_park(uv_poll_t *handle)
{
#ifdef __linux__
    uv__io_t *w = &handle->io_watcher;
    struct epoll_event e;
    if (w->events == 0 || w->events != w->pevents
            || *(void **)&w->watcher_queue != (void *)&w->watcher_queue)
        return UV_EAGAIN;
    memset(&e, 0, sizeof e);
    e.events = EPOLLONESHOT;
    e.data.fd = -1;
    if (epoll_ctl(uv_backend_fd(handle->loop), EPOLL_CTL_MOD, w->fd, &e) < 0)
        return -errno;
    return 0;
#else
    (void)handle;
    return UV_ENOSYS;
#endif
}

/* unpark: the parked mask again, for this fd; epoll's error (ENOENT: the
 * number now names another file, EBADF: closed) is returned and the poll
 * stays parked. */
static int uvffi_poll_unpark(uv_poll_t *handle)
{
#ifdef __linux__
    uv__io_t *w = &handle->io_watcher;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = w->pevents;
    e.data.fd = w->fd;
    if (epoll_ctl(uv_backend_fd(handle->loop), EPOLL_CTL_MOD, w->fd, &e) < 0)
        return -errno;
    return 0;
#else
    (void)handle;
    return UV_ENOSYS;
#endif
}

static int uvffi_fileno(void *handle, int64_t *fd)
{
    uv_os_fd_t f;
    int rc = uv_fileno((const uv_handle_t *)handle, &f);
    if (rc == 0)
        *fd = (int64_t)(intptr_t)f;
    return rc;
}

/* Handles that nobody closed (a foreign C extension's, say) are closed
 * with a C callback so that uv_loop_close can succeed. */
static void uvffi__close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, uvffi__noop_close_cb);
}

static void uvffi_close_all(uv_loop_t *loop)
{
    uv_walk(loop, uvffi__close_walk_cb, NULL);
}

static void uvffi__count_walk_cb(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static int uvffi_count_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, uvffi__count_walk_cb, &n);
    return n;
}

/* glibc's malloc thresholds, raised as asyncio's first 256 KiB recv makes
 * glibc raise them (see loop.py: _warm_up_glibc_heap): malloc and free an
 * mmap'd block of at least `size` bytes, larger than the heap's top chunk.
 * A block that malloc carves out of a free chunk instead is kept while the
 * next is tried (up to 8), so that one does come from mmap.  Past `cap`
 * nothing is done.  Returns the mmap'd block's size, 0 if none was (not
 * glibc 2.33+; over cap; the thresholds were already higher). */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
static size_t uvffi_malloc_warm_up(size_t size, size_t cap)
{
    void *held[8];
    int k = 0;
    size_t done = 0;
    size_t n = mallinfo2().keepcost + 64 * 1024;
    if (n < size)
        n = size;
    if (n > cap)
        return 0;
    while (k < 8) {
        size_t mapped = mallinfo2().hblks;
        /* (the blocks escape to mallinfo2's view of the heap: a compiler
         * may not drop this malloc/free pair) */
        void *block = malloc(n);
        if (block == NULL)
            break;
        held[k++] = block;
        if (mallinfo2().hblks > mapped) {
            done = n;
            break;
        }
    }
    while (k > 0)
        free(held[--k]);
    return done;
}
#else
static size_t uvffi_malloc_warm_up(size_t size, size_t cap)
{
    (void)size;
    (void)cap;
    return 0;
}
#endif
