"""Run the seed tutorial's examples with jitgrad and print what each prints.

    python examples/seed_demo.py            # with jitgrad
    python examples/seed_demo.py --torch    # the same files with PyTorch, to compare
"""

from __future__ import annotations

import pathlib
import runpy
import sys
import warnings

HERE = pathlib.Path(__file__).parent / "seed"


def main() -> None:
    use_torch = "--torch" in sys.argv
    if use_torch:
        import torch

        sys.modules["jitgrad"] = torch  # the files say `import jitgrad as torch`
    warnings.simplefilter("ignore")  # the non-leaf .grad warning is expected in example 4
    for path in sorted(HERE.glob("ex*.py")):
        title = path.read_text().splitlines()[0].lstrip("# ")
        print(f"== {path.name}: {title}")
        runpy.run_path(str(path), run_name="__main__")
        print()


if __name__ == "__main__":
    main()
