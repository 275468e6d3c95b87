"""One memory access for several neighbouring elements: 16 bytes at a time (4 float32, 2
float64 or int64), where a kernel's loop would otherwise issue a 4- or 8-byte load per element.

NVVM merges neighbouring loads into one wide load only where it can prove the address
aligned, which it cannot for a device pointer a kernel receives. ``loader(width)`` gives a
device function ``load(x, i)`` that reads ``x[i], ..., x[i + width - 1]`` as one vector
load (``ld.global.v4.f32`` and the like), returned as a tuple. The caller promises what the
hardware needs: the address of ``x[i]`` is a multiple of ``width * itemsize`` bytes (the host
checks pointers and strides before it picks a kernel that uses this) and the elements exist.

In the simulator kernels run as Python, so ``load`` there reads the elements one by one.
"""

from __future__ import annotations

from .runtime import SIM, cuda

_loaders: dict = {}


def width(itemsize: int) -> int:
    """Elements per 16-byte access."""
    return max(1, 16 // itemsize)


def loader(n: int):
    """The device function load(x, i) -> (x[i], ..., x[i + n - 1]), one n-element access."""
    f = _loaders.get(n)
    if f is None:
        f = _loaders[n] = _sim_loader(n) if SIM else _gpu_loader(n)
    return f


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
        if not isinstance(x, types.Array) or not isinstance(i, types.Integer):
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
