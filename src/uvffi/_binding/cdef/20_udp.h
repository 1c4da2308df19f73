/* UDP: uv_udp_t and its send request. */
typedef struct { void *data; uv_loop_t *loop; size_t send_queue_size; size_t send_queue_count; ...; } uv_udp_t;
typedef struct { void *data; uv_udp_t *handle; ...; } uv_udp_send_t;

enum uv_udp_flags { UV_UDP_IPV6ONLY = 1, UV_UDP_PARTIAL = 2, UV_UDP_REUSEADDR = 4, UV_UDP_MMSG_CHUNK = 8, UV_UDP_MMSG_FREE = 16, UV_UDP_RECVMMSG = 256, ... };

typedef void (*uv_udp_send_cb)(uv_udp_send_t *req, int status);
typedef void (*uv_udp_recv_cb)(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags);

int uv_udp_init(uv_loop_t *, uv_udp_t *handle);
int uv_udp_init_ex(uv_loop_t *, uv_udp_t *handle, unsigned int flags);
int uv_udp_open(uv_udp_t *handle, uv_os_sock_t sock);
int uv_udp_bind(uv_udp_t *handle, const struct sockaddr *addr, unsigned int flags);
int uv_udp_connect(uv_udp_t *handle, const struct sockaddr *addr);
int uv_udp_getpeername(const uv_udp_t *handle, struct sockaddr *name, int *namelen);
int uv_udp_getsockname(const uv_udp_t *handle, struct sockaddr *name, int *namelen);
int uv_udp_set_broadcast(uv_udp_t *handle, int on);
int uv_udp_send(uv_udp_send_t *req, uv_udp_t *handle, const uv_buf_t bufs[], unsigned int nbufs, const struct sockaddr *addr, uv_udp_send_cb send_cb);
int uv_udp_try_send(uv_udp_t *handle, const uv_buf_t bufs[], unsigned int nbufs, const struct sockaddr *addr);
int uv_udp_recv_start(uv_udp_t *handle, uv_alloc_cb alloc_cb, uv_udp_recv_cb recv_cb);
int uv_udp_recv_stop(uv_udp_t *handle);
size_t uv_udp_get_send_queue_size(const uv_udp_t *handle);
size_t uv_udp_get_send_queue_count(const uv_udp_t *handle);

extern "Python" void _uvffi_udp_send_cb(uv_udp_send_t *req, int status);
extern "Python" void _uvffi_udp_recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags);

/* shim: uvffi_udp.c */
int uvffi_udp_recv_start(uv_udp_t *handle);
int uvffi_udp_try_send(uv_udp_t *handle, const char *data, size_t len, const struct sockaddr *addr);
int uvffi_udp_send(uv_udp_send_t *req, uv_udp_t *handle, const char *data, size_t len, const struct sockaddr *addr);
