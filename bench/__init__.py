"""jitgrad's benchmark harness: ``python -m bench`` (run from the repository root).

    bench/harness.py   cases, engines, interleaved timing, statistics, ratios, targets
    bench/worker.py    the subprocess that runs cases at one thread setting
    bench/report.py    terminal table, progress bar, JSON, markdown, chart, --compare
    bench/machine.py   what the machine and the libraries are
    bench/cases/       one module per family of cases; each registers itself
    bench/__main__.py  the command line: spawns one worker per (thread setting, case)

The standalone scripts beside it (``bench/matmul_blas.py`` and friends) stay runnable as
``python bench/NAME.py``. Importing this package imports neither numpy nor an engine, so a
worker can fix its thread counts before any BLAS is loaded.
"""
