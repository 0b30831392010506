"""The CUDA paths (fused Triton kernels, and the torch fallback) on a real GPU; skipped without one.

Parity: features on the GPU are the same bits as the native CPU engine's and match aeon 1.6.
Bounded memory: a tiny budget forces micro-batches, in-kernel ``C_alpha`` and time splits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import load_split
from test_parity_aeon import CASES, assert_features_match

from rocketstream.core import PreparedTransform, fit, plan, transform
from rocketstream.core import triton_engine as te

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def _no_tf32():
    """The shifted-add scheme never uses matrix units; make sure a TF32 default cannot leak in."""
    assert not torch.backends.cuda.matmul.allow_tf32
    yield


@pytest.mark.parametrize("name,seed", CASES)
def test_cuda_features_match_aeon_and_cpu(name, seed):
    from aeon.transformations.collection.convolution_based import MiniRocket

    xtr, _ = load_split(name, "train")
    xte, _ = load_split(name, "test")
    ref = MiniRocket(random_state=seed).fit(xtr)
    params = fit(xtr, random_state=seed, device="cuda")
    np.testing.assert_array_equal(params.biases, ref.parameters[4])
    prepared = PreparedTransform(params, "cuda")
    assert prepared.uses_triton
    ours = transform(xte, params, prepared=prepared)
    assert ours.device.type == "cuda"
    ours = ours.cpu().numpy()
    assert_features_match(ours, ref.transform(xte), xtr.shape[-1])
    np.testing.assert_array_equal(ours, transform(xte, params, device="cpu").numpy())


def test_torch_fallback_on_cuda_is_bitwise_equal(gunpoint, monkeypatch):
    xtr, _, xte, _ = gunpoint
    params = fit(xtr, random_state=0)
    monkeypatch.setenv(te.ENV_VAR, "0")
    prepared = PreparedTransform(params, "cuda")
    assert not prepared.uses_triton
    ours = transform(xte, params, prepared=prepared).cpu().numpy()
    np.testing.assert_array_equal(ours, transform(xte, params, device="cpu").numpy())


@pytest.mark.parametrize("tuning", [
    dict(inline=True), dict(splits=4, block_t=32), dict(block_t=64, num_warps=2),
    dict(block_t=1024, num_warps=8), dict(k_group=6), dict(k_group=84, splits=3, block_t=32),
])
def test_engine_variants_are_bitwise_equal(basicmotions, tuning):
    xtr, _, xte, _ = basicmotions
    params = fit(xtr, random_state=7)
    prepared = te.TritonKernels(params, torch.device("cuda"), length=params.length, all_padded=False)
    ours = te.transform(xte, prepared, **tuning).cpu().numpy()
    np.testing.assert_array_equal(ours, transform(xte, params, device="cpu").numpy())


def test_tiny_budget_long_series_no_oom_and_exact():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 2_000_003), dtype=np.float32).cumsum(-1, dtype=np.float32)
    # bias values do not change the work; spread them over the walk's range (a fit would take minutes)
    params = plan(1, 1, x.shape[-1], random_state=1)
    params = params.with_biases(rng.uniform(-500, 500, params.n_features_out).astype(np.float32))
    ref = transform(x, params, device="cpu").numpy()
    # a budget below one series: one series per step, C_alpha recomputed in the kernel
    pad = 4 * int(params.dilations[-1])
    assert te.batch_rows(1, x.shape[-1], pad, params.n_features_out, 2**20) == (1, True)
    ours = transform(x, params, prepared=PreparedTransform(params, "cuda"), memory_budget=2**20).cpu().numpy()
    assert 0 < ours.mean() < 1
    np.testing.assert_array_equal(ours, ref)


def test_out_of_memory_is_retried_with_smaller_batches(gunpoint):
    xtr, _, xte, _ = gunpoint
    params = fit(xtr, random_state=3)
    x = np.concatenate([xte] * 20)  # 3000 series: about 0.5 GB of working set in one batch
    ref = transform(x, params, device="cpu").numpy()
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    blocker = torch.empty(free - 400 * 2**20, dtype=torch.uint8, device="cuda")  # leave 400 MiB
    try:
        ours = transform(x, params, device="cuda", memory_budget=2**40).cpu().numpy()
    finally:
        del blocker
        torch.cuda.empty_cache()
    np.testing.assert_array_equal(ours, ref)


def test_many_series_in_micro_batches(gunpoint):
    xtr, _, xte, _ = gunpoint
    params = fit(xtr, random_state=2)
    x = np.concatenate([xte] * 20)  # 3000 series
    ours = transform(x, params, device="cuda", memory_budget=4 * 2**20).cpu().numpy()
    np.testing.assert_array_equal(ours, np.concatenate([transform(xte, params, device="cpu").numpy()] * 20))


def test_variable_length_model_on_cuda(gunpoint):
    from rocketstream.core.variable import fit_variable, transform_variable

    series = [row[:, : 60 + 2 * i] for i, row in enumerate(gunpoint[0][:40])]
    params = fit_variable(series, random_state=0)
    np.testing.assert_array_equal(transform_variable(series, params, device="cuda"),
                                  transform_variable(series, params, device="cpu"))


def test_tsai_api_on_cuda(gunpoint):
    from rocketstream import MiniRocketFeatures, get_minirocket_features

    xtr, _, xte, _ = gunpoint
    mrf = MiniRocketFeatures(1, xtr.shape[-1], random_state=0).to("cuda")
    mrf.fit(xtr)
    feats = get_minirocket_features(xte, mrf, chunksize=64, use_cuda=True, to_np=True)
    cpu = MiniRocketFeatures(1, xtr.shape[-1], random_state=0)
    cpu.fit(xtr)
    ref = get_minirocket_features(xte, cpu, use_cuda=False)
    np.testing.assert_array_equal(np.asarray(feats), np.asarray(ref))
