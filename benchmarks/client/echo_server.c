/* Reference echo server in plain C on libuv: the ceiling that a Python
 * event loop's echo server can approach.   echo_server PORT|unix:PATH */
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uv_write_t req; uv_buf_t buf; } write_req_t;
static uv_loop_t *loop;
static char read_buffer[256 * 1024];

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b)
{ (void)h; (void)s; b->base = read_buffer; b->len = sizeof(read_buffer); }

static void close_cb(uv_handle_t *h) { free(h); }

static void write_cb(uv_write_t *req, int status)
{ (void)status; write_req_t *w = (write_req_t *)req; free(w->buf.base); free(w); }

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) { uv_close((uv_handle_t *)s, close_cb); return; }
    if (nread == 0) return;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned int)nread);
    int rc = uv_try_write(s, &b, 1);
    if (rc == nread) return;
    if (rc < 0) rc = 0;
    write_req_t *w = malloc(sizeof(*w));
    w->buf.len = (size_t)(nread - rc);
    w->buf.base = malloc(w->buf.len);
    memcpy(w->buf.base, buf->base + rc, w->buf.len);
    uv_write(&w->req, s, &w->buf, 1, write_cb);
}

static int is_unix;

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) return;
    uv_stream_t *client;
    if (is_unix) { client = malloc(sizeof(uv_pipe_t)); uv_pipe_init(loop, (uv_pipe_t *)client, 0); }
    else { client = malloc(sizeof(uv_tcp_t)); uv_tcp_init(loop, (uv_tcp_t *)client); }
    if (uv_accept(server, client) == 0) {
        if (!is_unix) uv_tcp_nodelay((uv_tcp_t *)client, 1);
        uv_read_start(client, alloc_cb, read_cb);
    } else uv_close((uv_handle_t *)client, close_cb);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s PORT|unix:PATH\n", argv[0]); return 2; }
    loop = uv_default_loop();
    is_unix = strncmp(argv[1], "unix:", 5) == 0;
    int rc;
    if (is_unix) {
        static uv_pipe_t server;
        uv_pipe_init(loop, &server, 0);
        remove(argv[1] + 5);
        rc = uv_pipe_bind(&server, argv[1] + 5);
        if (!rc) rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    } else {
        static uv_tcp_t server;
        struct sockaddr_in addr;
        uv_tcp_init(loop, &server);
        uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
        rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
        if (!rc) rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    }
    if (rc) { fprintf(stderr, "listen: %s\n", uv_strerror(rc)); return 1; }
    printf("READY\n");
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
