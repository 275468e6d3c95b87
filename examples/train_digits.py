"""Train a small CNN and an MLP on scikit-learn's 8x8 handwritten digits with jitgrad.

    python -m pip install ".[examples]"         # scikit-learn, tqdm, matplotlib
    python examples/train_digits.py              # both models, default settings
    python examples/train_digits.py --epochs 3 --out /tmp/curves.png
    python examples/train_digits.py --torch      # the same script on PyTorch, to compare

The data (1,797 images, bundled with scikit-learn: nothing is downloaded) is split 80/20
into a training and a test set. Each model trains with a shuffling DataLoader; a progress
bar shows the running loss. At the end the script prints each model's test accuracy, writes
both loss curves to a PNG, and prints the wall time of the run and how much of it was
compilation: the first batch is timed apart from the others, and Numba reports how many
kernels it had to compile (a cold cache) rather than load from its disk cache (a warm one).

Written as PyTorch code (``import jitgrad as torch``); after the same seed the initial
weights and the batches' order are PyTorch's, so ``--torch`` trains the same models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

import numpy as np

OUT_DEFAULT = Path(__file__).resolve().parent / "out" / "digits_loss.png"


def build_cnn(nn):
    """Two 3x3 convolutions with batch norm and 2x2 max pooling (8x8 -> 4x4 -> 2x2), then a
    linear classifier. ``nn`` is ``jitgrad.nn`` or ``torch.nn``. The convolutions have no
    bias: the batch norm after each subtracts the mean, so a bias would get no gradient."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def build_mlp(nn):
    """64 pixels -> 128 hidden units -> 10 classes."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(128, 10))


# Batch size, learning rate and optimizer per model: chosen so that both train in seconds.
BATCH = 64
SETTINGS = {"cnn": (build_cnn, "Adam", 0.01), "mlp": (build_mlp, "Adam", 0.01)}


class CompileCounter:
    """Counts the functions Numba compiles while it is installed (a disk-cache miss); a
    function loaded from the cache does not count."""

    def __init__(self) -> None:
        self.count = 0
        self._event = self._listener = None
        try:
            from numba.core import event
        except ImportError:  # --torch without numba
            return
        counter = self

        class Listener(event.Listener):
            def on_start(self, ev) -> None:
                counter.count += 1

            def on_end(self, ev) -> None:
                pass

        self._event, self._listener = event, Listener()
        event.register("numba:compile", self._listener)

    def close(self) -> None:
        if self._event is not None:
            self._event.unregister("numba:compile", self._listener)


def load_data(seed: int):
    """(x_train, x_test, y_train, y_test): images (N, 1, 8, 8) scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def accuracy(torch, model, x, y, device) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(torch.tensor(x, device=device)).argmax(1)
    model.train()
    return float((pred.cpu().numpy() == y).mean())


def train(torch, name: str, data, epochs: int, device: str, seed: int) -> dict:
    """Train one model; returns its per-batch losses, test accuracy and timings."""
    from tqdm import tqdm

    build, opt_name, lr = SETTINGS[name]
    x_train, x_test, y_train, y_test = data
    torch.manual_seed(seed)
    model = build(torch.nn).to(device)
    optimizer = getattr(torch.optim, opt_name)(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x_train), torch.tensor(y_train)),
        batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))

    losses: list[float] = []
    batch_s: list[float] = []
    t0 = time.perf_counter()
    with tqdm(total=epochs * len(loader), desc=f"{name} training", unit="batch",
              leave=False, dynamic_ncols=True) as bar:
        for epoch in range(epochs):
            total, seen = 0.0, 0
            for xb, yb in loader:
                t = time.perf_counter()
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                value = loss.item()
                batch_s.append(time.perf_counter() - t)
                losses.append(value)
                total += value * len(yb)
                seen += len(yb)
                bar.set_postfix(epoch=epoch + 1, loss=f"{total / seen:.4f}", refresh=False)
                bar.update()
    train_s = time.perf_counter() - t0
    acc = accuracy(torch, model, x_test, y_test, device)
    steady = statistics.median(batch_s[1:]) if len(batch_s) > 1 else 0.0
    return {"name": name, "model": model, "losses": losses, "batches_per_epoch": len(loader),
            "accuracy": acc, "n_test": len(y_test), "train_s": train_s,
            "first_batch_s": batch_s[0], "steady_batch_s": steady}


def plot(results: list[dict], path: Path, title: str) -> None:
    """Per-batch losses (faint) and their per-epoch means, against epochs, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for r, color in zip(results, ("tab:blue", "tab:orange")):
        losses = np.asarray(r["losses"])
        per = r["batches_per_epoch"]
        steps = (np.arange(len(losses)) + 1) / per
        ax.plot(steps, losses, color=color, alpha=0.3, linewidth=0.8)
        means = [losses[i:i + per].mean() for i in range(0, len(losses), per)]
        ax.plot(np.arange(1, len(means) + 1), means, color=color, marker="o", markersize=3,
                label=f"{r['name'].upper()}: test accuracy {100 * r['accuracy']:.1f}%")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss (training)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=12, help="epochs per model (default 12)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT,
                    help=f"the PNG of the loss curves (default {OUT_DEFAULT})")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights, split and batches")
    ap.add_argument("--torch", action="store_true", help="run on PyTorch instead, to compare")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.torch:
        import torch
    else:
        import jitgrad as torch
    try:
        # Ask for the device first: without it the run stops here, with the library's error.
        torch.zeros(1, device=args.device)
    except (RuntimeError, AssertionError) as e:  # PyTorch without CUDA: AssertionError
        print(f"error: {e}", file=sys.stderr)
        return 2
    counter = CompileCounter()
    try:
        run(torch, args, counter)
    finally:
        counter.close()
    return 0


def run(torch, args: argparse.Namespace, counter: CompileCounter) -> None:
    lib = "PyTorch" if args.torch else "jitgrad"
    data = load_data(args.seed)
    print(f"digits: {len(data[2])} training and {len(data[3])} test images (8x8); {lib} on "
          f"{args.device}, {args.epochs} epochs, batch {BATCH}, seed {args.seed}")
    results = []
    for name in SETTINGS:
        r = train(torch, name, data, args.epochs, args.device, args.seed)
        results.append(r)
        n_right = round(r["accuracy"] * r["n_test"])
        last_epoch = np.mean(r["losses"][-r["batches_per_epoch"]:])
        print(f"{name}: test accuracy {100 * r['accuracy']:.1f}% ({n_right}/{r['n_test']}), "
              f"training loss {last_epoch:.4f} in the last epoch, trained in "
              f"{r['train_s']:.1f} s ({1e3 * r['steady_batch_s']:.1f} ms per batch after the "
              f"first)")

    plot(results, args.out, f"{lib}: 8x8 digits, {args.epochs} epochs")
    print(f"loss curves: {args.out}")

    wall = time.perf_counter() - T_START
    # A first batch costs what a later one does plus compiling (or loading) its kernels.
    firsts = ", ".join(f"{r['name']} {r['first_batch_s']:.2f} s against "
                       f"{1e3 * r['steady_batch_s']:.1f} ms later" for r in results)
    extra = sum(max(0.0, r["first_batch_s"] - r["steady_batch_s"]) for r in results)
    if args.torch:
        cache = "PyTorch compiles nothing"
    elif counter.count:
        cache = f"Numba cache cold: {counter.count} kernels compiled"
    else:
        cache = "Numba cache warm: every kernel loaded from the disk cache"
    print(f"wall time {wall:.1f} s, of which about {extra:.1f} s compilation and loading in "
          f"the first batches ({firsts}; {cache})")


if __name__ == "__main__":
    sys.exit(main())
