/* Streams: uv_stream_t and its kinds (TCP, pipes, TTYs), with the write,
 * connect and shutdown requests. */

struct sockaddr { ...; };
struct sockaddr_storage { ...; };

typedef struct { void *data; uv_loop_t *loop; uv_handle_type type; size_t write_queue_size; ...; } uv_stream_t;
typedef struct { void *data; uv_loop_t *loop; size_t write_queue_size; ...; } uv_tcp_t;
typedef struct { void *data; uv_loop_t *loop; size_t write_queue_size; int ipc; ...; } uv_pipe_t;
typedef struct { void *data; uv_loop_t *loop; size_t write_queue_size; ...; } uv_tty_t;
/* shim: a stream handle's memory, with its batch key (uvffi_shim.h) */
typedef struct { int64_t key; ...; } uvffi_stream_t;

typedef struct { void *data; uv_stream_t *handle; ...; } uv_write_t;
typedef struct { void *data; uv_stream_t *handle; ...; } uv_connect_t;
typedef struct { void *data; uv_stream_t *handle; ...; } uv_shutdown_t;

typedef void (*uv_read_cb)(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
typedef void (*uv_write_cb)(uv_write_t *req, int status);
typedef void (*uv_connect_cb)(uv_connect_t *req, int status);
typedef void (*uv_shutdown_cb)(uv_shutdown_t *req, int status);
typedef void (*uv_connection_cb)(uv_stream_t *server, int status);

enum uv_tcp_flags { UV_TCP_IPV6ONLY = 1 };

int uv_listen(void *stream, int backlog, uv_connection_cb cb);
int uv_accept(void *server, void *client);
int uv_read_start(uv_stream_t *, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int uv_read_stop(void *stream);
int uv_write(uv_write_t *req, void *handle, const uv_buf_t bufs[], unsigned int nbufs, uv_write_cb cb);
int uv_try_write(void *handle, const uv_buf_t bufs[], unsigned int nbufs);
int uv_shutdown(uv_shutdown_t *req, void *handle, uv_shutdown_cb cb);
int uv_is_readable(const void *handle);
int uv_is_writable(const void *handle);
int uv_stream_set_blocking(void *handle, int blocking);
size_t uv_stream_get_write_queue_size(const void *stream);

int uv_tcp_init(uv_loop_t *, uv_tcp_t *handle);
int uv_tcp_init_ex(uv_loop_t *, uv_tcp_t *handle, unsigned int flags);
int uv_tcp_open(uv_tcp_t *handle, uv_os_sock_t sock);
int uv_tcp_nodelay(uv_tcp_t *handle, int enable);
int uv_tcp_keepalive(uv_tcp_t *handle, int enable, unsigned int delay);
int uv_tcp_bind(uv_tcp_t *handle, const struct sockaddr *addr, unsigned int flags);
int uv_tcp_getsockname(const uv_tcp_t *handle, struct sockaddr *name, int *namelen);
int uv_tcp_getpeername(const uv_tcp_t *handle, struct sockaddr *name, int *namelen);
int uv_tcp_connect(uv_connect_t *req, uv_tcp_t *handle, const struct sockaddr *addr, uv_connect_cb cb);
int uv_tcp_close_reset(uv_tcp_t *handle, uv_close_cb close_cb);

int uv_pipe_init(uv_loop_t *, uv_pipe_t *handle, int ipc);
int uv_pipe_open(uv_pipe_t *, uv_file file);
int uv_pipe_bind(uv_pipe_t *handle, const char *name);
void uv_pipe_connect(uv_connect_t *req, uv_pipe_t *handle, const char *name, uv_connect_cb cb);
int uv_pipe_getsockname(const uv_pipe_t *handle, char *buffer, size_t *size);
int uv_pipe_getpeername(const uv_pipe_t *handle, char *buffer, size_t *size);
void uv_pipe_pending_instances(uv_pipe_t *handle, int count);
int uv_pipe_chmod(uv_pipe_t *handle, int flags);

int uv_tty_init(uv_loop_t *, uv_tty_t *, uv_file fd, int readable);

/* Reads: the shim's C read callback passes what Python needs and no more
 * (no cdata for the stream or the uv_buf_t). */
extern "Python" void _uvffi_on_read(void *data, ssize_t nread, char *base);
/* loops uvffi created: a batch of reads (shim/uvffi_stream.c) */
extern "Python" void _uvffi_on_reads(void *data, size_t count);
/* direct reads: the buffer to read into, then how much was read */
extern "Python" void _uvffi_alloc(void *data, uv_buf_t *buf);
extern "Python" void _uvffi_on_filled(void *data, ssize_t nread);
/* self reads: Python reads the fd; nonzero asks for _uvffi_on_filled */
extern "Python" int _uvffi_self_read(void *data);
extern "Python" void _uvffi_write_cb(uv_write_t *req, int status);
extern "Python" void _uvffi_connect_cb(uv_connect_t *req, int status);
extern "Python" void _uvffi_shutdown_cb(uv_shutdown_t *req, int status);
extern "Python" void _uvffi_connection_cb(uv_stream_t *server, int status);

/* shim: uvffi_stream.c */
#define UVFFI_LARGE_READ ...
#define UVFFI_READ_PLAIN ...
#define UVFFI_READ_BATCH ...
#define UVFFI_READ_DIRECT ...
#define UVFFI_READ_SELF ...
ssize_t uvffi_stream_read(void *stream, char *buf, size_t len);
int uvffi_stream_pending_error(void *stream);
int uvffi_read_start(void *stream, int mode);
int uvffi_read_restart(void *stream, int mode);
int uvffi_loop_reads_init(uv_loop_t *loop, void *data);
size_t uvffi_read_events_size(void);
size_t uvffi_batch_buffer_size(void);
int uvffi_try_write(void *stream, const char *data, size_t len);
int uvffi_write(uv_write_t *req, void *stream, const char *data, size_t len);
int uvffi_shutdown(uv_shutdown_t *req, void *stream);
int uvffi_listen(void *stream, int backlog);
void uvffi_pipe_connect(uv_connect_t *req, uv_pipe_t *handle, const char *name);
