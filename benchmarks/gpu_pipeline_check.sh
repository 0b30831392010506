#!/usr/bin/env bash
# The out-of-core pipeline on a CUDA machine, in one call: the image's torch with dask/zarr/aeon from
# wheels; the README's main job, out-of-core against in-memory by task size, then the test suite with
# device "auto" (= the GPU).
# The image has no dask/zarr: fetch_gpu_wheels.sh saves their wheels (cp312) in .whl/ beforehand.
# Logs under $OUT: env.txt, demo.log, outofcore.log, suite.log, junit.xml. OOC_BASELINE=DIR also runs
# the out-of-core benchmark on the package in DIR (another checkout), for an A/B in one call.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rocketstream-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
V=python3
$V -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
# the console script beside the image's python (the tests look for it there); the image runs as root
BIN=$(dirname "$($V -c 'import sys; print(sys.executable)')")
for entry in "rocketstream rocketstream.cli" "dask dask.__main__"; do
  set -- $entry
  printf '#!%s\nimport sys\nfrom %s import main\nif __name__ == "__main__":\n    sys.exit(main())\n' \
    "$BIN/python3" "$2" > "$BIN/$1"
  chmod +x "$BIN/$1"
done
$V setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || echo "native build failed (see build.log)"
{
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  lscpu | grep -E "Model name|^CPU\(s\)"
  $V -c "import torch, dask, zarr, xarray, numpy; from rocketstream import config as c; \
from rocketstream.core import native; print('torch', torch.__version__, 'dask', dask.__version__, \
'zarr', zarr.__version__, 'xarray', xarray.__version__, 'numpy', numpy.__version__); \
print('gpu_possible', c.gpu_possible(), 'auto device', c.resolve_device_type(None), \
'native', native.enabled(), 'width', native.max_width())"
} 2>&1 | tee "$OUT/env.txt"
echo "== demo (README main job)"
( cd /tmp && time timeout "${DEMO_LIMIT_S:-90}" "$BIN/rocketstream" demo ) > "$OUT/demo.log" 2>&1
tail -12 "$OUT/demo.log"
echo "== out-of-core against in-memory on the GPU, by task size (warm runs)"
if [ -n "${OOC_BASELINE:-}" ]; then  # another checkout of the package (e.g. the previous commit) first
  cp rocketstream/core/_native/*.so "$OOC_BASELINE/rocketstream/core/_native/" 2>/dev/null
  echo "-- baseline: $OOC_BASELINE" | tee "$OUT/outofcore-baseline.log"
  PYTHONPATH=/tmp/site:$OOC_BASELINE timeout "${OOC_LIMIT_S:-90}" $V benchmarks/gpu_outofcore.py ${OOC_ARGS:-} \
    >> "$OUT/outofcore-baseline.log" 2>&1
  cat "$OUT/outofcore-baseline.log"
  echo "-- this checkout"
fi
timeout "${OOC_LIMIT_S:-90}" $V benchmarks/gpu_outofcore.py ${OOC_ARGS:-} > "$OUT/outofcore.log" 2>&1
cat "$OUT/outofcore.log"
echo "== test suite, device auto (S3 needs moto, not carried)"
timeout "${SUITE_LIMIT_S:-270}" $V -m pytest -v -p no:cacheprovider -n "${WORKERS:-12}" --timeout 200 \
  --ignore tests/test_s3.py --ignore tests/test_gpu.py --junitxml "$OUT/junit.xml" -rfE tests \
  > "$OUT/suite.log" 2>&1
# -v: each result is logged as it comes, so a run cut at its limit still names its failures
grep -E "(FAILED|ERROR) |passed|failed" "$OUT/suite.log" | grep -v " PASSED " | tail -40
