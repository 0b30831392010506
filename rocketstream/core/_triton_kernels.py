"""Triton kernels of the fused transform (imported only by :mod:`.triton_engine`, which imports triton).

Only additions, negations and comparisons touch the data, in the order of :mod:`.convolution`,
so no contraction into FMA can change a result. ``G = 3x`` comes either from a buffer that torch
filled with ``3 * x`` (zero-padded by ``pad`` on both sides, so its loads need no bounds checks),
or, in the low-memory mode, from ``(x + x) + x`` (``x + x`` is exact, so the sum rounds once to
the same float as ``3 * x``).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _alpha_at(row, t, valid, L, d):
    """``C_alpha`` of one channel row at positions ``t``: centre tap, then -4d..-d, then +d..+4d."""
    acc = -tl.load(row + t, mask=valid, other=0.0)
    for j in tl.static_range(9):
        if j != 4:
            u = t + (j - 4) * d
            inside = valid & (u >= 0) & (u < L)
            v = tl.load(row + u, mask=inside, other=0.0)
            acc += tl.where(inside, -v, 0.0)
    return acc


@triton.jit
def _gamma_at(row, t, valid, L, shift):
    """``G = 3x`` shifted by ``shift``, zero outside the series."""
    u = t + shift
    v = tl.load(row + u, mask=valid & (u >= 0) & (u < L), other=0.0)
    return (v + v) + v


@triton.jit
def _tile(lanes, t0, t_end, ar, b, C, L, pad, d, k, nch, s0, s1, s2, bias,
          x_ptr, alpha_ptr, g_ptr, chans_ptr, MAXM: tl.constexpr, INLINE: tl.constexpr, MASKED: tl.constexpr):
    """Add one tile's comparisons to the per-lane counts: kernel ``k``'s output at ``t0 + ar``.

    Channels are summed in the drawn order, each as ``((C_alpha + G_i0) + G_i1) + G_i2``. Only the
    last tile is ``MASKED`` (lanes at or past ``t_end`` load nothing and never count).
    """
    t = t0 + ar
    valid = t < t_end
    acc = tl.zeros(ar.shape, dtype=tl.float32)
    for m in range(nch):
        row = b * C + tl.load(chans_ptr + k * MAXM + m)
        if INLINE:
            xr = x_ptr + row * L
            term = _alpha_at(xr, t, valid, L, d)
            term += _gamma_at(xr, t, valid, L, s0)
            term += _gamma_at(xr, t, valid, L, s1)
            term += _gamma_at(xr, t, valid, L, s2)
        else:
            # scalar (uniform) address arithmetic first, the per-lane offsets last
            ap = alpha_ptr + (row * L + t0) + ar
            gp = g_ptr + (row * (L + 2 * pad) + pad + t0) + ar
            if MASKED:
                term = tl.load(ap, mask=valid)
                term += tl.load(gp + s0, mask=valid)
                term += tl.load(gp + s1, mask=valid)
                term += tl.load(gp + s2, mask=valid)
            else:
                term = tl.load(ap)
                term += tl.load(gp + s0)
                term += tl.load(gp + s1)
                term += tl.load(gp + s2)
        acc += term
    if MASKED:
        acc = tl.where(valid, acc, float("-inf"))  # never above a (finite) bias
    return lanes + (acc > bias[None, :]).to(tl.float32)


@triton.jit(do_not_specialize=["d"])
def alpha_kernel(x_ptr, alpha_ptr, L, d, n_tiles, BLOCK: tl.constexpr):
    """``C_alpha`` for every (series, channel) row of ``x`` (rows of length ``L``) at dilation ``d``."""
    pid = tl.program_id(0)
    row = (pid // n_tiles).to(tl.int64) * L
    t = (pid % n_tiles) * BLOCK + tl.arange(0, BLOCK)
    valid = t < L
    tl.store(alpha_ptr + row + t, _alpha_at(x_ptr + row, t, valid, L, d), mask=valid)


# arguments that change from one dilation to the next are not specialised (on == 1 or on
# divisibility by 16), so a model compiles one variant per bias-lane count, not per dilation
@triton.jit(do_not_specialize=["d", "split_len", "feat_off", "nfd"])
def counts_kernel(
    x_ptr, alpha_ptr, g_ptr, counts_ptr, taps_ptr, chans_ptr, nch_ptr, bias_ptr, lo_ptr, hi_ptr,
    C, L, pad, d, split_len, n_features, feat_off, nfd,
    MAXM: tl.constexpr, NFD_PAD: tl.constexpr, BLOCK_T: tl.constexpr, INLINE: tl.constexpr,
    K_GROUP: tl.constexpr,
):
    """PPV counts of ``K_GROUP`` kernels at dilation ``d`` on series ``b``, over one time split.

    Grid: (84 / K_GROUP * splits, batch). For each of its kernels in turn (one after the other,
    so that the series' rows are re-read from L1), a program sums the kernel's channel outputs tile
    by tile, compares them with the kernel's ``nfd`` biases, keeps per-lane counts and adds their
    integer total into ``counts`` (B, F). ``INLINE``: ``C_alpha`` and ``G`` are computed from ``x``
    (no buffers); otherwise they are read from ``alpha`` (B, C, L) and ``g`` (B, C, L + 2 * pad).
    """
    pid = tl.program_id(0)
    groups = 84 // K_GROUP
    split = pid // groups
    b = tl.program_id(1).to(tl.int64)
    f = tl.arange(0, NFD_PAD)
    fmask = f < nfd
    ar = tl.arange(0, BLOCK_T)[:, None]  # (BLOCK_T, 1): the layout of the comparisons
    for j in range(K_GROUP):
        k = (pid % groups) * K_GROUP + j
        t_begin = tl.maximum(tl.load(lo_ptr + k), split * split_len)
        t_end = tl.minimum(tl.load(hi_ptr + k), (split + 1) * split_len)
        s0 = (tl.load(taps_ptr + 3 * k) - 4) * d
        s1 = (tl.load(taps_ptr + 3 * k + 1) - 4) * d
        s2 = (tl.load(taps_ptr + 3 * k + 2) - 4) * d
        nch = tl.load(nch_ptr + k)
        bias = tl.load(bias_ptr + k * nfd + f, mask=fmask, other=0.0)
        # per-lane counts in float32 (FSET + FADD per comparison): exact while a lane counts below
        # 2**24, which the caller guarantees by capping the tiles per program
        lanes = tl.zeros([BLOCK_T, NFD_PAD], dtype=tl.float32)
        n_full = tl.maximum(t_end - t_begin, 0) // BLOCK_T
        for i in range(n_full):  # whole tiles: no masks
            lanes = _tile(lanes, t_begin + i * BLOCK_T, t_end, ar, b, C, L, pad, d, k, nch, s0, s1, s2,
                          bias, x_ptr, alpha_ptr, g_ptr, chans_ptr, MAXM, INLINE, False)
        t_tail = t_begin + n_full * BLOCK_T
        if t_tail < t_end:
            lanes = _tile(lanes, t_tail, t_end, ar, b, C, L, pad, d, k, nch, s0, s1, s2,
                          bias, x_ptr, alpha_ptr, g_ptr, chans_ptr, MAXM, INLINE, True)
        cnt = tl.sum(lanes.to(tl.int32), axis=0)
        tl.atomic_add(counts_ptr + b * n_features + feat_off + k * nfd + f, cnt, mask=fmask)
