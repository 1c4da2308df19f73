/* shim: uvffi_sock.c */
int64_t uvffi_sock_recv(int64_t fd, char *buf, size_t len);
/* add_reader/add_writer's polls (fdwatch.py): started with their own
 * callback, which finds the FdPoll through handle->data as Poll's does
 * but dispatches its reader and writer itself (one Python frame less per
 * event than Poll's callback calling a bound method). */
extern "Python" void _uvffi_fdwatch_cb(uv_poll_t *handle, int status, int events);
int uvffi_fdwatch_start(uv_poll_t *handle, int events);
/* fdwatch.py's guard: a uv_prepare_t that is always started (unref'd) and
 * crosses into Python (_uvffi_prepare_cb) only while `armed` is set.
 * Arming and disarming it happen on nearly every sock_* wait (a poll parked
 * after one call, taken back by the next): a store to `armed` instead of a
 * uv_prepare_start/stop call each. */
typedef struct { uv_prepare_t prepare; int armed; ...; } uvffi_fdguard_t;
int uvffi_fdguard_start(uvffi_fdguard_t *guard);
