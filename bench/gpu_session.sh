#!/usr/bin/env bash
# Everything a session with a GPU checks, in one call of the device tool:
#
#   run(command="bash bench/gpu_session.sh", timeout_s=480)
#
# GPU_SESSION_LIMIT (seconds, default 450) bounds the whole script; keep timeout_s above it.
# GPU_BENCH_ARGS passes options to bench/gpu.py, e.g. more GEMM tiles to time beside the two
# that products pick (a sixth number caps registers per thread, 0 for no cap):
# GPU_BENCH_ARGS="--gemm-tiles 16,16,8,4,8;16,16,8,8,4;16,16,8,8,8,128".
# The GPU image (Python 3.12, numba-cuda, torch CUDA) has pytest, hypothesis and pytest-xdist
# but no package registry. Where one of them is missing, carry wheels in the ignored folder
# .gpu-wheels (carry=[".gpu-wheels"]), made here with:
#
#   pip download --no-deps --python-version 3.12 --only-binary=:all: \
#       --platform manylinux2014_x86_64 --platform any -d .gpu-wheels \
#       hypothesis pytest sortedcontainers attrs iniconfig pluggy packaging setuptools
#
# Steps, each under its own time limit so a slow one cannot starve the rest:
#   1. the card and package versions, then jitgrad installed from this tree      env.txt
#   2. bench/gpu.py: bandwidth, launch cost both ways, GEMM, tanh case, MLP step   gpu.txt
#      (and a cProfile of the MLP step's host time)                                mlp_profile.txt
#   3. with GPU_SESSION_NCU=1, where Nsight Compute (ncu) is installed: one 4096 float32
#      GEMM launch profiled (speed of light, occupancy, warp stalls), 60 s at most  gemm_ncu.txt
#   4. the whole suite with cuda as the device, on as many workers as the cores
#      allow, interrupted (not killed) at its limit so pytest still reports     suite.txt
# A summary is printed last; the files come back from $OUT.

set -u
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
export NUMBA_CACHE_DIR PYTHONUNBUFFERED=1
NUMBA_CACHE_DIR=$(mktemp -d)
start=$(date +%s)
limit=${GPU_SESSION_LIMIT:-450}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    nproc
    python - <<'EOF'
import importlib.metadata as m
for p in ("numpy", "numba", "numba-cuda", "cuda-core", "cuda-bindings", "torch", "pytest",
          "hypothesis", "pytest-xdist", "pytest-timeout"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "absent")
EOF
    python -c "import pytest, hypothesis" 2>/dev/null ||
        python -m pip install -q --no-index --find-links .gpu-wheels pytest hypothesis setuptools
    python -m pip install -q --no-deps --no-build-isolation --no-index -e .
    python -c "import jitgrad; print('jitgrad sees', jitgrad.cuda.device_count(), 'GPU:',
jitgrad.cuda.get_device_name())"
} > "$OUT/env.txt" 2>&1

timeout -k 5 150 python bench/gpu.py ${GPU_BENCH_ARGS:-} --profile "$OUT/mlp_profile.txt" > "$OUT/gpu.txt" 2>&1
echo "bench/gpu.py exit $? after $(( $(date +%s) - start ))s" >> "$OUT/gpu.txt"

if [ "${GPU_SESSION_NCU:-0}" = 1 ]; then
    if command -v ncu > /dev/null; then
        timeout -k 5 60 ncu --kernel-name regex:gemm --launch-count 1 \
            --section SpeedOfLight --section Occupancy --section WarpStateStats \
            --section LaunchStats python -c "
import jitgrad
a = jitgrad.randn(4096, 4096, device='cuda')
b = jitgrad.randn(4096, 4096, device='cuda')
print(float((a @ b).sum()))" > "$OUT/gemm_ncu.txt" 2>&1
        echo "ncu exit $?" >> "$OUT/gemm_ncu.txt"
    else
        echo "ncu is not installed here" > "$OUT/gemm_ncu.txt"
    fi
fi

export JITGRAD_TEST_DEVICE=cuda
opts=(-q -rfE --tb=short -p no:cacheprovider)
python -c "import xdist" 2>/dev/null && opts+=(-n "$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))")
python -c "import pytest_timeout" 2>/dev/null && opts+=(--timeout 300)
left=$((limit - ($(date +%s) - start) - 10))
if [ "$left" -gt 30 ]; then
    timeout -k 10 -s INT "$left" python -m pytest "${opts[@]}" tests > "$OUT/suite.txt" 2>&1
    echo "exit $? after a limit of ${left}s" >> "$OUT/suite.txt"
fi

echo "== card and versions"; cat "$OUT/env.txt" | grep -v -i warning | head -16
echo "== bench/gpu.py"; grep -v "^wrote" "$OUT/gpu.txt" | tail -45
[ -f "$OUT/gemm_ncu.txt" ] && { echo "== ncu, one GEMM"; grep -E "Throughput|Occupancy|Registers|Stall|ncu exit|not installed|ERR" "$OUT/gemm_ncu.txt" | head -20; }
echo "== the suite on cuda"; grep -E "^(FAILED|ERROR)" "$OUT/suite.txt" | cut -c1-200 | head -40
tail -3 "$OUT/suite.txt" 2>/dev/null
