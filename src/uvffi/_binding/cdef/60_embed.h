/* Embedding (uvffi/embedding.py): guest mode on a host's uv_loop_t and
 * checks on loop pointers that come from outside. */

/* shim: uvffi_embed.c */
int uvffi_loop_looks_open(uv_loop_t *loop);
int uvffi_idle_start_noop(uv_idle_t *idle);
int uvffi_timer_start_noop(uv_timer_t *timer, uint64_t timeout_ms);
/* guest mode's handles: the libuv handle, then the guest's "wanted" flag */
typedef struct { uv_prepare_t handle; int *wanted; } uvffi_guest_prepare_t;
typedef struct { uv_check_t handle; int *wanted; } uvffi_guest_check_t;
typedef struct { uv_timer_t handle; int *wanted; } uvffi_guest_timer_t;
int uvffi_guest_prepare_start(uv_prepare_t *prepare);
int uvffi_guest_check_start(uv_check_t *check);
int uvffi_guest_timer_start(uv_timer_t *timer, uint64_t timeout_ms);
