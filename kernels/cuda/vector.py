"""One memory access for several neighbouring elements: 16 bytes at a time (4 float32, 2
float64 or int64), where a kernel's loop would otherwise issue a 4- or 8-byte load per element.

NVVM merges neighbouring loads into one wide load only where it can prove the address
aligned, which it cannot for a device pointer a kernel receives. ``loader(width)`` gives a
device function ``load(x, i)`` that reads ``x[i], ..., x[i + width - 1]`` as one vector
load (``ld.global.v4.f32`` and the like), returned as a tuple. The caller promises what the
hardware needs: the address of ``x[i]`` is a multiple of ``width * itemsize`` bytes (the host
checks pointers and strides before it picks a kernel that uses this) and the elements exist.

``storer(width)`` gives ``store(x, i, src, j)``, writing ``src[j], ..., src[j + width - 1]``
to ``x[i], ...`` as one vector store, under the same promise (used for shared-memory tiles,
whose alignment the kernel declares). ``putter(width)`` gives ``put(x, i, values)``, writing
a tuple of `width` values (converted to x's dtype) to ``x[i], ...`` as one vector store (the
elementwise kernels' results).

In the simulator kernels run as Python, so ``load`` and ``store`` there move the elements one
by one.
"""

from __future__ import annotations

from .runtime import SIM, cuda

_made: dict = {}


def width(itemsize: int) -> int:
    """Elements per 16-byte access."""
    return max(1, 16 // itemsize)


def _device_function(kind: str, n: int):
    f = _made.get((kind, n))
    if f is None:
        make = {"load": (_sim_loader, _gpu_loader), "store": (_sim_storer, _gpu_storer),
                "put": (_sim_putter, _gpu_putter)}[kind]
        f = _made[(kind, n)] = make[0](n) if SIM else make[1](n)
    return f


def loader(n: int):
    """The device function load(x, i) -> (x[i], ..., x[i + n - 1]), one n-element access."""
    return _device_function("load", n)


def storer(n: int):
    """The device function store(x, i, src, j): x[i + c] = src[j + c] for c < n, one
    n-element access."""
    return _device_function("store", n)


def putter(n: int):
    """The device function put(x, i, values): x[i + c] = values[c] for c < n (a tuple, each
    converted to x's dtype), one n-element access."""
    return _device_function("put", n)


def _sim_putter(n: int):
    def put(x, i, values):
        for c in range(n):
            x[i + c] = values[c]

    return cuda.jit(device=True)(put)


def _gpu_putter(n: int):
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def put(typingctx, x, i, values):
        if not (_flat(x) and isinstance(i, types.Integer)
                and isinstance(values, types.BaseTuple) and len(values) == n):
            return None
        T = x.dtype

        def codegen(context, builder, signature, args):
            tx, ti, tv = signature.args
            elems = [context.cast(builder, builder.extract_value(args[2], c), tv[c], T)
                     for c in range(n)]
            _store_vector(context, builder, tx, args[0], ti, args[1], elems)
            return context.get_dummy_value()

        return types.none(x, i, values), codegen

    return put


def _store_vector(context, builder, tx, x, ti, i, elems) -> None:
    """Code for x[i + c] = elems[c] (values of x's element type) as one aligned vector
    store: the codegen shared by put and store."""
    from llvmlite import ir
    from numba import types

    dst = context.make_array(tx)(context, builder, x)
    at = context.cast(builder, i, ti, types.intp)
    elt = context.get_value_type(tx.dtype)
    vec = ir.VectorType(elt, len(elems))
    v = ir.Constant(vec, ir.Undefined)
    for c, e in enumerate(elems):
        v = builder.insert_element(v, e, ir.Constant(ir.IntType(32), c))
    p = builder.bitcast(builder.gep(dst.data, [at]), vec.as_pointer())
    builder.store(v, p, align=len(elems) * context.get_abi_sizeof(elt))


def _sim_storer(n: int):
    def store(x, i, src, j):
        for c in range(n):
            x[i + c] = src[j + c]

    return cuda.jit(device=True)(store)


def _flat(x) -> bool:
    from numba import types

    return isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"


def _sim_loader(n: int):
    def load(x, i):
        return tuple(x[i + c] for c in range(n))

    return cuda.jit(device=True)(load)


def _gpu_loader(n: int):
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def load(typingctx, x, i):
        if not _flat(x) or not isinstance(i, types.Integer):
            return None
        T = x.dtype
        sig = types.UniTuple(T, n)(x, i)

        def codegen(context, builder, signature, args):
            arr = context.make_array(signature.args[0])(context, builder, args[0])
            at = context.cast(builder, args[1], signature.args[1], types.intp)
            elt = context.get_value_type(T)
            p = builder.gep(arr.data, [at])
            vec = ir.VectorType(elt, n)
            v = builder.load(builder.bitcast(p, vec.as_pointer()),
                             align=n * context.get_abi_sizeof(elt))
            vals = [builder.extract_element(v, ir.Constant(ir.IntType(32), c))
                    for c in range(n)]
            return context.make_tuple(builder, signature.return_type, vals)

        return sig, codegen

    return load


def _gpu_storer(n: int):
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def store(typingctx, x, i, src, j):
        if not (_flat(x) and _flat(src) and x.dtype == src.dtype
                and isinstance(i, types.Integer) and isinstance(j, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            tx, ti, tsrc, tj = signature.args
            frm = context.make_array(tsrc)(context, builder, args[2])
            j0 = context.cast(builder, args[3], tj, types.intp)
            elems = [builder.load(builder.gep(frm.data, [builder.add(
                j0, ir.Constant(j0.type, c))])) for c in range(n)]
            _store_vector(context, builder, tx, args[0], ti, args[1], elems)
            return context.get_dummy_value()

        return types.none(x, i, src, j), codegen

    return store
