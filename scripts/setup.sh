#!/usr/bin/env bash
# Set up rocketstream in ./.venv on a fresh machine (idempotent).
#  - torch: kept if the venv already has one; otherwise TORCH_SPEC (default torch==2.13.0, which pip
#    takes as a CPU wheel where one is provided locally, and as the CUDA build from PyPI on Linux).
#  - then the package in editable mode with its test extra;
#  - triton, on Linux x86-64 when torch did not bring it (CUDA builds of torch do): the CUDA engine's
#    kernels, which the tests also run on the CPU in Triton's interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" numpy 2>&1 | grep -v "^WARNING: Location" || true
  "$VPY" -c "import torch" || { echo "torch failed to install" >&2; exit 1; }
fi
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && ! "$VPY" -c "import triton" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "${TRITON_SPEC:-triton==3.6.0}" 2>&1 | grep -v "^WARNING: Location" || true
  "$VPY" -c "import triton" || { echo "triton failed to install" >&2; exit 1; }
fi
"$VPY" -m pip install -q -e ".[test]" 2>&1 | grep -vE "^WARNING: Location|BuildBackendWarning" || true
"$VPY" -c "import rocketstream, aeon, zarr, dask, xarray" || { echo "install failed" >&2; exit 1; }
