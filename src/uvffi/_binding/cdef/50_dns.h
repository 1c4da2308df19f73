/* DNS: uv_getaddrinfo / uv_getnameinfo (run on libuv's thread pool). */
struct addrinfo {
    int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
    struct sockaddr *ai_addr; /* ai_addrlen is a socklen_t: left to "..." */ char *ai_canonname;
    struct addrinfo *ai_next; ...;
};
typedef struct { void *data; uv_loop_t *loop; struct addrinfo *addrinfo; ...; } uv_getaddrinfo_t;
typedef struct { void *data; uv_loop_t *loop; char host[...]; char service[...]; ...; } uv_getnameinfo_t;
typedef void (*uv_getnameinfo_cb)(uv_getnameinfo_t *req, int status, const char *hostname, const char *service);

#define UV_EAI_CANCELED ...

int uv_getnameinfo(uv_loop_t *loop, uv_getnameinfo_t *req, uv_getnameinfo_cb getnameinfo_cb, const struct sockaddr *addr, int flags);

extern "Python" void _uvffi_getnameinfo_cb(uv_getnameinfo_t *req, int status, const char *hostname, const char *service);

/* shim: uvffi_dns.c -- getaddrinfo through a loop's lookup queue, whose
 * answers come as packed uvffi_ai_rec records (nbytes < 0: read res) */
typedef struct {
    int ai_family; int socktype; int protocol; int canon; int sa_family; int port;
    unsigned int flowinfo; unsigned int scope_id; int iplen; char ip[64];
} uvffi_ai_rec;
typedef struct uvffi_gai_s uvffi_gai_t;
typedef struct { uv_async_t async; ...; } uvffi_gaiq_t;
#define UVFFI_HOST_INET_NTOP ...
#define UVFFI_HOST_GETNAMEINFO ...
uvffi_gaiq_t *uvffi_gaiq_new(int host_style);
int uvffi_gaiq_init(uv_loop_t *loop, uvffi_gaiq_t *q);
void uvffi_gaiq_close(uvffi_gaiq_t *q);
uvffi_gai_t *uvffi_gai_submit(uvffi_gaiq_t *q, void *data, const char *node, const char *service, int family, int socktype, int protocol, int flags);
int uvffi_gai_cancel(uvffi_gaiq_t *q, uvffi_gai_t *g);
int uvffi_ai_rec_fill(const struct addrinfo *ai, uvffi_ai_rec *r, int host_style);
extern "Python" void _uvffi_gai_done(void *data, int rc, int err, const char *recs, int nbytes, struct addrinfo *res);

/* shim: uvffi_sockaddr.c -- sockaddr <-> (family, host bytes, port...) */
int uvffi_sockaddr_family(const struct sockaddr *addr);
int uvffi_sockaddr_in(struct sockaddr_storage *out, const char *ip, int port);
int uvffi_sockaddr_in6(struct sockaddr_storage *out, const char *ip, int port, unsigned int flowinfo, unsigned int scope_id);
int uvffi_sockaddr_unpack(const struct sockaddr *addr, char *ip, size_t iplen, int *port, unsigned int *flowinfo, unsigned int *scope_id);
const char *gai_strerror(int errcode);
