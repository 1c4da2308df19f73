/* Signals through uv_signal_t (available to adapters that want it; the
 * loop itself uses Python's wake-up fd, see uvffi/signals.py). */
typedef struct { void *data; uv_loop_t *loop; int signum; ...; } uv_signal_t;
typedef void (*uv_signal_cb)(uv_signal_t *handle, int signum);
int uv_signal_init(uv_loop_t *loop, uv_signal_t *handle);
int uv_signal_start(uv_signal_t *handle, uv_signal_cb signal_cb, int signum);
int uv_signal_stop(uv_signal_t *handle);
extern "Python" void _uvffi_signal_cb(uv_signal_t *handle, int signum);
