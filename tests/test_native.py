"""The native CPU kernel computes the same bits as the torch path (and hence as aeon)."""

import numpy as np
import pytest
import torch

from rocketstream.core import fit as _fit
from rocketstream.core import native as native_mod
from rocketstream.core import plan
from rocketstream.core import transform as _transform
from rocketstream.core.native import ENV_VAR, ENV_WIDTH, NativeKernel, order_statistics
from rocketstream.core.transform import PreparedTransform


def fit(x, **kw):
    """Fit on the CPU engines: this file compares the native engine with torch's, also on a CUDA machine."""
    kw.setdefault("device", "cpu")
    return _fit(x, **kw)


def transform(x, params, **kw):
    """Transform on the CPU engines (see :func:`fit`)."""
    if "prepared" not in kw:
        kw.setdefault("device", "cpu")
    return _transform(x, params, **kw)

pytestmark = pytest.mark.skipif(not native_mod.enabled(), reason="native kernel not built")


def _data(n, c, length, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, length)).astype(np.float32)
    x[:, :, : length // 3] += np.linspace(0, 3, length // 3, dtype=np.float32)  # some structure
    return x


def _torch_path(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setenv(ENV_VAR, "0")
        assert not native_mod.enabled()
        return fn()


def _with_threads(n, fn):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn()
    finally:
        torch.set_num_threads(before)


CASES = [  # (n, channels, length, seed)
    (5, 1, 9, 0),
    (4, 1, 10, 1),
    (3, 1, 11, 2),
    (6, 1, 64, 3),
    (3, 1, 257, 4),
    (5, 3, 9, 5),
    (4, 3, 10, 6),
    (7, 3, 100, 7),
    (2, 5, 333, 8),
    (3, 2, 1000, 9),
    (2, 1, 2049, 10),
]


@pytest.mark.parametrize("n,c,length,seed", CASES)
def test_native_equals_torch_path(monkeypatch, n, c, length, seed):
    x = _data(n, c, length, seed)
    p_native = fit(x, random_state=seed)
    p_torch = _torch_path(monkeypatch, lambda: fit(x, random_state=seed))
    np.testing.assert_array_equal(p_native.biases, p_torch.biases)
    ref = _torch_path(monkeypatch, lambda: transform(x, p_torch).cpu().numpy())
    for threads in (1, 2):
        for bs in (None, 1, 2):
            ours = _with_threads(threads, lambda bs=bs: transform(x, p_native, batch_size=bs).cpu().numpy())
            assert ours.dtype == np.float32
            np.testing.assert_array_equal(ours, ref)


def test_thread_splits_and_inputs(monkeypatch):
    x = _data(5, 2, 3000, 11)
    p = fit(x, num_features=84 * 5, random_state=3)
    ref = _torch_path(monkeypatch, lambda: transform(x, p).cpu().numpy())
    kernel = NativeKernel(p, tile=256)
    for threads in (1, 2, 3, 4):
        for n in (1, 2, 3, 5):  # fewer series than threads: split along time
            out = np.empty((n, p.n_features_out), np.float32)
            kernel.transform_into(x[:n], out, threads)
            np.testing.assert_array_equal(out, ref[:n])
    # torch tensors, non-contiguous and float64 inputs go through the same kernel
    np.testing.assert_array_equal(transform(torch.from_numpy(x), p).cpu().numpy(), ref)
    xf = np.asfortranarray(x)
    np.testing.assert_array_equal(transform(xf, p).cpu().numpy(), ref)
    np.testing.assert_array_equal(transform(x.astype(np.float64), p).cpu().numpy(), ref)
    np.testing.assert_array_equal(transform(x[::-1], p).cpu().numpy(), ref[::-1])


def test_fit_long_rows_radix_selection(monkeypatch):
    # rows >= 2048 use the radix order statistics; biases stay bitwise equal
    x = _data(3, 2, 20_000, 12)
    x[1, 0, ::5] = 0.25  # many ties
    pn = fit(x, num_features=84 * 4, random_state=1)
    pt = _torch_path(monkeypatch, lambda: fit(x, num_features=84 * 4, random_state=1))
    np.testing.assert_array_equal(pn.biases, pt.biases)


@pytest.mark.parametrize("length", [9, 100, 5000, 20_000, 70_001])
def test_order_statistics(length):
    rng = np.random.default_rng(length)
    rows = [
        rng.standard_normal(length),
        rng.integers(-3, 4, length),
        np.full(length, 1.5),
        1 + 1e-6 * rng.standard_normal(length),
        np.where(rng.random(length) < 0.5, -0.0, 0.0) - (np.arange(length) % 7 == 0),
        np.r_[np.full(length - 1, 3e38), -3e38],
    ]
    v = np.stack(rows).astype(np.float32)
    ranks = rng.integers(0, length, (len(v), 9))
    ranks[:, 0], ranks[:, 1] = 0, length - 1
    want = np.take_along_axis(np.sort(v, axis=1), ranks, 1)
    np.testing.assert_array_equal(order_statistics(v.copy(), ranks), want)


def test_counts_beyond_float32_range_are_exact():
    # one series longer than 2**24: counts near L would saturate a float32 accumulator
    length = 2**24 + 200_001
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, length), dtype=np.float32)
    p = plan(1, 1, length, num_features=84, random_state=0)
    assert list(p.dilations) == [1]
    biases = np.zeros(84, np.float32)
    biases[0] = -1e30  # kernel 0 (padded): every position counts -> exactly 1.0
    biases[2] = -1e30  # kernel 2 (padded)
    biases[1] = -1e30  # kernel 1 (valid region of L - 8 positions) -> exactly 1.0
    biases[3] = biases[4] = -12.0  # about 0.2% of the outputs below: counts above 2**24
    biases[5] = 0.5
    p = p.with_biases(biases)
    f = transform(x, p).cpu().numpy()[0]
    assert f[0] == 1.0 and f[1] == 1.0 and f[2] == 1.0
    # kernels 3 (valid) and 4, 5 (padded) against a NumPy count in the reference order
    xs = x[0, 0]
    a = -xs
    g = 3 * xs

    def shifted(v, s):  # v[t + s], zero outside
        out = np.zeros_like(v)
        if s >= 0:
            out[: length - s] = v[s:]
        else:
            out[-s:] = v[: length + s]
        return out

    ca = a.copy()
    for s in (-4, -3, -2, -1, 1, 2, 3, 4):
        ca += shifted(a, s)
    taps = {3: (0, 1, 5), 4: (0, 1, 6), 5: (0, 1, 7)}
    for k, (i0, i1, i2) in taps.items():
        c = ((ca + shifted(g, i0 - 4)) + shifted(g, i1 - 4)) + shifted(g, i2 - 4)
        region = c[4:-4] if k % 2 else c
        count = int(np.count_nonzero(region > biases[k]))
        assert count > (2**24 if k in (3, 4) else 2**22)
        assert f[k] == np.float32(count / len(region)), k


def test_env_var_forces_torch_path(monkeypatch, gunpoint):
    xtr, _, xte, _ = gunpoint
    p = fit(xtr, random_state=0)
    assert PreparedTransform(p, "cpu").uses_native
    native_out = transform(xte[:20], p).cpu().numpy()
    monkeypatch.setenv(ENV_VAR, "0")
    tp = PreparedTransform(p, "cpu")
    assert not tp.uses_native and native_mod.unavailable_reason().startswith("disabled")
    np.testing.assert_array_equal(transform(xte[:20], p, prepared=tp).cpu().numpy(), native_out)
    assert not PreparedTransform(p, "meta").uses_native  # other devices always take the torch path


def test_missing_library_falls_back(monkeypatch, gunpoint):
    xtr, _, xte, _ = gunpoint
    p = fit(xtr, random_state=0)
    ref = transform(xte[:10], p).cpu().numpy()
    monkeypatch.setattr(native_mod, "_lib", None)
    monkeypatch.setattr(native_mod, "_lib_error", "not built")
    assert not native_mod.enabled()
    assert native_mod.unavailable_reason() == "not built"
    np.testing.assert_array_equal(transform(xte[:10], p).cpu().numpy(), ref)
    np.testing.assert_array_equal(fit(xtr, random_state=0).biases, p.biases)


def test_shape_mismatch_is_loud(gunpoint):
    xtr = gunpoint[0]
    p = fit(xtr[:10], random_state=0)
    with pytest.raises(ValueError, match="channels"):
        transform(xtr[:2, :, :100], p)


# -- the 16-wide (AVX-512) loops against the 8-wide ones: the same bits ------------------------------

needs_wide = pytest.mark.skipif(
    not native_mod.enabled() or native_mod.max_width() < 16,
    reason="this CPU (or build) has no AVX-512: only the 8-wide native path can run here",
)


def _by_width(p, x, threads=1, **kw):
    outs = {}
    for w in (8, 16):
        kernel = NativeKernel(p, width=w, **kw)
        assert kernel.width == w
        outs[w] = np.empty((len(x), p.n_features_out), np.float32)
        kernel.transform_into(np.ascontiguousarray(x, dtype=np.float32), outs[w], threads)
    return outs


WIDTH_CASES = [  # (n, channels, length): lengths off multiples of 16, one tile, several tiles, > 16 channels
    (5, 1, 9), (4, 1, 17), (3, 2, 31), (6, 1, 100), (4, 3, 157), (3, 1, 1000), (2, 3, 1031),
    (2, 1, 3001), (2, 18, 203), (1, 2, 5003),
]


@needs_wide
@pytest.mark.parametrize("n,c,length", WIDTH_CASES)
def test_wide_equals_narrow_random(n, c, length):
    x = _data(n, c, length, seed=length)
    p = fit(x, num_features=84 * 6, random_state=length)
    outs = _by_width(p, x)
    np.testing.assert_array_equal(outs[16], outs[8])
    if length >= 64:  # tiles of 64 (many interior tiles, the last one partial)
        np.testing.assert_array_equal(_by_width(p, x, tile=64)[16], outs[8])
    if n < 4:  # fewer series than threads: the time axis split over threads
        np.testing.assert_array_equal(_by_width(p, x, threads=4)[16], outs[8])
    # the bias-fit outputs (gamma-first order) of both widths
    rows = np.ascontiguousarray(np.repeat(x[:1], 84, axis=0))
    kernels = np.arange(84, dtype=np.int32)
    fo = {w: NativeKernel(p, width=w).fit_outputs(rows, len(p.dilations) - 1, kernels) for w in (8, 16)}
    np.testing.assert_array_equal(fo[16], fo[8])


@needs_wide
def test_wide_equals_narrow_many_biases():
    # 30 biases per kernel at dilation 1: fused groups of 6 plus separate counting passes
    x = _data(40, 1, 150, 21)
    p = fit(x, random_state=0)
    assert max(p.features_per_dilation) > 12
    outs = _by_width(p, x, threads=2)
    np.testing.assert_array_equal(outs[16], outs[8])


@needs_wide
def test_wide_equals_narrow_on_real_data(monkeypatch, gunpoint, basicmotions):
    for xtr, _, xte, _ in (gunpoint, basicmotions):
        fits, feats = {}, {}
        for w in (8, 16):
            monkeypatch.setenv(ENV_WIDTH, str(w))  # the fit's and transform's kernels take this width
            fits[w] = fit(xtr, random_state=0)
            feats[w] = transform(xte, fits[w]).cpu().numpy()
        np.testing.assert_array_equal(fits[16].biases, fits[8].biases)
        np.testing.assert_array_equal(feats[16], feats[8])


@needs_wide
def test_wide_equals_narrow_unequal_lengths(monkeypatch):
    from pathlib import Path

    import aeon

    from rocketstream.core.variable import fit_variable, transform_variable
    from rocketstream.ingest import read_ts

    path = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts"
    if not path.exists():
        pytest.skip("JapaneseVowels is not shipped with this aeon")
    series = read_ts(path).series
    assert len({s.shape[1] for s in series}) > 1
    out = {}
    for w in (8, 16):
        monkeypatch.setenv(ENV_WIDTH, str(w))
        p = fit_variable(series, random_state=3, pad_short=True)
        out[w] = (p.biases, transform_variable(series, p))
    np.testing.assert_array_equal(out[16][0], out[8][0])
    np.testing.assert_array_equal(out[16][1], out[8][1])


def test_width_setting(monkeypatch, gunpoint):
    p = fit(gunpoint[0][:10], random_state=0)
    widest = native_mod.max_width()
    assert widest in (1, 8, 16)
    monkeypatch.setenv(ENV_WIDTH, "8")
    assert NativeKernel(p).width == min(8, widest)
    monkeypatch.setenv(ENV_WIDTH, "16")
    assert NativeKernel(p).width == widest
    monkeypatch.delenv(ENV_WIDTH)
    assert NativeKernel(p).width == (widest if native_mod.AUTO_WIDTH >= 16 else min(8, widest))
    assert NativeKernel(p, width="auto").width == NativeKernel(p).width
    monkeypatch.setenv(ENV_WIDTH, "32")
    with pytest.raises(ValueError, match=ENV_WIDTH):
        NativeKernel(p)
    with pytest.raises(ValueError, match="8, 16 or 'auto'"):
        NativeKernel(p, width=4)


@pytest.mark.parametrize("workers", [2, 5])
def test_bias_fit_on_several_threads_gives_the_same_bits(monkeypatch, basicmotions, workers):
    """The native bias fit runs its steps in a thread pool: the biases do not depend on the count."""
    import importlib

    biases_mod = importlib.import_module("rocketstream.core.biases")
    xtr = basicmotions[0]
    monkeypatch.setattr(biases_mod, "cpu_threads", lambda: 1)
    one = fit(xtr, num_features=10_000, random_state=3, device="cpu")
    monkeypatch.setattr(biases_mod, "cpu_threads", lambda: workers)
    many = fit(xtr, num_features=10_000, random_state=3, device="cpu", memory_budget=2**16)  # many steps
    assert np.array_equal(one.biases.view(np.uint32), many.biases.view(np.uint32))


@pytest.mark.parametrize("c,length", [(1, 9), (1, 40), (3, 57), (2, 1000), (5, 2049), (1, 20_000)])
def test_fit_outputs_equal_torch_at_every_dilation(c, length):
    # the bias fit's full padded outputs, bit for bit (signed zeros included), for all 84 kernels at
    # every dilation: the tap ranges at the series' ends and dilations longer than a tile
    from rocketstream.core.convolution import DilationTaps, combination_outputs
    from rocketstream.core.tables import channel_slots

    x = _data(84, c, length, seed=length)
    x[:, :, ::7] = -0.0
    x[:, :, 3::11] = 0.0
    p = fit(x, random_state=length)
    slots = channel_slots(p)
    ks = np.arange(84)
    for tile in (64, 512):
        kernel = NativeKernel(p, tile=tile)
        for i, d in enumerate(p.dilations):
            ours = kernel.fit_outputs(x, i, ks)
            taps = DilationTaps(torch.from_numpy(x), int(d))
            ref = combination_outputs(taps.alpha, taps.gamma, torch.as_tensor(ks),
                                      slots[i][torch.as_tensor(ks)], per_row=True, gamma_first=True).numpy()
            np.testing.assert_array_equal(ours.view(np.uint32), ref.view(np.uint32),
                                          err_msg=f"d={d} tile={tile}")
