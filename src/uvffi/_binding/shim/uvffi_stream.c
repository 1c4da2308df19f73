/* Stream shim: the read buffer never crosses into Python before data is
 * there, and writes take a plain (pointer, length) from cffi. */

static void _uvffi_on_read(void *data, ssize_t nread, char *base);
static void _uvffi_write_cb(uv_write_t *req, int status);
static void _uvffi_connect_cb(uv_connect_t *req, int status);
static void _uvffi_shutdown_cb(uv_shutdown_t *req, int status);
static void _uvffi_connection_cb(uv_stream_t *server, int status);

#define UVFFI_READ_BUFFER_SIZE (256 * 1024)

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

static size_t uvffi_read_buffer_size(void) { return UVFFI_READ_BUFFER_SIZE; }

/* Hand Python the handle's back-pointer, the count and the data: three
 * plain values, where passing the uv_stream_t * and uv_buf_t * would make
 * cffi build (and Python then walk) two more cdata objects per read. */
static void uvffi__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    _uvffi_on_read(stream->data, nread, (nread > 0 && buf != NULL) ? buf->base : NULL);
}

static int uvffi_read_start(void *stream)
{
    return uv_read_start((uv_stream_t *)stream, uvffi__alloc_cb, uvffi__read_cb);
}

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

static int uvffi_writev(uv_write_t *req, void *stream, uv_buf_t bufs[], unsigned int nbufs)
{
    return uv_write(req, (uv_stream_t *)stream, bufs, nbufs, _uvffi_write_cb);
}

static int uvffi_shutdown(uv_shutdown_t *req, void *stream)
{
    return uv_shutdown(req, (uv_stream_t *)stream, _uvffi_shutdown_cb);
}

static int uvffi_listen(void *stream, int backlog)
{
    return uv_listen((uv_stream_t *)stream, backlog, _uvffi_connection_cb);
}

static int uvffi_tcp_connect(uv_connect_t *req, uv_tcp_t *handle, const struct sockaddr *addr)
{
    return uv_tcp_connect(req, handle, addr, _uvffi_connect_cb);
}

static void uvffi_pipe_connect(uv_connect_t *req, uv_pipe_t *handle, const char *name)
{
    uv_pipe_connect(req, handle, name, _uvffi_connect_cb);
}
