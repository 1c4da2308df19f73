/* Echo ping-pong load generator on libuv.
 *
 *   echo_client HOST PORT|unix:PATH CONNECTIONS MSG_SIZE SECONDS
 *
 * Each connection sends MSG_SIZE bytes, waits until MSG_SIZE bytes have come
 * back, and repeats, for SECONDS after a short warm-up.  Prints one line:
 *   requests=N seconds=S rps=R
 * Compiled C, so that the client is not what limits the server under test. */
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    union { uv_tcp_t tcp; uv_pipe_t pipe; } h;
    uv_connect_t connect_req;
    uv_write_t write_req;
    size_t received;
} conn_t;

static size_t msg_size;
static char *message;
static char *read_buffer;
static size_t read_buffer_size = 256 * 1024;
static unsigned long long requests, total_requests;
static int counting;
static int connected, nconns, failed;
static uv_timer_t warmup_timer, stop_timer;
static uv_loop_t *loop;

static void send_request(conn_t *c);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h; (void)suggested;
    buf->base = read_buffer;
    buf->len = read_buffer_size;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    (void)buf;
    if (nread < 0) {
        if (!failed) fprintf(stderr, "read error: %s\n", uv_strerror((int)nread));
        failed = 1;
        uv_stop(loop);
        return;
    }
    c->received += (size_t)nread;
    if (c->received >= msg_size) {
        c->received -= msg_size;
        total_requests++;
        if (counting) requests++;
        send_request(c);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    (void)req;
    if (status < 0 && !failed) {
        fprintf(stderr, "write error: %s\n", uv_strerror(status));
        failed = 1;
        uv_stop(loop);
    }
}

static void send_request(conn_t *c)
{
    uv_buf_t b = uv_buf_init(message, (unsigned int)msg_size);
    int rc = uv_try_write((uv_stream_t *)&c->h, &b, 1);
    if (rc == (int)msg_size) return;
    if (rc < 0) rc = 0;
    b = uv_buf_init(message + rc, (unsigned int)(msg_size - rc));
    uv_write(&c->write_req, (uv_stream_t *)&c->h, &b, 1, write_cb);
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0) {
        fprintf(stderr, "connect error: %s\n", uv_strerror(status));
        failed = 1;
        uv_stop(loop);
        return;
    }
    uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
    connected++;
    send_request(c);
}

static void warmup_done(uv_timer_t *t) { (void)t; counting = 1; }
static void stop_cb(uv_timer_t *t) { (void)t; uv_stop(loop); }

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT|unix:PATH CONNECTIONS MSG_SIZE SECONDS\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    nconns = atoi(argv[3]);
    msg_size = (size_t)atol(argv[4]);
    double seconds = atof(argv[5]);
    int is_unix = strncmp(port, "unix:", 5) == 0;
    struct sockaddr_in addr4;
    struct sockaddr_in6 addr6;
    const struct sockaddr *addr = NULL;

    loop = uv_default_loop();
    message = malloc(msg_size);
    memset(message, 'x', msg_size);
    read_buffer = malloc(read_buffer_size);
    if (!is_unix) {
        if (uv_ip4_addr(host, atoi(port), &addr4) == 0) addr = (const struct sockaddr *)&addr4;
        else if (uv_ip6_addr(host, atoi(port), &addr6) == 0) addr = (const struct sockaddr *)&addr6;
        else { fprintf(stderr, "bad address %s\n", host); return 2; }
    }
    conn_t *conns = calloc((size_t)nconns, sizeof(conn_t));
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        c->connect_req.data = c;
        if (is_unix) {
            uv_pipe_init(loop, &c->h.pipe, 0);
            c->h.pipe.data = c;
            uv_pipe_connect(&c->connect_req, &c->h.pipe, port + 5, connect_cb);
        } else {
            uv_tcp_init(loop, &c->h.tcp);
            uv_tcp_nodelay(&c->h.tcp, 1);
            c->h.tcp.data = c;
            uv_tcp_connect(&c->connect_req, &c->h.tcp, addr, connect_cb);
        }
    }
    double warmup = seconds > 2 ? 0.5 : seconds / 4;
    uv_timer_init(loop, &warmup_timer);
    uv_timer_start(&warmup_timer, warmup_done, (uint64_t)(warmup * 1000), 0);
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, stop_cb, (uint64_t)((warmup + seconds) * 1000), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    if (failed) return 1;
    printf("requests=%llu seconds=%.3f rps=%.1f connections=%d total=%llu\n",
           requests, seconds, requests / seconds, connected, total_requests);
    return 0;
}
