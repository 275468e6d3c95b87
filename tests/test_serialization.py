"""jitgrad.save / jitgrad.load: round trips of tensors, Parameters, state dicts and nested
containers; what a file holds; errors on corrupt, truncated and foreign files."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections import Counter, OrderedDict

import numpy as np
import pytest

import jitgrad
from jitgrad import nn, optim
from jitgrad.serialization import UnpicklingError


def _round_trip(obj):
    buf = io.BytesIO()
    jitgrad.save(obj, buf)
    buf.seek(0)
    return jitgrad.load(buf, weights_only=True)


def test_tensors_and_scalars_round_trip(tmp_path):
    t = jitgrad.arange(12.0, dtype=jitgrad.float64).reshape(3, 4)
    p = nn.Parameter(jitgrad.randn(2, 3))
    obj = {
        "t": t, "view": t.t(), "p": p, "ints": jitgrad.tensor([1, -2], dtype=jitgrad.int16),
        "b": jitgrad.tensor([True, False]), "zero_d": jitgrad.tensor(3.5),
        "g": jitgrad.ones(2, requires_grad=True), "empty": jitgrad.zeros(0, 3),
        "list": [1, 2.5, "s", None, True, (math.inf, -0.0)], 7: "int key", (1, "a"): "tuple key",
        "nan": math.nan, "dtype": jitgrad.float64, "big": 2 ** 70,
        "counter": Counter(a=2), "od": OrderedDict(z=1, a=2),
    }
    path = tmp_path / "obj.pt"
    jitgrad.save(obj, path)
    out = jitgrad.load(str(path))
    assert list(out) == list(obj)
    for k in ("t", "view", "ints", "b", "zero_d", "empty"):
        assert out[k].dtype == obj[k].dtype and out[k].shape == obj[k].shape
        assert np.array_equal(out[k].numpy(), obj[k].numpy())
    assert type(out["p"]) is nn.Parameter and out["p"].requires_grad
    assert np.array_equal(out["p"].detach().numpy(), p.detach().numpy())
    assert out["g"].requires_grad and out["g"].is_leaf and not out["t"].requires_grad
    assert out["list"] == [1, 2.5, "s", None, True, (math.inf, -0.0)]
    assert math.copysign(1, out["list"][5][1]) == -1.0
    assert out[7] == "int key" and out[(1, "a")] == "tuple key"
    assert math.isnan(out["nan"]) and out["dtype"] is jitgrad.float64 and out["big"] == 2 ** 70
    assert type(out["counter"]) is Counter and type(out["od"]) is OrderedDict
    assert list(out["od"]) == ["z", "a"]
    # loaded tensors own writable storage
    out["t"].add_(1)


def test_shared_tensor_objects_stay_shared():
    t = jitgrad.ones(3)
    out = _round_trip({"a": t, "b": [t]})
    assert out["a"] is out["b"][0]
    with zipfile.ZipFile(_saved_bytes({"a": t, "b": [t]})) as zf:
        assert sorted(zf.namelist()) == ["arrays/0.npy", "jitgrad.json"]


def _saved_bytes(obj) -> io.BytesIO:
    buf = io.BytesIO()
    jitgrad.save(obj, buf)
    buf.seek(0)
    return buf


def test_file_layout_is_a_zip_with_a_json_manifest():
    with zipfile.ZipFile(_saved_bytes({"w": jitgrad.zeros(2, 2)})) as zf:
        manifest = json.loads(zf.read("jitgrad.json"))
        assert manifest["format"] == "jitgrad" and manifest["version"] == 1
        (key, value), = manifest["root"]["items"]
        assert key == {"type": "str", "value": "w"}
        assert value["type"] == "tensor" and value["shape"] == [2, 2]
        assert np.load(io.BytesIO(zf.read("arrays/0.npy")), allow_pickle=False).shape == (2, 2)


def test_model_and_optimizer_checkpoint_round_trip(tmp_path):
    jitgrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    model.register_buffer("seen", jitgrad.tensor(0))
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = jitgrad.randn(5, 4)
    for _ in range(2):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    path = tmp_path / "ck.pt"
    jitgrad.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 2}, path)

    jitgrad.manual_seed(1)
    model2 = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    model2.register_buffer("seen", jitgrad.tensor(5))
    opt2 = optim.Adam(model2.parameters(), lr=0.5)
    ck = jitgrad.load(path)
    assert type(ck["model"]) is OrderedDict and list(ck["model"]) == list(model.state_dict())
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    assert ck["epoch"] == 2 and opt2.param_groups[0]["lr"] == 0.01
    assert np.array_equal(model(x).detach().numpy(), model2(x).detach().numpy())
    assert model2.seen.item() == 0
    # both continue identically
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    assert np.array_equal(model(x).detach().numpy(), model2(x).detach().numpy())


def test_unsupported_objects_are_refused():
    with pytest.raises(TypeError, match=r"cannot save an object of type function \(at the "
                                        r"saved object\['f'\]\[1\]\)"):
        jitgrad.save({"f": [1, lambda: 0]}, io.BytesIO())
    with pytest.raises(TypeError, match="nn.modules.linear.Linear"):
        jitgrad.save(nn.Linear(1, 1), io.BytesIO())


def test_failed_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / "x.pt"
    with pytest.raises(TypeError):
        jitgrad.save([jitgrad.ones(2), object()], path)
    assert not path.exists()


# =========================================================================== bad files

def test_truncated_file(tmp_path):
    data = _saved_bytes({"w": jitgrad.ones(100)}).getvalue()
    path = tmp_path / "trunc.pt"
    for cut in (len(data) // 2, len(data) - 10, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(UnpicklingError, match=r"jitgrad.load: '.*trunc.pt' cannot be read: "
                                                  r"it is not a complete zip archive"):
            jitgrad.load(path)


def test_corrupt_array_bytes_are_detected():
    data = bytearray(_saved_bytes({"w": jitgrad.ones(100)}).getvalue())
    i = data.index(b"\x00\x00\x80\x3f")  # inside the array's data
    data[i + 2] ^= 0xFF
    with pytest.raises(UnpicklingError, match=r"<BytesIO> is corrupt: arrays/0.npy cannot be "
                                              r"read \(Bad CRC-32"):
        jitgrad.load(io.BytesIO(bytes(data)))


def _zip(entries: dict) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


def _array_bytes(a) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, a)
    return b.getvalue()


def test_foreign_and_inconsistent_archives():
    assert isinstance(UnpicklingError("x"), RuntimeError)
    with pytest.raises(UnpicklingError, match="not a complete zip archive"):
        jitgrad.load(io.BytesIO(b"plain text, not a checkpoint"))
    with pytest.raises(UnpicklingError, match="looks like a PyTorch checkpoint"):
        jitgrad.load(_zip({"archive/data.pkl": b"\x80\x02"}))
    with pytest.raises(UnpicklingError, match="it has no jitgrad.json"):
        jitgrad.load(_zip({"other.txt": b"hi"}))
    with pytest.raises(UnpicklingError, match="its manifest cannot be read"):
        jitgrad.load(_zip({"jitgrad.json": b"{not json"}))
    with pytest.raises(UnpicklingError, match="does not say format 'jitgrad'"):
        jitgrad.load(_zip({"jitgrad.json": b'{"format": "npz"}'}))
    with pytest.raises(UnpicklingError, match="format version 99"):
        jitgrad.load(_zip({"jitgrad.json": b'{"format": "jitgrad", "version": 99, "root": 1}'}))
    tensor = {"type": "tensor", "array": 0, "kind": "tensor", "dtype": "<f4", "shape": [2],
              "requires_grad": False}
    manifest = json.dumps({"format": "jitgrad", "version": 1, "root": tensor})
    with pytest.raises(UnpicklingError, match="names arrays/0.npy, which the archive lacks"):
        jitgrad.load(_zip({"jitgrad.json": manifest}))
    with pytest.raises(UnpicklingError, match=r"holds a float64 array of shape \[3\], the "
                                              r"manifest says <f4 \[2\]"):
        jitgrad.load(_zip({"jitgrad.json": manifest, "arrays/0.npy": _array_bytes(np.zeros(3))}))
    with pytest.raises(UnpicklingError, match="cannot be read"):
        jitgrad.load(_zip({"jitgrad.json": manifest, "arrays/0.npy": b"\x93NUMPY garbage"}))
    objects = np.array([None, 1], dtype=object)
    with pytest.raises(UnpicklingError, match="cannot be read"):  # pickled arrays are refused
        jitgrad.load(_zip({"jitgrad.json": manifest, "arrays/0.npy": _array_bytes(objects)}))
    bad_node = json.dumps({"format": "jitgrad", "version": 1, "root": {"type": "lambda"}})
    with pytest.raises(UnpicklingError, match="unknown manifest entry type 'lambda'"):
        jitgrad.load(_zip({"jitgrad.json": bad_node}))
    bad_int = json.dumps({"format": "jitgrad", "version": 1,
                          "root": {"type": "int", "value": "3"}})
    with pytest.raises(UnpicklingError, match="bad int value '3'"):
        jitgrad.load(_zip({"jitgrad.json": bad_int}))


def test_map_location_and_missing_file(tmp_path):
    path = tmp_path / "a.pt"
    jitgrad.save(jitgrad.ones(2), path)
    assert jitgrad.load(path, map_location="cpu").tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        jitgrad.load(path, map_location="cuda")
    with pytest.raises(FileNotFoundError):
        jitgrad.load(tmp_path / "missing.pt")
