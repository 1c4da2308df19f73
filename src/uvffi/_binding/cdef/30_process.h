/* Processes: uv_spawn and its options. */
typedef struct { void *data; uv_loop_t *loop; int pid; ...; } uv_process_t;

typedef void (*uv_exit_cb)(uv_process_t *, int64_t exit_status, int term_signal);

typedef enum {
    UV_IGNORE = 0, UV_CREATE_PIPE = 1, UV_INHERIT_FD = 2, UV_INHERIT_STREAM = 4,
    UV_READABLE_PIPE = 16, UV_WRITABLE_PIPE = 32, UV_NONBLOCK_PIPE = 64, ...
} uv_stdio_flags;

typedef struct {
    uv_stdio_flags flags;
    union { uv_stream_t *stream; int fd; } data;
} uv_stdio_container_t;

typedef int... uv_uid_t;
typedef int... uv_gid_t;

typedef struct {
    uv_exit_cb exit_cb;
    const char *file;
    char **args;
    char **env;
    const char *cwd;
    unsigned int flags;
    int stdio_count;
    uv_stdio_container_t *stdio;
    uv_uid_t uid;
    uv_gid_t gid;
    ...;
} uv_process_options_t;

enum uv_process_flags {
    UV_PROCESS_SETUID = 1, UV_PROCESS_SETGID = 2,
    UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS = 4, UV_PROCESS_DETACHED = 8,
    UV_PROCESS_WINDOWS_HIDE = 16, UV_PROCESS_WINDOWS_HIDE_CONSOLE = 32,
    UV_PROCESS_WINDOWS_HIDE_GUI = 64, ...
};

int uv_spawn(uv_loop_t *loop, uv_process_t *handle, const uv_process_options_t *options);
int uv_process_kill(uv_process_t *, int signum);
int uv_kill(int pid, int signum);
uv_pid_t uv_process_get_pid(const uv_process_t *);
void uv_disable_stdio_inheritance(void);

extern "Python" void _uvffi_exit_cb(uv_process_t *, int64_t exit_status, int term_signal);

/* shim: uvffi_process.c (posix_spawn + pidfd on Linux/glibc) */
int uvffi_fast_spawn_available(void);
int uvffi_fast_spawn(const char *file, char **argv, char **envp, const char *cwd,
                     const int *stdio, int new_session, int pgroup, int restore_signals,
                     const int *keep, int nkeep, int *pid_out);
int uvffi_pidfd_open(int pid);
