/* shim: uvffi_sock.c */
int64_t uvffi_sock_recv(int64_t fd, char *buf, size_t len);
