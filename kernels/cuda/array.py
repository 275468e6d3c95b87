"""``CudaArray``: the storage of a CUDA tensor.

A CudaArray is a view (shape, byte strides, byte offset, dtype) of a block of device memory
from the caching allocator, with the part of numpy's array interface that jitgrad's op layer
uses: metadata, basic indexing as views, advanced indexing through gather/scatter kernels,
``reshape``/``transpose``/``astype``/``copy``, assignment, and the numpy functions of
``_HANDLED`` (``np.broadcast_to``, ``np.swapaxes``, ...). Anything else that would need the
values on the host (``np.asarray``, an unhandled numpy function) raises instead of copying
silently; ``.get()`` is the explicit way to the host.
"""

from __future__ import annotations

import numpy as np

from .runtime import ALLOCATOR, SIM, config, cuda, download, flat_view, upload, view

_NUMERIC = "biuf"


class _Flags:
    __slots__ = ("c_contiguous", "writeable")

    def __init__(self, c_contiguous: bool, writeable: bool):
        self.c_contiguous = c_contiguous
        self.writeable = writeable


def _contiguous_strides(shape: tuple, itemsize: int) -> tuple:
    st = []
    acc = itemsize
    for n in reversed(shape):
        st.append(acc)
        acc *= n if n > 1 else 1
    return tuple(reversed(st))


_LAYOUTS: dict = {}


def _layout(shape: tuple, itemsize: int) -> tuple:
    """(shape as Python ints, its C-order strides, its size) for a shape tuple. A training
    loop asks for the same few shapes all the time, so the answers are kept: one dict
    lookup instead of converting and multiplying on every allocation and reshape."""
    r = _LAYOUTS.get((shape, itemsize))
    if r is None:
        s = tuple([int(n) for n in shape])
        n = 1
        for d in s:
            if d < 0:
                raise ValueError("negative dimensions are not allowed")
            n *= d
        if len(_LAYOUTS) >= 4096:
            _LAYOUTS.clear()
        r = _LAYOUTS[(s, itemsize)] = (s, _contiguous_strides(s, itemsize), n)
    return r


def _is_contiguous(shape: tuple, strides: tuple, itemsize: int) -> bool:
    acc = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 0:
            return True
        if n != 1 and s != acc:
            return False
        acc *= n
    return True


class CudaArray:
    """An n-d view of CUDA device memory with numpy's metadata and semantics."""

    # base: the array owning the block when this one is a view (numpy's meaning: None for
    # the owner), which keeps the engine's refcount test for reusable buffers valid
    # size, ndim and _c (C-contiguous) are worked out once: the metadata never changes
    __slots__ = ("_block", "_offset", "shape", "strides", "dtype", "_writeable", "base", "_fv",
                 "size", "ndim", "_c", "__weakref__")
    __array_priority__ = 2000

    def __init__(self, block, offset: int, shape: tuple, strides: tuple, dtype,
                 writeable: bool = True, base=None):
        _fill(self, block, offset, tuple([int(n) for n in shape]),
              tuple([int(s) for s in strides]), np.dtype(dtype), writeable, base)

    # ------------------------------------------------------------------ metadata

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def flags(self) -> _Flags:
        return _Flags(self._c, self._writeable)

    @property
    def device(self) -> int:
        return 0

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"CudaArray(shape={self.shape}, dtype={self.dtype})"

    @property
    def __cuda_array_interface__(self) -> dict:
        ptr = 0 if SIM else self._block.ptr + self._offset
        return {"shape": self.shape, "strides": self.strides, "typestr": self.dtype.str,
                "data": (ptr, not self._writeable), "version": 3}

    def __reduce__(self):
        """Pickled through the host (the device address means nothing elsewhere)."""
        return from_host, (self.get(),)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
            "tensor to host memory first.")

    # ------------------------------------------------------------------ kernel arguments
    def kview(self):
        """This array as a kernel argument (its own shape and strides)."""
        return view(self._block, self._offset, self.shape, self.strides, self.dtype)

    def flat(self):
        """A contiguous array as a 1-D kernel argument."""
        v = self._fv
        if v is None:
            if not self._c:
                raise ValueError(f"flat() of a non-contiguous CudaArray {self.shape} with "
                                 f"strides {self.strides}: a kernel would read the wrong "
                                 "elements")
            v = self._fv = flat_view(self._block, self._offset, self.size, self.dtype)
        return v

    def strided(self):
        """(base, start, strides): a 1-D kernel view from the lowest address this array
        touches, the element index of element (0, ..., 0) in it, and the element strides."""
        isz = self.dtype.itemsize
        if self._c:  # the flat view, made once
            return self.flat(), 0, tuple([s // isz for s in self.strides])
        lo = hi = 0
        for n, s in zip(self.shape, self.strides):
            if n > 1:
                if s < 0:
                    lo += (n - 1) * s
                else:
                    hi += (n - 1) * s
        count = (hi - lo) // isz + 1
        base = flat_view(self._block, self._offset + lo, count, self.dtype)
        return base, -lo // isz, tuple(s // isz for s in self.strides)

    def _as(self, shape: tuple, strides: tuple, offset=None, contiguous=None,
            size=None) -> "CudaArray":
        """A view of the same block (shape and strides: tuples of Python ints)."""
        a = _new(CudaArray)
        _fill(a, self._block, self._offset if offset is None else offset, shape, strides,
              self.dtype, self._writeable, self.base if self.base is not None else self,
              contiguous, size)
        return a

    # ------------------------------------------------------------------ views
    def reshape(self, *shape, order: str = "C") -> "CudaArray":
        if len(shape) == 1 and shape[0].__class__ is not int:
            shape = shape[0]
            if shape.__class__ is not tuple:
                shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        isz = self.dtype.itemsize
        n = self.size
        if self._c and shape == (-1,):  # flattening a contiguous array
            return self._as((n,), (isz,), None, True, n)
        if self._c and -1 not in shape:  # the common case: a contiguous array, a full shape
            shape, st, m = _layout(shape, isz)
            if m == n:
                return self._as(shape, st, None, True, n)
        shape, st, _ = _layout(_infer(tuple([int(s) for s in shape]), n, self.shape), isz)
        if self._c:
            return self._as(shape, st, None, True, n)
        nst = _nocopy_strides(self.shape, self.strides, shape, isz)
        if nst is not None:
            return self._as(shape, nst, None, None, n)
        return self.copy()._as(shape, st, None, True, n)

    def ravel(self) -> "CudaArray":
        return self.reshape(-1)

    def transpose(self, *axes) -> "CudaArray":
        if not axes and self.ndim == 2:  # x.T of a matrix: the common case
            (m, n), (sm, sn) = self.shape, self.strides
            return self._as((n, m), (sn, sm))
        if not axes or axes == (None,):
            axes = tuple(range(self.ndim))[::-1]
        elif len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = tuple(int(a) % self.ndim if self.ndim else 0 for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError("axes don't match array")
        return self._as(tuple(self.shape[a] for a in axes), tuple(self.strides[a] for a in axes))

    @property
    def T(self) -> "CudaArray":
        return self.transpose()

    def swapaxes(self, a: int, b: int) -> "CudaArray":
        axes = list(range(self.ndim))
        a, b = a % self.ndim, b % self.ndim
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(axes)

    def squeeze(self, axis=None) -> "CudaArray":
        if axis is None:
            keep = [i for i, n in enumerate(self.shape) if n != 1]
        else:
            axes = {a % self.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
            keep = [i for i in range(self.ndim) if i not in axes]
        return self._as(tuple(self.shape[i] for i in keep), tuple(self.strides[i] for i in keep))

    def broadcast_to(self, shape: tuple) -> "CudaArray":
        shape = tuple(int(s) for s in shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError("input operand has more dimensions than allowed by the axis "
                             "remapping")
        st = [0] * lead
        for i, (n, s) in enumerate(zip(self.shape, self.strides)):
            t = shape[lead + i]
            if n == t:
                st.append(s)
            elif n == 1:
                st.append(0)
            else:
                raise ValueError(f"operands could not be broadcast together with remapped "
                                 f"shapes [original->remapped]: {self.shape} and requested "
                                 f"shape {shape}")
        out = self._as(shape, tuple(st))
        out._writeable = False
        return out

    def __getitem__(self, key) -> "CudaArray":
        parts = key if isinstance(key, tuple) else (key,)
        if any(_is_index_array(p) for p in parts):
            return _advanced_get(self, parts)
        return _basic(self, parts)

    def __setitem__(self, key, value) -> None:
        parts = key if isinstance(key, tuple) else (key,)
        if any(_is_index_array(p) for p in parts):
            _advanced_set(self, parts, value)
            return
        dst = _basic(self, parts)
        from . import elementwise

        elementwise.assign(dst, value)

    # ------------------------------------------------------------------ copies
    def copy(self, order: str = "C") -> "CudaArray":
        from . import elementwise

        return elementwise.copy_strided(self, self.dtype)

    def astype(self, dtype, copy: bool = True, order: str = "K") -> "CudaArray":
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        from . import elementwise

        return elementwise.copy_strided(self, dtype)

    def fill(self, value) -> None:
        from . import elementwise

        elementwise.assign(self, value)

    def get(self) -> np.ndarray:
        """A host copy (numpy array, C order)."""
        src = self if self.flags.c_contiguous else self.copy()
        out = np.empty(self.shape, dtype=self.dtype)
        if out.size:
            download(src.flat(), out.reshape(-1))
        return out

    def tolist(self):
        return self.get().tolist()

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().reshape(-1)[0].item()

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ------------------------------------------------------------------ numpy functions
    def __array_function__(self, func, types, args, kwargs):
        impl = _HANDLED.get(func)
        if impl is None:
            return NotImplemented
        return impl(*args, **kwargs)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return NotImplemented


# --------------------------------------------------------------------------- creation

_new = object.__new__


def _fill(a: CudaArray, block, offset: int, shape: tuple, strides: tuple, dtype, writeable,
          base, contiguous=None, size=None) -> None:
    a.base = base
    a._fv = None  # flat()'s kernel view, made once
    a._block = block
    a._offset = offset
    a.shape = shape
    a.strides = strides
    a.dtype = dtype
    a._writeable = writeable
    if size is None:
        size = 1
        for d in shape:
            size *= d
    a.size = size
    a.ndim = len(shape)
    a._c = _is_contiguous(shape, strides, dtype.itemsize) if contiguous is None else contiguous


def empty(shape, dtype) -> CudaArray:
    if shape.__class__ is not tuple:
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    dtype = np.dtype(dtype)
    isz = dtype.itemsize
    shape, st, n = _layout(shape, isz)
    a = _new(CudaArray)
    _fill(a, ALLOCATOR.allocate(n * isz), 0, shape, st, dtype, True, None, True, n)
    return a


def from_host(a) -> CudaArray:
    """A device copy of a host array (or number)."""
    a = np.asarray(a)
    out = empty(a.shape, a.dtype)
    if a.size:
        upload(out.flat(), np.ascontiguousarray(a).reshape(-1))
    return out


def is_cuda(a) -> bool:
    return isinstance(a, CudaArray)


# --------------------------------------------------------------------------- shapes

def _infer(shape: tuple, size: int, old: tuple) -> tuple:
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape "
                             f"{tuple(shape)}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
    return shape


def _nocopy_strides(old: tuple, ostr: tuple, new: tuple, isz: int):
    """Strides viewing an array of shape `old` with strides `ostr` as shape `new` without a
    copy (row-major order), or None when that needs a copy. Old dims are grouped into runs
    whose product matches a run of new dims; each old run must be contiguous in itself."""
    n = 1
    for s in old:
        n *= s
    if n <= 1:
        return _contiguous_strides(new, isz)
    od = [d for d in old if d != 1]
    os_ = [s for d, s in zip(old, ostr) if d != 1]
    nd = list(new)
    nst = [0] * len(nd)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(nd) and oi < len(od):
        np_, op_ = nd[ni], od[oi]
        while np_ != op_:
            if np_ < op_:
                np_ *= nd[nj]
                nj += 1
            else:
                op_ *= od[oj]
                oj += 1
        for ok in range(oi, oj - 1):
            if os_[ok] != od[ok + 1] * os_[ok + 1]:
                return None
        nst[nj - 1] = os_[oj - 1]
        for nk in range(nj - 1, ni, -1):
            nst[nk - 1] = nst[nk] * nd[nk]
        ni, oi = nj, oj
        nj += 1
        oj += 1
    last = nst[ni - 1] if ni >= 1 else isz
    for nk in range(ni, len(nd)):
        nst[nk] = last
    return tuple(nst)


def _basic(a: CudaArray, parts: tuple) -> CudaArray:
    """A view for a key of ints, slices, None and Ellipsis (numpy's basic indexing)."""
    n_real = sum(1 for p in parts if p is not None and p is not Ellipsis)
    if n_real > a.ndim:
        raise IndexError(f"too many indices for array: array is {a.ndim}-dimensional, but "
                         f"{n_real} were indexed")
    if parts.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in parts:
        k = parts.index(Ellipsis)
        parts = parts[:k] + (slice(None),) * (a.ndim - n_real) + parts[k + 1:]
    else:
        parts = parts + (slice(None),) * (a.ndim - n_real)
    shape, strides = [], []
    off = a._offset
    d = 0
    for p in parts:
        if p is None:
            shape.append(1)
            strides.append(0)
            continue
        n, s = a.shape[d], a.strides[d]
        if isinstance(p, slice):
            start, stop, step = p.indices(n)
            cnt = len(range(start, stop, step))
            if cnt:
                off += start * s
            shape.append(cnt)
            strides.append(s * step)
        else:
            i = int(p)
            if i < -n or i >= n:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {n}")
            off += (i % n) * s
        d += 1
    return CudaArray(a._block, off, tuple(shape), tuple(strides), a.dtype, a._writeable,
                     a.base if a.base is not None else a)


def _is_index_array(p) -> bool:
    return isinstance(p, (np.ndarray, list, CudaArray)) and not isinstance(p, str)


def _offsets(a: CudaArray, parts: tuple) -> np.ndarray:
    """Element offsets (from element 0, in a's strides) selected by a numpy-style key with
    index arrays; computed on the host from the shape alone."""
    grid = np.zeros((), dtype=np.int64)
    isz = a.dtype.itemsize
    for n, s in zip(a.shape, a.strides):
        grid = grid[..., None] + np.arange(n, dtype=np.int64) * (s // isz)
    parts = tuple(p.get() if isinstance(p, CudaArray) else p for p in parts)
    return np.ascontiguousarray(grid[parts])


def _advanced_get(a: CudaArray, parts: tuple) -> CudaArray:
    from . import elementwise

    offs = _offsets(a, parts)
    return elementwise.gather_offsets(a, offs)


def _advanced_set(a: CudaArray, parts: tuple, value) -> None:
    from . import elementwise

    offs = _offsets(a, parts)
    elementwise.scatter_offsets(a, offs, value)


# --------------------------------------------------------------------------- numpy functions

def _np_broadcast_to(a, shape, subok=False):
    return a.broadcast_to((shape,) if isinstance(shape, int) else shape)


def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    shape = newshape if shape is None else shape
    if copy is False:
        st = _nocopy_strides(a.shape, a.strides, _infer(tuple(shape), a.size, a.shape),
                             a.dtype.itemsize) if not isinstance(shape, int) else None
        if st is None and not isinstance(shape, int):
            raise ValueError("Unable to avoid creating a copy while reshaping.")
    return a.reshape(shape)


def _np_expand_dims(a, axis):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = a.ndim + len(axes)
    axes = sorted(ax % nd for ax in axes)
    shape, strides = list(a.shape), list(a.strides)
    for ax in axes:
        shape.insert(ax, 1)
        strides.insert(ax, 0)
    return a._as(tuple(shape), tuple(strides))


def _np_moveaxis(a, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % a.ndim for s in src]
    dst = [d % a.ndim for d in dst]
    order = [n for n in range(a.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return a.transpose(order)


def _np_may_share_memory(a, b, max_work=None):
    if not (isinstance(a, CudaArray) and isinstance(b, CudaArray)):
        return False
    return a._block is b._block


def _np_broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*(x.shape for x in args))
    return [x.broadcast_to(shape) for x in args]


_HANDLED = {
    np.broadcast_to: _np_broadcast_to,
    np.reshape: _np_reshape,
    np.swapaxes: lambda a, x, y: a.swapaxes(x, y),
    np.transpose: lambda a, axes=None: a.transpose(axes),
    np.expand_dims: _np_expand_dims,
    np.squeeze: lambda a, axis=None: a.squeeze(axis),
    np.moveaxis: _np_moveaxis,
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
    np.size: lambda a, axis=None: a.size if axis is None else a.shape[axis],
    np.may_share_memory: _np_may_share_memory,
    np.shares_memory: _np_may_share_memory,
    np.broadcast_arrays: _np_broadcast_arrays,
    np.ravel: lambda a, order="C": a.reshape(-1),
}

__all__ = ["CudaArray", "empty", "from_host", "is_cuda", "SIM", "cuda", "config"]
