/* A C program that owns a libuv loop and lets Python's asyncio run on it.
 *
 * The host creates its loop and a timer of its own, embeds CPython, hands
 * the loop to guest_app.start() as a PyCapsule named "uv_loop_t" (uvffi puts
 * its asyncio loop in guest mode on it), and runs uv_run() until nothing is
 * left: its own timer has stopped and the Python task has finished (which
 * ends guest mode).  Then guest_app.finish() closes the Python loop, one more
 * uv_run() lets libuv run the close callbacks of uvffi's handles, and the
 * host closes its loop.
 *
 *   usage: uvffi_embed_host [DIR-OF-guest_app.py]
 *   uvffi must be importable: installed in the active virtual environment
 *   ($VIRTUAL_ENV, which the host hands to Python as its program name so that
 *   Python finds the venv's site-packages), installed system-wide, or on
 *   PYTHONPATH (a source tree after tools/devbuild.sh: PYTHONPATH=src). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef UVFFI_EXAMPLE_DIR
#define UVFFI_EXAMPLE_DIR "."
#endif

#define HOST_TICKS 5

static uv_timer_t host_timer;
static int ticks;

static void on_host_tick(uv_timer_t *timer)
{
    ++ticks;
    printf("host: tick %d\n", ticks);
    fflush(stdout);  /* Python writes to the same pipe with its own buffer */
    if (ticks == HOST_TICKS)
        uv_close((uv_handle_t *)timer, NULL);
}

/* Call guest_app.NAME(arg or nothing); 0 on success, Python error printed. */
static int call_guest(PyObject *module, const char *name, PyObject *arg)
{
    PyObject *res = arg ? PyObject_CallMethod(module, name, "O", arg)
                        : PyObject_CallMethod(module, name, NULL);
    if (res == NULL) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* Python as an embedded interpreter; inside an activated virtual environment
 * it is that venv's Python (pyvenv.cfg next to $VIRTUAL_ENV/bin/python makes
 * sys.prefix the venv), as if the user had run the venv's python. */
static int start_python(void)
{
    const char *venv = getenv("VIRTUAL_ENV");
    PyConfig config;
    PyStatus status;

    PyConfig_InitPythonConfig(&config);
    if (venv != NULL && venv[0] != '\0') {
        char program[4096];
        snprintf(program, sizeof program, "%s/bin/python", venv);
        status = PyConfig_SetBytesString(&config, &config.program_name, program);
        if (PyStatus_Exception(status))
            goto fail;
    }
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        goto fail;
    PyConfig_Clear(&config);
    return 0;
fail:
    PyConfig_Clear(&config);
    fprintf(stderr, "host: cannot start Python: %s\n",
            status.err_msg ? status.err_msg : "unknown error");
    return -1;
}

/* uv_run without holding the GIL: uvffi's callbacks take it when they run
 * (cffi does PyGILState_Ensure), and Python threads -- run_in_executor,
 * call_soon_threadsafe -- need it while the host sleeps in its poll. */
static int run_loop(uv_loop_t *loop)
{
    PyThreadState *ts = PyEval_SaveThread();
    int rc = uv_run(loop, UV_RUN_DEFAULT);
    PyEval_RestoreThread(ts);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : UVFFI_EXAMPLE_DIR;
    uv_loop_t loop;
    PyObject *sys_path, *entry, *module, *capsule;
    int status = 1, rc;

    if (uv_loop_init(&loop) != 0)
        return 1;
    uv_timer_init(&loop, &host_timer);
    uv_timer_start(&host_timer, on_host_tick, 30, 30);

    if (start_python() != 0)
        return 1;
    sys_path = PySys_GetObject("path");              /* borrowed */
    entry = PyUnicode_DecodeFSDefault(dir);
    if (sys_path == NULL || entry == NULL || PyList_Insert(sys_path, 0, entry) != 0) {
        PyErr_Print();
        goto out;
    }
    Py_DECREF(entry);

    module = PyImport_ImportModule("guest_app");
    if (module == NULL) {
        PyErr_Print();
        goto out;
    }
    /* The capsule does not own the loop: the host does, and keeps it alive
     * until after guest_app.finish(). */
    capsule = PyCapsule_New(&loop, "uv_loop_t", NULL);
    if (capsule == NULL || call_guest(module, "start", capsule) != 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        goto out;
    }
    Py_DECREF(capsule);

    printf("host: running uv_run\n");
    fflush(stdout);
    run_loop(&loop);
    printf("host: uv_run returned after %d ticks\n", ticks);
    fflush(stdout);

    /* stop_guest() re-raises a KeyboardInterrupt/SystemExit that happened
     * inside the loop; close() asks libuv to close uvffi's handles. */
    status = call_guest(module, "finish", NULL) == 0 ? 0 : 1;
    Py_DECREF(module);
    run_loop(&loop);  /* the close callbacks of uvffi's handles */

out:
    if (Py_FinalizeEx() < 0)
        status = 120;
    if (!uv_is_closing((uv_handle_t *)&host_timer))
        uv_close((uv_handle_t *)&host_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    printf("host: uv_loop_close -> %d\n", rc);
    return status != 0 ? status : (rc != 0);
}
