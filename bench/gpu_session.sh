#!/usr/bin/env bash
# Everything a session with a GPU checks, in one call of the device tool (about 9 minutes):
#
#   run(command="bash bench/gpu_session.sh", carry=[".gpu-wheels"], timeout_s=580)
#
# The GPU image (Python 3.12, numba-cuda, torch CUDA) has no package registry, so the test
# dependencies travel as wheels in the ignored folder .gpu-wheels, made here with:
#
#   pip download --no-deps --python-version 3.12 --only-binary=:all: \
#       --platform manylinux2014_x86_64 --platform any -d .gpu-wheels \
#       hypothesis pytest sortedcontainers attrs iniconfig pluggy packaging setuptools
#
# Steps, each under its own time limit so a slow one cannot starve the rest:
#   1. the card and package versions, then jitgrad installed from this tree      env.txt
#   2. bench/gpu.py: bandwidth, launch cost both ways, GEMM, tanh case, MLP step   gpu.txt
#   3. the launch tests (direct path vs numba-cuda, bitwise) and the CUDA tests    cuda.txt
#   4. the rest of the suite with cuda as the device, interrupted (not killed) at
#      its limit so pytest still prints what passed and failed                    suite.txt
# A summary is printed last; the files come back from $OUT.

set -u
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
export NUMBA_CACHE_DIR
NUMBA_CACHE_DIR=$(mktemp -d)
start=$(date +%s)

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python - <<'EOF'
import importlib.metadata as m
for p in ("numpy", "numba", "numba-cuda", "cuda-core", "cuda-bindings", "torch"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "absent")
EOF
    python -m pip install -q --no-index --find-links .gpu-wheels pytest hypothesis setuptools
    python -m pip install -q --no-deps --no-build-isolation --no-index -e .
} > "$OUT/env.txt" 2>&1

timeout 200 python bench/gpu.py > "$OUT/gpu.txt" 2>&1
echo "bench/gpu.py exit $?" >> "$OUT/gpu.txt"

export JITGRAD_TEST_DEVICE=cuda
timeout -s INT 150 python -m pytest -q -rf -p no:cacheprovider tests/test_cuda_launch.py \
    tests/test_cuda.py tests/test_cuda_training.py > "$OUT/cuda.txt" 2>&1
echo "exit $?" >> "$OUT/cuda.txt"

left=$((560 - ($(date +%s) - start)))
rest=$(ls tests/test_*.py | grep -v -e test_cuda_launch.py -e test_cuda.py -e test_cuda_training.py)
if [ "$left" -gt 30 ]; then
    # shellcheck disable=SC2086
    timeout -s INT "$left" python -m pytest -q -rf -p no:cacheprovider $rest \
        > "$OUT/suite.txt" 2>&1
    echo "exit $? after a limit of ${left}s" >> "$OUT/suite.txt"
fi

echo "== card and versions"; head -8 "$OUT/env.txt"
echo "== bench/gpu.py"; tail -22 "$OUT/gpu.txt"
echo "== CUDA and launch tests"; tail -6 "$OUT/cuda.txt"
echo "== rest of the suite on cuda"; tail -12 "$OUT/suite.txt" 2>/dev/null
