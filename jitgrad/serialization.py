"""``jitgrad.save`` / ``jitgrad.load``: tensors and containers of them, without pickle.

A file is a zip archive (stored, uncompressed) holding

* ``jitgrad.json``: the manifest, ``{"format": "jitgrad", "version": 1, "root": node}``, where
  a node describes one value: ``{"type": "tensor", "array": k, "requires_grad": ...,
  "kind": "tensor" | "parameter" | "buffer"}``, ``{"type": "dict" | "ordereddict" |
  "counter", "items": [[key_node, value_node], ...]}``, ``{"type": "list" | "tuple",
  "items": [...]}``, or a scalar (``int``, ``float``, ``bool``, ``str``, ``none``,
  ``dtype``, ``device``);
* ``arrays/<k>.npy``: one array per distinct tensor object, in numpy's ``.npy`` format, read
  back with ``allow_pickle=False``.

Nothing in a file is executed on load, so loading an untrusted file runs no code
(``weights_only=True`` is accepted and is what always happens). A file that is not a zip, is
truncated or corrupt, or is not jitgrad's raises ``UnpicklingError`` (a ``RuntimeError``)
naming the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from . import _dtype
from ._device import device as _device
from ._device import host, move, to_device
from .tensor import Tensor

__all__ = ["UnpicklingError", "load", "save"]

FORMAT = "jitgrad"
VERSION = 1
MANIFEST = "jitgrad.json"
_SCALARS = {"int", "float", "bool", "str", "none", "dtype", "device"}


class UnpicklingError(RuntimeError):
    """A file that jitgrad.load cannot read: not a jitgrad file, truncated or corrupt."""


def _describe(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        return f"'{os.fspath(f)}'"
    name = getattr(f, "name", None)
    return f"'{name}'" if isinstance(name, str) else f"<{type(f).__name__}>"


# --------------------------------------------------------------------------- save

class _Writer:
    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.ids: dict[int, int] = {}  # id(tensor) -> array number
        self.keep: list = []           # keeps the ids valid while writing

    def node(self, obj, path: str) -> dict:
        if isinstance(obj, Tensor):
            return self.tensor(obj)
        if obj is None:
            return {"type": "none"}
        if isinstance(obj, (bool, np.bool_)):
            return {"type": "bool", "value": bool(obj)}
        if isinstance(obj, (int, np.integer)):
            return {"type": "int", "value": int(obj)}
        if isinstance(obj, (float, np.floating)):
            return {"type": "float", "value": repr(float(obj))}  # repr keeps nan/inf exact
        if isinstance(obj, str):
            return {"type": "str", "value": obj}
        if isinstance(obj, _dtype.dtype):
            return {"type": "dtype", "value": obj.name}
        if isinstance(obj, _device):
            return {"type": "device", "value": str(obj)}
        if isinstance(obj, np.ndarray):
            return self.tensor(Tensor._wrap(obj), kind="ndarray")
        if type(obj) in (dict, OrderedDict, Counter):
            kind = {dict: "dict", OrderedDict: "ordereddict", Counter: "counter"}[type(obj)]
            return {"type": kind,
                    "items": [[self.node(k, f"{path} key {k!r}"), self.node(v, f"{path}[{k!r}]")]
                              for k, v in obj.items()]}
        if type(obj) in (list, tuple):
            return {"type": type(obj).__name__,
                    "items": [self.node(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        raise TypeError(
            f"jitgrad.save cannot save an object of type {typename_of(obj)} (at {path}): it "
            "saves tensors, Parameters, dicts/OrderedDicts, lists and tuples of them, and "
            "Python numbers, strings, bools and None. Save the object's state_dict() instead.")

    def tensor(self, t: Tensor, kind: str | None = None) -> dict:
        from .nn.parameter import Buffer, Parameter

        if kind is None:
            kind = "parameter" if isinstance(t, Parameter) else \
                "buffer" if isinstance(t, Buffer) else "tensor"
        k = self.ids.get(id(t))
        if k is None:
            k = self.ids[id(t)] = len(self.ids)
            self.keep.append(t)
            with self.zf.open(f"arrays/{k}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(host(t._data), order="C"),
                                          allow_pickle=False)
        out = {"type": "tensor", "array": k, "kind": kind, "dtype": t._data.dtype.str,
               "shape": list(t._data.shape), "requires_grad": bool(t._requires_grad),
               "device": str(t.device)}
        if kind == "buffer":
            out["persistent"] = bool(t.persistent)
        return out


def typename_of(obj) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def save(obj, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization: bool = True) -> None:
    """Save `obj` (tensors, Parameters, state dicts, nested dicts/lists/tuples of them and
    of plain Python values) to the path or binary file object `f`. The archive is built in
    memory first, so an object that cannot be saved leaves `f` untouched."""
    data = _archive(obj)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    else:
        f.write(data)


def _archive(obj) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        w = _Writer(zf)
        root = w.node(obj, "the saved object")
        manifest = {"format": FORMAT, "version": VERSION, "root": root}
        zf.writestr(MANIFEST, json.dumps(manifest, separators=(",", ":")))
    return buf.getvalue()


# --------------------------------------------------------------------------- load

class _Reader:
    def __init__(self, zf: zipfile.ZipFile, where: str, device=None):
        self.zf = zf
        self.where = where
        self.device = device  # map_location's device, else each tensor's saved one
        self.tensors: dict[int, Tensor] = {}

    def fail(self, what: str) -> UnpicklingError:
        return UnpicklingError(f"jitgrad.load: {self.where} is corrupt: {what}")

    def node(self, n) -> Any:
        if not isinstance(n, dict) or "type" not in n:
            raise self.fail(f"bad manifest entry {n!r:.80}")
        t = n["type"]
        try:
            if t == "tensor":
                return self.tensor(n)
            if t in _SCALARS:
                return self.scalar(t, n.get("value"))
            if t in ("dict", "ordereddict", "counter"):
                cls = {"dict": dict, "ordereddict": OrderedDict, "counter": Counter}[t]
                return cls((self.key(k), self.node(v)) for k, v in n["items"])
            if t == "list":
                return [self.node(v) for v in n["items"]]
            if t == "tuple":
                return tuple(self.node(v) for v in n["items"])
        except (KeyError, TypeError, ValueError) as e:
            raise self.fail(f"bad manifest entry of type {t!r} ({type(e).__name__}: {e})") \
                from None
        raise self.fail(f"unknown manifest entry type {t!r}")

    def key(self, n):
        k = self.node(n)
        if isinstance(k, (list, dict)):
            raise self.fail("a dict key that is not hashable")
        return k

    def scalar(self, t: str, v):
        if t == "none":
            return None
        if t == "bool" and isinstance(v, bool):
            return v
        if t == "int" and isinstance(v, int) and not isinstance(v, bool):
            return v
        if t == "float" and isinstance(v, str):
            return float(v)
        if t == "str" and isinstance(v, str):
            return v
        if t == "dtype" and v in _dtype._BY_NAME and _dtype._BY_NAME[v] is not None:
            return _dtype._BY_NAME[v]
        if t == "device" and isinstance(v, str):
            return _device(v)
        raise self.fail(f"bad {t} value {v!r:.80}")

    def tensor(self, n: dict):
        from .nn.parameter import Buffer, Parameter

        k = n["array"]
        if not isinstance(k, int):
            raise self.fail(f"bad array number {k!r:.40}")
        t = self.tensors.get(k)
        if t is None:
            name = f"arrays/{k}.npy"
            try:
                with self.zf.open(name) as f:
                    data = np.lib.format.read_array(f, allow_pickle=False)
                    if f.read(1):  # (reading to the end also checks the entry's CRC)
                        raise ValueError("trailing bytes after the array")
            except KeyError:
                raise self.fail(f"the manifest names {name}, which the archive lacks") from None
            except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
                raise self.fail(f"{name} cannot be read ({e})") from None
            if data.dtype.str != n["dtype"] or list(data.shape) != list(n["shape"]):
                raise self.fail(f"{name} holds a {data.dtype} array of shape "
                                f"{list(data.shape)}, the manifest says {n['dtype']} "
                                f"{n['shape']}")
            if data.dtype not in _dtype.FROM_NP:
                raise self.fail(f"{name} has dtype {data.dtype}, which jitgrad does not "
                                "support")
            if not data.flags.writeable:
                data = data.copy()
            kind = n["kind"]
            if kind != "ndarray":
                data = move(data, self.device or to_device(n.get("device", "cpu")))
            base = Tensor._wrap(data)
            if kind == "parameter":
                t = Parameter(base, requires_grad=bool(n["requires_grad"]))
            elif kind == "buffer":
                t = Buffer(base, persistent=bool(n.get("persistent", True)))
                t._requires_grad = bool(n["requires_grad"]) and data.dtype.kind == "f"
            elif kind == "ndarray":
                t = data
            elif kind == "tensor":
                t = base
                t._requires_grad = bool(n["requires_grad"]) and data.dtype.kind == "f"
            else:
                raise self.fail(f"unknown tensor kind {kind!r}")
            self.tensors[k] = t
        return t


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None,
         mmap: bool | None = None, **pickle_load_args) -> Any:
    """Load what :func:`save` wrote, from a path or a binary file object. `map_location`
    may name the CPU (anything else must be an available device); `weights_only` is
    accepted for torch compatibility: loading never runs code from the file."""
    device = None
    if map_location is not None and not callable(map_location) \
            and not isinstance(map_location, dict):
        device = to_device(map_location)
    where = _describe(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _load(fh, where, device)
    return _load(f, where, device)


def _load(fh, where: str, device=None) -> Any:
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile:
        raise UnpicklingError(
            f"jitgrad.load: {where} cannot be read: it is not a complete zip archive (a "
            "truncated file, or one not written by jitgrad.save)") from None
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            hint = (" (it looks like a PyTorch checkpoint: load it with torch and save its "
                    "tensors with jitgrad.save)") if any(n.endswith("data.pkl") for n in names) \
                else ""
            raise UnpicklingError(f"jitgrad.load: {where} is not a jitgrad file: it has no "
                                  f"{MANIFEST}{hint}")
        try:
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, OSError, EOFError) as e:
            raise UnpicklingError(f"jitgrad.load: {where} is corrupt: its manifest cannot be "
                                  f"read ({e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise UnpicklingError(f"jitgrad.load: {where} is not a jitgrad file (its manifest "
                                  "does not say format 'jitgrad')")
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise UnpicklingError(f"jitgrad.load: {where} has format version {version!r}; "
                                  f"this jitgrad reads versions up to {VERSION}")
        if "root" not in manifest:
            raise UnpicklingError(f"jitgrad.load: {where} is corrupt: its manifest has no root")
        return _Reader(zf, where, device).node(manifest["root"])

