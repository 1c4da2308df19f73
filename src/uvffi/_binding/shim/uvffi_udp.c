/* UDP shim: same per-thread buffer discipline as streams. */
static void _uvffi_udp_send_cb(uv_udp_send_t *req, int status);
static void _uvffi_udp_recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                               const struct sockaddr *addr, unsigned flags);

#if defined(_MSC_VER)
static __declspec(thread) char uvffi__udp_buffer[64 * 1024];
#else
static __thread char uvffi__udp_buffer[64 * 1024];
#endif

static void uvffi__udp_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle; (void)suggested;
    buf->base = uvffi__udp_buffer;
    buf->len = sizeof(uvffi__udp_buffer);
}

/* After the datagrams of a read event libuv calls once more with nread 0
 * and no address ("nothing more to read", to give the buffer back): that
 * call ends here, in C, so that each datagram costs one C->Python crossing
 * and not two.  An empty datagram (nread 0 with an address) and errors go
 * on to Python. */
static void uvffi__udp_recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                               const struct sockaddr *addr, unsigned flags)
{
    if (nread == 0 && addr == NULL)
        return;
    _uvffi_udp_recv_cb(handle, nread, buf, addr, flags);
}

static int uvffi_udp_recv_start(uv_udp_t *handle)
{
    return uv_udp_recv_start(handle, uvffi__udp_alloc_cb, uvffi__udp_recv_cb);
}

static int uvffi_udp_try_send(uv_udp_t *handle, const char *data, size_t len,
                              const struct sockaddr *addr)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    return uv_udp_try_send(handle, &buf, 1, addr);
}

static int uvffi_udp_send(uv_udp_send_t *req, uv_udp_t *handle, const char *data,
                          size_t len, const struct sockaddr *addr)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    return uv_udp_send(req, handle, &buf, 1, addr, _uvffi_udp_send_cb);
}
