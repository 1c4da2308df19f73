/* Our declarations of the libuv core API (loop, handles, timers, async,
 * idle/check/prepare, poll, errors).  cffi checks every declaration against
 * uv.h at compile time; "..." lets the compiler fill in sizes and the
 * fields we do not name. */

typedef struct uv_loop_s { void *data; ...; } uv_loop_t;
/* a loop uvffi creates (shim/uvffi_shim.h): uv_loop_t first */
typedef struct { char *read_buffer; int64_t *read_events; int wanted; ...; } uvffi_loop_t;
typedef int... uv_os_sock_t;
typedef int... uv_file;
typedef int... uv_pid_t;

typedef enum {
    UV_RUN_DEFAULT = 0,
    UV_RUN_ONCE,
    UV_RUN_NOWAIT
} uv_run_mode;

typedef enum { UV_LOOP_BLOCK_SIGNAL, UV_METRICS_IDLE_TIME, ... } uv_loop_option;

typedef enum {
    UV_UNKNOWN_HANDLE = 0, UV_ASYNC, UV_CHECK, UV_FS_EVENT, UV_FS_POLL,
    UV_HANDLE, UV_IDLE, UV_NAMED_PIPE, UV_POLL, UV_PREPARE, UV_PROCESS,
    UV_STREAM, UV_TCP, UV_TIMER, UV_TTY, UV_UDP, UV_SIGNAL, UV_FILE,
    UV_HANDLE_TYPE_MAX, ...
} uv_handle_type;

typedef struct { void *data; uv_loop_t *loop; uv_handle_type type; ...; } uv_handle_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_timer_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_async_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_idle_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_check_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_prepare_t;
typedef struct { void *data; uv_loop_t *loop; ...; } uv_poll_t;
typedef struct { void *data; ...; } uv_req_t;

typedef struct { char *base; size_t len; ...; } uv_buf_t;

typedef void (*uv_close_cb)(uv_handle_t *handle);
typedef void (*uv_timer_cb)(uv_timer_t *handle);
typedef void (*uv_async_cb)(uv_async_t *handle);
typedef void (*uv_idle_cb)(uv_idle_t *handle);
typedef void (*uv_check_cb)(uv_check_t *handle);
typedef void (*uv_prepare_cb)(uv_prepare_t *handle);
typedef void (*uv_poll_cb)(uv_poll_t *handle, int status, int events);
typedef void (*uv_walk_cb)(uv_handle_t *handle, void *arg);
typedef void (*uv_alloc_cb)(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf);

enum uv_poll_event { UV_READABLE = 1, UV_WRITABLE = 2, UV_DISCONNECT = 4, UV_PRIORITIZED = 8 };

/* 1: libuv built from a source tree into the module; 0: the system libuv */
#define UVFFI_LIBUV_VENDORED ...

/* error codes we test for by name */
#define UV_EOF ...
#define UV_EAGAIN ...
#define UV_ECANCELED ...
#define UV_EBUSY ...
#define UV_EBADF ...
#define UV_EINVAL ...
#define UV_ENOTCONN ...
#define UV_EPIPE ...
#define UV_ECONNRESET ...
#define UV_ENOSYS ...
#define UV_ENOBUFS ...

unsigned int uv_version(void);
const char *uv_version_string(void);
const char *uv_strerror(int err);
const char *uv_err_name(int err);
int uv_translate_sys_error(int sys_errno);

size_t uv_loop_size(void);
int uv_loop_init(uv_loop_t *loop);
int uv_loop_close(uv_loop_t *loop);
int uv_loop_alive(const uv_loop_t *loop);
int uv_run(uv_loop_t *, uv_run_mode mode);
void uv_stop(uv_loop_t *);
int uv_backend_fd(const uv_loop_t *);
int uv_backend_timeout(const uv_loop_t *);
uint64_t uv_now(const uv_loop_t *);
void uv_update_time(uv_loop_t *);
uint64_t uv_hrtime(void);
void uv_walk(uv_loop_t *loop, uv_walk_cb walk_cb, void *arg);
int uv_loop_fork(uv_loop_t *loop);

size_t uv_handle_size(uv_handle_type type);
int uv_is_active(const void *handle);
int uv_is_closing(const void *handle);
void uv_close(void *handle, uv_close_cb close_cb);
void uv_ref(void *handle);
void uv_unref(void *handle);
int uv_has_ref(const void *handle);
int uv_send_buffer_size(void *handle, int *value);
int uv_recv_buffer_size(void *handle, int *value);
int uv_cancel(void *req);

int uv_timer_init(uv_loop_t *, uv_timer_t *handle);
int uv_timer_start(uv_timer_t *handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uv_timer_stop(uv_timer_t *handle);
int uv_timer_again(uv_timer_t *handle);
uint64_t uv_timer_get_due_in(const uv_timer_t *handle);

int uv_async_init(uv_loop_t *, uv_async_t *async, uv_async_cb async_cb);
int uv_async_send(uv_async_t *async);

int uv_idle_init(uv_loop_t *, uv_idle_t *idle);
int uv_idle_start(uv_idle_t *idle, uv_idle_cb cb);
int uv_idle_stop(uv_idle_t *idle);
int uv_check_init(uv_loop_t *, uv_check_t *check);
int uv_check_start(uv_check_t *check, uv_check_cb cb);
int uv_check_stop(uv_check_t *check);
int uv_prepare_init(uv_loop_t *, uv_prepare_t *prepare);
int uv_prepare_start(uv_prepare_t *prepare, uv_prepare_cb cb);
int uv_prepare_stop(uv_prepare_t *prepare);

int uv_poll_init(uv_loop_t *loop, uv_poll_t *handle, int fd);
int uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *handle, uv_os_sock_t socket);
int uv_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t *handle);

/* Callbacks implemented in Python (see uvffi/handles/callbacks.py and the
 * handle modules).  Every one of them routes exceptions to the loop. */
extern "Python" void _uvffi_close_cb(uv_handle_t *handle);
extern "Python" void _uvffi_poll_cb(uv_poll_t *handle, int status, int events);
extern "Python" void _uvffi_timer_cb(uv_timer_t *handle);
extern "Python" void _uvffi_idle_cb(uv_idle_t *handle);
extern "Python" void _uvffi_check_cb(uv_check_t *handle);
extern "Python" void _uvffi_prepare_cb(uv_prepare_t *handle);
extern "Python" void _uvffi_async_cb(uv_async_t *handle);

/* shim: uvffi_core.c */
int uvffi_run_once(uv_loop_t *loop, uv_timer_t *wakeup, int64_t timeout_ms);
int uvffi_run_nowait(uv_loop_t *loop);  /* loops uvffi created */
int uvffi_run_sleep(uv_loop_t *loop, int64_t timeout_ms);  /* loops uvffi created */
size_t uvffi_malloc_warm_up(size_t size, size_t cap);  /* glibc only */
void uvffi_loop_set_wakeup(uv_loop_t *loop, uv_timer_t *wakeup);
int uvffi_close(void *handle);
void uvffi_close_all(uv_loop_t *loop);
int uvffi_count_handles(uv_loop_t *loop);
int uvffi_async_init_noop(uv_loop_t *loop, uv_async_t *async);
int uvffi_async_init_wake(uv_loop_t *loop, uv_async_t *async);  /* loops uvffi created */
int uvffi_poll_start(uv_poll_t *handle, int events);
int uvffi_fd_same(int fd, uint64_t *id);
int uvffi_poll_park(uv_poll_t *handle);
int uvffi_poll_unpark(uv_poll_t *handle);
int uvffi_fileno(void *handle, int64_t *fd);
