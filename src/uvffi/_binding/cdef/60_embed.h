/* Embedding (uvffi/embedding.py): guest mode on a host's uv_loop_t and
 * checks on loop pointers that come from outside. */

/* shim: uvffi_embed.c */
int uvffi_loop_looks_open(uv_loop_t *loop);
int uvffi_idle_start_noop(uv_idle_t *idle);
int uvffi_timer_start_noop(uv_timer_t *timer, uint64_t timeout_ms);
