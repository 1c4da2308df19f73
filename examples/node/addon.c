/* examples/node/addon.c: Python's asyncio on Node.js's own event loop.
 *
 * A Node-API addon that embeds Python in the Node.js process, hands it the
 * uv_loop_t * of napi_get_uv_event_loop() and starts an asyncio program
 * there in uvffi's guest mode (uvffi.embedding.start): Node keeps running
 * its loop as always, and every iteration of it also runs asyncio's ready
 * callbacks, timers and I/O -- in Node's main thread, no second thread and
 * no second event loop.  uvffi is built with UVFFI_LIBUV=HOST: it has no
 * libuv of its own and uses the one inside the node executable.
 *
 * JavaScript side: python.js (the wrapper demo.js uses).  Python side:
 * nodebridge.py.  Between them this file passes only strings (JSON), through
 * a table of function pointers (struct bridge below) that nodebridge.py
 * fills with cffi callbacks.  So the C code uses the Python C-API only to
 * start and finalize the interpreter, and the same code serves PyPy, whose
 * embedding API is different (build with -DUVFFI_NODE_PYPY).
 *
 * The rules it follows:
 *   - libpython (libpypy) is made RTLD_GLOBAL before Python starts: Node
 *     loads addons RTLD_LOCAL, and Python's extension modules expect to find
 *     Py* symbols in the global scope.  uvffi's uv_* symbols come from the
 *     node executable, which exports them.
 *   - Python gets no signal handlers (install_signal_handlers = 0): SIGINT
 *     stays Node's; JavaScript handles it (process.on('SIGINT')) and asks
 *     Python to shut down.
 *   - The GIL is released while Node runs: cffi callbacks take it.
 *   - No JavaScript runs while Python code is on the stack: Python reports
 *     results through bridge_complete(), which only queues them; a uv_async_t
 *     of ours delivers them from a clean stack, resolving the Promises in a
 *     handle scope and a callback scope, whose closing runs the microtasks
 *     (the .then() reactions) as after any native callback.
 *   - The Python program ends in Node's loop iterations (GuestRun.shutdown,
 *     then finish once done); at process.exit() the 'exit' handler calls
 *     finalize(true), which ends it without polling, then Py_FinalizeEx.
 */
#define _GNU_SOURCE  /* dladdr, Dl_info */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef UVFFI_NODE_PYPY
/* PyPy's embedding API (libpypy3.*-c.so); it has no header of its own. */
void rpython_startup_code(void);
int pypy_setup_home(char *home, int verbose);
int pypy_execute_source(char *source);
void pypy_init_threads(void);
#define PYTHON_INIT_SYMBOL ((void *)rpython_startup_code)
#else
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PYTHON_INIT_SYMBOL ((void *)Py_InitializeFromConfig)
#endif

/* ------------------------------------------------------------------------ */
/* The table shared with nodebridge.py (keep its cdef in step).             */

#define BRIDGE_VERSION 1

enum { STATUS_VALUE = 0, STATUS_ERROR = 1, STATUS_CANCELLED = 2 };

struct bridge {
    int version;
    void *uv_loop;
    /* C, called by Python (with the GIL; they never call back into Python) */
    void (*complete)(uint64_t id, int status, const char *data, size_t size);
    void (*main_done)(void);
    /* Python (cffi callbacks), called by C (they take the GIL themselves) */
    int (*start)(const char *module, const char *function, const char *args_json);
    int (*call)(uint64_t id, const char *function, const char *args_json);
    void (*shutdown)(void);
    int (*ended)(void);
    void (*finish)(void);
    int (*pending_closes)(void);
    void (*before_finalize)(void);
};

/* ------------------------------------------------------------------------ */
/* State (one embedded Python per process, in Node's main thread)           */

enum state {
    ST_NONE,        /* Python not started */
    ST_READY,       /* Python initialised, nodebridge attached */
    ST_RUNNING,     /* the asyncio program runs in guest mode */
    ST_FINISHED,    /* its loop is closed, main's outcome reported */
    ST_FINALIZED    /* Python finalised (cannot start again) */
};

struct completion {
    struct completion *next;
    uint64_t id;
    int status;
    size_t size;
    char data[];
};

struct pending {
    struct pending *next;
    uint64_t id;
    napi_deferred deferred;
};

static struct bridge bridge;
static enum state state = ST_NONE;
static napi_env main_env;
static uv_loop_t *node_loop;
static uv_async_t deliver_async;    /* delivers completions to JavaScript */
static uv_check_t end_check;        /* notices that the guest has ended */
static int handles_open;
static napi_async_context async_context;
static struct completion *queue_head, **queue_tail = &queue_head;
static struct pending *pendings;
static uint64_t next_id = 1;        /* 0 is the main coroutine */
static int main_done;
#ifndef UVFFI_NODE_PYPY
static PyThreadState *main_tstate;
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

#define NAPI_OK(call)                                                       \
    do {                                                                    \
        if ((call) != napi_ok) {                                            \
            throw_last_error(env, #call);                                   \
            return NULL;                                                    \
        }                                                                   \
    } while (0)

static void throw_last_error(napi_env env, const char *what)
{
    const napi_extended_error_info *info = NULL;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending)
        return;
    napi_get_last_error_info(env, &info);
    char msg[256];
    snprintf(msg, sizeof msg, "%s failed: %s", what,
             info && info->error_message ? info->error_message : "unknown error");
    napi_throw_error(env, NULL, msg);
}

/* Python belongs to the thread (the env) that called init(). */
static int wrong_env(napi_env env)
{
    if (main_env == NULL || env == main_env)
        return 0;
    napi_throw_error(env, NULL, "the Python addon is used from Node's main "
                                "thread only (not from worker threads)");
    return 1;
}

static napi_value undefined(napi_env env)
{
    napi_value v;
    napi_get_undefined(env, &v);
    return v;
}

/* A JS string argument as a malloc'ed UTF-8 C string (NULL + exception). */
static char *string_arg(napi_env env, napi_value value, const char *name)
{
    size_t len = 0;
    if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be a string", name);
        napi_throw_type_error(env, NULL, msg);
        return NULL;
    }
    char *s = malloc(len + 1);
    if (s == NULL) {
        napi_throw_error(env, NULL, "out of memory");
        return NULL;
    }
    napi_get_value_string_utf8(env, value, s, len + 1, &len);
    return s;
}

static void forget_pending(uint64_t id, napi_deferred *deferred)
{
    struct pending **pp = &pendings;
    *deferred = NULL;
    while (*pp != NULL) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            *deferred = p->deferred;
            free(p);
            return;
        }
        pp = &(*pp)->next;
    }
}

static napi_value new_promise(napi_env env, uint64_t id)
{
    napi_value promise;
    struct pending *p = malloc(sizeof *p);
    if (p == NULL) {
        napi_throw_error(env, NULL, "out of memory");
        return NULL;
    }
    if (napi_create_promise(env, &p->deferred, &promise) != napi_ok) {
        free(p);
        throw_last_error(env, "napi_create_promise");
        return NULL;
    }
    p->id = id;
    p->next = pendings;
    pendings = p;
    return promise;
}

/* ------------------------------------------------------------------------ */
/* Called by Python                                                         */

static void bridge_complete(uint64_t id, int status, const char *data, size_t size)
{
    struct completion *c = malloc(sizeof *c + size + 1);
    if (c == NULL) {
        fprintf(stderr, "uvffi_node: out of memory; result of call %llu lost\n",
                (unsigned long long)id);
        return;
    }
    c->next = NULL;
    c->id = id;
    c->status = status;
    c->size = size;
    memcpy(c->data, data, size);
    c->data[size] = '\0';
    *queue_tail = c;
    queue_tail = &c->next;
    if (handles_open) {
        /* keeps Node's loop alive until the Promise is settled */
        uv_ref((uv_handle_t *)&deliver_async);
        uv_async_send(&deliver_async);
    }
}

static void bridge_main_done(void)
{
    main_done = 1;
}

/* ------------------------------------------------------------------------ */
/* Delivery of results to JavaScript                                        */

static void settle(napi_env env, struct completion *c)
{
    napi_deferred deferred;
    napi_value payload;
    forget_pending(c->id, &deferred);
    if (deferred == NULL)
        return;
    if (napi_create_string_utf8(env, c->data, c->size, &payload) != napi_ok)
        napi_get_undefined(env, &payload);
    /* python.js turns the JSON into the value, or into an Error for a
     * rejection; status STATUS_CANCELLED and STATUS_ERROR are both JSON
     * objects saying which. */
    if (c->status == STATUS_VALUE)
        napi_resolve_deferred(env, deferred, payload);
    else
        napi_reject_deferred(env, deferred, payload);
}

static void deliver_completions(void)
{
    napi_env env = main_env;
    napi_handle_scope handle_scope;
    napi_callback_scope callback_scope;
    napi_value resource;

    uv_unref((uv_handle_t *)&deliver_async);
    if (queue_head == NULL)
        return;
    if (napi_open_handle_scope(env, &handle_scope) != napi_ok)
        return;
    if (napi_create_object(env, &resource) != napi_ok
        || napi_open_callback_scope(env, resource, async_context, &callback_scope) != napi_ok) {
        napi_close_handle_scope(env, handle_scope);
        return;
    }
    while (queue_head != NULL) {
        struct completion *c = queue_head;
        queue_head = c->next;
        if (queue_head == NULL)
            queue_tail = &queue_head;
        settle(env, c);
        free(c);
    }
    /* Closing the outermost callback scope runs the microtask queue and
     * process.nextTick callbacks: the Promise reactions run now. */
    if (napi_close_callback_scope(env, callback_scope) != napi_ok) {
        bool pending = false;
        napi_value error;
        napi_is_exception_pending(env, &pending);
        if (pending && napi_get_and_clear_last_exception(env, &error) == napi_ok)
            napi_fatal_exception(env, error);  /* 'uncaughtException' */
    }
    napi_close_handle_scope(env, handle_scope);
}

static void on_deliver(uv_async_t *handle)
{
    (void)handle;
    deliver_completions();
}

/* ------------------------------------------------------------------------ */
/* The end of the Python program                                            */

/* The guest loop is closed; main's outcome goes to its Promise (id 0). */
static void finish_guest(void)
{
    if (state != ST_RUNNING)
        return;
    state = ST_FINISHED;
    bridge.finish();
}

/* Started before uvffi's guest-mode handles, so that libuv (which runs the
 * check handles last-started first) runs it after their step: it sees the
 * ending complete in the very iteration that completed it.  Asks Python
 * only after main has finished or someone called uv_stop (which uvffi does
 * when a KeyboardInterrupt/SystemExit stopped guest mode). */
static void on_end_check(uv_check_t *handle)
{
    if (state != ST_RUNNING || !(main_done || handle->loop->stop_flag))
        return;
    if (bridge.ended())
        finish_guest();
}

static void close_handles(void)
{
    if (!handles_open)
        return;
    handles_open = 0;
    uv_close((uv_handle_t *)&deliver_async, NULL);
    uv_close((uv_handle_t *)&end_check, NULL);
}

static void python_finalize(void)
{
    struct completion *c;
    bridge.before_finalize();
#ifdef UVFFI_NODE_PYPY
    /* PyPy's embedding API has no finalisation: before_finalize ran the
     * atexit functions and flushed sys.stdout/sys.stderr. */
#else
    PyEval_RestoreThread(main_tstate);
    if (Py_FinalizeEx() < 0)
        fprintf(stderr, "uvffi_node: Py_FinalizeEx could not flush buffered output\n");
    main_tstate = NULL;
#endif
    state = ST_FINALIZED;
    while ((c = queue_head) != NULL) {  /* results nobody will see */
        queue_head = c->next;
        free(c);
    }
    queue_tail = &queue_head;
}

/* ------------------------------------------------------------------------ */
/* Starting Python                                                          */

/* Node's dlopen() made libpython (libpypy) a local dependency of the addon;
 * extension modules look for Py* symbols in the global scope. */
static int make_python_global(char *err, size_t errsize)
{
    Dl_info info;
    if (dladdr(PYTHON_INIT_SYMBOL, &info) == 0 || info.dli_fname == NULL) {
        snprintf(err, errsize, "dladdr() cannot find the Python library");
        return -1;
    }
    if (dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == NULL) {
        snprintf(err, errsize, "dlopen(%s, RTLD_GLOBAL): %s", info.dli_fname, dlerror());
        return -1;
    }
    return 0;
}

/* The bootstrap source: sys.path entries (hex-encoded UTF-8, no quoting
 * problems) then nodebridge.attach(<address of the table>). */
static char *bootstrap_source(char **paths, size_t npaths)
{
    size_t size = 256, i;
    for (i = 0; i < npaths; i++)
        size += 2 * strlen(paths[i]) + 64;
    char *src = malloc(size), *p = src;
    if (src == NULL)
        return NULL;
    p += sprintf(p, "import sys\nsys.path[0:0] = [");
    for (i = 0; i < npaths; i++) {
        const unsigned char *s = (const unsigned char *)paths[i];
        p += sprintf(p, "bytes.fromhex('");
        for (; *s; s++)
            p += sprintf(p, "%02x", *s);
        p += sprintf(p, "').decode('utf-8', 'surrogateescape'), ");
    }
    p += sprintf(p, "]\nimport nodebridge\nnodebridge.attach(%llu)\n",
                 (unsigned long long)(uintptr_t)&bridge);
    return src;
}

static int python_start(const char *program, char **paths, size_t npaths,
                        char *err, size_t errsize)
{
    char *src;
    int rc;

    if (make_python_global(err, errsize) != 0)
        return -1;
    src = bootstrap_source(paths, npaths);
    if (src == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
#ifdef UVFFI_NODE_PYPY
    rpython_startup_code();
    /* the path is used to find the standard library and becomes
     * sys.executable */
    if (pypy_setup_home((char *)program, 1) != 0) {
        snprintf(err, errsize, "pypy_setup_home(%s) failed", program);
        free(src);
        return -1;
    }
    pypy_init_threads();
    rc = pypy_execute_source(src);
#else
    {
        PyConfig config;
        PyStatus status;
        /* isolated: no PYTHON* environment variables, no user site, and no
         * signal handlers -- SIGINT stays Node's */
        PyConfig_InitIsolatedConfig(&config);
        config.install_signal_handlers = 0;
        config.buffered_stdio = 0;  /* lines mix with Node's in order */
        config.parse_argv = 0;
        /* program_name: the interpreter whose prefix (or venv, through its
         * pyvenv.cfg) gives sys.path */
        status = PyConfig_SetBytesString(&config, &config.program_name, program);
        if (!PyStatus_Exception(status))
            status = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            snprintf(err, errsize, "Python did not start: %s%s%s",
                     status.func ? status.func : "", status.func ? ": " : "",
                     status.err_msg ? status.err_msg : "(no message)");
            free(src);
            return -1;
        }
        rc = PyRun_SimpleString(src);
        /* From now on the GIL is taken by whoever calls into Python. */
        main_tstate = PyEval_SaveThread();
    }
#endif
    free(src);
    if (rc != 0) {
        snprintf(err, errsize, "the Python bootstrap failed "
                 "(importing nodebridge; traceback above)");
        return -2;
    }
    if (bridge.start == NULL || bridge.finish == NULL) {
        snprintf(err, errsize, "nodebridge.attach() did not fill the table");
        return -2;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* JavaScript API                                                           */

/* init({python: string, paths: [string]}) */
static napi_value js_init(napi_env env, napi_callback_info info)
{
    size_t argc = 1, npaths = 0, i;
    napi_value argv[1], value, item;
    uint32_t length = 0;
    char *program = NULL, **paths = NULL, err[512];
    bool is_array = false;
    int rc;

    if (state != ST_NONE) {
        napi_throw_error(env, NULL, state == ST_FINALIZED
                         ? "Python has been finalized in this process; it cannot start again"
                         : "Python is already initialized");
        return NULL;
    }
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1) {
        napi_throw_type_error(env, NULL, "init(options) expects an options object");
        return NULL;
    }
    NAPI_OK(napi_get_named_property(env, argv[0], "python", &value));
    if ((program = string_arg(env, value, "options.python")) == NULL)
        return NULL;
    NAPI_OK(napi_get_named_property(env, argv[0], "paths", &value));
    napi_is_array(env, value, &is_array);
    if (is_array)
        napi_get_array_length(env, value, &length);
    paths = calloc(length + 1, sizeof *paths);
    for (i = 0; paths != NULL && i < length; i++) {
        if (napi_get_element(env, value, (uint32_t)i, &item) != napi_ok
            || (paths[i] = string_arg(env, item, "options.paths[]")) == NULL)
            goto out;
        npaths++;
    }

    NAPI_OK(napi_get_uv_event_loop(env, &node_loop));
    if (node_loop != uv_default_loop()) {
        napi_throw_error(env, NULL, "the Python addon runs in Node's main thread "
                                    "only (not in worker threads)");
        goto out;
    }
    main_env = env;
    bridge.version = BRIDGE_VERSION;
    bridge.uv_loop = node_loop;
    bridge.complete = bridge_complete;
    bridge.main_done = bridge_main_done;

    /* Both handles are unreferenced: they never keep Node alive by
     * themselves (deliver_async does while results wait). The check handle
     * is started before guest mode's: see on_end_check. */
    uv_async_init(node_loop, &deliver_async, on_deliver);
    uv_unref((uv_handle_t *)&deliver_async);
    uv_check_init(node_loop, &end_check);
    uv_check_start(&end_check, on_end_check);
    uv_unref((uv_handle_t *)&end_check);
    handles_open = 1;
    {   /* the async context of the callback scopes that settle Promises */
        napi_value name;
        napi_create_string_utf8(env, "uvffi_node", NAPI_AUTO_LENGTH, &name);
        napi_async_init(env, NULL, name, &async_context);
    }

    rc = python_start(program, paths, npaths, err, sizeof err);
    if (rc == 0) {
        state = ST_READY;
    } else {
        if (rc == -2) {
            /* the interpreter runs but is unusable: finalise it */
            state = ST_FINALIZED;
#ifndef UVFFI_NODE_PYPY
            PyEval_RestoreThread(main_tstate);
            Py_FinalizeEx();
#endif
        }
        close_handles();
        napi_throw_error(env, NULL, err);
    }
out:
    free(program);
    for (i = 0; paths != NULL && i < length; i++)
        free(paths[i]);
    free(paths);
    return undefined(env);
}

/* start(module, function, argsJson) -> Promise of main's JSON result */
static napi_value js_start(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3], promise;
    char *module = NULL, *function = NULL, *args = NULL;

    if (state != ST_READY) {
        napi_throw_error(env, NULL, state == ST_NONE ? "call init() first"
                         : "the Python program has already been started");
        return NULL;
    }
    if (wrong_env(env))
        return NULL;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 3) {
        napi_throw_type_error(env, NULL, "start(module, function, argsJson)");
        return NULL;
    }
    if ((module = string_arg(env, argv[0], "module")) == NULL
        || (function = string_arg(env, argv[1], "function")) == NULL
        || (args = string_arg(env, argv[2], "argsJson")) == NULL)
        goto fail;
    if ((promise = new_promise(env, 0)) == NULL)
        goto fail;
    /* Python reports a failure to start through complete(0, ...) too */
    if (bridge.start(module, function, args) == 0)
        state = ST_RUNNING;
    free(module);
    free(function);
    free(args);
    return promise;
fail:
    free(module);
    free(function);
    free(args);
    return NULL;
}

/* call(function, argsJson) -> Promise of the JSON result */
static napi_value js_call(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], promise;
    char *function = NULL, *args = NULL;
    uint64_t id;

    if (wrong_env(env))
        return NULL;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 2) {
        napi_throw_type_error(env, NULL, "call(function, argsJson)");
        return NULL;
    }
    if ((function = string_arg(env, argv[0], "function")) == NULL
        || (args = string_arg(env, argv[1], "argsJson")) == NULL)
        goto fail;
    id = next_id++;
    if ((promise = new_promise(env, id)) == NULL)
        goto fail;
    if (state == ST_RUNNING) {
        bridge.call(id, function, args);  /* reports errors through complete() */
    } else {
        static const char ended[] =
            "{\"type\": \"RuntimeError\", \"message\": \"the Python program is not running\"}";
        bridge_complete(id, STATUS_ERROR, ended, sizeof ended - 1);
    }
    free(function);
    free(args);
    return promise;
fail:
    free(function);
    free(args);
    return NULL;
}

/* shutdown(): end the Python program the way asyncio.run ends (main is
 * cancelled, then the leftovers), in Node's next loop iterations. */
static napi_value js_shutdown(napi_env env, napi_callback_info info)
{
    (void)info;
    if (wrong_env(env))
        return NULL;
    if (state == ST_RUNNING)
        bridge.shutdown();
    return undefined(env);
}

/* finalize(force) -> true once Python is finalized (or was never started).
 *
 * force = false ('beforeExit': Node's loop is empty, nothing is inside
 * uv_run): finishes a guest that has ended and finalizes once the close
 * callbacks of its handles have run and the results are delivered;
 * returns false while that needs more loop iterations (they will come:
 * what is pending keeps the loop alive).
 * force = true ('exit', which process.exit() also emits, possibly from
 * inside uv_run): ends the program without polling, finalizes at once. */
static napi_value js_finalize(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], result;
    bool force = false;

    if (wrong_env(env))
        return NULL;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc >= 1)
        napi_get_value_bool(env, argv[0], &force);

    if (state == ST_RUNNING && (force || bridge.ended()))
        finish_guest();
    if (state == ST_READY || state == ST_FINISHED) {
        if (force || (queue_head == NULL && bridge.pending_closes() == 0)) {
            close_handles();
            python_finalize();
        }
    }
    napi_get_boolean(env, state == ST_NONE || state == ST_FINALIZED, &result);
    return result;
}

/* state() -> "none" | "ready" | "running" | "finished" | "finalized" */
static napi_value js_state(napi_env env, napi_callback_info info)
{
    static const char *names[] = {"none", "ready", "running", "finished", "finalized"};
    napi_value result;
    (void)info;
    napi_create_string_utf8(env, names[state], NAPI_AUTO_LENGTH, &result);
    return result;
}

/* Node tears the environment down (after 'exit', when the process ends
 * normally; process.exit() skips this): whatever is left is forced. */
static void on_env_cleanup(void *arg)
{
    if ((napi_env)arg != main_env)  /* a worker's env, or init() never ran */
        return;
    if (state == ST_RUNNING)
        finish_guest();
    if (state == ST_READY || state == ST_FINISHED)
        python_finalize();
    close_handles();
}

NAPI_MODULE_INIT()
{
    static const struct {
        const char *name;
        napi_callback cb;
    } functions[] = {
        {"init", js_init},         {"start", js_start},
        {"call", js_call},         {"shutdown", js_shutdown},
        {"finalize", js_finalize}, {"state", js_state},
    };
    size_t i;
    for (i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        napi_value fn;
        NAPI_OK(napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH,
                                     functions[i].cb, NULL, &fn));
        NAPI_OK(napi_set_named_property(env, exports, functions[i].name, fn));
    }
    napi_add_env_cleanup_hook(env, on_env_cleanup, env);
    return exports;
}
