"""jitgrad.utils.data: datasets, samplers, collation and DataLoader; shuffles equal torch's
for the same seed."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import jitgrad
from jitgrad.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    random_split,
)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _xy(n=23):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return x, np.arange(n)


def test_tensor_dataset():
    x, y = _xy(5)
    ds = TensorDataset(jitgrad.tensor(x), jitgrad.tensor(y))
    assert len(ds) == 5
    a, b = ds[2]
    assert a.tolist() == [4.0, 5.0] and b.item() == 2
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(jitgrad.zeros(3), jitgrad.zeros(4))


def test_sequential_batches_and_drop_last():
    x, y = _xy(10)
    ds = TensorDataset(jitgrad.tensor(x), jitgrad.tensor(y))
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert isinstance(batches[0], list)  # torch collates a tuple sample into a list
    assert batches[0][0].shape == (4, 2) and batches[0][0].dtype == jitgrad.float32
    assert np.array_equal(batches[2][0].numpy(), x[8:])
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [b[1].tolist() for b in dropped] == [[0, 1, 2, 3],
                                                                      [4, 5, 6, 7]]
    assert [b.tolist() for b in DataLoader(list(range(5)), batch_size=2)] == [[0, 1], [2, 3],
                                                                              [4]]


def test_shuffle_reshuffles_each_pass_and_is_seeded():
    x, y = _xy(50)
    ds = TensorDataset(jitgrad.tensor(x), jitgrad.tensor(y))
    loader = DataLoader(ds, batch_size=8, shuffle=True,
                        generator=jitgrad.Generator().manual_seed(3))
    first = np.concatenate([b[1].numpy() for b in loader])
    second = np.concatenate([b[1].numpy() for b in loader])
    assert sorted(first.tolist()) == list(range(50)) and sorted(second.tolist()) == \
        list(range(50))
    assert first.tolist() != second.tolist()
    again = DataLoader(ds, batch_size=8, shuffle=True,
                       generator=jitgrad.Generator().manual_seed(3))
    assert np.concatenate([b[1].numpy() for b in again]).tolist() == first.tolist()
    # rows stay paired
    for bx, by in DataLoader(ds, batch_size=8, shuffle=True):
        assert np.array_equal(bx.numpy(), x[by.numpy()])


@pytest.mark.parametrize("use_generator", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_order_equals_torch(torch, use_generator, drop_last):
    from torch.utils.data import DataLoader as TDataLoader
    from torch.utils.data import TensorDataset as TTensorDataset

    x, y = _xy(23)
    ds = TensorDataset(jitgrad.tensor(x), jitgrad.tensor(y))
    tds = TTensorDataset(torch.tensor(x), torch.tensor(y))
    jitgrad.manual_seed(5)
    torch.manual_seed(5)
    g = jitgrad.Generator().manual_seed(7) if use_generator else None
    tg = torch.Generator().manual_seed(7) if use_generator else None
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=g, drop_last=drop_last)
    tloader = TDataLoader(tds, batch_size=4, shuffle=True, generator=tg, drop_last=drop_last)
    assert len(loader) == len(tloader)
    for _ in range(3):  # each pass reshuffles, the same way
        got = [(bx.numpy(), by.tolist()) for bx, by in loader]
        want = [(bx.numpy(), by.tolist()) for bx, by in tloader]
        assert [b[1] for b in got] == [b[1] for b in want]
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(got, want))
    # and the default generator was used exactly as torch uses it
    assert jitgrad.rand(4).tolist() == torch.rand(4).tolist()


def test_samplers_and_random_split_equal_torch(torch):
    from torch.utils import data as tdata

    jitgrad.manual_seed(11)
    torch.manual_seed(11)
    assert [s.indices for s in random_split(range(10), [3, 7])] == \
        [s.indices for s in tdata.random_split(range(10), [3, 7])]
    assert [s.indices for s in random_split(range(11), [0.5, 0.25, 0.25])] == \
        [s.indices for s in tdata.random_split(range(11), [0.5, 0.25, 0.25])]
    g, tg = jitgrad.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert list(RandomSampler(range(40), replacement=True, num_samples=70, generator=g)) == \
        list(tdata.RandomSampler(range(40), replacement=True, num_samples=70, generator=tg))
    assert list(RandomSampler(range(9), num_samples=20, generator=g)) == \
        list(tdata.RandomSampler(range(9), num_samples=20, generator=tg))
    assert list(SubsetRandomSampler([5, 6, 7, 8], generator=g)) == \
        list(tdata.SubsetRandomSampler([5, 6, 7, 8], generator=tg))


def test_random_split_and_samplers_without_torch():
    parts = random_split(list(range(10)), [0.3, 0.7], generator=jitgrad.Generator())
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    assert parts[0][0] == parts[0].indices[0]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of "
                                         "the input dataset!"):
        random_split(range(10), [3, 3])
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(range(3), num_samples=0)


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    batch = [{"a": 1.0, "b": (np.ones(2, np.float32), 3), "c": "s", "p": Point(1, 2.0),
              "t": jitgrad.tensor([i, i]), "f": np.float32(0.5), "flag": True}
             for i in range(3)]
    out = default_collate(batch)
    assert out["a"].dtype == jitgrad.float64 and out["a"].tolist() == [1.0, 1.0, 1.0]
    assert isinstance(out["b"], list) and out["b"][0].shape == (3, 2)
    assert out["b"][1].dtype == jitgrad.int64 and out["c"] == ["s", "s", "s"]
    assert type(out["p"]) is Point and out["p"].y.dtype == jitgrad.float64
    assert out["t"].tolist() == [[0, 0], [1, 1], [2, 2]]
    assert out["f"].dtype == jitgrad.float32 and out["flag"].dtype == jitgrad.bool
    assert default_collate([[1, 2], [3, 4]])[1].tolist() == [2, 4]
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal "
                                           "size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([jitgrad.zeros(2), jitgrad.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors"):
        default_collate([object(), object()])


def test_collate_matches_torch(torch):
    from torch.utils.data import default_collate as tcollate

    batch = [{"a": 1.5, "b": (np.arange(3), 2), "c": [np.float64(i), "x"]} for i in range(4)]
    got, want = default_collate(batch), tcollate(batch)
    assert got["a"].dtype.name == str(want["a"].dtype).split(".")[1]
    assert got["b"][0].dtype.name == str(want["b"][0].dtype).split(".")[1]
    assert got["c"][0].tolist() == want["c"][0].tolist() and got["c"][1] == want["c"][1]


def test_custom_datasets_collate_fn_and_no_batching():
    class Squares(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return {"x": jitgrad.tensor(float(i)), "y": i * i}

    loader = DataLoader(Squares(), batch_size=4)
    first = next(iter(loader))
    assert first["x"].tolist() == [0.0, 1.0, 2.0, 3.0] and first["y"].tolist() == [0, 1, 4, 9]
    assert [len(b) for b in DataLoader(Squares(), batch_size=4, collate_fn=list)] == [4, 2]
    single = list(DataLoader(Squares(), batch_size=None))
    assert len(single) == 6 and single[2]["y"] == 4
    both = ConcatDataset([Squares(), Subset(Squares(), [5])])
    assert len(both) == 7 and both[6]["y"] == 25 and both[-1]["y"] == 25

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5],
                                                                        [6]]
    assert len(list(DataLoader(Stream(), batch_size=3, drop_last=True))) == 2
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(), shuffle=True)


def test_loader_option_errors():
    ds = list(range(4))
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(ds, 2, False))
    loader = DataLoader(ds, batch_sampler=BatchSampler(ds, 3, False), num_workers=2)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3]]
    x, y = _xy(4)
    ds = TensorDataset(jitgrad.tensor(x), jitgrad.tensor(y))
    bad = DataLoader(ds, sampler=[0, 9], batch_size=2)
    with pytest.raises(IndexError, match="index 9 is out of bounds for dimension 0 with size 4"):
        list(bad)
