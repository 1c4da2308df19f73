/* Stream shim: the read buffer never crosses into Python before data is
 * there, and writes take a plain (pointer, length) from cffi. */

static void _uvffi_on_read(void *data, ssize_t nread, char *base);
static void _uvffi_on_reads(void *data, size_t count);
static void _uvffi_alloc(void *data, uv_buf_t *buf);
static void _uvffi_on_filled(void *data, ssize_t nread);
static int _uvffi_self_read(void *data);
static void _uvffi_write_cb(uv_write_t *req, int status);
static void _uvffi_connect_cb(uv_connect_t *req, int status);
static void _uvffi_shutdown_cb(uv_shutdown_t *req, int status);
static void _uvffi_connection_cb(uv_stream_t *server, int status);

#define UVFFI_READ_BUFFER_SIZE (256 * 1024)
/* A loop's batch buffer, and when a batch is handed over early: when the
 * buffer has less than the reserve left (no read is offered less).  A
 * large read (UVFFI_LARGE_READ, uvffi_shim.h) is handed over on its own,
 * through the one-read callback: batching saves it nothing and costs
 * instructions.  The buffer is kept small, and its start reused, for the
 * cache (the kernel's copy and ours): docs/performance-notes.md, "The C
 * shim". */
#define UVFFI_BATCH_BUFFER_SIZE (256 * 1024)
#define UVFFI_READ_RESERVE (64 * 1024)
#define UVFFI_READ_EVENTS 256             /* reads per batch, at most */

/* One read buffer per thread: a loop runs in one thread, and every read
 * callback copies the data out before libuv asks for the buffer again. */
#if defined(_MSC_VER)
static __declspec(thread) char uvffi__read_buffer[UVFFI_READ_BUFFER_SIZE];
#else
static __thread char uvffi__read_buffer[UVFFI_READ_BUFFER_SIZE];
#endif

static void uvffi__alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle; (void)suggested;
    buf->base = uvffi__read_buffer;
    buf->len = UVFFI_READ_BUFFER_SIZE;
}

/* Hand Python the handle's back-pointer, the count and the data: three
 * plain values, where passing the uv_stream_t * and uv_buf_t * would make
 * cffi build (and Python then walk) two more cdata objects per read. */
static void uvffi__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    _uvffi_on_read(stream->data, nread, (nread > 0 && buf != NULL) ? buf->base : NULL);
}

/* Loops that uvffi creates (a uvffi_loop_t, see uvffi_shim.h) batch their
 * streams' reads.  The poll phase reads every ready stream into successive
 * slices of the loop's read buffer and records (the stream's key, end
 * offset) per read (uvffi_stream_t, uvffi_shim.h); a read starts where the
 * one before it in the batch ended.
 * After the poll phase a check handle hands the whole batch to Python in
 * one call, which slices the buffer into bytes for each protocol.  So a
 * read costs no C->Python callback of its own, no GIL round trip and no
 * char * cdata (callgrind, 1 KiB echo with 4 connections: ~8,700 -> see
 * the commit message).  The batch is also handed over early when the
 * buffer runs low or the event table is full.  EOF and read errors, and
 * large reads, are handed over on their own, right after what was batched
 * before them (which may be the same stream's), so that every batched
 * entry is data.  Every handle in a batch is still alive when Python sees
 * it: handles close in the closing phase, which comes after the check
 * phase and after any early hand-over.  A host's loop (embedding) keeps
 * one callback per read: its uv_loop_t is not ours to extend. */
static void uvffi__reads_flush(uvffi_loop_t *l)
{
    size_t n = l->read_count;
    if (n) {
        l->read_count = 0;
        _uvffi_on_reads(l->read_check.data, n);
    }
    l->read_used = 0;
}

static void uvffi__alloc_own_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    uvffi_loop_t *l = (uvffi_loop_t *)handle->loop;
    (void)suggested;
    buf->base = l->read_buffer + l->read_used;
    buf->len = UVFFI_BATCH_BUFFER_SIZE - l->read_used;
}

static void uvffi__read_own_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    uvffi_loop_t *l = (uvffi_loop_t *)stream->loop;
    int64_t *ev;
    if (nread == 0)
        return;  /* EAGAIN: nothing to report */
    if (nread < 0 || nread >= UVFFI_LARGE_READ) {
        /* what was batched before it first, then this one on its own: the
         * flush leaves a large read's bytes (after the batch's) alone, and
         * nothing reads into the buffer before they are delivered */
        uvffi__reads_flush(l);
        _uvffi_on_read(stream->data, nread, nread > 0 ? buf->base : NULL);
        return;
    }
    ev = l->read_events + 2 * l->read_count++;
    l->read_used += (size_t)nread;
    ev[0] = ((uvffi_stream_t *)stream)->key;
    ev[1] = (int64_t)l->read_used;
    if (l->read_count == UVFFI_READ_EVENTS
            || UVFFI_BATCH_BUFFER_SIZE - l->read_used < UVFFI_READ_RESERVE)
        uvffi__reads_flush(l);
}

static void uvffi__reads_check_cb(uv_check_t *check)
{
    uvffi__reads_flush((uvffi_loop_t *)check->loop);
}

/* Self reads (BufferedProtocol, POSIX): one C->Python call per read
 * instead of the two of a direct read.  libuv's alloc callback calls
 * Python, which does what asyncio's _read_ready__get_buffer does:
 * get_buffer(), a read(2) of the fd into that buffer (uvffi_stream_read),
 * buffer_updated().  The buffer handed back to libuv stays empty, so libuv
 * reads nothing and calls the read callback with UV_ENOBUFS, which is
 * passed on to Python (_uvffi_on_filled) only when Python asked for it:
 * when something done to the stream in the meantime must reach libuv now
 * that its read is over (StreamReads.in_alloc).
 *
 * Both this mode and direct reads must tell a read callback that follows
 * their alloc callback from one that comes alone: libuv reports EOF without
 * reading (and without an alloc callback) when the poll said POLLHUP after
 * a short read, and that one is a status for on_read, not a filled buffer.
 * libuv's alloc callback and the read callback after it come one after the
 * other in the same uv__read call, in the loop's thread, so one variable
 * per thread carries the state between them. */
#define UVFFI_NO_ALLOC 0     /* a read callback now comes alone */
#define UVFFI_ALLOCATED 1    /* the read callback follows an alloc */
#define UVFFI_FOLLOW_UP 2    /* ... and Python asked to hear of it */
#if defined(_MSC_VER)
static __declspec(thread) int uvffi__alloc_state;
#else
static __thread int uvffi__alloc_state;
#endif

static void uvffi__alloc_self_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    buf->base = NULL;
    buf->len = 0;
    uvffi__alloc_state = UVFFI_ALLOCATED;
    if (_uvffi_self_read(handle->data))
        uvffi__alloc_state = UVFFI_FOLLOW_UP;
}

static void uvffi__read_self_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    int state = uvffi__alloc_state;
    (void)buf;
    uvffi__alloc_state = UVFFI_NO_ALLOC;
    if (state == UVFFI_FOLLOW_UP)
        _uvffi_on_filled(stream->data, nread);
    else if (state == UVFFI_NO_ALLOC)
        _uvffi_on_read(stream->data, nread, NULL);
}

/* One read(2) of the stream's fd into buf: the count, or a libuv error
 * code (UV_EOF at end of stream, UV_EAGAIN when nothing is there).  libuv
 * streams are fds on POSIX only; elsewhere UV_ENOTSUP (self reads are not
 * used there). */
static ssize_t uvffi_stream_read(void *stream, char *buf, size_t len)
{
#ifdef _WIN32
    (void)stream; (void)buf; (void)len;
    return UV_ENOTSUP;
#else
    uv_os_fd_t fd;
    ssize_t n;
    int rc = uv_fileno((const uv_handle_t *)stream, &fd);
    if (rc < 0)
        return rc;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n == 0)
        return UV_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return UV_EAGAIN;
    return -errno;  /* libuv's codes are negated errnos on POSIX */
#endif
}

/* Direct reads (BufferedProtocol, where self reads are not available):
 * libuv reads straight into the buffer that the protocol's get_buffer()
 * returned, as asyncio's recv_into does, instead of into the loop's buffer
 * and then copied.  Two C->Python calls per read, so bufferedreads.py uses
 * it only while reads are large. */
static void uvffi__alloc_direct_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    buf->base = NULL;
    buf->len = 0;  /* left so if Python refuses: libuv reports UV_ENOBUFS */
    uvffi__alloc_state = UVFFI_ALLOCATED;
    _uvffi_alloc(handle->data, buf);
}

static void uvffi__read_direct_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    int state = uvffi__alloc_state;
    (void)buf;
    uvffi__alloc_state = UVFFI_NO_ALLOC;
    if (state == UVFFI_NO_ALLOC)
        _uvffi_on_read(stream->data, nread, NULL);  /* EOF on POLLHUP */
    else
        _uvffi_on_filled(stream->data, nread);
}

/* The error pending on a stream's socket (SO_ERROR, which this clears) as
 * a libuv code, or 0 (none, or not a socket).  libuv reports a connection
 * reset as EOF when the poll that saw it also brought the last data (the
 * POLLHUP shortcut in uv__stream_io); asyncio's loop reads on and gets the
 * ECONNRESET.  Windows reports the reset itself. */
static int uvffi_stream_pending_error(void *stream)
{
#ifdef _WIN32
    (void)stream;
    return 0;
#else
    uv_os_fd_t fd;
    int err = 0;
    socklen_t len = sizeof(err);
    if (uv_fileno((const uv_handle_t *)stream, &fd) < 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return 0;
    return err > 0 ? -err : 0;
#endif
}

/* Start reading in one of the modes above (UVFFI_READ_*: uvffi_shim.h). */
static int uvffi_read_start(void *stream, int mode)
{
    switch (mode) {
    case UVFFI_READ_BATCH:
        return uv_read_start((uv_stream_t *)stream, uvffi__alloc_own_cb, uvffi__read_own_cb);
    case UVFFI_READ_DIRECT:
        return uv_read_start((uv_stream_t *)stream, uvffi__alloc_direct_cb, uvffi__read_direct_cb);
    case UVFFI_READ_SELF:
        return uv_read_start((uv_stream_t *)stream, uvffi__alloc_self_cb, uvffi__read_self_cb);
    default:
        return uv_read_start((uv_stream_t *)stream, uvffi__alloc_cb, uvffi__read_cb);
    }
}

/* Switch a reading stream to another mode, from inside its read callback
 * too (libuv takes the new callbacks for its next read).  Public API only;
 * on Unix it costs an epoll_ctl pair once per switch. */
static int uvffi_read_restart(void *stream, int mode)
{
    uv_read_stop((uv_stream_t *)stream);
    return uvffi_read_start(stream, mode);
}

/* data: what Python's batch callback receives (the loop's handle). */
static int uvffi_loop_reads_init(uv_loop_t *loop, void *data)
{
    uvffi_loop_t *l = (uvffi_loop_t *)loop;
    int rc = uv_check_init(loop, &l->read_check);
    if (rc < 0)
        return rc;
    l->read_check.data = data;
    l->read_used = l->read_count = 0;
    uv_check_start(&l->read_check, uvffi__reads_check_cb);
    uv_unref((uv_handle_t *)&l->read_check);  /* never keeps the loop alive */
    return 0;
}

static size_t uvffi_read_events_size(void) { return UVFFI_READ_EVENTS; }
static size_t uvffi_batch_buffer_size(void) { return UVFFI_BATCH_BUFFER_SIZE; }

static int uvffi_try_write(void *stream, const char *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    return uv_try_write((uv_stream_t *)stream, &buf, 1);
}

static int uvffi_write(uv_write_t *req, void *stream, const char *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    return uv_write(req, (uv_stream_t *)stream, &buf, 1, _uvffi_write_cb);
}

static int uvffi_shutdown(uv_shutdown_t *req, void *stream)
{
    return uv_shutdown(req, (uv_stream_t *)stream, _uvffi_shutdown_cb);
}

static int uvffi_listen(void *stream, int backlog)
{
    return uv_listen((uv_stream_t *)stream, backlog, _uvffi_connection_cb);
}

static void uvffi_pipe_connect(uv_connect_t *req, uv_pipe_t *handle, const char *name)
{
    uv_pipe_connect(req, handle, name, _uvffi_connect_cb);
}
