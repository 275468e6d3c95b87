"""The graph layer: nodes, saved values, hooks and the backward engine.

A node is the ``grad_fn`` of the tensors an operation produced. It holds its parents (the
``next_functions`` edges towards the inputs), never its outputs, so the graph dies with the last
tensor that refers to it. The engine knows no operation: it asks a node for the gradients of
its inputs, fits each one to its input's shape and dtype, and routes it along the edge.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import weakref
from sys import getrefcount

import numpy as np

from . import grad_mode

FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)

_seq = itertools.count()

# Bound by jitgrad/__init__.py once the tensor and op modules exist (they import this one).
Tensor = None
_ops = None
_ACCUMULATE_SEQ = 1 << 62  # leaves' accumulators run as soon as they are ready, as in torch
_ndarray = np.ndarray
_FLAT_ADD = _SMALL = None  # the flat CPU add kernels and their size limit, bound with _ops


class _HookDict(dict):
    """A dict that a RemovableHandle can refer to weakly."""

    __slots__ = ("__weakref__",)


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    _ids = itertools.count()
    __slots__ = ("_ref", "id")

    def __init__(self, hooks: _HookDict):
        self._ref = weakref.ref(hooks)
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        hooks = self._ref()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _add_hook(owner, attr: str, value) -> RemovableHandle:
    hooks = getattr(owner, attr)
    if hooks is None:
        hooks = _HookDict()
        setattr(owner, attr, hooks)
    handle = RemovableHandle(hooks)
    hooks[handle.id] = value
    return handle


class _Hooks:
    """What a node carries only once someone registered a hook or retained a gradient on it:
    kept apart so that recording a node and running the engine check one attribute."""

    __slots__ = ("_tensor_hooks", "_retains", "_pre_hooks", "_post_hooks")

    def __init__(self):
        self._tensor_hooks = None  # hooks of the non-leaf tensors the node produced
        self._retains = None  # output_nr -> weakref of a tensor that called retain_grad()
        self._pre_hooks = None
        self._post_hooks = None


def _hooks_of(node) -> _Hooks:
    hk = node._hk
    if hk is None:
        hk = node._hk = _Hooks()
    return hk


class Node:
    """Base of every ``grad_fn``. Subclasses implement ``apply(grads) -> grads_of_inputs``."""

    __slots__ = ("next_functions", "_seq", "_meta", "_hk", "__weakref__")

    num_outputs = 1

    def __init__(self, next_functions: tuple, meta: tuple):
        self.next_functions = next_functions
        self._meta = meta  # (shape, numpy dtype) of each input, to fit gradients to
        self._seq = next(_seq)
        self._hk = None  # a _Hooks, made on the first hook or retain_grad

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:  # (torch::autograd::NotImplemented prints as NotImplemented)
        return f"<{self.name().rsplit('::', 1)[-1]} object at {id(self):#x}>"

    def apply(self, grads: list) -> tuple:
        raise NotImplementedError

    def release(self) -> None:
        """Free what was saved for backward (called unless retain_graph)."""

    def __call__(self, *grads):
        return self.apply(list(grads))

    def register_hook(self, fn) -> RemovableHandle:
        """``fn(grad_inputs, grad_outputs)`` runs after this node computed its gradients."""
        return _add_hook(_hooks_of(self), "_post_hooks", fn)

    def register_prehook(self, fn) -> RemovableHandle:
        """``fn(grad_outputs)`` runs before this node; a returned tuple replaces them."""
        return _add_hook(_hooks_of(self), "_pre_hooks", fn)

    @property
    def metadata(self) -> dict:
        return {}


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: it adds what reaches it to ``leaf.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__((), ())
        self._seq = _ACCUMULATE_SEQ
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"


def accumulator(t) -> AccumulateGrad:
    """The AccumulateGrad node of leaf `t`, made on first use. The leaf refers to it weakly,
    so the two form no cycle."""
    ref = t._acc
    acc = ref() if ref is not None else None
    if acc is None:
        acc = AccumulateGrad(t)
        t._acc = weakref.ref(acc)
    return acc


def refresh_view(t) -> None:
    """A view whose base changed in place after the view's history was recorded: record it
    again by replaying the view on the base, whose history now includes the change (torch
    regenerates a view's grad_fn the same way)."""
    base, fn = t._base, t._view_fn
    t._gver = t._ver[0]
    if fn is None or not (base._requires_grad or t._requires_grad):
        return
    state = grad_mode.state
    was = state.enabled
    state.enabled = True
    try:
        fresh = fn(base)
    finally:
        state.enabled = was
    t._grad_fn = fresh._grad_fn
    t._output_nr = fresh._output_nr
    t._requires_grad = fresh._requires_grad


def edge(t) -> tuple:
    """Where gradients for tensor `t` go: (node, output_nr), or (None, 0) if nowhere."""
    if t._base is not None and t._ver[0] != t._gver:
        refresh_view(t)
    if t._grad_fn is not None:
        return (t._grad_fn, t._output_nr)
    if t._requires_grad:
        return (accumulator(t), 0)
    return (None, 0)


class _SavedOutput:
    """An output saved for backward, kept as its data: holding the tensor itself would make a
    cycle (tensor -> grad_fn -> tensor). Unpacking rebuilds it with the node as grad_fn."""

    __slots__ = ("data", "nr", "ver")

    def __init__(self, data, nr: int, ver: list):
        self.data = data
        self.nr = nr
        self.ver = ver  # the output's version counter; it was 0 when saved


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
               "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def modified_error(data, now: int, expected: int, fn=None, nr: int = 0) -> RuntimeError:
    """torch's error for a saved tensor changed in place after it was saved."""
    kind = _TYPE_NAMES[data.dtype.name]
    which = f", which is output {nr} of {fn.name()}," if fn is not None else ""
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [jitgrad.{kind}Tensor {list(data.shape)}]{which} is at version "
        f"{now}; expected version {expected} instead. Hint: the in-place operation ran after "
        "the tensor was saved for backward; clone() the tensor before changing it, or use an "
        "out-of-place operation.")


def saved_versions(saved: tuple) -> tuple:
    """The version of each tensor in `saved` (None for other values)."""
    out = []
    for s in saved:
        if isinstance(s, Tensor):
            v = s._ver
            out.append(0 if v is None else v[0])
        else:
            out.append(None)
    return tuple(out)


def unpack_saved(node, saved: tuple, versions: tuple) -> tuple:
    """Saved values as the backward rule sees them, after checking that no saved tensor was
    changed in place since it was saved. Returns `saved` itself when it holds no output."""
    res = None
    i = 0
    for s in saved:
        if s.__class__ is _SavedOutput:
            expected = versions[i] or 0  # outputs of built-in ops are saved fresh, at version 0
            if s.ver[0] != expected:
                raise modified_error(s.data, s.ver[0], expected, node, s.nr)
            if res is None:
                res = list(saved)
            res[i] = Tensor._wrap(s.data, node, s.nr)
        else:
            v = versions[i]
            if v is not None:
                cur = s._ver
                if cur is not None and cur[0] != v:
                    raise modified_error(s._data, cur[0], v, s._grad_fn, s._output_nr)
        i += 1
    return saved if res is None else tuple(res)


OUTPUT = object()  # placed in a `saved` tuple, stands for the operation's output


class Rule:
    """One row of the derivative table: the grad_fn name and one VJP per input.

    A row may also carry ``fused(g, edges, *saved)``: every input's gradient at once (a list;
    input i wants one where ``edges[i][0]`` is not None), used when the backward pass records
    no graph. It returns None where it does not apply, and the VJPs run instead."""

    __slots__ = ("name", "vjps", "fused")

    def __init__(self, name: str, vjps: tuple, fused=None):
        self.name = name
        self.vjps = vjps
        self.fused = fused


class OpNode(Node):
    """The node of a built-in primitive: its derivative-table row plus what it saved."""

    __slots__ = ("rule", "_saved", "_versions")

    def __init__(self, rule: Rule, next_functions: tuple, meta: tuple, saved: tuple,
                 versions: tuple):
        # Node.__init__, inlined: one node is made per recorded operation.
        self.next_functions = next_functions
        self._meta = meta
        self._seq = next(_seq)
        self._hk = None
        self.rule = rule
        self._saved = saved
        self._versions = versions

    def name(self) -> str:
        return self.rule.name

    def unpack(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED)
        return unpack_saved(self, saved, self._versions)

    def apply(self, grads: list) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED)
        if saved:
            saved = unpack_saved(self, saved, self._versions)
        g = grads[0]
        rule = self.rule
        if rule.fused is not None and not grad_mode.state.enabled:
            out = rule.fused(g, self.next_functions, *saved)
            if out is not None:
                return out
        out = []
        for (child, _), vjp in zip(self.next_functions, rule.vjps):
            out.append(vjp(g, *saved) if child is not None else None)
        return out

    def release(self) -> None:
        # Saved tensors are freed; a node that saved only plain values (shapes, dims) can run
        # again, as in torch.
        saved = self._saved
        if saved:
            for s in saved:
                if type(s) is _SavedOutput or isinstance(s, Tensor):
                    self._saved = None
                    return

    @property
    def metadata(self) -> dict:
        return {}


_NO_EDGE = (None, 0)


def record(rule: Rule, out, inputs: tuple, saved: tuple = ()):
    """Attach a node for primitive `rule` to the fresh tensor `out` if grad mode is on and an
    input requires grad. `saved` may hold OUTPUT, which stands for `out`.

    This runs once per operation, so it is written out longhand (no helpers, no generator
    expressions)."""
    if not grad_mode.state.enabled:
        return out
    for t in inputs:
        if t._base is not None and t._ver[0] != t._gver:  # (a view with a stale history)
            refresh_view(t)
    for t in inputs:
        if t._requires_grad:
            break
    else:
        return out
    if saved:
        versions = []
        has_output = False
        for s in saved:
            if s is OUTPUT:
                has_output = True
                versions.append(None)
            elif isinstance(s, Tensor):
                v = s._ver
                versions.append(0 if v is None else v[0])
            else:
                versions.append(None)
        versions = tuple(versions)
        if has_output:
            ver = out._ver = [0]
            saved = tuple(_SavedOutput(out._data, 0, ver) if s is OUTPUT else s for s in saved)
    else:
        versions = ()
    edges = []
    meta = []
    for t in inputs:
        fn = t._grad_fn
        if fn is not None:
            edges.append((fn, t._output_nr))
        elif t._requires_grad:
            edges.append((accumulator(t), 0))
        else:
            edges.append(_NO_EDGE)
        d = t._data
        meta.append((d.shape, d.dtype))
    out._grad_fn = OpNode(rule, tuple(edges), tuple(meta), saved, versions)
    out._requires_grad = True
    return out


def record_pair(rule: Rule, out, a, b, save: bool, meta: tuple) -> None:
    """record() for a binary primitive whose caller already checked that grad mode is on and
    that `a` or `b` requires grad; it saves (a, b) when `save`, and `meta` is the inputs'
    (shape, dtype) pairs. Written out for speed: the arithmetic operators come through here."""
    if a._base is not None and a._ver[0] != a._gver:  # (a view with a stale history)
        refresh_view(a)
    if b._base is not None and b._ver[0] != b._gver:
        refresh_view(b)
    if save:
        v = a._ver
        w = b._ver
        saved = (a, b)
        versions = (0 if v is None else v[0], 0 if w is None else w[0])
    else:
        saved = versions = ()
    fn = a._grad_fn
    if fn is not None:
        ea = (fn, a._output_nr)
    elif a._requires_grad:
        r = a._acc  # accumulator(a), inlined
        acc = r() if r is not None else None
        ea = (accumulator(a) if acc is None else acc, 0)
    else:
        ea = _NO_EDGE
    fn = b._grad_fn
    if fn is not None:
        eb = (fn, b._output_nr)
    elif b._requires_grad:
        r = b._acc  # accumulator(b), inlined
        acc = r() if r is not None else None
        eb = (accumulator(b) if acc is None else acc, 0)
    else:
        eb = _NO_EDGE
    node = _new(OpNode)
    node.next_functions = (ea, eb)
    node._meta = meta
    node._seq = next(_seq)
    node._hk = None
    node.rule = rule
    node._saved = saved
    node._versions = versions
    out._grad_fn = node
    out._requires_grad = True


_new = object.__new__


# --------------------------------------------------------------------------- the engine

def _owned(t) -> bool:
    """True when the caller's one local name is the only reference to gradient `t` and `t`
    is the only owner of its buffer: then the engine may reuse the buffer (sum into it, or
    adopt it as a leaf's .grad) instead of copying. The three references counted are the
    caller's name, this function's parameter and getrefcount's own argument (and for the
    buffer: the tensor, the local `d` and the argument)."""
    d = t._data
    if sys.getrefcount(t) > 3 or sys.getrefcount(d) > 3 or t._grad_fn is not None:
        return False
    b = d.base
    if b is not None:
        # A contiguous view of a whole buffer that nothing else holds is as good as owning
        # it; weight and bias gradients arrive this way (derivatives._mm_b_like_b, sum_to).
        # Allowed references: to the buffer, the view's, the local `b`, getrefcount's
        # argument and the view's base tensor's data; to that base tensor, the view's
        # `_base`, the local `tb` and the argument; to its data (when itself a view of the
        # buffer), the base tensor's and the argument.
        if b.base is not None or b.size != d.size:
            return False
        extra = 0
        tb = t._base
        if tb is not None:
            td = tb._data
            if sys.getrefcount(tb) > 3:
                return False
            if td is b:
                extra = 1
            elif td.base is b and sys.getrefcount(td) <= 3:  # (+ the local `td`)
                extra = 1
            else:
                return False
            td = None
        if sys.getrefcount(b) > 3 + extra:
            return False
    return d.flags.writeable and d.flags.c_contiguous


def _hook_result(fn, old, new):
    """A tensor hook's replacement gradient, checked as torch does: same size and dtype."""
    name = getattr(fn, "__name__", repr(fn))
    if new._data.shape != old._data.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")
    if new._data.dtype != old._data.dtype:
        raise RuntimeError(
            f"hook '{name}' has changed the type of value (was "
            f"torch.{_ops.torch_name(old._data.dtype)}Tensor got "
            f"torch.{_ops.torch_name(new._data.dtype)}Tensor)")
    return new


def _before_node(node: Node, hk: _Hooks, buf: list) -> list:
    """A node's pre-hooks, its tensors' hooks and retained gradients, in torch's order."""
    if hk._pre_hooks:
        for fn in list(hk._pre_hooks.values()):
            r = fn(tuple(buf))
            if r is not None:
                buf = list(r)
    if hk._tensor_hooks:
        for nr, fn in list(hk._tensor_hooks.values()):
            if buf[nr] is not None:
                r = fn(buf[nr])
                if r is not None:
                    buf[nr] = _hook_result(fn, buf[nr], r)
    if hk._retains:
        for nr, ref in hk._retains.items():
            t = ref()
            if t is not None and buf[nr] is not None:
                t._grad = buf[nr].clone() if t._grad is None else t._grad + buf[nr]
    return buf


def _fit(node: Node, i: int, g):
    """Fit gradient `g` for input `i` of `node` to that input's shape and dtype: the one place
    where a broadcast gradient is summed back."""
    shape, dt = node._meta[i]
    if g._data.shape != shape:
        if not _ops.expandable(shape, g._data.shape):
            raise RuntimeError(
                f"Function {node.name()} returned an invalid gradient at index {i} - got "
                f"{list(g._data.shape)} but expected shape compatible with {list(shape)}")
        g = _ops.sum_to(g, shape)
    if g._data.dtype != dt:
        g = g.to(dtype=dt)
    return g


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool, inputs=None,
                 accumulate: bool = True, allow_unused: bool = False):
    """Run the chain rule from `roots` (tensors) seeded with `grads`.

    With ``accumulate`` (``backward``), gradients are added to the ``.grad`` of leaves (only
    those in `inputs` when given). Without it (``autograd.grad``), the gradients reaching
    `inputs` are returned and no ``.grad`` changes.
    """
    root_edges = []
    for i, t in enumerate(roots):
        if not t._requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")
        root_edges.append(edge(t))

    # Targets: where gradients are captured (autograd.grad) or accumulated (inputs=...).
    captures = {}  # node -> [(output_nr, index into `inputs`)]
    exec_targets = set()
    if inputs is not None:
        for k, t in enumerate(inputs):
            if not t._requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            node, nr = edge(t)
            if accumulate and t._grad_fn is None:
                exec_targets.add(node)
            else:
                captures.setdefault(node, []).append((nr, k))

    # Count each node's consumers (edges into it) with an iterative walk.
    deps: dict = {}
    start = {e[0] for e in root_edges}
    stack = list(start)
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is not None:
                c = deps.get(child)
                if c is None:  # first visit (a root is already on the stack)
                    deps[child] = 1
                    if child not in start:
                        stack.append(child)
                else:
                    deps[child] = c + 1

    needed = None
    if inputs is not None:
        # A node runs only if a target lies below it: mark in reverse topological order.
        remaining = dict(deps)
        order = []
        ready = [n for n in start if n not in remaining]
        while ready:
            n = ready.pop()
            order.append(n)
            for child, _ in n.next_functions:
                if child is not None:
                    remaining[child] -= 1
                    if remaining[child] == 0:
                        ready.append(child)
        needed = {}
        for n in reversed(order):
            needed[n] = n in exec_targets or any(
                c is not None and (needed.get(c) or c in captures) for c, _ in n.next_functions)

    buffers: dict = {}
    heap = []
    tie = itertools.count()
    for (node, nr), g in zip(root_edges, grads):
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node.num_outputs
            # A root that another root's graph also reaches waits for that gradient too.
            if node not in deps:
                heapq.heappush(heap, (-node._seq, next(tie), node))
        buf[nr] = g if buf[nr] is None else buf[nr] + g

    captured = [None] * (len(inputs) if inputs is not None else 0)
    pending = []  # (leaf, grad): .grad is written only after the whole pass succeeded

    heappop = heapq.heappop
    heappush = heapq.heappush
    node = None  # the next node, when it was the only one ready (it skips the heap)
    node_buf = None  # its gradients, when they were handed over directly (not in `buffers`)
    mode = grad_mode.state
    was_enabled = mode.enabled
    mode.enabled = create_graph
    try:
        while node is not None or heap:
            if node is None:
                node = heappop(heap)[2]
            if node_buf is None:
                buf = buffers.pop(node)
            else:
                buf = node_buf
                node_buf = None
            hk = node._hk
            if hk is not None:
                buf = _before_node(node, hk, buf)
            if captures and node in captures:
                for nr, k in captures[node]:
                    g = buf[nr]
                    captured[k] = g if captured[k] is None else captured[k] + g
            if needed is not None and not needed.get(node, False):
                node = None
                continue

            if node.__class__ is AccumulateGrad:
                g = buf[0]
                if g is not None:
                    var = node.variable
                    hooks = var._hooks
                    if hooks:
                        for fn in list(hooks.values()):
                            r = fn(g)
                            if r is not None:
                                g = _hook_result(fn, g, r)
                    pending.append((var, g))
                buf = g = node = None
                continue

            if buf[0] is not None or any(g is not None for g in buf):
                outs = node.apply(buf)
            else:  # no gradient reached this node: nothing flows on from it either
                outs = [None] * len(node.next_functions)
            if not retain_graph:
                node.release()
            if hk is not None and hk._post_hooks:
                for fn in list(hk._post_hooks.values()):
                    fn(tuple(outs), tuple(buf))
            del buf

            meta = node._meta
            ready = None  # the first child that became ready
            ready_buf = None  # its gradients, if handed over directly
            for i, (child, nr) in enumerate(node.next_functions):
                if child is None:
                    continue
                if needed is not None and not (needed.get(child) or child in captures):
                    continue
                g = outs[i]
                if g is not None:
                    shape, dt = meta[i]
                    gd = g._data
                    if gd.shape != shape or (gd.dtype is not dt and gd.dtype != dt):
                        g = _fit(node, i, g)
                    gd = None
                    cbuf = buffers.get(child)
                    if cbuf is None:
                        if ready is None and deps[child] == 1:
                            # This edge is the child's only one: hand the gradient over
                            # without the buffer table (a chain's common case).
                            ready_buf = [None] * child.num_outputs
                            ready_buf[nr] = g
                            ready = child
                            del g
                            continue
                        cbuf = buffers[child] = [None] * child.num_outputs
                    prev = cbuf[nr]
                    if prev is None:
                        cbuf[nr] = g
                    else:
                        cbuf[nr] = None
                        if create_graph:
                            cbuf[nr] = prev + g
                        else:
                            # Sum in place into a buffer that nothing else holds. The common
                            # case first (a 1-D array the engine's local `prev` holds alone:
                            # two references counting getrefcount's argument), then _owned.
                            pd = prev._data
                            k = None
                            if pd.__class__ is _ndarray and pd.base is None and \
                                    getrefcount(prev) == 2 and getrefcount(pd) == 3 and \
                                    pd.ndim == 1 and pd.size < _SMALL and pd.flags.writeable \
                                    and prev._grad_fn is None:
                                gd = g._data
                                if gd.__class__ is _ndarray:
                                    k = _FLAT_ADD.get(pd.dtype)
                            if k is not None:
                                k(pd, gd, pd)
                                cbuf[nr] = prev
                            elif _owned(prev):
                                _ops.add_into(prev, g)
                                cbuf[nr] = prev
                            else:
                                cbuf[nr] = prev + g
                            pd = gd = None
                    del g, prev
                n = deps[child] - 1
                if n:
                    deps[child] = n
                else:
                    # Run it even if every gradient into it was None: its own inputs are
                    # counted on it.
                    if child not in buffers:
                        buffers[child] = [None] * child.num_outputs
                    if ready is None:
                        ready = child
                    else:
                        heappush(heap, (-child._seq, next(tie), child))
            outs = cbuf = None  # drop references so that buffers can be reused
            # The next node is the ready one of highest sequence number: `ready` itself when
            # nothing else waits (a chain), so the common case skips the heap.
            if ready is not None and heap:
                if ready_buf is not None:
                    buffers[ready] = ready_buf
                    ready_buf = None
                heappush(heap, (-ready._seq, next(tie), ready))
                ready = None
            node = ready
            node_buf = ready_buf
            ready = ready_buf = None  # (a stale reference would keep gradients from reuse)
    finally:
        mode.enabled = was_enabled

    while pending:
        var, g = pending.pop()
        # Decided before the call: the call's own argument list would hold `g` too.
        owned = not create_graph and _owned(g)
        _write_grad(var, g, create_graph, owned)
    if inputs is not None and accumulate:
        for node, lst in captures.items():  # non-leaf tensors named in inputs=
            for nr, k in lst:
                if captured[k] is not None:
                    _write_grad(inputs[k], captured[k], create_graph)
        return None
    if inputs is not None:
        for k, g in enumerate(captured):
            if g is None and not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {k} appears to not have been used in "
                    "the graph. Set allow_unused=True if this is the desired behavior.")
        return tuple(captured)
    return None


def _write_grad(var, g, create_graph: bool, owned: bool = False) -> None:
    """var.grad += g, with torch's rules: a fresh .grad shares its buffer with nobody (`g`'s
    is adopted only when `owned`), and with create_graph the sum stays differentiable."""
    if var._grad is None:
        if create_graph:
            var._grad = g
        elif owned:
            var._grad = g if g._base is None else Tensor._wrap(g._data)  # no longer a view
        else:
            var._grad = g.detach().clone()
    elif create_graph or var._grad._requires_grad:
        var._grad = var._grad + g
    else:
        _ops.add_into(var._grad, g)
    hooks = var._post_acc_hooks
    if hooks:
        for fn in list(hooks.values()):
            fn(var)
