#!/usr/bin/env bash
# Download, here, the wheels that gpu_device_check.sh installs on a GPU machine with no internet:
# aeon 1.6 (+ Deprecated) for the reference and parity, tsai for the comparison. Saved to .whl/
# (git-ignored through .git/info/exclude), for Python 3.12 (the GPU image's).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  aeon==1.6.0 deprecated==1.3.1 tsai==1.0.1
ls -la .whl
