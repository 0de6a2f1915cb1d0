/* The hot path of gradx compiled: dispatch of a primitive on Tensors (apply, and Tensor's
 * arithmetic operators), the backward walk (walk, accumulate_leaves), forward mode's
 * tangent pass (push), the per-node helpers of tape passes (toposort, wrap_saved,
 * Tensor._make), the namespace lookup of op bodies (namespace_lookup), NumPy's
 * Backend.owned (owned_or_copy), and Scope, the context manager of every ContextVar gradx
 * sets for a block (grad mode, anomaly mode, the scoped backend), whose set and restore an
 * interrupt cannot split.
 *
 * Each function is a line-for-line counterpart of a Python function (_primitive._apply,
 * the Tensor operator methods, _tape._walk, _tape._accumulate_leaves, _forward._push,
 * _tape._toposort, _tape._wrap_saved, Tensor._make, _backend._ns, numpy_backend._owned,
 * _tape._PyScope), which stays the reference and the fallback. The Python classes
 * Tensor, Node and Primitive keep their __slots__; their offsets are read once from the member descriptors,
 * so a field is one load here instead of an attribute lookup. Anything rare (views,
 * recorders, errors, the first unbroadcast of a pair of shapes, anomaly checks, a tangent
 * to broadcast or cast) is left to the Python helpers handed over by configure(): only the
 * common path lives here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#ifdef Py_GIL_DISABLED
/* The reference counts read here (is a gradient held by anything but the tape?) and the
 * unlocked dict and slot accesses assume the GIL. A free-threaded build fails here and
 * setup.py, which marks the extension optional, installs gradx with its Python hot path. */
#error "gradx._speedups needs a CPython with the GIL"
#endif

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

typedef struct {
    Py_ssize_t data, grad, requires_grad, node, backend, version;
} TensorSlots;
typedef struct {
    Py_ssize_t prim, args, kwargs, ans, argnums, parents, shape, dtype, versions, backend, seq;
} NodeSlots;
typedef struct {
    Py_ssize_t fun, broadcasts, special, saves_args, saves_ans, vjps, vjp_argnum, jvps;
} PrimSlots;

static PyTypeObject *Tensor_T, *Node_T, *Prim_T, *Meta_T;
static TensorSlots TS;
static NodeSlots NS;
static PrimSlots PS;

static PyObject *grad_var, *anomaly_var, *seq_counter, *last_change, *debug_flag, *hooked_flag;
static PyObject *nones;          /* list: nones[n] is a tuple of n Nones */
static PyObject *py_apply, *py_finish, *py_reraise, *py_metas, *py_annotate;
static PyObject *identity_vjp, *py_check_versions, *py_fit, *py_check_finite, *py_wrap_saved;
static PyObject *py_add_into, *py_rule_failed, *py_no_rule, *py_freed, *py_leaves;
static PyObject *GraphError, *NotDifferentiableError;
static PyObject *py_make, *creation_number;
static PyObject *py_jvp_one, *py_conform, *py_jvp_freed; /* the tangent pass */
static PyObject *sum_plans, *py_sum, *py_reshape, *axis_kwnames; /* unbroadcasting */
static PyObject *s_dtype, *s_shape, *s_float_dtypes, *s_is_float, *s_writable, *s_owned;
static PyObject *s_copy, *s_base, *small_ints[3]; /* 0, 1, -1 */
static PyObject *argnums_first, *argnums_second, *argnums_both; /* (0,), (1,), (0, 1) */
static PyObject *s_sort, *sort_kwnames;  /* "sort", ("key", "reverse") */
static Py_ssize_t one_holder;        /* references of an array held by one C local */
static int configured;

/* the float-dtype table of the backend seen last: one dict probe per recorded node */
static PyObject *fd_backend, *fd_table;

static inline void
set_slot(PyObject *obj, Py_ssize_t off, PyObject *value) /* steals value */
{
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = value;
    Py_XDECREF(old);
}

static inline PyObject *
get_slot(PyObject *obj, Py_ssize_t off, const char *name) /* borrowed */
{
    PyObject *v = SLOT(obj, off);
    if (v == NULL)
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(obj)->tp_name, name);
    return v;
}

static inline int
truthy(PyObject *v)
{
    if (v == Py_True) return 1;
    if (v == Py_False || v == Py_None) return 0;
    return PyObject_IsTrue(v);
}

/* A tuple or list of objects the cyclic collector does not track cannot be part of a
 * cycle: stop tracking it at once, rather than have every collection traverse it until
 * one finds that out (for a list the collector never does). */
static inline void
untrack_if_atomic(PyObject *seq)
{
    Py_ssize_t n = PyTuple_Check(seq) ? PyTuple_GET_SIZE(seq) : PyList_GET_SIZE(seq);
    PyObject **items = PyTuple_Check(seq) ? &PyTuple_GET_ITEM(seq, 0) : &PyList_GET_ITEM(seq, 0);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyObject_GC_IsTracked(items[i])) return;
    if (PyObject_GC_IsTracked(seq)) PyObject_GC_UnTrack(seq);
}

static inline int
is_tensor(PyObject *o)
{
    return Py_IS_TYPE(o, Tensor_T) || PyType_IsSubtype(Py_TYPE(o), Tensor_T);
}

static inline int
is_primitive(PyObject *o)
{
    return Py_IS_TYPE(o, Prim_T) || PyType_IsSubtype(Py_TYPE(o), Prim_T);
}

/* o.requires_grad, read from the slot when o is a Tensor: 1, 0, or -1 with an error set */
static int
requires_grad_of(PyObject *o)
{
    if (is_tensor(o)) {
        PyObject *v = get_slot(o, TS.requires_grad, "requires_grad");
        return v == NULL ? -1 : truthy(v);
    }
    PyObject *v = PyObject_GetAttrString(o, "requires_grad");
    if (v == NULL) return -1;
    int r = truthy(v);
    Py_DECREF(v);
    return r;
}

/* type(o) in (bool, int, float, complex, NoneType) */
static inline int
is_scalar(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    /* not complex: a complex scalar goes to Python's dispatch, which refuses it */
    return t == &PyFloat_Type || t == &PyLong_Type || t == &PyBool_Type || o == Py_None;
}

static int
flag_set(PyObject *flag_list)
{
    return truthy(PyList_GET_ITEM(flag_list, 0));
}

static int
context_flag(PyObject *var)
{
    PyObject *v;
    if (PyContextVar_Get(var, NULL, &v) < 0) return -1;
    int r = truthy(v);
    Py_DECREF(v);
    return r;
}

/* -- configure ------------------------------------------------------------------------ */

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *out)
{
    PyObject *d = PyDict_GetItemString(type->tp_dict, name);
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ member", type->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name, name);
        return -1;
    }
    *out = m->offset;
    return 0;
}

static PyObject *
take(PyObject *ns, const char *name)
{
    PyObject *v = PyDict_GetItemString(ns, name);
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "configure: missing %s", name);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

#define TAKE(var, name) if ((var = take(ns, name)) == NULL) return NULL

static PyObject *
configure(PyObject *self, PyObject *ns)
{
    if (!PyDict_Check(ns)) {
        PyErr_SetString(PyExc_TypeError, "configure takes a dict");
        return NULL;
    }
    PyObject *t;
    TAKE(t, "Tensor");
    Tensor_T = (PyTypeObject *)t;
    TAKE(t, "Node");
    Node_T = (PyTypeObject *)t;
    TAKE(t, "Primitive");
    Prim_T = (PyTypeObject *)t;
    if (!PyType_Check(Tensor_T) || !PyType_Check(Node_T) || !PyType_Check(Prim_T)) {
        PyErr_SetString(PyExc_TypeError, "configure: Tensor, Node, Primitive must be classes");
        return NULL;
    }
    if (slot_offset(Tensor_T, "data", &TS.data) || slot_offset(Tensor_T, "grad", &TS.grad)
        || slot_offset(Tensor_T, "requires_grad", &TS.requires_grad)
        || slot_offset(Tensor_T, "_node", &TS.node)
        || slot_offset(Tensor_T, "_backend", &TS.backend)
        || slot_offset(Tensor_T, "_version", &TS.version)
        || slot_offset(Node_T, "prim", &NS.prim) || slot_offset(Node_T, "args", &NS.args)
        || slot_offset(Node_T, "kwargs", &NS.kwargs) || slot_offset(Node_T, "ans", &NS.ans)
        || slot_offset(Node_T, "argnums", &NS.argnums)
        || slot_offset(Node_T, "parents", &NS.parents)
        || slot_offset(Node_T, "shape", &NS.shape) || slot_offset(Node_T, "dtype", &NS.dtype)
        || slot_offset(Node_T, "versions", &NS.versions)
        || slot_offset(Node_T, "backend", &NS.backend) || slot_offset(Node_T, "seq", &NS.seq)
        || slot_offset(Prim_T, "fun", &PS.fun) || slot_offset(Prim_T, "special", &PS.special)
        || slot_offset(Prim_T, "broadcasts", &PS.broadcasts)
        || slot_offset(Prim_T, "saves_args", &PS.saves_args)
        || slot_offset(Prim_T, "saves_ans", &PS.saves_ans)
        || slot_offset(Prim_T, "vjps", &PS.vjps)
        || slot_offset(Prim_T, "vjp_argnum", &PS.vjp_argnum)
        || slot_offset(Prim_T, "jvps", &PS.jvps))
        return NULL;
    TAKE(grad_var, "grad_enabled");
    TAKE(anomaly_var, "anomaly");
    TAKE(seq_counter, "seq");
    TAKE(last_change, "last_change");
    TAKE(debug_flag, "debug");
    TAKE(hooked_flag, "hooked");
    TAKE(nones, "nones");
    TAKE(py_apply, "apply");
    TAKE(py_finish, "finish");
    TAKE(py_reraise, "reraise");
    TAKE(py_metas, "metas");
    TAKE(py_annotate, "annotate");
    TAKE(identity_vjp, "identity_vjp");
    TAKE(py_check_versions, "check_versions");
    TAKE(py_fit, "fit");
    TAKE(py_check_finite, "check_finite");
    TAKE(py_wrap_saved, "wrap_saved");
    TAKE(py_add_into, "add_into");
    TAKE(py_rule_failed, "rule_failed");
    TAKE(py_no_rule, "no_rule");
    TAKE(py_freed, "freed");
    TAKE(py_leaves, "accumulate_leaves");
    TAKE(GraphError, "GraphError");
    TAKE(py_make, "make");
    TAKE(t, "Meta");
    if (!PyType_Check(t)) {
        PyErr_SetString(PyExc_TypeError, "configure: Meta must be a class");
        return NULL;
    }
    Meta_T = (PyTypeObject *)t;
    TAKE(creation_number, "creation_number");
    TAKE(NotDifferentiableError, "NotDifferentiableError");
    TAKE(sum_plans, "sum_plans");
    TAKE(py_sum, "sum");
    TAKE(py_reshape, "reshape");
    TAKE(py_jvp_one, "jvp_one");
    TAKE(py_conform, "conform");
    TAKE(py_jvp_freed, "jvp_freed");
    if (!PyDict_Check(sum_plans)) {
        PyErr_SetString(PyExc_TypeError, "configure: sum_plans must be a dict");
        return NULL;
    }
    if (!PyList_Check(last_change) || !PyList_Check(debug_flag) || !PyList_Check(hooked_flag)
        || !PyList_Check(nones)) {
        PyErr_SetString(PyExc_TypeError, "configure: flags and nones must be lists");
        return NULL;
    }
    configured = 1;
    Py_RETURN_NONE;
}

/* -- apply ---------------------------------------------------------------------------- */

/* what a node records as the parent of input Tensor t: its node, or t for a leaf (borrowed) */
static inline PyObject *
parent_of(PyObject *t)
{
    PyObject *node = SLOT(t, TS.node);
    return (node != NULL && node != Py_None) ? node : t;
}

/* a node's argnums and parents (borrowed): parallel tuples, or -1 with TypeError */
static int
node_links(PyObject *node, const char *who, PyObject **argnums, PyObject **parents)
{
    *argnums = SLOT(node, NS.argnums);
    *parents = SLOT(node, NS.parents);
    if (*argnums == NULL || *parents == NULL || !PyTuple_Check(*argnums)
        || !PyTuple_Check(*parents) || PyTuple_GET_SIZE(*argnums) != PyTuple_GET_SIZE(*parents)) {
        PyErr_Format(PyExc_TypeError, "%s: a node's argnums and parents must be tuples of one "
                     "length", who);
        return -1;
    }
    return 0;
}

/* Hand the pending exception to a Python helper, ``helper(a, b, c, exc)``, that raises the
 * error gradx reports instead (naming the op, its inputs or its rule); always NULL. */
static PyObject *
raise_through(PyObject *helper, PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *type, *val, *tb;
    PyErr_Fetch(&type, &val, &tb);
    PyErr_NormalizeException(&type, &val, &tb);
    if (tb != NULL && val != NULL) PyException_SetTraceback(val, tb);
    PyObject *r = val == NULL ? NULL
        : PyObject_CallFunctionObjArgs(helper, a, b, c, val, NULL);
    if (r != NULL) { /* the helper always raises; keep the original error if not */
        Py_DECREF(r);
        PyErr_Restore(type, val, tb);
        return NULL;
    }
    Py_XDECREF(type);
    Py_XDECREF(val);
    Py_XDECREF(tb);
    return NULL;
}

static PyObject *
reraise(PyObject *prim, PyObject *args, PyObject *kwargs)
{
    return raise_through(py_reraise, prim, args, kwargs);
}

static int
float_dtype(PyObject *backend, PyObject *dtype)
{
    if (backend != fd_backend) {
        PyObject *table = PyObject_GetAttr(backend, s_float_dtypes);
        if (table == NULL) return -1;
        if (!PyDict_Check(table)) {
            Py_DECREF(table);
            table = NULL;
        }
        Py_XSETREF(fd_table, table);
        Py_INCREF(backend);
        Py_XSETREF(fd_backend, backend);
    }
    if (fd_table != NULL) {
        PyObject *known = PyDict_GetItemWithError(fd_table, dtype);
        if (known != NULL) return truthy(known);
        if (PyErr_Occurred()) return -1;
    }
    PyObject *r = PyObject_CallMethodOneArg(backend, s_is_float, dtype);
    if (r == NULL) return -1;
    int f = truthy(r);
    Py_DECREF(r);
    return f;
}

/* A Tensor with the given fields (Tensor._make); steals ``version`` */
static PyObject *
new_tensor(PyObject *data, PyObject *backend, PyObject *node, PyObject *requires_grad,
           PyObject *version)
{
    PyObject *t = Tensor_T->tp_alloc(Tensor_T, 0);
    if (t == NULL) {
        Py_DECREF(version);
        return NULL;
    }
    Py_INCREF(data);
    SLOT(t, TS.data) = data;
    Py_INCREF(backend);
    SLOT(t, TS.backend) = backend;
    SLOT(t, TS.version) = version;
    Py_INCREF(Py_None);
    SLOT(t, TS.grad) = Py_None;
    Py_INCREF(node);
    SLOT(t, TS.node) = node;
    Py_INCREF(requires_grad);
    SLOT(t, TS.requires_grad) = requires_grad;
    return t;
}

/* Tensor._make(data, backend, node, requires_grad, [0]); the version list is untracked, as
 * it only ever holds an int (bump() writes ints only) */
static PyObject *
make_linked(PyObject *data, PyObject *backend, PyObject *node, PyObject *requires_grad)
{
    PyObject *version = PyList_New(1);
    if (version == NULL) return NULL;
    Py_INCREF(small_ints[0]);
    PyList_SET_ITEM(version, 0, small_ints[0]);
    PyObject_GC_UnTrack(version);
    return new_tensor(data, backend, node, requires_grad, version);
}

/* Tensor._make(data, backend, None, False, [0]) */
static inline PyObject *
make_tensor(PyObject *data, PyObject *backend)
{
    return make_linked(data, backend, Py_None, Py_False);
}

/* every slot dispatch reads is set (a Tensor whose attribute was deleted is not) */
static inline int
tensor_complete(PyObject *t)
{
    return SLOT(t, TS.data) != NULL && SLOT(t, TS.backend) != NULL
        && SLOT(t, TS.version) != NULL && SLOT(t, TS.requires_grad) != NULL;
}

/* apply(prim, args, kwargs): _primitive._apply for one or two arguments, Tensors or a
 * Tensor and a Python scalar; every other call goes to the Python function. */
static PyObject *
apply(PyObject *self, PyObject *const *fa, Py_ssize_t nfa)
{
    if (nfa != 3) {
        PyErr_SetString(PyExc_TypeError, "apply(prim, args, kwargs)");
        return NULL;
    }
    PyObject *prim = fa[0], *args = fa[1], *kwargs = fa[2];
    if (!Py_IS_TYPE(prim, Prim_T) || !PyTuple_CheckExact(args) || !PyDict_CheckExact(kwargs)
        || SLOT(prim, PS.fun) == NULL || SLOT(prim, PS.special) == NULL
        || SLOT(prim, PS.saves_args) == NULL || SLOT(prim, PS.saves_ans) == NULL)
        return PyObject_Vectorcall(py_apply, fa, 3, NULL);
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *a, *b = NULL, *t = NULL; /* t: the Tensor whose backend is used */
    int a_t = 0, b_t = 0;
    if (n == 2) {
        a = PyTuple_GET_ITEM(args, 0);
        b = PyTuple_GET_ITEM(args, 1);
        a_t = is_tensor(a);
        b_t = is_tensor(b);
        if (a_t && b_t) {
            if (SLOT(a, TS.backend) != SLOT(b, TS.backend))
                return PyObject_Vectorcall(py_apply, fa, 3, NULL); /* raises the mismatch */
        }
        else if (!((a_t && is_scalar(b)) || (b_t && is_scalar(a))))
            return PyObject_Vectorcall(py_apply, fa, 3, NULL);
        t = a_t ? a : b;
    }
    else if (n == 1) {
        a = PyTuple_GET_ITEM(args, 0);
        if (!is_tensor(a)) return PyObject_Vectorcall(py_apply, fa, 3, NULL);
        a_t = 1;
        t = a;
    }
    else
        return PyObject_Vectorcall(py_apply, fa, 3, NULL);

    if ((a_t && !tensor_complete(a)) || (b_t && !tensor_complete(b)))
        return PyObject_Vectorcall(py_apply, fa, 3, NULL); /* raises the missing attribute */
    PyObject *backend = SLOT(t, TS.backend);
    int grad_on = context_flag(grad_var);
    if (grad_on < 0) return NULL;
    int a_req = 0, b_req = 0;
    if (grad_on) {
        /* complete Tensors: the slot itself, without requires_grad_of's type test */
        if (a_t && (a_req = truthy(SLOT(a, TS.requires_grad))) < 0) return NULL;
        if (b_t && (b_req = truthy(SLOT(b, TS.requires_grad))) < 0) return NULL;
    }
    PyObject *raw = PyTuple_New(n);
    if (raw == NULL) return NULL;
    PyObject *x = a_t ? SLOT(a, TS.data) : a;
    Py_INCREF(x);
    PyTuple_SET_ITEM(raw, 0, x);
    if (n == 2) {
        x = b_t ? SLOT(b, TS.data) : b;
        Py_INCREF(x);
        PyTuple_SET_ITEM(raw, 1, x);
    }
    PyObject *parents = NULL, *argnums = NULL; /* argnums: borrowed constant */
    if (a_req || b_req) {
        if (a_req && b_req) {
            argnums = argnums_both;
            parents = PyTuple_Pack(2, parent_of(a), parent_of(b));
        }
        else {
            argnums = a_req ? argnums_first : argnums_second;
            parents = PyTuple_Pack(1, parent_of(a_req ? a : b));
        }
        if (parents == NULL) goto fail_raw;
    }
    PyObject *fun = SLOT(prim, PS.fun);
    PyObject *ans = PyDict_GET_SIZE(kwargs)
        ? PyObject_Call(fun, raw, kwargs)
        : PyObject_Vectorcall(fun, &PyTuple_GET_ITEM(raw, 0), n, NULL);
    if (ans == NULL) {
        Py_XDECREF(parents);
        Py_DECREF(raw);
        return reraise(prim, args, kwargs);
    }
    int special = truthy(SLOT(prim, PS.special));
    if (special < 0) goto fail_ans;
    if (special || flag_set(hooked_flag)) {
        PyObject *r = PyObject_CallFunctionObjArgs(
            py_finish, prim, args, kwargs, ans, backend, argnums ? argnums : Py_None,
            parents ? parents : Py_None, raw, NULL);
        Py_XDECREF(parents);
        Py_DECREF(raw);
        Py_DECREF(ans);
        return r;
    }
    PyObject *out = make_tensor(ans, backend);
    if (out == NULL) goto fail_ans;
    PyObject *version = SLOT(out, TS.version);
    if (parents != NULL) {
        PyObject *dtype = PyObject_GetAttr(ans, s_dtype);
        if (dtype == NULL) goto fail_out;
        int is_float = float_dtype(backend, dtype);
        if (is_float < 0) {
            Py_DECREF(dtype);
            goto fail_out;
        }
        if (is_float) {
            PyObject *shape = PyObject_GetAttr(ans, s_shape);
            if (shape == NULL) {
                Py_DECREF(dtype);
                goto fail_out;
            }
            PyObject *saves = SLOT(prim, PS.saves_args), *saved, *versions;
            int saves_ans = truthy(SLOT(prim, PS.saves_ans));
            if (saves == Py_True) {
                Py_INCREF(raw);
                saved = raw;
                PyObject *va = a_t ? SLOT(a, TS.version) : NULL;
                PyObject *vb = b_t ? SLOT(b, TS.version) : NULL;
                if (va && vb)
                    versions = saves_ans
                        ? PyTuple_Pack(6, va, small_ints[0], vb, small_ints[1], version,
                                       small_ints[2])
                        : PyTuple_Pack(4, va, small_ints[0], vb, small_ints[1]);
                else {
                    PyObject *v = va ? va : vb, *i = va ? small_ints[0] : small_ints[1];
                    versions = saves_ans ? PyTuple_Pack(4, v, i, version, small_ints[2])
                                         : PyTuple_Pack(2, v, i);
                }
            }
            else {
                if (saves == Py_False) {
                    saved = PyList_GET_ITEM(nones, n);
                    Py_INCREF(saved);
                }
                else
                    saved = PyObject_CallOneArg(py_metas, raw);
                versions = saves_ans ? PyTuple_Pack(2, version, small_ints[2]) : PyTuple_New(0);
            }
            PyObject *seq = PyIter_Next(seq_counter);
            PyObject *node = Node_T->tp_alloc(Node_T, 0);
            if (saved == NULL || versions == NULL || seq == NULL || node == NULL) {
                Py_XDECREF(saved);
                Py_XDECREF(versions);
                Py_XDECREF(seq);
                Py_XDECREF(node);
                Py_DECREF(shape);
                Py_DECREF(dtype);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "node numbering ended");
                goto fail_out;
            }
            if (PyTuple_Check(saved)) untrack_if_atomic(saved);
            untrack_if_atomic(versions);
            if (PyTuple_Check(shape)) untrack_if_atomic(shape);
            SLOT(node, NS.args) = saved;
            if (saves_ans) {
                Py_INCREF(ans);
                SLOT(node, NS.ans) = ans;
            }
            else {
                Py_INCREF(Py_None);
                SLOT(node, NS.ans) = Py_None;
            }
            SLOT(node, NS.versions) = versions;
            Py_INCREF(prim);
            SLOT(node, NS.prim) = prim;
            Py_INCREF(kwargs);
            SLOT(node, NS.kwargs) = kwargs;
            Py_INCREF(argnums);
            SLOT(node, NS.argnums) = argnums;
            SLOT(node, NS.parents) = parents;
            parents = NULL;
            SLOT(node, NS.shape) = shape;
            SLOT(node, NS.dtype) = dtype;
            Py_INCREF(backend);
            SLOT(node, NS.backend) = backend;
            SLOT(node, NS.seq) = seq;
            if (flag_set(debug_flag)) {
                PyObject *r = PyObject_CallOneArg(py_annotate, node);
                if (r == NULL) {
                    Py_DECREF(node);
                    goto fail_out;
                }
                Py_DECREF(r);
            }
            set_slot(out, TS.node, node);
            Py_INCREF(Py_True);
            set_slot(out, TS.requires_grad, Py_True);
            Py_DECREF(raw);
            Py_DECREF(ans);
            return out;
        }
        Py_DECREF(dtype);
        Py_CLEAR(parents);
    }
    Py_DECREF(raw);
    Py_DECREF(ans);
    return out;

fail_out:
    Py_DECREF(out);
fail_ans:
    Py_DECREF(ans);
    Py_XDECREF(parents);
fail_raw:
    Py_DECREF(raw);
    return NULL;
}

/* Primitive.__call__: a call with a Tensor among its positional arguments is dispatched;
 * one on raw arrays (every rule in a first-order backward) calls the body directly. */
static PyObject *empty_kwargs;

static PyObject *
primitive_call(PyObject *prim, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    int dispatch = 0;
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (is_tensor(args[i])) {
            dispatch = 1;
            break;
        }
    PyObject *fun = is_primitive(prim) ? SLOT(prim, PS.fun) : NULL;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (!dispatch && fun != NULL) {
        PyObject *r = PyObject_Vectorcall(fun, args, nargs, kwnames);
        if (r != NULL) return r;
        PyErr_Fetch(&et, &ev, &etb); /* set aside while the error's arguments are built */
    }
    /* dispatch, or name the error of a failed call: both need a tuple and a dict */
    PyObject *tup = PyTuple_New(nargs), *kwargs = NULL, *r = NULL;
    if (tup == NULL) goto done;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tup, i, args[i]);
    }
    if (nkw == 0 && dispatch) {
        kwargs = empty_kwargs;
        Py_INCREF(kwargs);
    }
    else {
        if ((kwargs = PyDict_New()) == NULL) goto done;
        for (Py_ssize_t i = 0; i < nkw; i++)
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i])) goto done;
    }
    if (dispatch) {
        PyObject *fa[3] = {prim, tup, kwargs};
        r = apply(NULL, fa, 3);
    }
    else if (fun == NULL)
        PyErr_SetString(PyExc_TypeError, "Primitive.__call__ needs a gradx Primitive");
    else {
        PyErr_Restore(et, ev, etb);
        et = ev = etb = NULL;
        reraise(prim, tup, kwargs);
    }
done:
    if (et != NULL || ev != NULL) { /* building the arguments failed: report that instead */
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
    }
    Py_XDECREF(tup);
    Py_XDECREF(kwargs);
    return r;
}

static PyMethodDef primitive_call_def = {
    "__call__", (PyCFunction)(void (*)(void))primitive_call, METH_FASTCALL | METH_KEYWORDS,
    "Dispatch on Tensors, or call the body on raw arrays.",
};

static int
require_configured(void)
{
    if (!configured) PyErr_SetString(PyExc_RuntimeError, "configure() first");
    return configured;
}

static PyObject *
primitive_call_method(PyObject *self, PyObject *unused)
{
    return require_configured() ? PyDescr_NewMethod(Prim_T, &primitive_call_def) : NULL;
}

/* -- Tensor._make and toposort -------------------------------------------------------- */

/* Tensor._make(data, backend, node, requires_grad, version) as a classmethod: the Tensor
 * every transform and rule wrapper builds, without a Python frame. Subclasses go to the
 * Python classmethod. */
static PyObject *
tensor_make(PyObject *cls, PyObject *const *a, Py_ssize_t n)
{
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "_make(data, backend, node, requires_grad, version) takes 5 arguments");
        return NULL;
    }
    if (cls != (PyObject *)Tensor_T) {
        PyObject *full[6] = {cls, a[0], a[1], a[2], a[3], a[4]};
        return PyObject_Vectorcall(py_make, full, 6, NULL);
    }
    Py_INCREF(a[4]);
    return new_tensor(a[0], a[1], a[2], a[3], a[4]);
}

static PyMethodDef tensor_make_def = {
    "_make", (PyCFunction)(void (*)(void))tensor_make, METH_FASTCALL,
    "A Tensor from its fields, without running __init__.",
};

static PyObject *
tensor_make_method(PyObject *self, PyObject *unused)
{
    return require_configured() ? PyDescr_NewClassMethod(Tensor_T, &tensor_make_def) : NULL;
}

/* a saved value that rules can read as a Tensor: not a Meta stand-in and not None */
static int
saved_array(PyObject *a)
{
    if (a == Py_None || PyObject_TypeCheck(a, Meta_T)) return 0;
    PyObject *d;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyObject_GetOptionalAttr(a, s_dtype, &d) < 0) return -1;
#else
    if (_PyObject_LookupAttr(a, s_dtype, &d) < 0) return -1;
#endif
    Py_XDECREF(d);
    return d != NULL;
}

/* wrap_saved(node, tensor_cls): _tape._wrap_saved, compiled (create_graph walks and
 * recorded tangent passes call it for every node). */
static PyObject *
wrap_saved_c(PyObject *node, PyObject *cls)
{
    if (!Py_IS_TYPE(node, Node_T) || cls != (PyObject *)Tensor_T)
        return PyObject_CallFunctionObjArgs(py_wrap_saved, node, cls, NULL);
    PyObject *saved = SLOT(node, NS.args), *argnums, *parents;
    PyObject *backend = SLOT(node, NS.backend), *ans = SLOT(node, NS.ans);
    if (node_links(node, "wrap_saved", &argnums, &parents)) return NULL;
    if (saved == NULL || !PyTuple_Check(saved) || backend == NULL || ans == NULL)
        return PyObject_CallFunctionObjArgs(py_wrap_saved, node, cls, NULL);
    Py_ssize_t nargs = PyTuple_GET_SIZE(saved), nparents = PyTuple_GET_SIZE(parents);
    PyObject *args = PyTuple_New(nargs);
    if (args == NULL) return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(PyTuple_GET_ITEM(saved, i));
        PyTuple_SET_ITEM(args, i, PyTuple_GET_ITEM(saved, i));
    }
    for (Py_ssize_t k = 0; k < nparents; k++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(argnums, k));
        if (i == -1 && PyErr_Occurred()) goto fail;
        if (i < 0 || i >= nargs) {
            PyErr_SetString(PyExc_IndexError, "wrap_saved: argnum out of range");
            goto fail;
        }
        PyObject *a = PyTuple_GET_ITEM(args, i), *parent = PyTuple_GET_ITEM(parents, k);
        int is_array = saved_array(a);
        if (is_array < 0) goto fail;
        if (!is_array) continue;  /* nothing saved: Meta or None */
        PyObject *w;
        if (Py_IS_TYPE(parent, Node_T)) {
            w = make_linked(a, backend, parent, Py_True);
            if (w == NULL) goto fail;
        }
        else {
            w = parent;
            Py_INCREF(w);
        }
        PyTuple_SET_ITEM(args, i, w);
        Py_DECREF(a);
    }
    if (nparents < nargs) {
        /* a constant float input as a Tensor too: a rule such as x @ g must not put a raw
         * array left of a Tensor (strict namespaces raise instead of deferring) */
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyObject *a = PyTuple_GET_ITEM(args, i);
            if (a != PyTuple_GET_ITEM(saved, i)) continue;  /* linked above */
            int is_array = saved_array(a);
            if (is_array < 0) goto fail;
            if (!is_array) continue;
            PyObject *dtype = PyObject_GetAttr(a, s_dtype);
            if (dtype == NULL) goto fail;
            int f = float_dtype(backend, dtype);
            Py_DECREF(dtype);
            if (f < 0) goto fail;
            if (!f) continue;
            PyObject *w = make_tensor(a, backend);
            if (w == NULL) goto fail;
            PyTuple_SET_ITEM(args, i, w);
            Py_DECREF(a);
        }
    }
    PyObject *wans;
    if (ans == Py_None) {
        wans = Py_None;
        Py_INCREF(wans);
    }
    else if ((wans = make_linked(ans, backend, node, Py_True)) == NULL)
        goto fail;
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(wans);
        goto fail;
    }
    PyTuple_SET_ITEM(pair, 0, args);
    PyTuple_SET_ITEM(pair, 1, wans);
    return pair;
fail:
    Py_DECREF(args);
    return NULL;
}

static PyObject *
wrap_saved(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "wrap_saved(node, tensor_cls)");
        return NULL;
    }
    return wrap_saved_c(a[0], a[1]);
}

/* toposort(roots, leaves): _tape.toposort, compiled. The nodes reachable from ``roots``
 * (Nodes), latest first; each non-Node parent met on the way is added to the set
 * ``leaves`` unless it is None. */
static PyObject *
toposort(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2 || !PyList_Check(a[0]) || (a[1] != Py_None && !PySet_Check(a[1]))) {
        PyErr_SetString(PyExc_TypeError, "toposort(roots: list, leaves: set | None)");
        return NULL;
    }
    PyObject *roots = a[0], *leaves = a[1] == Py_None ? NULL : a[1];
    PyObject *seen = PySet_New(NULL);
    PyObject *order = PyList_New(0);
    if (seen == NULL || order == NULL) goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(roots); i++) {
        PyObject *r = PyList_GET_ITEM(roots, i);
        int known = PySet_Contains(seen, r);
        if (known < 0 || (!known && (PySet_Add(seen, r) < 0 || PyList_Append(order, r) < 0)))
            goto fail;
    }
    /* order doubles as the work list: every node in it has its parents visited once */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++) {
        PyObject *node = PyList_GET_ITEM(order, i);
        if (!Py_IS_TYPE(node, Node_T)) {
            PyErr_Format(PyExc_TypeError, "toposort: %.100s is not a Node",
                         Py_TYPE(node)->tp_name);
            goto fail;
        }
        PyObject *argnums, *parents;
        if (node_links(node, "toposort", &argnums, &parents)) goto fail;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(parents); k++) {
            PyObject *p = PyTuple_GET_ITEM(parents, k);
            if (Py_IS_TYPE(p, Node_T)) {
                int known = PySet_Contains(seen, p);
                if (known < 0) goto fail;
                if (!known && (PySet_Add(seen, p) < 0 || PyList_Append(order, p) < 0))
                    goto fail;
            }
            else if (leaves != NULL && p != Py_None && PySet_Add(leaves, p) < 0)
                goto fail;
        }
    }
    Py_DECREF(seen);
    /* a node is always recorded after its parents: descending creation number, as
     * order.sort(key=creation_number, reverse=True) */
    PyObject *call[3] = {order, creation_number, Py_True};
    PyObject *none = PyObject_VectorcallMethod(s_sort, call, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                               sort_kwnames);
    if (none == NULL) goto fail_order;
    Py_DECREF(none);
    return order;
fail:
    Py_XDECREF(seen);
fail_order:
    Py_XDECREF(order);
    return NULL;
}

/* -- walk ----------------------------------------------------------------------------- */

typedef struct {
    long long key;
    PyObject *node; /* strong */
} HeapItem;

typedef struct {
    HeapItem *items;
    Py_ssize_t len, cap;
} Heap;

static int
heap_push(Heap *h, long long key, PyObject *node)
{
    if (h->len == h->cap) {
        Py_ssize_t cap = h->cap ? 2 * h->cap : 64;
        HeapItem *items = PyMem_Realloc(h->items, cap * sizeof(HeapItem));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->items = items;
        h->cap = cap;
    }
    Py_ssize_t i = h->len++;
    while (i > 0) { /* sift up: the largest creation number on top */
        Py_ssize_t up = (i - 1) / 2;
        if (h->items[up].key >= key) break;
        h->items[i] = h->items[up];
        i = up;
    }
    Py_INCREF(node);
    h->items[i].key = key;
    h->items[i].node = node;
    return 0;
}

static PyObject *
heap_pop(Heap *h) /* new reference */
{
    PyObject *top = h->items[0].node;
    HeapItem last = h->items[--h->len];
    Py_ssize_t i = 0, n = h->len;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->items[c + 1].key > h->items[c].key) c++;
        if (h->items[c].key <= last.key) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (n > 0) h->items[i] = last;
    return top;
}

static void
heap_clear(Heap *h)
{
    for (Py_ssize_t i = 0; i < h->len; i++) Py_DECREF(h->items[i].node);
    PyMem_Free(h->items);
}

static int
node_key(PyObject *node, long long *key)
{
    PyObject *seq = get_slot(node, NS.seq, "seq");
    if (seq == NULL) return -1;
    *key = PyLong_AsLongLong(seq);
    return (*key == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* rule(g, ans, *args, **kwargs), or with argnum first for a vjp_argnum rule */
static PyObject *
call_rule(PyObject *rule, PyObject *argnum, PyObject *g, PyObject *ans, PyObject *args,
          PyObject *kwargs)
{
    PyObject *stack_buf[10], **stack = stack_buf;
    Py_ssize_t m = PyTuple_GET_SIZE(args), k = 0, total = m + 2 + (argnum != NULL);
    if (total > 10) {
        stack = PyMem_Malloc(total * sizeof(PyObject *));
        if (stack == NULL) return PyErr_NoMemory();
    }
    if (argnum != NULL) stack[k++] = argnum;
    stack[k++] = g;
    stack[k++] = ans;
    for (Py_ssize_t i = 0; i < m; i++) stack[k++] = PyTuple_GET_ITEM(args, i);
    PyObject *r;
    if (kwargs == NULL || !PyDict_Check(kwargs) || PyDict_GET_SIZE(kwargs) == 0)
        r = PyObject_Vectorcall(rule, stack, total, NULL);
    else {
        PyObject *tup = PyTuple_New(total);
        if (tup == NULL)
            r = NULL;
        else {
            for (Py_ssize_t i = 0; i < total; i++) {
                Py_INCREF(stack[i]);
                PyTuple_SET_ITEM(tup, i, stack[i]);
            }
            r = PyObject_Call(rule, tup, kwargs);
            Py_DECREF(tup);
        }
    }
    if (stack != stack_buf) PyMem_Free(stack);
    return r;
}

/* the gradient of argument argnum of node's primitive; NULL with an error set */
static PyObject *
vjp(PyObject *node, PyObject *prim, PyObject *argnum, PyObject *g, PyObject *ans,
    PyObject *args, PyObject *kwargs)
{
    if (!is_primitive(prim)) {
        PyErr_Format(PyExc_TypeError, "a node's primitive must be a gradx Primitive, not %.100s",
                     Py_TYPE(prim)->tp_name);
        return NULL;
    }
    PyObject *vjps = SLOT(prim, PS.vjps), *rule = NULL, *r;
    if (vjps != NULL && PyDict_Check(vjps)) {
        rule = PyDict_GetItemWithError(vjps, argnum);
        if (rule == NULL && PyErr_Occurred()) return NULL;
    }
    if (rule == identity_vjp) {
        Py_INCREF(g);
        return g;
    }
    PyObject *by_argnum = SLOT(prim, PS.vjp_argnum);
    if (rule != NULL)
        r = call_rule(rule, NULL, g, ans, args, kwargs);
    else if (by_argnum != NULL && by_argnum != Py_None)
        r = call_rule(by_argnum, argnum, g, ans, args, kwargs);
    else
        r = PyObject_CallFunctionObjArgs(py_no_rule, prim, argnum, NULL);
    if (r != NULL) return r;
    if (PyErr_ExceptionMatches(NotDifferentiableError) || PyErr_ExceptionMatches(GraphError)
        || !PyErr_ExceptionMatches(PyExc_Exception))
        return NULL;
    return raise_through(py_rule_failed, prim, argnum, g);
}

/* node's saved arguments and output as its rules take them, new references in *args and
 * *ans: Tensors linked to their producers when the rules record (create), else the raw
 * values. -1 with an error set (and both NULL) on failure. */
static int
rule_inputs(PyObject *node, int create, PyObject **args, PyObject **ans)
{
    *args = *ans = NULL;
    if (create) {
        PyObject *pair = wrap_saved_c(node, (PyObject *)Tensor_T);
        if (pair == NULL || !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_XDECREF(pair);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "wrap_saved gives (args, ans)");
            return -1;
        }
        *args = PyTuple_GET_ITEM(pair, 0);
        *ans = PyTuple_GET_ITEM(pair, 1);
        Py_INCREF(*args);
        Py_INCREF(*ans);
        Py_DECREF(pair);
    }
    else {
        *args = SLOT(node, NS.args);
        *ans = SLOT(node, NS.ans);
        if (*ans == NULL) *ans = Py_None;
        if (*args == NULL) *args = Py_None;
        Py_INCREF(*args);
        Py_INCREF(*ans);
    }
    if (!PyTuple_Check(*args)) {
        PyErr_SetString(PyExc_TypeError, "a node's saved arguments must be a tuple");
        Py_CLEAR(*args);
        Py_CLEAR(*ans);
        return -1;
    }
    return 0;
}

/* -- tangent pass ---------------------------------------------------------------------- */

/* the contribution of parent's tangent tp to node's tangent: its JVP rule for argnum, and
 * _forward._conform when the result's shape or dtype is not the node's; any other case
 * (jvp_argnum, a transposed VJP) is _forward._jvp_one. New reference, or NULL. */
static PyObject *
jvp_one(PyObject *node, PyObject *argnum, PyObject *parent, PyObject *tp, PyObject *args,
        PyObject *ans)
{
    PyObject *prim = SLOT(node, NS.prim), *rule = NULL;
    if (prim != NULL && is_primitive(prim)) {
        PyObject *jvps = SLOT(prim, PS.jvps);
        if (jvps != NULL && PyDict_Check(jvps)) {
            rule = PyDict_GetItemWithError(jvps, argnum);
            if (rule == NULL && PyErr_Occurred()) return NULL;
        }
    }
    if (rule == NULL)
        return PyObject_CallFunctionObjArgs(py_jvp_one, node, argnum, parent, tp, args, ans,
                                            NULL);
    Py_INCREF(rule);
    PyObject *c = call_rule(rule, NULL, tp, ans, args, SLOT(node, NS.kwargs));
    Py_DECREF(rule);
    if (c == NULL) return NULL;
    PyObject *raw = is_tensor(c) ? SLOT(c, TS.data) : c;
    PyObject *shape = raw == NULL ? NULL : PyObject_GetAttr(raw, s_shape);
    PyObject *dtype = shape == NULL ? NULL : PyObject_GetAttr(raw, s_dtype);
    PyObject *node_shape = SLOT(node, NS.shape), *node_dtype = SLOT(node, NS.dtype);
    int off = -1;
    if (dtype != NULL && node_shape != NULL && node_dtype != NULL) {
        off = PyObject_RichCompareBool(shape, node_shape, Py_NE);
        if (off == 0) off = PyObject_RichCompareBool(dtype, node_dtype, Py_NE);
    }
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    if (off == 0) return c;
    PyErr_Clear(); /* _conform reads the same attributes and raises what is wrong */
    Py_SETREF(c, PyObject_CallFunctionObjArgs(py_conform, c, node, NULL));
    return c;
}

/* push(order, tangents, create): _forward._push, compiled. For each node of order from the
 * last (toposort gives consumers first) not already in tangents, the sum of its parents'
 * contributions is filed under it. */
static PyObject *
push(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (!require_configured()) return NULL;
    if (n != 3 || !PyList_Check(a[0]) || !PyDict_Check(a[1])) {
        PyErr_SetString(PyExc_TypeError, "push(order: list, tangents: dict, create)");
        return NULL;
    }
    PyObject *order = a[0], *tangents = a[1];
    int create = PyObject_IsTrue(a[2]);
    if (create < 0) return NULL;
    Py_INCREF(order); /* a rule cannot reach it, but the loop must not depend on that */
    for (Py_ssize_t i = PyList_GET_SIZE(order) - 1; i >= 0; i--) {
        if (i >= PyList_GET_SIZE(order)) continue;
        PyObject *node = PyList_GET_ITEM(order, i), *argnums, *parents;
        Py_INCREF(node);
        int done = PyDict_Contains(tangents, node);
        if (done) {
            Py_DECREF(node);
            if (done < 0) goto fail;
            continue;
        }
        if (!Py_IS_TYPE(node, Node_T)) {
            PyErr_Format(PyExc_TypeError, "push: %.100s is not a Node", Py_TYPE(node)->tp_name);
            Py_DECREF(node);
            goto fail;
        }
        if (node_links(node, "push", &argnums, &parents)) {
            Py_DECREF(node);
            goto fail;
        }
        Py_INCREF(argnums);
        Py_INCREF(parents);
        PyObject *total = NULL, *args = NULL, *ans = NULL;
        int ok = 1;
        for (Py_ssize_t k = 0; ok && k < PyTuple_GET_SIZE(parents); k++) {
            PyObject *parent = PyTuple_GET_ITEM(parents, k);
            PyObject *tp = PyDict_GetItemWithError(tangents, parent);
            if (tp == NULL) {
                ok = !PyErr_Occurred();
                continue;
            }
            Py_INCREF(tp);
            if (args == NULL) {
                PyObject *saved = SLOT(node, NS.args);
                if (saved == NULL || saved == Py_None) {
                    PyObject *r = PyObject_CallOneArg(py_jvp_freed, node); /* raises */
                    Py_XDECREF(r);
                    if (r != NULL)
                        PyErr_SetString(PyExc_RuntimeError, "jvp_freed returned");
                    Py_DECREF(tp);
                    ok = 0;
                    continue;
                }
                if (rule_inputs(node, create, &args, &ans)) {
                    Py_DECREF(tp);
                    ok = 0;
                    continue;
                }
            }
            PyObject *c = jvp_one(node, PyTuple_GET_ITEM(argnums, k), parent, tp, args, ans);
            Py_DECREF(tp);
            if (c == NULL) {
                ok = 0;
                continue;
            }
            if (total == NULL)
                total = c;
            else {
                Py_SETREF(total, PyNumber_Add(total, c));
                Py_DECREF(c);
                ok = total != NULL;
            }
        }
        Py_XDECREF(args);
        Py_XDECREF(ans);
        Py_DECREF(argnums);
        Py_DECREF(parents);
        if (ok && total != NULL && PyDict_SetItem(tangents, node, total) < 0) ok = 0;
        Py_XDECREF(total);
        Py_DECREF(node);
        if (!ok) goto fail;
    }
    Py_DECREF(order);
    Py_RETURN_NONE;
fail:
    Py_DECREF(order);
    return NULL;
}

/* _shapes.sum_to for an array gradient of a broadcasting op whose plan (the axes to sum,
 * whether a reshape follows) _shapes has cached: the sum primitive on those axes, and the
 * reshape if the plan needs it. None when that does not apply (a Tensor gradient under
 * create_graph, a non-broadcasting op, a pair of shapes not seen yet): _fit then runs,
 * which also raises the errors and fills the cache. */
static PyObject *
sum_to_shape(PyObject *gi, PyObject *gshape, PyObject *shape, PyObject *prim)
{
    PyObject *broadcasts = SLOT(prim, PS.broadcasts);
    if (is_tensor(gi) || broadcasts != Py_True || !PyTuple_CheckExact(gshape)
        || !PyTuple_CheckExact(shape))
        Py_RETURN_NONE;
    PyObject *key = PyTuple_Pack(2, gshape, shape);
    if (key == NULL) return NULL;
    PyObject *plan = PyDict_GetItemWithError(sum_plans, key); /* borrowed */
    Py_DECREF(key);
    if (plan == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 2) {
        PyErr_SetString(PyExc_TypeError, "a sum plan is (axes, needs_reshape)");
        return NULL;
    }
    PyObject *axes = PyTuple_GET_ITEM(plan, 0);
    int reshape = PyObject_IsTrue(PyTuple_GET_ITEM(plan, 1));
    if (reshape < 0) return NULL;
    Py_INCREF(plan); /* a call below could clear the cache */
    Py_INCREF(gi);
    PyObject *g = gi;
    if (PyTuple_GET_SIZE(axes)) {
        PyObject *call[2] = {g, axes};
        Py_SETREF(g, PyObject_Vectorcall(py_sum, call, 1, axis_kwnames));
    }
    if (g != NULL && reshape)
        Py_SETREF(g, PyObject_CallFunctionObjArgs(py_reshape, g, shape, NULL));
    Py_DECREF(plan);
    return g;
}

/* steals gi; 0 on success */
static int
deliver(PyObject *grads, Heap *heap, PyObject *node, PyObject *prim, PyObject *argnum,
        PyObject *parent, PyObject *gi, int anomaly, int create_graph, int into_grad)
{
    int is_node = Py_IS_TYPE(parent, Node_T);
    PyObject *ref_shape, *ref_dtype, *data = NULL;
    if (is_node) {
        ref_shape = SLOT(parent, NS.shape);
        ref_dtype = SLOT(parent, NS.dtype);
        Py_XINCREF(ref_shape);
        Py_XINCREF(ref_dtype);
    }
    else {
        data = get_slot(parent, TS.data, "data");
        if (data == NULL) goto fail;
        ref_shape = PyObject_GetAttr(data, s_shape);
        ref_dtype = PyObject_GetAttr(data, s_dtype);
    }
    if (ref_shape == NULL || ref_dtype == NULL) {
        Py_XDECREF(ref_shape);
        Py_XDECREF(ref_dtype);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "a node without shape");
        goto fail;
    }
    PyObject *gs = PyObject_GetAttr(gi, s_shape), *gd = NULL;
    int differ = gs == NULL ? -1 : PyObject_RichCompareBool(gs, ref_shape, Py_NE);
    if (differ > 0) { /* a broadcast input's gradient: sum it back to the input's shape */
        PyObject *summed = sum_to_shape(gi, gs, ref_shape, prim);
        if (summed == NULL)
            differ = -1;
        else if (summed != Py_None) {
            Py_SETREF(gi, summed);
            differ = 0; /* the dtype is checked next, as for any gradient */
        }
        else
            Py_DECREF(summed); /* not the common case: _fit sorts it out */
    }
    if (differ == 0) {
        gd = PyObject_GetAttr(gi, s_dtype);
        differ = gd == NULL ? -1
            : gd == ref_dtype ? 0 : PyObject_RichCompareBool(gd, ref_dtype, Py_NE);
    }
    Py_XDECREF(gs);
    Py_XDECREF(gd);
    Py_DECREF(ref_shape);
    Py_DECREF(ref_dtype);
    if (differ < 0) goto fail;
    if (differ) {
        PyObject *fitted = PyObject_CallFunctionObjArgs(py_fit, gi, parent, prim, argnum, NULL);
        if (fitted == NULL) goto fail;
        Py_SETREF(gi, fitted);
    }
    if (anomaly) {
        PyObject *r = PyObject_CallFunctionObjArgs(py_check_finite, gi, node, argnum, NULL);
        if (r == NULL) goto fail;
        Py_DECREF(r);
    }
    PyObject *prev = PyDict_GetItemWithError(grads, parent); /* borrowed */
    if (prev == NULL) {
        if (PyErr_Occurred()) goto fail;
        if (is_node) {
            long long key;
            if (node_key(parent, &key) || PyDict_SetItem(grads, parent, gi)
                || heap_push(heap, key, parent))
                goto fail;
        }
        else {
            PyObject *old = into_grad ? SLOT(parent, TS.grad) : NULL;
            int old_rec = 1;
            if (old != NULL && old != Py_None && (old_rec = requires_grad_of(old)) < 0)
                goto fail;
            if (old != NULL && old != Py_None && !old_rec) {
                PyObject *backend = SLOT(parent, TS.backend);
                PyObject *sum = PyObject_CallFunctionObjArgs(py_add_into, old, gi, backend, NULL);
                if (sum == NULL) goto fail;
                set_slot(parent, TS.grad, sum);
            }
            else if (PyDict_SetItem(grads, parent, gi))
                goto fail;
        }
        Py_DECREF(gi);
        return 0;
    }
    int fresh = 0; /* only the sum holds prev (and it owns its memory): add in place */
    if (!create_graph && Py_REFCNT(prev) <= 1) {
        PyObject *backend = is_node ? SLOT(parent, NS.backend) : SLOT(parent, TS.backend);
        PyObject *w = PyObject_CallMethodOneArg(backend, s_writable, prev);
        if (w == NULL) goto fail;
        fresh = truthy(w);
        Py_DECREF(w);
        if (fresh < 0) goto fail;
    }
    if (fresh) {
        PyObject *r = PyNumber_InPlaceAdd(prev, gi);
        if (r == NULL) goto fail;
        Py_DECREF(r);
    }
    else {
        PyObject *sum = PyNumber_Add(prev, gi);
        if (sum == NULL) goto fail;
        int e = PyDict_SetItem(grads, parent, sum);
        Py_DECREF(sum);
        if (e) goto fail;
    }
    Py_DECREF(gi);
    return 0;
fail:
    Py_DECREF(gi);
    return -1;
}

/* walk(roots, grads, keep, targets, create_graph, retain_graph, into_grad): _tape._walk */
static PyObject *
walk(PyObject *self, PyObject *const *fa, Py_ssize_t nfa)
{
    if (nfa != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "walk(roots, grads, keep, targets, create_graph, retain_graph, into_grad)");
        return NULL;
    }
    PyObject *roots = fa[0], *grads = fa[1], *keep = fa[2], *targets = fa[3];
    int create_graph = truthy(fa[4]), retain_graph = truthy(fa[5]), into_grad = truthy(fa[6]);
    if (!PyList_Check(roots) || !PyDict_Check(grads)) {
        PyErr_SetString(PyExc_TypeError, "walk: roots must be a list and grads a dict");
        return NULL;
    }
    if (keep == Py_None) keep = NULL;
    if (targets == Py_None) targets = NULL;
    int anomaly = context_flag(anomaly_var);
    if (anomaly < 0 || create_graph < 0 || retain_graph < 0 || into_grad < 0) return NULL;
    Heap heap = {NULL, 0, 0};
    PyObject *seen = NULL;
    Py_ssize_t nroots = PyList_GET_SIZE(roots);
    if (nroots > 1 && (seen = PySet_New(NULL)) == NULL) return NULL;
    for (Py_ssize_t i = 0; i < nroots; i++) {
        PyObject *r = PyList_GET_ITEM(roots, i);
        long long key;
        if (seen != NULL) {
            int dup = PySet_Contains(seen, r);
            if (dup < 0 || (!dup && PySet_Add(seen, r))) goto fail;
            if (dup) continue;
        }
        if (node_key(r, &key) || heap_push(&heap, key, r)) goto fail;
    }
    Py_CLEAR(seen);
    while (heap.len) {
        PyObject *node = heap_pop(&heap), *g = NULL, *args = NULL, *ans = NULL;
        if (targets != NULL) {
            int hit = PySet_Contains(targets, node);
            if (hit < 0) goto fail_node;
            if (hit) {
                Py_DECREF(node);
                continue; /* a requested input: its gradient is the answer */
            }
        }
        g = PyDict_GetItemWithError(grads, node);
        if (g == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, node);
            goto fail_node;
        }
        Py_INCREF(g);
        if (PyDict_DelItem(grads, node)) goto fail_node;
        args = SLOT(node, NS.args);
        if (args == NULL || args == Py_None) {
            PyObject *r = PyObject_CallOneArg(py_freed, node);
            Py_XDECREF(r);
            goto fail_node;
        }
        long long key, last = PyLong_AsLongLong(PyList_GET_ITEM(last_change, 0));
        if ((last == -1 && PyErr_Occurred()) || node_key(node, &key)) goto fail_node;
        if (key < last) {
            PyObject *r = PyObject_CallOneArg(py_check_versions, node);
            if (r == NULL) goto fail_node;
            Py_DECREF(r);
        }
        PyObject *prim = get_slot(node, NS.prim, "prim");
        PyObject *kwargs = SLOT(node, NS.kwargs);
        PyObject *argnums, *parents;
        if (prim == NULL || node_links(node, "backward", &argnums, &parents)) goto fail_node;
        Py_INCREF(prim);
        Py_INCREF(argnums);
        Py_INCREF(parents);
        Py_XINCREF(kwargs);
        /* owned from here on: fail_locals releases them */
        if (rule_inputs(node, create_graph, &args, &ans)) goto fail_locals;
        Py_ssize_t np = PyTuple_GET_SIZE(parents);
        for (Py_ssize_t i = 0; i < np; i++) {
            PyObject *argnum = PyTuple_GET_ITEM(argnums, i);
            PyObject *parent = PyTuple_GET_ITEM(parents, i);
            if (keep != NULL) {
                int in = PySet_Contains(keep, parent);
                if (in < 0) goto fail_locals;
                if (!in) continue;
            }
            PyObject *gi = vjp(node, prim, argnum, g, ans, args, kwargs);
            if (gi == NULL
                || deliver(grads, &heap, node, prim, argnum, parent, gi, anomaly, create_graph,
                           into_grad))
                goto fail_locals;
        }
        int frees = 0; /* a node that saved nothing keeps its None or Meta stand-ins */
        if (!retain_graph) {
            PyObject *sa = is_primitive(prim) ? SLOT(prim, PS.saves_args) : NULL;
            PyObject *sn = sa != NULL ? SLOT(prim, PS.saves_ans) : NULL;
            frees = sa == NULL || sn == NULL || sa == Py_True ? 1 : truthy(sn);
            if (frees < 0) goto fail_locals;
        }
        if (frees) {
            Py_INCREF(Py_None);
            set_slot(node, NS.args, Py_None);
            Py_INCREF(Py_None);
            set_slot(node, NS.ans, Py_None);
        }
        Py_DECREF(args);
        Py_DECREF(ans);
        Py_DECREF(prim);
        Py_DECREF(argnums);
        Py_DECREF(parents);
        Py_XDECREF(kwargs);
        Py_DECREF(g);
        Py_DECREF(node);
        continue;
    fail_locals:
        Py_XDECREF(args);
        Py_XDECREF(ans);
        Py_DECREF(prim);
        Py_DECREF(argnums);
        Py_DECREF(parents);
        Py_XDECREF(kwargs);
    fail_node:
        Py_XDECREF(g);
        Py_DECREF(node);
        goto fail;
    }
    heap_clear(&heap);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(seen);
    heap_clear(&heap);
    return NULL;
}

/* accumulate_leaves(grads, create_graph): _tape._accumulate_leaves for arrays (a Tensor
 * gradient, recorded or given as a seed, goes to the Python function) */
static PyObject *
accumulate_leaves(PyObject *self, PyObject *const *fa, Py_ssize_t nfa)
{
    if (nfa != 2 || !PyDict_Check(fa[0])) {
        PyErr_SetString(PyExc_TypeError, "accumulate_leaves(grads, create_graph)");
        return NULL;
    }
    PyObject *grads = fa[0];
    PyObject *leaves = PyList_New(0);
    if (leaves == NULL) return NULL;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(grads, &pos, &k, &v)) {
        if (Py_IS_TYPE(k, Node_T)) continue;
        if (!is_tensor(k) || is_tensor(v)) { /* the rare kinds: all of them in Python */
            Py_DECREF(leaves);
            return PyObject_Vectorcall(py_leaves, fa, 2, NULL);
        }
        if (PyList_Append(leaves, k)) goto fail;
    }
    Py_ssize_t n = PyList_GET_SIZE(leaves);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *leaf = PyList_GET_ITEM(leaves, i);
        PyObject *g = PyDict_GetItemWithError(grads, leaf);
        if (g == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, leaf);
            goto fail;
        }
        Py_INCREF(g);
        if (PyDict_DelItem(grads, leaf)) {
            Py_DECREF(g);
            goto fail;
        }
        PyObject *backend = SLOT(leaf, TS.backend), *old = SLOT(leaf, TS.grad), *grad;
        if (backend == NULL) {
            Py_DECREF(g);
            PyErr_SetString(PyExc_AttributeError, "a leaf without a backend");
            goto fail;
        }
        if (old == NULL || old == Py_None) {
            /* g is held here and, for a fresh result, nowhere else */
            PyObject *own = PyObject_CallMethodOneArg(
                backend, Py_REFCNT(g) <= one_holder ? s_owned : s_copy, g);
            Py_DECREF(g);
            if (own == NULL) goto fail;
            grad = make_tensor(own, backend);
            Py_DECREF(own);
            if (grad == NULL) goto fail;
        }
        else {
            int rec = requires_grad_of(old);
            if (rec < 0) {
                Py_DECREF(g);
                goto fail;
            }
            grad = rec ? PyNumber_Add(old, g)
                       : PyObject_CallFunctionObjArgs(py_add_into, old, g, backend, NULL);
            Py_DECREF(g);
            if (grad == NULL) goto fail;
        }
        set_slot(leaf, TS.grad, grad);
    }
    Py_DECREF(leaves);
    Py_RETURN_NONE;
fail:
    Py_DECREF(leaves);
    return NULL;
}

/* -- Tensor operators ------------------------------------------------------------------ */

/* Tensor.__mul__ and the other arithmetic operators: apply(prim, (self, other), {}), or
 * (other, self) for a reflected one, with no Python frame. A method descriptor, so
 * ``a * b`` calls it with (a, b) unbound, and ``a.__mul__`` binds it like a function. */
typedef struct {
    PyObject_HEAD
    PyObject *prim, *name;
    int reflected, unary;
    vectorcallfunc vectorcall;
} TensorOp;

static PyObject *
tensor_op_call(PyObject *self, PyObject *const *a, size_t nargsf, PyObject *kwnames)
{
    TensorOp *op = (TensorOp *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n != (op->unary ? 1 : 2) || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_Format(PyExc_TypeError, "Tensor.%U takes %s", op->name,
                     op->unary ? "no argument" : "one argument");
        return NULL;
    }
    PyObject *args = op->unary ? PyTuple_Pack(1, a[0])
        : op->reflected ? PyTuple_Pack(2, a[1], a[0]) : PyTuple_Pack(2, a[0], a[1]);
    if (args == NULL) return NULL;
    PyObject *fa[3] = {op->prim, args, empty_kwargs};
    PyObject *r = apply(NULL, fa, 3);
    Py_DECREF(args);
    return r;
}

static PyObject *
tensor_op_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static void
tensor_op_dealloc(PyObject *self)
{
    TensorOp *op = (TensorOp *)self;
    Py_XDECREF(op->prim);
    Py_XDECREF(op->name);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *
tensor_op_repr(PyObject *self)
{
    TensorOp *op = (TensorOp *)self;
    return PyUnicode_FromFormat("<gradx operator Tensor.%U>", op->name);
}

static PyObject *
tensor_op_signature(PyObject *self, void *unused)
{
    return PyUnicode_FromString(((TensorOp *)self)->unary ? "($self, /)" : "($self, other, /)");
}

static PyGetSetDef tensor_op_getset[] = {
    {"__text_signature__", tensor_op_signature, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef tensor_op_members[] = {
    {"__name__", T_OBJECT, offsetof(TensorOp, name), READONLY, NULL},
    {"primitive", T_OBJECT, offsetof(TensorOp, prim), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TensorOp_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gradx._speedups.TensorOperator",
    .tp_basicsize = sizeof(TensorOp),
    .tp_dealloc = tensor_op_dealloc,
    .tp_vectorcall_offset = offsetof(TensorOp, vectorcall),
    .tp_repr = tensor_op_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A Tensor arithmetic operator: its primitive applied with no Python frame.",
    .tp_members = tensor_op_members,
    .tp_getset = tensor_op_getset,
    .tp_descr_get = tensor_op_get,
};

/* tensor_operator(name, prim, reflected, unary) */
static PyObject *
tensor_operator(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 4 || !PyUnicode_Check(a[0]) || !is_primitive(a[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "tensor_operator(name: str, prim: Primitive, reflected, unary)");
        return NULL;
    }
    int reflected = PyObject_IsTrue(a[2]), unary = PyObject_IsTrue(a[3]);
    if (reflected < 0 || unary < 0) return NULL;
    TensorOp *op = PyObject_New(TensorOp, &TensorOp_T);
    if (op == NULL) return NULL;
    Py_INCREF(a[0]);
    op->name = a[0];
    Py_INCREF(a[1]);
    op->prim = a[1];
    op->reflected = reflected;
    op->unary = unary;
    op->vectorcall = tensor_op_call;
    return (PyObject *)op;
}

/* -- namespace lookup -------------------------------------------------------------------- */

/* a builtin function for def whose self is the tuple (first, second) */
static PyObject *
bind_pair(PyMethodDef *def, PyObject *first, PyObject *second)
{
    PyObject *bound = PyTuple_Pack(2, first, second);
    if (bound == NULL) return NULL;
    PyObject *fn = PyCFunction_New(def, bound);
    Py_DECREF(bound);
    return fn;
}

/* ns(x, *more) of gradx._backend, bound to (table, fallback): the namespace cached for
 * type(x) in table, or whatever fallback(x, *more) says (first sight of a type, scalars) */
static PyObject *
ns_lookup(PyObject *bound, PyObject *const *a, Py_ssize_t n)
{
    PyObject *table = PyTuple_GET_ITEM(bound, 0);
    if (n > 0) {
        PyObject *xp = PyDict_GetItemWithError(table, (PyObject *)Py_TYPE(a[0]));
        if (xp != NULL) {
            Py_INCREF(xp);
            return xp;
        }
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_Vectorcall(PyTuple_GET_ITEM(bound, 1), a, n, NULL);
}

static PyMethodDef ns_lookup_def = {
    "ns", (PyCFunction)(void (*)(void))ns_lookup, METH_FASTCALL,
    "The array namespace of the first non-scalar argument (gradx._backend.ns, compiled).",
};

static PyObject *
namespace_lookup(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2 || !PyDict_CheckExact(a[0]) || !PyCallable_Check(a[1])) {
        PyErr_SetString(PyExc_TypeError, "namespace_lookup(table: dict, fallback: callable)");
        return NULL;
    }
    return bind_pair(&ns_lookup_def, a[0], a[1]);
}

/* -- a backend's owned() ---------------------------------------------------------------- */

/* owned(x) bound to (array_type, copy): x when it is exactly an array_type whose .base is
 * None (it owns its memory), else copy(x). A backend whose arrays say so that way (NumPy)
 * uses it for Backend.owned, which runs for every leaf gradient of every backward. */
static PyObject *
owned_call(PyObject *bound, PyObject *const *a, Py_ssize_t n)
{
    if (n != 1) {
        PyErr_SetString(PyExc_TypeError, "owned(x) takes one array");
        return NULL;
    }
    PyObject *x = a[0];
    if (Py_TYPE(x) == (PyTypeObject *)PyTuple_GET_ITEM(bound, 0)) {
        PyObject *base = PyObject_GetAttr(x, s_base);
        if (base == NULL) return NULL;
        Py_DECREF(base);
        if (base == Py_None) {
            Py_INCREF(x);
            return x;
        }
    }
    return PyObject_Vectorcall(PyTuple_GET_ITEM(bound, 1), a, 1, NULL);
}

static PyMethodDef owned_def = {
    "owned", (PyCFunction)(void (*)(void))owned_call, METH_FASTCALL,
    "x if it owns its memory, else a copy (Backend.owned, compiled).",
};

static PyObject *
owned_or_copy(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2 || !PyType_Check(a[0]) || !PyCallable_Check(a[1])) {
        PyErr_SetString(PyExc_TypeError, "owned_or_copy(array_type: type, copy: callable)");
        return NULL;
    }
    return bind_pair(&owned_def, a[0], a[1]);
}

/* -- scopes of context variables ------------------------------------------------------ */

/* Scope(vars, values, counted=None): a context manager that sets each ContextVar of the
 * tuple vars to the value at the same index of values on __enter__ and restores the values
 * they had on __exit__, in the thread that entered; _tape._PyScope is its reference.
 * counted, if given, is a pair of one-item lists (count, flag): the number of entries open
 * in any thread, and whether any is.
 *
 * Compiled so that an interrupt cannot split a pair: __enter__ and __exit__ run no Python
 * bytecode, so a KeyboardInterrupt or an asynchronous exception, raised only between
 * bytecodes, lands either before a variable is set (with __exit__ then not called) or after
 * the with block's protection starts (with __exit__ then called), never in between. A
 * Python __enter__ would check for one after ``var.set`` returns, and a Python __exit__ on
 * entry. One object may be entered again, nested or by several threads at once (a
 * decorated function): each entry is kept with its thread's identity, and __exit__
 * restores the latest entry of its own thread. */
typedef struct {
    PyObject_HEAD
    PyObject *vars, *values, *counted, *saved; /* saved: list of (thread ident, previous) */
} Scope;

static PyTypeObject Scope_T;

static int
scope_traverse(Scope *self, visitproc visit, void *arg)
{
    Py_VISIT(self->vars);
    Py_VISIT(self->values);
    Py_VISIT(self->counted);
    Py_VISIT(self->saved);
    return 0;
}

static int
scope_clear(Scope *self)
{
    Py_CLEAR(self->vars);
    Py_CLEAR(self->values);
    Py_CLEAR(self->counted);
    Py_CLEAR(self->saved);
    return 0;
}

static void
scope_dealloc(Scope *self)
{
    PyObject_GC_UnTrack(self);
    scope_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
scope_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"vars", "values", "counted", NULL};
    PyObject *vars, *values, *counted = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!|O:Scope", names, &PyTuple_Type, &vars,
                                     &PyTuple_Type, &values, &counted))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(vars);
    if (n == 0 || PyTuple_GET_SIZE(values) != n) {
        PyErr_SetString(PyExc_TypeError, "Scope: vars and values must be tuples of one length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyContextVar_CheckExact(PyTuple_GET_ITEM(vars, i))) {
            PyErr_SetString(PyExc_TypeError, "Scope: vars must be ContextVars");
            return NULL;
        }
    if (counted != Py_None
        && (!PyTuple_Check(counted) || PyTuple_GET_SIZE(counted) != 2
            || !PyList_Check(PyTuple_GET_ITEM(counted, 0))
            || PyList_GET_SIZE(PyTuple_GET_ITEM(counted, 0)) != 1
            || !PyList_Check(PyTuple_GET_ITEM(counted, 1))
            || PyList_GET_SIZE(PyTuple_GET_ITEM(counted, 1)) != 1)) {
        PyErr_SetString(PyExc_TypeError, "Scope: counted must be None or ([count], [flag])");
        return NULL;
    }
    Scope *self = (Scope *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->saved = PyList_New(0);
    if (self->saved == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(vars);
    self->vars = vars;
    Py_INCREF(values);
    self->values = values;
    if (counted != Py_None) {
        Py_INCREF(counted);
        self->counted = counted;
    }
    return (PyObject *)self;
}

/* add delta to the open-entry count and set the flag to count > 0; -1 on error */
static int
scope_count(Scope *self, long delta)
{
    if (self->counted == NULL) return 0;
    PyObject *cell = PyTuple_GET_ITEM(self->counted, 0);
    PyObject *flag = PyTuple_GET_ITEM(self->counted, 1);
    long n = PyLong_AsLong(PyList_GET_ITEM(cell, 0));
    if (n == -1 && PyErr_Occurred()) return -1;
    n += delta;
    if (n < 0) n = 0;
    PyObject *v = PyLong_FromLong(n);
    if (v == NULL) return -1;
    PyObject *old = PyList_GET_ITEM(cell, 0);
    PyList_SET_ITEM(cell, 0, v);
    Py_DECREF(old);
    PyObject *f = n > 0 ? Py_True : Py_False;
    Py_INCREF(f);
    old = PyList_GET_ITEM(flag, 0);
    PyList_SET_ITEM(flag, 0, f);
    Py_DECREF(old);
    return 0;
}

/* set vars[i] to values[i] for i < n, from 0 (values: a tuple) or restore in reverse */
static int
scope_set(PyObject *vars, PyObject *values, Py_ssize_t n, int reverse)
{
    int rc = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_ssize_t i = reverse ? n - 1 - k : k;
        PyObject *tok = PyContextVar_Set(PyTuple_GET_ITEM(vars, i), PyTuple_GET_ITEM(values, i));
        if (tok == NULL) rc = -1; /* go on: restore as much as can be */
        Py_XDECREF(tok);
    }
    return rc;
}

static PyObject *
scope_enter(Scope *self, PyObject *unused)
{
    Py_ssize_t n = PyTuple_GET_SIZE(self->vars);
    PyObject *prev = PyTuple_New(n), *entry = NULL, *ident = NULL;
    if (prev == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(PyTuple_GET_ITEM(self->vars, i), NULL, &v) < 0) goto fail;
        if (v == NULL) { /* a variable without a default, never set: nothing to restore */
            PyErr_SetString(PyExc_LookupError, "Scope: a ContextVar without a value");
            goto fail;
        }
        PyTuple_SET_ITEM(prev, i, v);
    }
    ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL || (entry = PyTuple_Pack(2, ident, prev)) == NULL) goto fail;
    if (PyList_Append(self->saved, entry) < 0) goto fail;
    if (scope_set(self->vars, self->values, n, 0) < 0 || scope_count(self, 1) < 0) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        scope_set(self->vars, prev, n, 1);
        Py_ssize_t last = PyList_GET_SIZE(self->saved) - 1;
        PyList_SetSlice(self->saved, last, last + 1, NULL);
        PyErr_Restore(et, ev, etb);
        goto fail;
    }
    Py_DECREF(ident);
    Py_DECREF(entry);
    Py_DECREF(prev);
    PyObject *r = n == 1 ? PyTuple_GET_ITEM(self->values, 0) : Py_None;
    Py_INCREF(r);
    return r;
fail:
    Py_XDECREF(ident);
    Py_XDECREF(entry);
    Py_DECREF(prev);
    return NULL;
}

static PyObject *
scope_exit(Scope *self, PyObject *const *a, Py_ssize_t n_args)
{
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL) return NULL;
    for (Py_ssize_t k = PyList_GET_SIZE(self->saved) - 1; k >= 0; k--) {
        PyObject *entry = PyList_GET_ITEM(self->saved, k);
        int mine = PyObject_RichCompareBool(PyTuple_GET_ITEM(entry, 0), ident, Py_EQ);
        if (mine < 0) {
            Py_DECREF(ident);
            return NULL;
        }
        if (!mine) continue;
        Py_DECREF(ident);
        Py_INCREF(entry);
        int rc = PyList_SetSlice(self->saved, k, k + 1, NULL);
        rc |= scope_set(self->vars, PyTuple_GET_ITEM(entry, 1), PyTuple_GET_SIZE(self->vars), 1);
        rc |= scope_count(self, -1);
        Py_DECREF(entry);
        if (rc) return NULL;
        Py_RETURN_FALSE;
    }
    Py_DECREF(ident);
    PyErr_SetString(PyExc_RuntimeError, "Scope.__exit__ without __enter__ in this thread");
    return NULL;
}

/* count(counted, delta): add delta to a Scope count ([count], [flag]) as Scope does, for
 * the Python code that counts the same cells (install_recorder): one C call, so that
 * counts from Python and from Scope never interleave */
static PyObject *
scope_count_fn(PyObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2 || !PyTuple_Check(a[0]) || PyTuple_GET_SIZE(a[0]) != 2
        || !PyList_Check(PyTuple_GET_ITEM(a[0], 0)) || PyList_GET_SIZE(PyTuple_GET_ITEM(a[0], 0)) != 1
        || !PyList_Check(PyTuple_GET_ITEM(a[0], 1)) || PyList_GET_SIZE(PyTuple_GET_ITEM(a[0], 1)) != 1) {
        PyErr_SetString(PyExc_TypeError, "count(([count], [flag]), delta)");
        return NULL;
    }
    long delta = PyLong_AsLong(a[1]);
    if (delta == -1 && PyErr_Occurred()) return NULL;
    Scope tmp;
    tmp.counted = a[0];
    if (scope_count(&tmp, delta) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef scope_methods[] = {
    {"__enter__", (PyCFunction)scope_enter, METH_NOARGS, "Set the variables."},
    {"__exit__", (PyCFunction)(void (*)(void))scope_exit, METH_FASTCALL,
     "Restore the values the variables had when this thread entered."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Scope_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gradx._speedups.Scope",
    .tp_basicsize = sizeof(Scope),
    .tp_dealloc = (destructor)scope_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Scope(vars, values, counted=None): set ContextVars for a with block; the "
              "pair cannot be split by an interrupt.",
    .tp_traverse = (traverseproc)scope_traverse,
    .tp_clear = (inquiry)scope_clear,
    .tp_methods = scope_methods,
    .tp_new = scope_new,
};

static PyMethodDef methods[] = {
    {"configure", configure, METH_O, "Hand over the classes, flags and Python helpers."},
    {"apply", (PyCFunction)(void (*)(void))apply, METH_FASTCALL,
     "_primitive._apply, compiled for one- and two-argument calls."},
    {"primitive_call_method", primitive_call_method, METH_NOARGS,
     "Primitive.__call__ compiled, as a method of the configured Primitive class."},
    {"tensor_make_method", tensor_make_method, METH_NOARGS,
     "Tensor._make compiled, as a classmethod of the configured Tensor class."},
    {"wrap_saved", (PyCFunction)(void (*)(void))wrap_saved, METH_FASTCALL,
     "_tape._wrap_saved, compiled."},
    {"toposort", (PyCFunction)(void (*)(void))toposort, METH_FASTCALL,
     "_tape.toposort, compiled; also collects the leaves reached."},
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, "_tape._walk, compiled."},
    {"push", (PyCFunction)(void (*)(void))push, METH_FASTCALL,
     "_forward._push, compiled: the tangent pass over recorded nodes."},
    {"owned_or_copy", (PyCFunction)(void (*)(void))owned_or_copy, METH_FASTCALL,
     "Backend.owned compiled for arrays that own their memory when .base is None."},
    {"tensor_operator", (PyCFunction)(void (*)(void))tensor_operator, METH_FASTCALL,
     "Tensor.__add__ and the like, compiled: (name, primitive, reflected, unary)."},
    {"namespace_lookup", (PyCFunction)(void (*)(void))namespace_lookup, METH_FASTCALL,
     "gradx._backend.ns compiled over its cache table, with the Python function as fallback."},
    {"count", (PyCFunction)(void (*)(void))scope_count_fn, METH_FASTCALL,
     "Add to a Scope count ([count], [flag]) as Scope does."},
    {"accumulate_leaves", (PyCFunction)(void (*)(void))accumulate_leaves, METH_FASTCALL,
     "_tape._accumulate_leaves, compiled for array gradients."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gradx._speedups",
    "The compiled hot path: dispatch, backward walk, leaf accumulation, tape helpers.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    s_dtype = PyUnicode_InternFromString("dtype");
    s_shape = PyUnicode_InternFromString("shape");
    s_float_dtypes = PyUnicode_InternFromString("_float_dtypes");
    s_is_float = PyUnicode_InternFromString("is_float");
    s_writable = PyUnicode_InternFromString("writable");
    s_owned = PyUnicode_InternFromString("owned");
    s_copy = PyUnicode_InternFromString("copy");
    s_base = PyUnicode_InternFromString("base");
    s_sort = PyUnicode_InternFromString("sort");
    sort_kwnames = Py_BuildValue("(ss)", "key", "reverse");
    axis_kwnames = Py_BuildValue("(s)", "axis");
    argnums_first = Py_BuildValue("(i)", 0);
    argnums_second = Py_BuildValue("(i)", 1);
    argnums_both = Py_BuildValue("(ii)", 0, 1);
    small_ints[0] = PyLong_FromLong(0);
    small_ints[1] = PyLong_FromLong(1);
    small_ints[2] = PyLong_FromLong(-1);
    empty_kwargs = PyDict_New();
    if (empty_kwargs == NULL) return NULL;
    /* an object held by one C local: one reference */
    one_holder = 1;
    if (!s_dtype || !s_shape || !s_float_dtypes || !s_is_float || !s_writable || !s_owned
        || !s_copy || !s_base || !s_sort || !sort_kwnames || !axis_kwnames || !small_ints[0]
        || !small_ints[1] || !small_ints[2] || !argnums_first || !argnums_second
        || !argnums_both)
        return NULL;
    if (PyType_Ready(&TensorOp_T) < 0 || PyType_Ready(&Scope_T) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&Scope_T);
    if (PyModule_AddObject(m, "Scope", (PyObject *)&Scope_T) < 0) {
        Py_DECREF(&Scope_T);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
