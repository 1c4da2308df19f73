/* sock_recv's receive on PyPy (sockets.py: _recv_copy).  There, copying
 * what socket.recv_into() put in a bytearray out into bytes costs about
 * 11-16 us per 64 KiB (the memoryview's bytes go one by one), against 2 us
 * for ffi.unpack() of C memory; so PyPy receives into a C buffer kept on
 * the loop.  Returns the bytes received, or minus the errno (EINTR is
 * retried, as PEP 475 has socket.recv_into do).  POSIX sockets are fds;
 * elsewhere -ENOSYS, and the caller keeps recv_into(). */
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
