#!/usr/bin/env bash
# One call on a CUDA machine: the CUDA tests, then the GPU benchmark; logs and JSON under $OUT.
# The machine needs python3 with torch (+ triton), numpy and pytest; the wheels that
# fetch_gpu_wheels.sh saved in .whl/ (aeon, tsai) are installed into /tmp/site if present.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rocketstream-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=$PWD:/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
# the native CPU kernel, for the bitwise references (same flags as setup.py)
gcc -O3 -fno-fast-math -ffp-contract=off -std=c99 -fvisibility=hidden -fPIC -shared \
  rocketstream/core/_native/minirocket.c -o rocketstream/core/_native/_minirocket.so \
  || echo "no C compiler: CPU references use the torch path"
# each stage has its own time limit, so one that hangs cannot take the other's results with it;
# the benchmark saves its JSON after every section
timeout "${TEST_LIMIT_S:-240}" python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 \
  | tee "$OUT/test_gpu.log" | tail -25
timeout "${BENCH_LIMIT_S:-330}" python3 benchmarks/gpu_throughput.py --json "$OUT/gpu.json" ${BENCH_ARGS:-} 2>&1 \
  | tee "$OUT/bench.log" | grep -v USDT | tail -45
