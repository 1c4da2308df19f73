/* sock_recv's receive on PyPy (facets/sockmethods.py: _recv_copy).  There, copying
 * what socket.recv_into() put in a bytearray out into bytes is several
 * times slower than ffi.unpack() of C memory (the memoryview's bytes go
 * one by one; figures in docs/performance-notes.md), so PyPy receives into
 * a C buffer kept on the loop.  Returns the bytes received, or minus the
 * errno (EINTR is retried, as PEP 475 has socket.recv_into do).  POSIX
 * sockets are fds; elsewhere -ENOSYS, and the caller keeps recv_into(). */
#include <errno.h>

static int64_t uvffi_sock_recv(int64_t fd, char *buf, size_t len)
{
#ifdef _WIN32
    (void)fd; (void)buf; (void)len;
    return -ENOSYS;
#else
    ssize_t n;
    do
        n = recv((int)fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -(int64_t)errno : (int64_t)n;
#endif
}

static void _uvffi_fdwatch_cb(uv_poll_t *handle, int status, int events);

static int uvffi_fdwatch_start(uv_poll_t *handle, int events)
{
    return uv_poll_start(handle, events, _uvffi_fdwatch_cb);
}

typedef struct {
    uv_prepare_t prepare;  /* first: the handle libuv and Python see */
    int armed;
} uvffi_fdguard_t;

static void _uvffi_prepare_cb(uv_prepare_t *handle);  /* extern "Python" */

static void uvffi__fdguard_cb(uv_prepare_t *handle)
{
    if (((uvffi_fdguard_t *)handle)->armed)
        _uvffi_prepare_cb(handle);
}

static int uvffi_fdguard_start(uvffi_fdguard_t *guard)
{
    return uv_prepare_start(&guard->prepare, uvffi__fdguard_cb);
}
