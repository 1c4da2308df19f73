/* uvffi._capsule: the PyCapsule named "uv_loop_t", in both directions.
 *
 * Why a separate extension module: a PyCapsule can only be created or
 * opened through the Python C-API.  The cffi module uvffi._uv must stay free
 * of the C-API (on PyPy it is loaded by _cffi_backend, not by cpyext), and
 * ctypes.pythonapi does not exist on PyPy.  A regular extension module with
 * three functions is portable: CPython loads it natively and PyPy through
 * cpyext, and it is only called when a capsule is asked for or handed in,
 * never on a hot path.
 *
 * The capsule does not own the loop: its context holds a strong reference
 * to an "owner" object (the uvffi Loop that the pointer belongs to), so the
 * uv_loop_t memory cannot be freed while a C extension still holds the
 * capsule.  Whether the loop is still *open* is the owner's business. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static const char CAPSULE_NAME[] = "uv_loop_t";

static void capsule_destructor(PyObject *capsule)
{
    PyObject *owner = (PyObject *)PyCapsule_GetContext(capsule);
    Py_XDECREF(owner);
}

/* new(address: int, owner: object) -> PyCapsule named "uv_loop_t" */
static PyObject *capsule_new(PyObject *self, PyObject *args)
{
    unsigned long long address;
    PyObject *owner, *capsule;
    (void)self;
    if (!PyArg_ParseTuple(args, "KO:new", &address, &owner))
        return NULL;
    if (address == 0) {
        PyErr_SetString(PyExc_ValueError, "uv_loop_t pointer is NULL");
        return NULL;
    }
    capsule = PyCapsule_New((void *)(uintptr_t)address, CAPSULE_NAME,
                            capsule_destructor);
    if (capsule == NULL)
        return NULL;
    Py_INCREF(owner);
    if (PyCapsule_SetContext(capsule, owner) != 0) {
        Py_DECREF(owner);
        Py_DECREF(capsule);
        return NULL;
    }
    return capsule;
}

/* address(capsule) -> int; ValueError unless it is named "uv_loop_t" */
static PyObject *capsule_address(PyObject *self, PyObject *obj)
{
    void *ptr;
    const char *name;
    (void)self;
    if (!PyCapsule_CheckExact(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected a PyCapsule");
        return NULL;
    }
    name = PyCapsule_GetName(obj);
    if (name == NULL || strcmp(name, CAPSULE_NAME) != 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError,
                         "expected a PyCapsule named \"uv_loop_t\", got %s%s%s",
                         name ? "\"" : "", name ? name : "an unnamed one",
                         name ? "\"" : "");
        return NULL;
    }
    ptr = PyCapsule_GetPointer(obj, CAPSULE_NAME);
    if (ptr == NULL)
        return NULL;
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)ptr);
}

/* is_capsule(obj) -> bool */
static PyObject *capsule_is_capsule(PyObject *self, PyObject *obj)
{
    (void)self;
    return PyBool_FromLong(PyCapsule_CheckExact(obj));
}

static PyMethodDef capsule_methods[] = {
    {"new", capsule_new, METH_VARARGS,
     "new(address, owner) -> PyCapsule named \"uv_loop_t\" that keeps owner alive"},
    {"address", capsule_address, METH_O,
     "address(capsule) -> the uv_loop_t pointer of a \"uv_loop_t\" capsule, as an int"},
    {"is_capsule", capsule_is_capsule, METH_O,
     "is_capsule(obj) -> whether obj is a PyCapsule"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef capsule_module = {
    PyModuleDef_HEAD_INIT, "uvffi._capsule",
    "PyCapsule \"uv_loop_t\" support for uvffi (Python C-API kept out of the cffi module).",
    -1, capsule_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__capsule(void)
{
    return PyModule_Create(&capsule_module);
}
