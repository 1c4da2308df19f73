/* DNS: uv_getaddrinfo / uv_getnameinfo (run on libuv's thread pool). */
struct addrinfo {
    int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
    struct sockaddr *ai_addr; /* ai_addrlen is a socklen_t: left to "..." */ char *ai_canonname;
    struct addrinfo *ai_next; ...;
};
typedef struct { void *data; uv_loop_t *loop; struct addrinfo *addrinfo; ...; } uv_getaddrinfo_t;
typedef struct { void *data; uv_loop_t *loop; char host[...]; char service[...]; ...; } uv_getnameinfo_t;
typedef void (*uv_getaddrinfo_cb)(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
typedef void (*uv_getnameinfo_cb)(uv_getnameinfo_t *req, int status, const char *hostname, const char *service);

#define UV_EAI_CANCELED ...

int uv_getaddrinfo(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb getaddrinfo_cb, const char *node, const char *service, const struct addrinfo *hints);
void uv_freeaddrinfo(struct addrinfo *ai);
int uv_getnameinfo(uv_loop_t *loop, uv_getnameinfo_t *req, uv_getnameinfo_cb getnameinfo_cb, const struct sockaddr *addr, int flags);

extern "Python" void _uvffi_getaddrinfo_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
extern "Python" void _uvffi_getnameinfo_cb(uv_getnameinfo_t *req, int status, const char *hostname, const char *service);

/* shim: uvffi_sockaddr.c -- sockaddr <-> (family, host bytes, port...) */
int uvffi_sockaddr_family(const struct sockaddr *addr);
int uvffi_sockaddr_in(struct sockaddr_storage *out, const char *ip, int port);
int uvffi_sockaddr_in6(struct sockaddr_storage *out, const char *ip, int port, unsigned int flowinfo, unsigned int scope_id);
int uvffi_sockaddr_unpack(const struct sockaddr *addr, char *ip, size_t iplen, int *port, unsigned int *flowinfo, unsigned int *scope_id);
int uvffi_sockaddr_len(const struct sockaddr *addr);
const char *gai_strerror(int errcode);
