/* DNS shim: getaddrinfo on libuv's thread pool, through a per-loop queue,
 * with the answer converted in C.
 *
 * uv_getaddrinfo queues each lookup as "slow I/O": libuv lets at most
 * (threads + 1) / 2 of them run at once, so that slow name servers cannot
 * take the whole pool from file system work.  Its gate wakes idle threads
 * for every queued lookup that they may not run, and they go back to sleep:
 * with many lookups queued, those futile wake-ups cost more than the
 * lookups (docs/performance-notes.md, "getaddrinfo").  Here a loop's
 * lookups wait in the loop's own queue (uvffi_gaiq_t), and at most as many
 * "runner" work items as libuv's slow I/O limit take them from it one after
 * the other; each answer goes back to the loop through the queue's
 * uv_async_t, and the loop thread hands it to Python.  The limit holds per
 * loop (libuv's holds per process): loops in several threads may together
 * run more lookups at once.
 *
 * Runners are started by the queue's prepare handle, just before the loop
 * polls, not by each lookup: the lookups an iteration asks for are all
 * queued by then, and a runner takes them one after the other.  Started at
 * once, a runner would often find the queue empty after the first lookup
 * and end, and every next lookup would wake a pool thread again -- which,
 * on a busy machine, preempts the loop thread once per lookup.
 *
 * The runners call the C library's getaddrinfo() with the C strings the
 * socket module would pass it (uv_getaddrinfo would IDNA-encode non-ASCII
 * bytes and refuse names over 255 bytes).
 *
 * Python reads a C struct field by field, each read a C->Python crossing;
 * the answer is flattened here into fixed records (dns.py unpacks them all
 * with one struct.iter_unpack) and handed over in the one crossing that an
 * answer costs anyway. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

static void _uvffi_gai_done(void *data, int rc, int err, const char *recs,
                            int nbytes, struct addrinfo *res);  /* extern "Python" */
static void _uvffi_close_cb(uv_handle_t *handle);   /* extern "Python" (00_core.h) */

/* The record is made of 4-byte fields only, so it has no padding and
 * dns.py's struct format ("6i2Ii64s") describes it on every ABI; dns.py
 * checks ffi.sizeof against its format at import. */
typedef struct {
    int ai_family;
    int socktype;
    int protocol;
    int canon;              /* ai_canonname is set: Python reads it from res */
    int sa_family;          /* AF_INET or AF_INET6 */
    int port;
    unsigned int flowinfo;  /* IPv6 only, host byte order */
    unsigned int scope_id;
    int iplen;              /* bytes of ip, without the NUL */
    char ip[64];            /* INET6_ADDRSTRLEN (46) + "%" + IFNAMSIZ (16) */
} uvffi_ai_rec;

/* More results than this are unusual (a name with many addresses, times
 * three socket types); they take the entry-by-entry path in dns.py. */
#define UVFFI_AI_RECS 32

/* How this interpreter's socket module writes an address (dns.py finds
 * out): CPython with inet_ntop(), PyPy with getnameinfo(NI_NUMERICHOST),
 * which adds an IPv6 scope ("fe80::1%lo"). */
#define UVFFI_HOST_INET_NTOP 0
#define UVFFI_HOST_GETNAMEINFO 1

/* An IPv4 address as inet_ntop() (and getnameinfo(NI_NUMERICHOST)) write
 * it, "%u.%u.%u.%u", without the printf machinery that is most of what
 * inet_ntop costs.  Returns the length; out holds at least 16 bytes. */
static int uvffi__ip4_text(const unsigned char *a, char *out)
{
    char *p = out;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned int b = a[i];
        if (i > 0)
            *p++ = '.';
        if (b >= 100)
            *p++ = (char)('0' + b / 100);
        if (b >= 10)
            *p++ = (char)('0' + b / 10 % 10);
        *p++ = (char)('0' + b % 10);
    }
    *p = '\0';
    return (int)(p - out);
}

/* One entry; -1 when its address is not IPv4/IPv6 (dns.py's general path
 * makes of it what the socket module does). */
static int uvffi_ai_rec_fill(const struct addrinfo *ai, uvffi_ai_rec *r, int host_style)
{
    const struct sockaddr *sa = ai->ai_addr;
    const void *ip;
    socklen_t salen = 0;
    if (sa == NULL)
        return -1;
    r->ai_family = ai->ai_family;
    r->socktype = ai->ai_socktype;
    r->protocol = ai->ai_protocol;
    r->canon = ai->ai_canonname != NULL;
    r->sa_family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        ip = &a->sin_addr;
        salen = (socklen_t)sizeof(*a);
        r->port = ntohs(a->sin_port);
        r->flowinfo = 0;
        r->scope_id = 0;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        ip = &a->sin6_addr;
        salen = (socklen_t)sizeof(*a);
        r->port = ntohs(a->sin6_port);
        r->flowinfo = ntohl(a->sin6_flowinfo);
        r->scope_id = a->sin6_scope_id;
    } else {
        return -1;
    }
    if (sa->sa_family == AF_INET) {
        r->iplen = uvffi__ip4_text((const unsigned char *)ip, r->ip);
        return 0;
    }
    if (host_style == UVFFI_HOST_GETNAMEINFO) {
        if (getnameinfo(sa, salen, r->ip, sizeof(r->ip),
                        NULL, 0, NI_NUMERICHOST) != 0)
            return -1;
    } else if (inet_ntop(sa->sa_family, ip, r->ip, sizeof(r->ip)) == NULL) {
        return -1;
    }
    r->iplen = (int)strlen(r->ip);
    return 0;
}

/* The whole list; the count, or -1 when an entry needs the general path. */
static int uvffi__ai_pack(const struct addrinfo *ai, uvffi_ai_rec *out, int max,
                          int host_style)
{
    int n = 0;
    for (; ai != NULL; ai = ai->ai_next, n++) {
        if (n == max || uvffi_ai_rec_fill(ai, out + n, host_style) < 0)
            return -1;
    }
    return n;
}

/* One lookup, malloc'd with its strings; the loop thread frees it once
 * Python has its answer (or it was cancelled before a runner took it). */
typedef struct uvffi_gai_s uvffi_gai_t;
struct uvffi_gai_s {
    uvffi_gai_t *next, *prev;   /* in the queue's pending or done list */
    void *data;                 /* Python's handle of the request */
    int taken;                  /* a runner has it: too late to cancel */
    int rc, err;                /* getaddrinfo()'s return, and errno */
    struct addrinfo hints;
    struct addrinfo *res;
    const char *node, *service; /* into strings, or NULL */
    char strings[1];
};

/* A loop's lookups.  The async handle comes first: dns.py wraps the queue
 * as that handle (handles/core.py).  Freed on the loop thread once the handle
 * is closed and the last runner has ended, whichever comes last. */
typedef struct {
    uv_async_t async;
    uv_prepare_t kick;          /* starts runners before the loop polls */
    uv_mutex_t lock;            /* the lists, pullers and closing */
    uvffi_gai_t *pending;       /* FIFO: head ... */
    uvffi_gai_t *pending_tail;  /* ... and tail */
    uvffi_gai_t *done;          /* answered, for the loop thread (LIFO) */
    int npending;               /* lookups in pending */
    int pullers;                /* runners still taking lookups */
    int max_runners;
    int host_style;             /* UVFFI_HOST_* */
    int closing;                /* no more uv_async_send */
    int works;                  /* runners libuv has not ended (loop thread) */
    int closed;                 /* handles closed, of 2 (loop thread) */
} uvffi_gaiq_t;

static void uvffi__gaiq_free_if_done(uvffi_gaiq_t *q)
{
    if (q->closed == 2 && q->works == 0) {
        uv_mutex_destroy(&q->lock);
        free(q);
    }
}

/* libuv's limit on slow I/O (threadpool.c: slow_work_thread_threshold),
 * from the pool size as libuv reads it. */
static int uvffi__gai_max_runners(void)
{
    const char *val = getenv("UV_THREADPOOL_SIZE");
    unsigned int n = 4;
    if (val != NULL)
        n = (unsigned int)atoi(val);
    if (n == 0)
        n = 1;
    if (n > 1024)
        n = 1024;
    return (int)((n + 1) / 2);
}

static uvffi_gaiq_t *uvffi_gaiq_new(int host_style)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    if (uv_mutex_init(&q->lock) != 0) {
        free(q);
        return NULL;
    }
    q->max_runners = uvffi__gai_max_runners();
    q->host_style = host_style;
    return q;
}

/* Hands the answered lookups to Python (loop thread). */
static void uvffi__gaiq_deliver(uvffi_gaiq_t *q)
{
    uvffi_gai_t *g, *next, *fifo = NULL;
    uv_mutex_lock(&q->lock);
    g = q->done;
    q->done = NULL;
    uv_mutex_unlock(&q->lock);
    for (; g != NULL; g = next) {  /* back into answer order */
        next = g->next;
        g->next = fifo;
        fifo = g;
    }
    for (g = fifo; g != NULL; g = next) {
        uvffi_ai_rec recs[UVFFI_AI_RECS];
        struct addrinfo *res = g->rc == 0 ? g->res : NULL;
        int n = res != NULL ? uvffi__ai_pack(res, recs, UVFFI_AI_RECS, q->host_style) : 0;
        next = g->next;
        _uvffi_gai_done(g->data, g->rc, g->err, (const char *)recs,
                        n < 0 ? -1 : n * (int)sizeof(uvffi_ai_rec), res);
        if (res != NULL)
            freeaddrinfo(res);
        free(g);
    }
}

static void uvffi__gaiq_async_cb(uv_async_t *a)
{
    uvffi__gaiq_deliver((uvffi_gaiq_t *)a);
}

/* A runner (pool thread): lookups from the queue until it is empty.  One
 * critical section per lookup: the answer goes in as the next comes out. */
static void uvffi__gai_run(uv_work_t *w)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)w->data;
    uvffi_gai_t *g = NULL;
    for (;;) {
        int notify = 0;
        uv_mutex_lock(&q->lock);
        if (g != NULL) {
            /* an empty list: no wake-up on its way yet that would take
             * this answer along */
            notify = q->done == NULL && !q->closing;
            g->next = q->done;
            q->done = g;
        }
        g = q->pending;
        if (g != NULL) {
            q->npending--;
            q->pending = g->next;
            if (q->pending == NULL)
                q->pending_tail = NULL;
            else
                q->pending->prev = NULL;
            g->taken = 1;
        } else {
            q->pullers--;  /* under the lock: a new lookup starts a runner */
        }
        uv_mutex_unlock(&q->lock);
        /* Outside the lock, which the other runner and the loop thread
         * want meanwhile.  A send that crosses uvffi_gaiq_close is
         * harmless: the queue's memory lives as long as this runner, and
         * so does the loop (the runner is one of its requests); libuv
         * >= 1.45 even makes uv_close wait for such a send. */
        if (notify)
            uv_async_send(&q->async);
        if (g == NULL)
            return;
        errno = 0;
        g->rc = getaddrinfo(g->node, g->service, &g->hints, &g->res);
        g->err = errno;  /* for EAI_SYSTEM */
    }
}

/* A runner's end (loop thread): what it answered after the queue's async
 * handle was closed is handed over here. */
static void uvffi__gai_run_done(uv_work_t *w, int status)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)w->data;
    (void)status;  /* runners are never cancelled */
    free(w);
    uvffi__gaiq_deliver(q);
    q->works--;
    uvffi__gaiq_free_if_done(q);
}

/* Before the loop polls (loop thread): runners for what is queued, up to
 * the limit. */
static void uvffi__gaiq_kick_cb(uv_prepare_t *p)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)((char *)p - offsetof(uvffi_gaiq_t, kick));
    int n, i;
    uv_mutex_lock(&q->lock);
    n = q->max_runners - q->pullers;
    if (n > q->npending)
        n = q->npending;
    if (n < 0)
        n = 0;
    q->pullers += n;
    uv_mutex_unlock(&q->lock);
    for (i = 0; i < n; i++) {
        uv_work_t *w = (uv_work_t *)malloc(sizeof(*w));
        if (w == NULL) {  /* out of memory: the next iteration tries again */
            uv_mutex_lock(&q->lock);
            q->pullers -= n - i;
            uv_mutex_unlock(&q->lock);
            return;
        }
        w->data = q;
        q->works++;
        uv_queue_work(p->loop, w, uvffi__gai_run, uvffi__gai_run_done);
    }
    uv_prepare_stop(p);
}

static void uvffi__gaiq_kick_close_cb(uv_handle_t *h)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)((char *)h - offsetof(uvffi_gaiq_t, kick));
    q->closed++;
    uvffi__gaiq_free_if_done(q);
}

/* On failure the queue is freed. */
static int uvffi_gaiq_init(uv_loop_t *loop, uvffi_gaiq_t *q)
{
    int rc = uv_prepare_init(loop, &q->kick);
    if (rc == 0) {
        rc = uv_async_init(loop, &q->async, uvffi__gaiq_async_cb);
        if (rc < 0) {  /* the queue goes with the prepare handle */
            q->closed = 1;
            uv_close((uv_handle_t *)&q->kick, uvffi__gaiq_kick_close_cb);
            return rc;
        }
    } else {
        uv_mutex_destroy(&q->lock);
        free(q);
        return rc;
    }
    /* lookups keep the loop alive through their runners */
    uv_unref((uv_handle_t *)&q->async);
    uv_unref((uv_handle_t *)&q->kick);
    return 0;
}

static void uvffi__gaiq_close_cb(uv_handle_t *h)
{
    uvffi_gaiq_t *q = (uvffi_gaiq_t *)h;
    _uvffi_close_cb(h);  /* the Python wrapper lets go (handles/core.py) */
    q->closed++;
    uvffi__gaiq_free_if_done(q);
}

/* Closes the async handle; answers from now on come with their runner's
 * end (uvffi__gai_run_done), and the queue goes after the last of them. */
static void uvffi_gaiq_close(uvffi_gaiq_t *q)
{
    uv_mutex_lock(&q->lock);
    q->closing = 1;
    uv_mutex_unlock(&q->lock);
    if (!uv_is_closing((uv_handle_t *)&q->kick))
        uv_close((uv_handle_t *)&q->kick, uvffi__gaiq_kick_close_cb);
    if (!uv_is_closing((uv_handle_t *)&q->async))
        uv_close((uv_handle_t *)&q->async, uvffi__gaiq_close_cb);
}

/* Queues a lookup (loop thread); NULL when out of memory.  node and service
 * may be NULL; they are copied.  A runner takes it, or one is started
 * before the loop polls. */
static uvffi_gai_t *uvffi_gai_submit(uvffi_gaiq_t *q, void *data,
                                     const char *node, const char *service,
                                     int family, int socktype, int protocol, int flags)
{
    size_t nlen = node != NULL ? strlen(node) + 1 : 0;
    size_t slen = service != NULL ? strlen(service) + 1 : 0;
    uvffi_gai_t *g = (uvffi_gai_t *)malloc(sizeof(*g) + nlen + slen);
    int kick;
    if (g == NULL)
        return NULL;
    memset(g, 0, sizeof(*g));
    g->data = data;
    g->hints.ai_family = family;
    g->hints.ai_socktype = socktype;
    g->hints.ai_protocol = protocol;
    g->hints.ai_flags = flags;
    if (node != NULL)
        g->node = (const char *)memcpy(g->strings, node, nlen);
    if (service != NULL)
        g->service = (const char *)memcpy(g->strings + nlen, service, slen);

    uv_mutex_lock(&q->lock);
    g->prev = q->pending_tail;
    if (q->pending_tail != NULL)
        q->pending_tail->next = g;
    else
        q->pending = g;
    q->pending_tail = g;
    q->npending++;
    kick = q->pullers < q->max_runners;
    uv_mutex_unlock(&q->lock);
    if (kick && !uv_is_active((uv_handle_t *)&q->kick))
        uv_prepare_start(&q->kick, uvffi__gaiq_kick_cb);
    return g;
}

/* Takes a lookup back if no runner has it yet: 0, and it is freed (Python
 * finishes it itself); UV_EBUSY when its answer is still to come. */
static int uvffi_gai_cancel(uvffi_gaiq_t *q, uvffi_gai_t *g)
{
    uv_mutex_lock(&q->lock);
    if (g->taken) {
        uv_mutex_unlock(&q->lock);
        return UV_EBUSY;
    }
    q->npending--;
    if (g->prev != NULL)
        g->prev->next = g->next;
    else
        q->pending = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    else
        q->pending_tail = g->prev;
    uv_mutex_unlock(&q->lock);
    free(g);
    return 0;
}
