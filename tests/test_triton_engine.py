"""The fused Triton engine (the CUDA path), run on CPU tensors by Triton's interpreter.

Its features must be the same bits as the native engine's (itself bitwise equal to aeon 1.6).
On a CUDA machine tests/test_gpu.py runs the same kernels compiled.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.triton_interpret import cases

from rocketstream.core import PreparedTransform, fit, transform
from rocketstream.core import triton_engine as te

HELPER = Path(__file__).parent / "helpers" / "triton_interpret.py"
LINUX_X86 = sys.platform == "linux" and platform.machine() == "x86_64"


def _require_triton() -> None:
    if importlib.util.find_spec("triton") is None:
        hint = "scripts/setup.sh installs it" if LINUX_X86 else "triton has no wheels for this platform"
        pytest.skip(f"triton is not installed ({hint})")


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    _require_triton()
    out = tmp_path_factory.mktemp("triton") / "features.npz"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(HELPER), str(out)], env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 and "only 0-dimensional arrays can be converted" in proc.stderr \
            and tuple(int(v) for v in np.__version__.split(".")[:2]) >= (2, 4):
        pytest.skip("Triton's interpreter fails under NumPy >= 2.4 (triton-lang/triton#9171); "
                    "tests/test_gpu.py runs the compiled kernels")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def _case_names() -> list[str]:
    return ["univariate", "micro_batches", "inline_time_splits", "multivariate", "multivariate_inline",
            "variable_length_rule"]


@pytest.mark.parametrize("name", _case_names())
def test_interpreted_kernels_match_native_bitwise(interpreted, name):
    case = cases()[name]
    params = case["params"]
    opts = {"length": params.length, "all_padded": False, **case.get("prepared", {})}
    ref = transform(case["x"], params, prepared=PreparedTransform(params, "cpu", **opts)).cpu().numpy()
    ours = interpreted[name]
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def test_case_list_is_complete():
    assert sorted(cases()) == sorted(_case_names())


def test_batch_rows_fit_the_budget():
    rows, inline = te.batch_rows(3, 1000, 496, 9996, 256 * 2**20)
    per_series = 3 * (1000 + 1000 + 1000 + 2 * 496) * 4 + 16 * 9996  # x, C_alpha, padded G; features
    assert not inline and rows == (256 * 2**20) // per_series
    assert te.batch_rows(1, 10**6, 4 * 124_999, 9996, 2**40) == (te.MAX_BATCH, False)
    # the C_alpha launch has at most 2**31 - 1 programs
    assert te.batch_rows(1000, 10**6, 4 * 124_999, 9996, 2**50)[0] == (2**31 - 1) // (1954 * 1000)
    # one series does not fit: C_alpha and G are recomputed in the kernel instead of stored
    assert te.batch_rows(1, 10**8, 4 * 12_499_999, 9996, 2**28) == (1, True)


def test_tiles_and_splits():
    assert te.triton_next_pow2(1) == 1 and te.triton_next_pow2(5) == 8 and te.triton_next_pow2(8) == 8
    assert te.default_block_t(4, 1000) == 512
    assert te.default_block_t(32, 1000) == 64  # 16 counters a thread at 4 warps
    assert te.default_block_t(4, 1000, inline=True) == 128
    assert te.default_block_t(8, 10**6, cap=1024) == 512
    assert te.default_block_t(128, 10**6) == 32
    assert te.default_block_t(1, 20) == 32
    assert te.time_splits(1, 10**6, 1024, torch.device("cpu")) == 1


def test_plan_layout_windows_and_denominators(gunpoint):
    params = fit(gunpoint[0], num_features=420, max_dilations_per_kernel=2, random_state=0)
    prepared = te.TritonKernels(params, torch.device("cpu"), length=150, all_padded=False)
    d0, d1 = prepared.dilations
    assert (d0.dilation, d1.dilation) == (1, 18) and (d0.nfd, d1.nfd) == (3, 2)
    assert (d0.nfd_pad, d1.nfd_pad) == (4, 2)  # bias lanes per dilation
    assert prepared.pad == 72
    # kernel k at dilation index i is padded (whole output) iff i + k is even
    assert d1.lo[1].item() == 0 and d1.hi[1].item() == 150
    assert d1.lo[0].item() == 72 and d1.hi[0].item() == 150 - 72
    assert prepared.denominators[d1.offset].item() == 150 - 2 * 72  # kernel 0: valid region
    padded = te.TritonKernels(params, torch.device("cpu"), length=120, all_padded=True)
    assert all((d.lo == 0).all() and (d.hi == 120).all() for d in padded.dilations)


def test_triton_versions_before_3_fall_back_to_torch():
    assert te._version_tuple("3.6.0") == (3, 6) and te._version_tuple("3.0.0+git1234") == (3, 0)
    assert te._version_tuple("2.3.1") < te.MIN_TRITON <= te._version_tuple("3.0.0rc1")


def test_engine_is_chosen_only_on_cuda(gunpoint, monkeypatch):
    params = fit(gunpoint[0], num_features=168, random_state=0)
    assert not PreparedTransform(params, "cpu").uses_triton
    monkeypatch.setenv(te.ENV_VAR, "0")
    assert not te.enabled()


def test_channel_or_length_mismatch_is_refused(gunpoint):
    params = fit(gunpoint[0], num_features=168, random_state=0)
    prepared = te.TritonKernels(params, torch.device("cpu"), length=150, all_padded=False)
    with pytest.raises(ValueError, match="expects 1 of length 150"):
        te.transform(np.zeros((1, 1, 140), np.float32), prepared)


class _OutOfMemoryAbove:
    """Fault injection for the retry logic (a real GPU cannot be filled on a CPU machine): the
    prepared's counts raise CUDA's out-of-memory error for batches above ``rows`` series, or for any
    batch unless the taps are recomputed in the kernel (``inline_only``)."""

    def __init__(self, prepared, rows: int, inline_only: bool = False) -> None:
        self.counts, self.rows, self.inline_only, self.calls = prepared.counts, rows, inline_only, []

    def __call__(self, xb, **tuning):
        self.calls.append((len(xb), tuning["inline"]))
        if len(xb) > self.rows or (self.inline_only and not tuning["inline"]):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return torch.zeros(len(xb), 84, dtype=torch.int32)


def _tiny_plan():
    from rocketstream.core import plan

    params = plan(8, 1, 50, num_features=84, random_state=0)
    params = params.with_biases(np.zeros(params.n_features_out, np.float32))
    return te.TritonKernels(params, torch.device("cpu"), length=50, all_padded=False)


def test_out_of_memory_halves_the_batch_then_recomputes_taps(monkeypatch):
    prepared = _tiny_plan()
    fake = _OutOfMemoryAbove(prepared, rows=2)
    monkeypatch.setattr(prepared, "counts", fake)
    out = te.transform(np.zeros((7, 1, 50), np.float32), prepared, batch_size=8)
    assert out.shape == (7, 84) and not out.any()
    assert [r for r, _ in fake.calls] == [7, 4, 2, 2, 2, 1]  # 8 -> 4 -> 2 rows, then the tail
    fake = _OutOfMemoryAbove(prepared, rows=1, inline_only=True)
    monkeypatch.setattr(prepared, "counts", fake)
    te.transform(np.zeros((2, 1, 50), np.float32), prepared, batch_size=2)
    assert fake.calls == [(2, False), (1, False), (1, True), (1, True)]


def test_a_series_that_never_fits_names_its_size_and_the_fix(monkeypatch):
    prepared = _tiny_plan()
    monkeypatch.setattr(prepared, "counts", _OutOfMemoryAbove(prepared, rows=0))
    message = r"one series of 1 x 50 float32 needs .*device='cpu'"
    with pytest.raises(torch.cuda.OutOfMemoryError, match=message):
        te.transform(np.zeros((3, 1, 50), np.float32), prepared)
