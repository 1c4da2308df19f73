/* sockaddr helpers: Python's socket module speaks (host, port) tuples,
 * libuv speaks struct sockaddr. */

static int uvffi_sockaddr_family(const struct sockaddr *addr)
{
    return addr->sa_family;
}

static int uvffi_sockaddr_in(struct sockaddr_storage *out, const char *ip, int port)
{
    memset(out, 0, sizeof(*out));
    return uv_ip4_addr(ip, port, (struct sockaddr_in *)out);
}

static int uvffi_sockaddr_in6(struct sockaddr_storage *out, const char *ip, int port,
                              unsigned int flowinfo, unsigned int scope_id)
{
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    int rc;
    memset(out, 0, sizeof(*out));
    rc = uv_ip6_addr(ip, port, a);
    if (rc == 0) {
        a->sin6_flowinfo = htonl(flowinfo);
        if (scope_id)
            a->sin6_scope_id = scope_id;
    }
    return rc;
}

/* Returns the family, or UV_EAFNOSUPPORT for families other than IP. */
static int uvffi_sockaddr_unpack(const struct sockaddr *addr, char *ip, size_t iplen,
                                 int *port, unsigned int *flowinfo, unsigned int *scope_id)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        uv_ip4_name(a, ip, iplen);
        *port = ntohs(a->sin_port);
        *flowinfo = 0;
        *scope_id = 0;
        return AF_INET;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        uv_ip6_name(a, ip, iplen);
        *port = ntohs(a->sin6_port);
        *flowinfo = ntohl(a->sin6_flowinfo);
        *scope_id = a->sin6_scope_id;
        return AF_INET6;
    }
    return UV_EAFNOSUPPORT;
}
