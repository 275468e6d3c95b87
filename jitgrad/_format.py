"""Tensor printing that matches PyTorch's ``repr`` byte for byte (pure numpy).

The rules follow torch 2.x:

* One formatter is chosen for the whole tensor (or, when it is summarized, for the elements
  that are shown).  Integers and bools print with ``str``.  Floats look at the finite non-zero
  values: if all are integral they print as ``1.``; scientific notation is used when
  max/min > 1000, max > 1e8 or min < 1e-4 (absolute values).  Every element is right-aligned
  to the widest finite non-zero element.
* Tensors with more than ``threshold`` elements are summarized: ``edgeitems`` entries per
  side of each dimension, separated by ``...``.
* 1-D rows wrap at ``linewidth``; nested dimensions are joined by ``,`` plus one blank line per
  extra dimension, and continuation lines are indented past ``tensor(``.
* Suffixes come in the order device, size, dtype, grad_fn / requires_grad.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_tensor", "set_printoptions"]

_PREFIX = "tensor("
_SUPPORTED = frozenset(np.dtype(t) for t in (
    np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64))


class _PrintOptions:
    def __init__(self) -> None:
        self.precision: int = 4
        self.threshold: float = 1000
        self.edgeitems: int = 3
        self.linewidth: int = 80
        self.sci_mode: bool | None = None


_OPTS = _PrintOptions()

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """Same meaning and defaults as ``torch.set_printoptions``.

    ``profile`` ('default', 'short' or 'full') is applied first, then any explicit option.
    As in torch, ``sci_mode`` is always reset to the given value (``None``: automatic).
    """
    if profile is not None:
        for name, value in _PROFILES.get(profile, {}).items():
            setattr(_OPTS, name, value)
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(_OPTS, name, value)
    _OPTS.sci_mode = sci_mode


class _Formatter:
    """Turns one element (a Python scalar) into a right-aligned string."""

    def __init__(self, values: np.ndarray) -> None:
        """``values``: a flat array of every element that will be printed."""
        self.is_float = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if not self.is_float:
            # str() of an integer is longest at the most negative or the largest value.
            shown = [] if values.size == 0 else (
                np.unique(values) if values.dtype == np.bool_ else [values.min(), values.max()])
            self.width = max([1] + [len(str(v.item())) for v in shown])
            return

        vals = values[np.isfinite(values) & (values != 0)].astype(np.float64)
        if vals.size == 0:
            return
        magnitudes = np.abs(vals)
        lo, hi = magnitudes.min(), magnitudes.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if _OPTS.sci_mode is None:
            self.sci_mode = bool(hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4)
        else:
            self.sci_mode = _OPTS.sci_mode
        # A formatted string's length grows with |value| (more integer digits) except for the
        # exponent of scientific notation, which is longest at an extreme of |value|; so the
        # extremes of each sign give the widest element.
        extremes = [x.item() for part in (vals[vals > 0], vals[vals < 0]) if part.size
                    for x in (part.min(), part.max())]
        if self.int_mode and not self.sci_mode:
            self.width = max(len(f"{x:.0f}") + 1 for x in extremes)  # +1 for the trailing "."
        else:
            self.width = max(len(self._plain(x)) for x in extremes)

    def _plain(self, value: float) -> str:
        p = _OPTS.precision
        if self.sci_mode:
            return f"{value:.{p}e}"
        if self.int_mode:
            text = f"{value:.0f}"
            return text if math.isinf(value) or math.isnan(value) else text + "."
        return f"{value:.{p}f}"

    def __call__(self, value) -> str:
        text = self._plain(value) if self.is_float else str(value)
        return text.rjust(self.width)


def _shown_values(a: np.ndarray, summarize: bool) -> np.ndarray:
    """The elements that will be printed, flattened (what the formatter is sized on)."""
    if not summarize or a.ndim == 0:
        return a.reshape(-1)
    e = _OPTS.edgeitems
    if a.ndim == 1:
        # With edgeitems == 0, a[-0:] is the whole row (as in torch); only "..." is printed.
        return np.concatenate((a[:e], a[-e:])) if a.shape[0] > 2 * e else a
    if not e:
        return a[:0].reshape(-1)
    n = a.shape[0]
    rows = [*range(e), *range(n - e, n)] if n > 2 * e else range(n)
    return np.concatenate([_shown_values(a[i], summarize) for i in rows])


def _render(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    """The bracketed body of ``a``; ``indent`` is the column of its opening bracket."""
    if a.ndim == 0:
        return fmt(a.item())
    e = _OPTS.edgeitems
    cut = summarize and a.shape[0] > 2 * e
    if a.ndim == 1:
        if summarize and not e:
            items = ["..."]
        elif cut:
            items = ([fmt(v) for v in a[:e].tolist()] + [" ..."]
                     + [fmt(v) for v in a[-e:].tolist()])
        else:
            items = [fmt(v) for v in a.tolist()]
        per_line = max(1, math.floor((_OPTS.linewidth - indent) / (fmt.width + 2)))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"

    def sub(i: int) -> str:
        return _render(a[i], indent + 1, summarize, fmt)

    n = a.shape[0]
    if cut:
        parts = [sub(i) for i in range(e)] + ["..."] + [sub(i) for i in range(n - e, n)]
    else:
        parts = [sub(i) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _append_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    # torch's own (slightly generous) measure of the last line: +1 past its true length, and
    # +2 when there is no newline at all.
    last_line = len(text) - text.rfind("\n") + 1
    out = [text]
    for suffix in suffixes:
        # Measured as torch spells it ("dtype=torch.int32"), so that line breaks fall exactly
        # where torch puts them and only the dtype's name differs.
        size = len(suffix.replace("=jitgrad.", "=torch."))
        if last_line + size + 2 > _OPTS.linewidth:
            out.append(",\n" + " " * indent + suffix)
            last_line = indent + size
        else:
            out.append(", " + suffix)
            last_line += size + 2
    return "".join(out) + ")"


def format_tensor(data: np.ndarray, *, device: str | None = None, requires_grad: bool = False,
                  grad_fn_name: str | None = None,
                  default_float: np.dtype = np.float32) -> str:
    """Return the repr of a tensor holding `data`, e.g. "tensor([1., 2.], requires_grad=True)"."""
    a = np.asarray(data)
    if a.dtype not in _SUPPORTED:
        raise TypeError(f"cannot format a tensor of numpy dtype {a.dtype}")
    default_float = np.dtype(default_float)
    indent = len(_PREFIX)
    suffixes = []
    if device is not None and str(device).partition(":")[0] != "cpu":
        suffixes.append(f"device='{device}'")
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if a.dtype != default_float:  # nothing to infer the dtype from, so always shown
            suffixes.append(f"dtype=jitgrad.{a.dtype.name}")
    else:
        summarize = a.size > _OPTS.threshold
        fmt = _Formatter(_shown_values(a, summarize))
        body = _render(a, indent, summarize, fmt)
        if not _OPTS.edgeitems:
            suffixes.append(f"size={tuple(a.shape)}")
        if a.dtype not in (default_float, np.dtype(np.int64), np.dtype(np.bool_)):
            suffixes.append(f"dtype=jitgrad.{a.dtype.name}")
    if grad_fn_name is not None:
        # the class name, as torch prints it ("torch::autograd::NotImplemented" shows as
        # NotImplemented)
        suffixes.append(f"grad_fn=<{grad_fn_name.rsplit('::', 1)[-1]}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _append_suffixes(_PREFIX + body, suffixes, indent)
