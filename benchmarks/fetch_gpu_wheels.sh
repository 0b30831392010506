#!/usr/bin/env bash
# Download, here, the wheels that gpu_device_check.sh installs on a GPU machine with no internet:
# aeon 1.6 (+ Deprecated) for the reference and parity, tsai for the comparison, and for
# gpu_pipeline_check.sh the pipeline's packages the GPU image lacks (dask, distributed, zarr and
# their own needs; versions as CI installs them today). Saved to .whl/
# (git-ignored through .git/info/exclude), for Python 3.12 (the GPU image's).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d .whl \
  aeon==1.6.0 deprecated==1.3.1 tsai==1.0.1 \
  dask==2026.8.0 distributed==2026.8.0 zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 \
  google-crc32c==1.9.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2 zict==3.0.0 tornado==6.6.1 xarray==2026.9.0
ls -la .whl
