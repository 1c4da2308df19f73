/* Included first by the generated module: libuv and the system headers the
 * shim needs.  Kept free of Python.h on purpose. */
#include <uv.h>
#include <string.h>
#include <stdint.h>
#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#else
#  include <sys/types.h>
#  include <sys/socket.h>
#  include <netinet/in.h>
#  include <arpa/inet.h>
#  include <netdb.h>
#  include <sys/stat.h>
#  include <errno.h>
#  include <unistd.h>
#  ifdef __linux__
#    include <sys/epoll.h>
#  endif
#endif

/* 1 when libuv is linked in from a source tree (CMake's UVFFI_LIBUV=VENDOR
 * build defines it), 0 for the system's shared libuv: python -m uvffi
 * reports it. */
#ifndef UVFFI_LIBUV_VENDORED
#  define UVFFI_LIBUV_VENDORED 0
#endif

/* A read of this size or more is a large read: handed to Python on its own
 * (uvffi_stream.c), and from one on a stream reads straight into its
 * protocol's memory (handles/streamreads.py's LARGE_READS_FROM is this value). */
#define UVFFI_LARGE_READ (32 * 1024)

/* How a stream reads (uvffi_stream.c: uvffi_read_start). */
#define UVFFI_READ_PLAIN 0   /* a per-thread buffer, one callback per read */
#define UVFFI_READ_BATCH 1   /* a uvffi_loop_t's batch */
#define UVFFI_READ_DIRECT 2  /* into the buffer Python's _uvffi_alloc gives */
#define UVFFI_READ_SELF 3    /* Python reads the fd itself (POSIX only) */

/* A loop created by uvffi: libuv's loop, then the state of its batched
 * reads (uvffi_stream.c).  The uv_loop_t must stay the first member: the
 * loop is handed around as a uv_loop_t * to libuv and to other C
 * extensions. */
typedef struct {
    uv_loop_t loop;
    char *read_buffer;     /* UVFFI_BATCH_BUFFER_SIZE bytes, owned by Python */
    int64_t *read_events;  /* 2 x UVFFI_READ_EVENTS, owned by Python */
    size_t read_used;      /* bytes of read_buffer holding this batch */
    size_t read_count;     /* reads in this batch */
    uv_check_t read_check; /* hands the batch to Python after the poll */
    uv_timer_t *wakeup;    /* the loop's poll-timeout timer (uvffi_core.c) */
    int wanted;            /* 1: asyncio has work, uvffi_run_sleep returns */
} uvffi_loop_t;

/* The memory of a uvffi stream handle (handles/stream.py): the libuv handle,
 * then the stream's key in its loop's batch table.  Batched reads record
 * the key, a small int that Python indexes a list with, where handle->data
 * (a pointer) would cost Python an int object per read and a dict lookup
 * (uvffi__read_own_cb).  The handle stays the first member: the memory is
 * handed to libuv as a uv_tcp_t / uv_pipe_t / uv_tty_t *. */
typedef struct {
    union { uv_tcp_t tcp; uv_pipe_t pipe; uv_tty_t tty; } handle;
    int64_t key;
} uvffi_stream_t;
