/*
 * Exact MiniRocket on the CPU: a fused convolution + PPV-count kernel in plain C.
 *
 * No Python, NumPy or torch headers: the library is loaded with ctypes and works on contiguous
 * float32 buffers. The float32 operations are the ones of the reference (see convolution.py):
 *
 *   C_alpha[t] = A[t] + A[t-4d] + A[t-3d] + A[t-2d] + A[t-d] + A[t+d] + ... + A[t+4d]  (A = -x)
 *   G_g[t]     = 3 x[t + (g-4) d]                      (zero outside [0, L))
 *   transform: term = ((C_alpha + G_i0) + G_i1) + G_i2
 *   bias fit:  term = C_alpha + ((G_i0 + G_i1) + G_i2)
 *   channels:  C = term(ch_0) + term(ch_1) + ...     (sequentially, in drawn order)
 *
 * PPV counts are integers (strict `>`), accumulated in int64; the feature is
 * float32((double) count / n). Only elementwise IEEE adds, a multiply by 3 and compares are
 * used, so vectorisation does not change a single bit; this file must be compiled WITHOUT
 * -ffast-math and with -ffp-contract=off.
 *
 * The work is tiled along time: for one series and one dilation, a tile of T output positions
 * gets its nine shifted G windows, C_alpha and the 28 partial sums (C_alpha + G_a) + G_b per
 * channel (in L1/L2), then all 84 kernels run on it, each fused with its PPV counting.
 * Memory is O(channels * T) per call, whatever the series length.
 *
 * Vector widths: the hot loops (the MR_BODY part at the end of this file) are compiled twice,
 * by including this file into itself: 8 floats wide (AVX2 clone + baseline) and, with GCC on
 * x86-64, 16 floats wide for AVX-512 (x86-64-v4). Each output element gets the same float
 * operations in the same order in both, so both give the same bits; the plan's `width` field
 * picks one at run time (16 only where the CPU has AVX-512, see mr_max_width).
 */

#ifndef MR_BODY

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MR_VERSION 3
#define NK 84
#define NTAPS 9

#if defined(_MSC_VER)
#define MR_EXPORT __declspec(dllexport)
#define MR_RESTRICT __restrict
#define MR_INLINE static __forceinline
#else
#define MR_INLINE static inline __attribute__((always_inline))
#define MR_EXPORT __attribute__((visibility("default")))
#define MR_RESTRICT __restrict__
#endif

/* Runtime dispatch (AVX2 clone + baseline) where the toolchain supports ifuncs. Every clone
 * computes the same bits: only the vector width differs. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(MR_NO_CLONES)
#define MR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MR_CLONES
#endif

/* The 16-wide AVX-512 build of the hot loops (GCC on x86-64; chosen at run time only where
 * the CPU and OS support AVX-512F/BW/DQ/VL). -DMR_NO_WIDE leaves it out. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 8 && !defined(MR_NO_WIDE)
#define MR_WIDE 1
#include <immintrin.h>
#else
#define MR_WIDE 0
#endif

#if defined(__GNUC__)
#define MR_VECTOR_EXT 1
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32)));
#else
#define MR_VECTOR_EXT 0
#endif

typedef struct {
    int64_t n_channels;
    int64_t length;
    int64_t n_dilations;
    int64_t n_features;
    const int32_t *dilations;    /* (D,) */
    const int32_t *nfd;          /* (D,) features per (dilation, kernel) */
    const int64_t *feat_offsets; /* (D,) first feature of each dilation block */
    const int32_t *comb_nch;     /* (84 D,) channels per combination c = i * 84 + k */
    const int64_t *comb_off;     /* (84 D,) start of each combination in chan_idx */
    const int32_t *chan_idx;     /* channel lists, in drawn order */
    const float *biases;         /* (F,) */
    int64_t tile;                /* time positions per tile (rounded up to a multiple of 16) */
    int64_t all_padded;          /* 1: every PPV over all L outputs (variable-length rule) */
    int64_t width;               /* vector width asked for: 16 (AVX-512, where supported) or 8 */
} mr_plan;

/* kernel k's three +2 taps, in itertools.combinations(range(9), 3) order */
static const int8_t KIDX[NK][3] = {
    {0, 1, 2}, {0, 1, 3}, {0, 1, 4}, {0, 1, 5}, {0, 1, 6}, {0, 1, 7}, {0, 1, 8}, {0, 2, 3},
    {0, 2, 4}, {0, 2, 5}, {0, 2, 6}, {0, 2, 7}, {0, 2, 8}, {0, 3, 4}, {0, 3, 5}, {0, 3, 6},
    {0, 3, 7}, {0, 3, 8}, {0, 4, 5}, {0, 4, 6}, {0, 4, 7}, {0, 4, 8}, {0, 5, 6}, {0, 5, 7},
    {0, 5, 8}, {0, 6, 7}, {0, 6, 8}, {0, 7, 8}, {1, 2, 3}, {1, 2, 4}, {1, 2, 5}, {1, 2, 6},
    {1, 2, 7}, {1, 2, 8}, {1, 3, 4}, {1, 3, 5}, {1, 3, 6}, {1, 3, 7}, {1, 3, 8}, {1, 4, 5},
    {1, 4, 6}, {1, 4, 7}, {1, 4, 8}, {1, 5, 6}, {1, 5, 7}, {1, 5, 8}, {1, 6, 7}, {1, 6, 8},
    {1, 7, 8}, {2, 3, 4}, {2, 3, 5}, {2, 3, 6}, {2, 3, 7}, {2, 3, 8}, {2, 4, 5}, {2, 4, 6},
    {2, 4, 7}, {2, 4, 8}, {2, 5, 6}, {2, 5, 7}, {2, 5, 8}, {2, 6, 7}, {2, 6, 8}, {2, 7, 8},
    {3, 4, 5}, {3, 4, 6}, {3, 4, 7}, {3, 4, 8}, {3, 5, 6}, {3, 5, 7}, {3, 5, 8}, {3, 6, 7},
    {3, 6, 8}, {3, 7, 8}, {4, 5, 6}, {4, 5, 7}, {4, 5, 8}, {4, 6, 7}, {4, 6, 8}, {4, 7, 8},
    {5, 6, 7}, {5, 6, 8}, {5, 7, 8}, {6, 7, 8}
};

MR_INLINE int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
MR_INLINE int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- per-tile inputs ---------------------------------------------------------------------- */

/* For one channel: the nine shifted windows of x over output positions [t0, t0 + n), zero
 * outside [0, L), then C_alpha into `ca` and the windows scaled by 3 (G) in place. */
MR_INLINE void tile_taps(const float *MR_RESTRICT xs, int64_t L, int64_t d, int64_t t0, int64_t n,
                         int64_t stride, float *MR_RESTRICT w, float *MR_RESTRICT ca) {
    if (t0 - 4 * d >= 0 && t0 + n + 4 * d <= L) {
        /* interior tile: every tap in range, read x directly */
        const float *MR_RESTRICT x0 = xs + t0 - 4 * d, *MR_RESTRICT x1 = xs + t0 - 3 * d;
        const float *MR_RESTRICT x2 = xs + t0 - 2 * d, *MR_RESTRICT x3 = xs + t0 - d;
        const float *MR_RESTRICT x4 = xs + t0, *MR_RESTRICT x5 = xs + t0 + d;
        const float *MR_RESTRICT x6 = xs + t0 + 2 * d, *MR_RESTRICT x7 = xs + t0 + 3 * d;
        const float *MR_RESTRICT x8 = xs + t0 + 4 * d;
        for (int64_t t = 0; t < n; t++) {
            float s = -x4[t];
            s = s - x0[t];
            s = s - x1[t];
            s = s - x2[t];
            s = s - x3[t];
            s = s - x5[t];
            s = s - x6[t];
            s = s - x7[t];
            s = s - x8[t];
            ca[t] = s;
        }
        for (int g = 0; g < NTAPS; g++) {
            const float *MR_RESTRICT xg = xs + t0 + (int64_t)(g - 4) * d;
            float *MR_RESTRICT wg = w + g * stride;
            for (int64_t t = 0; t < n; t++) wg[t] = xg[t] * 3.0f;
        }
        return;
    }
    for (int g = 0; g < NTAPS; g++) {
        float *MR_RESTRICT wg = w + g * stride;
        int64_t off = t0 + (int64_t)(g - 4) * d; /* x index of window position 0 */
        int64_t a = max64(0, -off), b = min64(n, L - off);
        if (b <= a) {
            memset(wg, 0, (size_t)n * sizeof(float));
            continue;
        }
        if (a > 0) memset(wg, 0, (size_t)a * sizeof(float));
        memcpy(wg + a, xs + off + a, (size_t)(b - a) * sizeof(float));
        if (b < n) memset(wg + b, 0, (size_t)(n - b) * sizeof(float));
    }
    const float *MR_RESTRICT w0 = w, *MR_RESTRICT w1 = w + stride, *MR_RESTRICT w2 = w + 2 * stride;
    const float *MR_RESTRICT w3 = w + 3 * stride, *MR_RESTRICT w4 = w + 4 * stride;
    const float *MR_RESTRICT w5 = w + 5 * stride, *MR_RESTRICT w6 = w + 6 * stride;
    const float *MR_RESTRICT w7 = w + 7 * stride, *MR_RESTRICT w8 = w + 8 * stride;
    /* a + (-b) == a - b exactly in IEEE arithmetic; zeros outside the series add nothing */
    for (int64_t t = 0; t < n; t++) {
        float s = -w4[t];
        s = s - w0[t];
        s = s - w1[t];
        s = s - w2[t];
        s = s - w3[t];
        s = s - w5[t];
        s = s - w6[t];
        s = s - w7[t];
        s = s - w8[t];
        ca[t] = s;
    }
    for (int g = 0; g < NTAPS; g++) {
        float *MR_RESTRICT wg = w + g * stride;
        for (int64_t t = 0; t < n; t++) wg[t] = wg[t] * 3.0f;
    }
}

/* The transform order ((C_alpha + G_i0) + G_i1) + G_i2 shares its first two adds between the
 * kernels with the same (i0, i1): P[i0, i1] = (C_alpha + G_i0) + G_i1 is computed once per tile
 * for the 28 pairs i0 < i1 <= 7, and each kernel adds only G_i2 (bitwise the same sums). */
#define NPAIRS 28
static const int8_t PAIR_ID[NTAPS][NTAPS] = {
    {-1, 0, 1, 2, 3, 4, 5, 6, -1},      {-1, -1, 7, 8, 9, 10, 11, 12, -1},
    {-1, -1, -1, 13, 14, 15, 16, 17, -1}, {-1, -1, -1, -1, 18, 19, 20, 21, -1},
    {-1, -1, -1, -1, -1, 22, 23, 24, -1}, {-1, -1, -1, -1, -1, -1, 25, 26, -1},
    {-1, -1, -1, -1, -1, -1, -1, 27, -1}, {-1, -1, -1, -1, -1, -1, -1, -1, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1, -1},
};

/* Per-channel tile layout for the transform: 9 G windows, C_alpha, 28 pair sums. */
#define TR_ARRAYS (NTAPS + 1 + NPAIRS)

MR_INLINE void tile_pairs(float *MR_RESTRICT buf, int64_t n, int64_t stride) {
    const float *MR_RESTRICT ca = buf + NTAPS * stride;
    float *MR_RESTRICT pairs = buf + (NTAPS + 1) * stride;
    for (int a = 0; a < 7; a++) {
        const float *MR_RESTRICT ga = buf + a * stride;
        for (int b = a + 1; b < 8; b++) {
            const float *MR_RESTRICT gb = buf + b * stride;
            float *MR_RESTRICT pab = pairs + PAIR_ID[a][b] * stride;
            for (int64_t t = 0; t < n; t++) pab[t] = (ca[t] + ga[t]) + gb[t];
        }
    }
}

#define MAX_CH_FUSED 16

/* c[t] for one combination: sum over channels of (P + G_i2), sequentially in channel order. */
MR_INLINE float comb_value(const float *const *pp, const float *const *gg, int m, int64_t t) {
    float v = pp[0][t] + gg[0][t];
    for (int j = 1; j < m; j++) v = v + (pp[j][t] + gg[j][t]);
    return v;
}

static int64_t tile_of(const mr_plan *p) {
    int64_t t = p->tile > 0 ? p->tile : 512;
    t = (t + 15) / 16 * 16; /* a multiple of 16 floats: every tile array starts 64-byte aligned */
    return t;
}

/* ---- the hot loops, once per vector width ------------------------------------------------- */

#define MR_CAT_(a, b) a##b
#define MR_CAT(a, b) MR_CAT_(a, b)
#define MR_W(name) MR_CAT(name, MR_SUFFIX)

#define MR_BODY 1
#define VW 8
#define MR_SUFFIX _8
#define MR_HOT MR_CLONES
#include "minirocket.c"
#undef VW
#undef MR_SUFFIX
#undef MR_HOT

#if MR_WIDE
#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512cd,avx512bw,avx512dq,avx512vl,prefer-vector-width=512")
#define VW 16
#define MR_SUFFIX _16
#define MR_HOT
#include "minirocket.c"
#undef VW
#undef MR_SUFFIX
#undef MR_HOT
#pragma GCC pop_options
#endif

/* ---- dispatch and exports ----------------------------------------------------------------- */

#if MR_WIDE
/* Whether the CPU and OS run AVX-512F/BW/DQ/VL, found once when the library is loaded. */
static int mr_cpu_wide = 0;

__attribute__((constructor)) static void mr_detect_cpu(void) {
    __builtin_cpu_init();
    mr_cpu_wide = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

/* The widest vector path this build and CPU can run: 16 (AVX-512), else 8 (1: plain scalar C). */
MR_EXPORT int mr_max_width(void) {
#if MR_WIDE
    if (mr_cpu_wide) return 16;
#endif
    return MR_VECTOR_EXT ? 8 : 1;
}

static int series_counts(const mr_plan *p, const float *x, int64_t t_begin, int64_t t_end, int64_t *counts,
                         float *work) {
#if MR_WIDE
    if (p->width >= 16 && mr_cpu_wide) return series_counts_16(p, x, t_begin, t_end, counts, work);
#endif
    return series_counts_8(p, x, t_begin, t_end, counts, work);
}

static int fit_rows(const mr_plan *p, const float *rows, int64_t n_rows, int64_t dil, const int32_t *kernels,
                    float *out, float *work) {
#if MR_WIDE
    if (p->width >= 16 && mr_cpu_wide) return fit_rows_16(p, rows, n_rows, dil, kernels, out, work);
#endif
    return fit_rows_8(p, rows, n_rows, dil, kernels, out, work);
}

static int64_t work_floats(const mr_plan *p) {
    return (p->n_channels * TR_ARRAYS + 1) * tile_of(p) + 16;
}

/* The workspace, 64-byte aligned (a cache line: whole-vector loads then never straddle two);
 * release it with free(*base). */
static float *work_alloc(const mr_plan *p, void **base) {
    *base = malloc((size_t)work_floats(p) * sizeof(float) + 64);
    if (!*base) return NULL;
    return (float *)(((uintptr_t)*base + 63) & ~(uintptr_t)63);
}

MR_EXPORT int mr_version(void) { return MR_VERSION; }

/* counts (F,) += counts of one series over [t_begin, t_end) (clipped to [0, L)). */
MR_EXPORT int mr_counts(const mr_plan *p, const float *x, int64_t t_begin, int64_t t_end, int64_t *counts) {
    t_begin = max64(0, t_begin);
    t_end = min64(p->length, t_end);
    if (t_end <= t_begin) return 0;
    void *base;
    float *work = work_alloc(p, &base);
    if (!work) return 1;
    int rc = series_counts(p, x, t_begin, t_end, counts, work);
    free(base);
    return rc;
}

/* Turn one series' counts into features: float32(count / n), the division in float64. */
MR_EXPORT void mr_features(const mr_plan *p, const int64_t *counts, float *out) {
    const int64_t L = p->length;
    for (int64_t i = 0; i < p->n_dilations; i++) {
        const int64_t d = p->dilations[i], nfd = p->nfd[i], f0 = p->feat_offsets[i];
        for (int64_t k = 0; k < NK; k++) {
            const double n = (double)((!p->all_padded && ((i + k) & 1)) ? L - 8 * d : L);
            for (int64_t j = 0; j < nfd; j++) {
                const int64_t f = f0 + k * nfd + j;
                out[f] = (float)((double)counts[f] / n);
            }
        }
    }
}

/* Full transform of n_series contiguous series (n_series, C, L) into out (n_series, F). */
MR_EXPORT int mr_transform(const mr_plan *p, const float *x, int64_t n_series, float *out) {
    const int64_t F = p->n_features, CL = p->n_channels * p->length;
    void *base;
    float *work = work_alloc(p, &base);
    int64_t *counts = (int64_t *)malloc((size_t)F * sizeof(int64_t));
    if (!work || !counts) {
        free(base);
        free(counts);
        return 1;
    }
    int rc = 0;
    for (int64_t s = 0; s < n_series && rc == 0; s++) {
        memset(counts, 0, (size_t)F * sizeof(int64_t));
        rc = series_counts(p, x + s * CL, 0, p->length, counts, work);
        mr_features(p, counts, out + s * F);
    }
    free(base);
    free(counts);
    return rc;
}

/* Bias-fit outputs: row r of `rows` (n_rows, C, L) convolved with kernel kernels[r] at dilation
 * index `dil`, summed over the channels of combination dil * 84 + kernels[r], in the gamma-first
 * order of the reference bias fit; full padded output (n_rows, L) into out. */
MR_EXPORT int mr_fit_outputs(const mr_plan *p, const float *rows, int64_t n_rows, int64_t dil,
                             const int32_t *kernels, float *out) {
    void *base;
    float *work = work_alloc(p, &base);
    if (!work) return 1;
    int rc = fit_rows(p, rows, n_rows, dil, kernels, out, work);
    free(base);
    return rc;
}

/* ---- order statistics for the bias fit ---------------------------------------------------- */

/* Several order statistics of one row at once: quickselect that recurses only into the parts
 * holding wanted ranks (three-way partition, so runs of equal values cost nothing), with a
 * depth limit that falls back to a full sort. Only the values matter (ties are equal floats). */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

MR_INLINE float median3(float a, float b, float c) {
    if (a > b) { float t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

/* v[lo:hi) is reordered so that v[r] holds the r-th smallest for every r in ranks[0:nr)
 * (sorted ascending, all within [lo, hi)). */
static void multiselect(float *v, int64_t lo, int64_t hi, const int64_t *ranks, int64_t nr, int depth) {
    while (nr > 0) {
        const int64_t n = hi - lo;
        if (n <= 16 || depth <= 0) {
            qsort(v + lo, (size_t)n, sizeof(float), cmp_float);
            return;
        }
        depth--;
        float pivot;
        if (n >= 1024) { /* ninther */
            const int64_t s = n / 8;
            float m1 = median3(v[lo], v[lo + s], v[lo + 2 * s]);
            float m2 = median3(v[lo + 3 * s], v[lo + n / 2], v[lo + 5 * s]);
            float m3 = median3(v[hi - 1 - 2 * s], v[hi - 1 - s], v[hi - 1]);
            pivot = median3(m1, m2, m3);
        } else {
            pivot = median3(v[lo], v[lo + n / 2], v[hi - 1]);
        }
        /* Dutch national flag: [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi) > pivot */
        int64_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float x = v[i];
            if (x < pivot) {
                v[i] = v[lt];
                v[lt] = x;
                lt++;
                i++;
            } else if (x > pivot) {
                gt--;
                v[i] = v[gt];
                v[gt] = x;
            } else {
                i++;
            }
        }
        int64_t a = 0;
        while (a < nr && ranks[a] < lt) a++;
        int64_t b = a;
        while (b < nr && ranks[b] < gt) b++;
        /* ranks[0:a) on the left, [a:b) equal the pivot, [b:nr) on the right */
        if (a > 0 && nr - b > 0) {
            if (lt - lo < hi - gt) {
                multiselect(v, lo, lt, ranks, a, depth);
                lo = gt;
                ranks += b;
                nr -= b;
            } else {
                multiselect(v, gt, hi, ranks + b, nr - b, depth);
                hi = lt;
                nr = a;
            }
        } else if (a > 0) {
            hi = lt;
            nr = a;
        } else {
            lo = gt;
            ranks += b;
            nr -= b;
        }
    }
}

/* Monotone uint32 key of a float (NaN-free input; -0.0 is first folded into +0.0). */
MR_INLINE uint32_t float_key(float f) {
    uint32_t u;
    f = f + 0.0f;
    memcpy(&u, &f, sizeof(u));
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

MR_INLINE float key_float(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

#define RADIX 65536
#define RADIX_MIN_LENGTH 2048

/* Order statistics by a two-level radix count (high then low 16 bits of the key): two linear
 * passes over the row whatever the data, for long rows. rk: sorted unique ranks. */
static int radix_select(const float *row, int64_t L, const int64_t *rk, int64_t nr, float *val, int64_t *hist,
                        int32_t *slot_of) {
    memset(hist, 0, RADIX * sizeof(int64_t));
    for (int64_t t = 0; t < L; t++) hist[float_key(row[t]) >> 16]++;
    /* buckets holding wanted ranks, their start rank and size */
    int64_t *bstart = (int64_t *)malloc((size_t)nr * 3 * sizeof(int64_t));
    if (!bstart) return 1;
    int64_t *bsize = bstart + nr, *bid = bstart + 2 * nr;
    int64_t nb = 0, cum = 0, j = 0;
    for (int64_t b = 0; b < RADIX && j < nr; b++) {
        const int64_t h = hist[b];
        if (h && rk[j] < cum + h) {
            bid[nb] = b;
            bstart[nb] = cum;
            bsize[nb] = h;
            nb++;
            while (j < nr && rk[j] < cum + h) j++;
        }
        cum += h;
    }
    /* gather the keys of those buckets */
    int64_t total = 0;
    for (int64_t q = 0; q < nb; q++) total += bsize[q];
    uint32_t *keys = (uint32_t *)malloc((size_t)(total > 0 ? total : 1) * sizeof(uint32_t));
    int64_t *pos = (int64_t *)malloc((size_t)(nb > 0 ? nb : 1) * sizeof(int64_t));
    if (!keys || !pos) {
        free(keys);
        free(pos);
        free(bstart);
        return 1;
    }
    int64_t off = 0;
    for (int64_t q = 0; q < nb; q++) {
        slot_of[bid[q]] = (int32_t)q;
        pos[q] = off;
        off += bsize[q];
    }
    for (int64_t t = 0; t < L; t++) {
        const uint32_t k = float_key(row[t]);
        const int32_t q = slot_of[k >> 16];
        if (q >= 0) keys[pos[q]++] = k;
    }
    /* second level within each bucket */
    j = 0;
    off = 0;
    for (int64_t q = 0; q < nb; q++) {
        slot_of[bid[q]] = -1;
        uint32_t *kb = keys + off;
        const int64_t m = bsize[q];
        if (m <= 4096) { /* small bucket: sort its keys */
            qsort(kb, (size_t)m, sizeof(uint32_t), cmp_u32);
            while (j < nr && rk[j] < bstart[q] + m) {
                val[j] = key_float(kb[rk[j] - bstart[q]]);
                j++;
            }
            off += m;
            continue;
        }
        memset(hist, 0, RADIX * sizeof(int64_t));
        for (int64_t t = 0; t < m; t++) hist[kb[t] & 0xffffu]++;
        int64_t c2 = bstart[q];
        int64_t b2 = 0;
        while (j < nr && rk[j] < bstart[q] + m) {
            while (c2 + hist[b2] <= rk[j]) c2 += hist[b2++];
            val[j] = key_float(((uint32_t)bid[q] << 16) | (uint32_t)b2);
            j++;
        }
        off += m;
    }
    free(keys);
    free(pos);
    free(bstart);
    return 0;
}

/* For each row r of v (n_rows, L) write the order statistics sort(v[r])[ranks[r, j]] into
 * out[r, j] (0-based ranks in [0, L), any order, duplicates allowed). Rows may be reordered. */
MR_EXPORT int mr_select(float *v, int64_t n_rows, int64_t L, const int64_t *ranks, int64_t n_ranks, float *out) {
    const size_t nrk = (size_t)(n_ranks > 0 ? n_ranks : 1);
    int64_t *rk = (int64_t *)malloc(nrk * sizeof(int64_t));
    float *val = (float *)malloc(nrk * sizeof(float));
    int64_t *hist = NULL;
    int32_t *slot_of = NULL;
    int rc = 0;
    if (L >= RADIX_MIN_LENGTH) {
        hist = (int64_t *)malloc(RADIX * sizeof(int64_t));
        slot_of = (int32_t *)malloc(RADIX * sizeof(int32_t));
        if (slot_of)
            for (int64_t b = 0; b < RADIX; b++) slot_of[b] = -1;
    }
    if (!rk || !val || (L >= RADIX_MIN_LENGTH && (!hist || !slot_of))) rc = 1;
    int depth = 8;
    for (int64_t m = L; m > 1; m >>= 1) depth += 2;
    for (int64_t r = 0; r < n_rows && rc == 0; r++) {
        float *row = v + r * L;
        const int64_t *want = ranks + r * n_ranks;
        int64_t nr = 0;
        for (int64_t j = 0; j < n_ranks; j++) {
            if (want[j] < 0 || want[j] >= L) {
                rc = 2;
                break;
            }
            rk[nr++] = want[j];
        }
        if (rc) break;
        qsort(rk, (size_t)nr, sizeof(int64_t), cmp_i64);
        int64_t u = 0; /* unique */
        for (int64_t j = 0; j < nr; j++)
            if (u == 0 || rk[j] != rk[u - 1]) rk[u++] = rk[j];
        if (L >= RADIX_MIN_LENGTH) {
            rc = radix_select(row, L, rk, u, val, hist, slot_of);
        } else {
            multiselect(row, 0, L, rk, u, depth);
            for (int64_t j = 0; j < u; j++) val[j] = row[rk[j]];
        }
        for (int64_t j = 0; j < n_ranks && rc == 0; j++) {
            int64_t lo = 0, hi = u - 1; /* binary search want[j] among the unique ranks */
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (rk[mid] < want[j])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            out[r * n_ranks + j] = val[lo];
        }
    }
    free(rk);
    free(val);
    free(hist);
    free(slot_of);
    return rc;
}

#ifdef _WIN32
/* setuptools exports PyInit_<name> from extension modules; this library is loaded with ctypes. */
MR_EXPORT void PyInit__minirocket(void) {}
#endif

#else /* MR_BODY: the hot loops for one vector width VW, named with the suffix MR_SUFFIX */

/* ---- PPV counts --------------------------------------------------------------------------- */

#if MR_VECTOR_EXT
#define VF MR_W(vf)
#define VI MR_W(vi)
typedef float VF __attribute__((vector_size(4 * VW), aligned(4)));
typedef int32_t VI __attribute__((vector_size(4 * VW)));

MR_INLINE VF MR_W(loadv)(const float *p) {
    VF v;
    memcpy(&v, p, sizeof(v));
    return v;
}

MR_INLINE VF MR_W(splat)(float s) {
#if VW == 16
    return (VF)_mm512_set1_ps(s);
#else
    return (VF){s, s, s, s, s, s, s, s};
#endif
}

MR_INLINE VF MR_W(comb_vec)(const float *const *pp, const float *const *gg, int m, int64_t t) {
    VF v = MR_W(loadv)(pp[0] + t) + MR_W(loadv)(gg[0] + t);
    for (int j = 1; j < m; j++) v = v + (MR_W(loadv)(pp[j] + t) + MR_W(loadv)(gg[j] + t));
    return v;
}

#if VW == 16
/* AVX-512: a compare gives a lane mask and the count is a masked add (one instruction each).
 * A range starts with a masked step up to a 64-byte boundary and ends with a masked step over
 * its last < 16 positions: masked-off lanes are not read (no fault) and not counted, and every
 * counted lane gets the same float operations as in the 8-wide and scalar code. */
MR_INLINE VI MR_W(count_step)(VI acc, VF v, VF b) {
    const __mmask16 gt = _mm512_cmp_ps_mask((__m512)v, (__m512)b, _CMP_GT_OS);
    return (VI)_mm512_mask_sub_epi32((__m512i)acc, gt, (__m512i)acc, _mm512_set1_epi32(-1));
}

MR_INLINE VI MR_W(count_step_part)(VI acc, VF v, VF b, __mmask16 k) {
    const __mmask16 gt = _mm512_mask_cmp_ps_mask(k, (__m512)v, (__m512)b, _CMP_GT_OS);
    return (VI)_mm512_mask_sub_epi32((__m512i)acc, gt, (__m512i)acc, _mm512_set1_epi32(-1));
}

MR_INLINE int64_t MR_W(lanes_sum)(VI acc) { return _mm512_reduce_add_epi32((__m512i)acc); }

MR_INLINE VF MR_W(load_part)(const float *p, __mmask16 k) { return (VF)_mm512_maskz_loadu_ps(k, p); }

MR_INLINE VF MR_W(comb_part)(const float *const *pp, const float *const *gg, int m, int64_t t, __mmask16 k) {
    VF v = MR_W(load_part)(pp[0] + t, k) + MR_W(load_part)(gg[0] + t, k);
    for (int j = 1; j < m; j++) v = v + (MR_W(load_part)(pp[j] + t, k) + MR_W(load_part)(gg[j] + t, k));
    return v;
}

/* First a masked step up to the next 64-byte boundary of ADDR (the address at t): the arrays
 * of a tile share their alignment, so every following whole-vector load is aligned. */
#define MR_MASKED_HEAD(M, end, ADDR, VALUE, STORE)                                               \
    {                                                                                            \
        const int64_t h_ = (int64_t)((0u - (unsigned)(uintptr_t)(ADDR)) & 63u) / 4;              \
        if (h_ > 0 && t < (end)) {                                                               \
            const int64_t e_ = min64(t + h_, (end));                                             \
            const __mmask16 k = (__mmask16)((1u << (e_ - t)) - 1u);                              \
            VF v = VALUE;                                                                        \
            STORE;                                                                               \
            for (int j = 0; j < M; j++) acc[j] = MR_W(count_step_part)(acc[j], v, bv[j], k);      \
            t = e_;                                                                              \
        }                                                                                        \
    }

#define MR_MASKED_TAIL(M, end, VALUE, STORE)                                                     \
    if (t < (end)) {                                                                             \
        const __mmask16 k = (__mmask16)((1u << ((end) - t)) - 1u);                               \
        VF v = VALUE;                                                                            \
        STORE;                                                                                   \
        for (int j = 0; j < M; j++) acc[j] = MR_W(count_step_part)(acc[j], v, bv[j], k);          \
        t = (end);                                                                               \
    }
#else
MR_INLINE VI MR_W(count_step)(VI acc, VF v, VF b) { return acc - (VI)(v > b); }

MR_INLINE int64_t MR_W(lanes_sum)(VI acc) {
    int64_t s = 0;
    for (int l = 0; l < VW; l++) s += acc[l];
    return s;
}

#define MR_MASKED_HEAD(M, end, ADDR, VALUE, STORE) /* the narrow build: no head step */
#define MR_MASKED_TAIL(M, end, VALUE, STORE)        /* and scalar tail steps */
#endif

/* out[j] += #{t in [0, n): c[t] > b[j]} for j < M; int32 lanes are exact since n <= tile. */
#define DEFINE_COUNT(M)                                                                         \
    MR_INLINE void MR_W(count_##M)(const float *MR_RESTRICT c, int64_t n, const float *b,       \
                                   int64_t *MR_RESTRICT out) {                                  \
        VI acc[M];                                                                              \
        VF bv[M];                                                                               \
        for (int j = 0; j < M; j++) {                                                           \
            acc[j] = (VI){0};                                                                   \
            bv[j] = MR_W(splat)(b[j]);                                                          \
        }                                                                                       \
        int64_t t = 0;                                                                          \
        MR_MASKED_HEAD(M, n, c + t, MR_W(load_part)(c + t, k), (void)0)                         \
        for (; t + VW <= n; t += VW) {                                                          \
            VF v = MR_W(loadv)(c + t);                                                          \
            for (int j = 0; j < M; j++) acc[j] = MR_W(count_step)(acc[j], v, bv[j]);            \
        }                                                                                       \
        MR_MASKED_TAIL(M, n, MR_W(load_part)(c + t, k), (void)0)                                \
        for (int j = 0; j < M; j++) {                                                           \
            int64_t s = MR_W(lanes_sum)(acc[j]);                                                \
            for (int64_t u = t; u < n; u++) s += c[u] > b[j];                                   \
            out[j] += s;                                                                        \
        }                                                                                       \
    }
#else
#define DEFINE_COUNT(M)                                                                         \
    MR_INLINE void MR_W(count_##M)(const float *MR_RESTRICT c, int64_t n, const float *b,       \
                                   int64_t *MR_RESTRICT out) {                                  \
        for (int j = 0; j < M; j++) {                                                           \
            int32_t s = 0;                                                                      \
            const float bj = b[j];                                                              \
            for (int64_t t = 0; t < n; t++) s += c[t] > bj;                                     \
            out[j] += s;                                                                        \
        }                                                                                       \
    }
#endif

DEFINE_COUNT(1)
DEFINE_COUNT(2)
DEFINE_COUNT(3)
DEFINE_COUNT(4)
DEFINE_COUNT(5)
DEFINE_COUNT(6)
#undef DEFINE_COUNT

MR_INLINE void MR_W(count_all)(const float *c, int64_t n, const float *b, int64_t nb, int64_t *out) {
    while (nb > 0) {
        int64_t m = nb >= 12 ? 6 : (nb > 6 ? (nb + 1) / 2 : nb); /* groups of <= 6 biases */
        switch (m) {
            case 1: MR_W(count_1)(c, n, b, out); break;
            case 2: MR_W(count_2)(c, n, b, out); break;
            case 3: MR_W(count_3)(c, n, b, out); break;
            case 4: MR_W(count_4)(c, n, b, out); break;
            case 5: MR_W(count_5)(c, n, b, out); break;
            default: MR_W(count_6)(c, n, b, out); break;
        }
        b += m;
        out += m;
        nb -= m;
    }
}

/* ---- fused transform inner loop ---------------------------------------------------------- */

#if MR_VECTOR_EXT
/* Counts of c > b[j] (j < M) for c computed on the fly; optionally stores c. */
#define DEFINE_FUSED(M)                                                                         \
    MR_INLINE void MR_W(fused_##M)(const float *const *pp, const float *const *gg, int m,        \
                                   int64_t lo, int64_t hi, const float *b,                      \
                                   int64_t *MR_RESTRICT out, float *cstore) {                   \
        VI acc[M];                                                                              \
        VF bv[M];                                                                               \
        for (int j = 0; j < M; j++) {                                                           \
            acc[j] = (VI){0};                                                                   \
            bv[j] = MR_W(splat)(b[j]);                                                          \
        }                                                                                       \
        int64_t t = lo;                                                                         \
        MR_MASKED_HEAD(M, hi, pp[0] + t, MR_W(comb_part)(pp, gg, m, t, k),                      \
                       if (cstore) _mm512_mask_storeu_ps(cstore + t, k, (__m512)v))              \
        if (m == 1) {                                                                           \
            const float *p0 = pp[0], *g0 = gg[0];                                               \
            for (; t + VW <= hi; t += VW) {                                                     \
                VF v = MR_W(loadv)(p0 + t) + MR_W(loadv)(g0 + t);                               \
                if (cstore) memcpy(cstore + t, &v, sizeof(v));                                  \
                for (int j = 0; j < M; j++) acc[j] = MR_W(count_step)(acc[j], v, bv[j]);        \
            }                                                                                   \
        } else {                                                                                \
            for (; t + VW <= hi; t += VW) {                                                     \
                VF v = MR_W(comb_vec)(pp, gg, m, t);                                            \
                if (cstore) memcpy(cstore + t, &v, sizeof(v));                                  \
                for (int j = 0; j < M; j++) acc[j] = MR_W(count_step)(acc[j], v, bv[j]);        \
            }                                                                                   \
        }                                                                                       \
        MR_MASKED_TAIL(M, hi, MR_W(comb_part)(pp, gg, m, t, k),                                 \
                       if (cstore) _mm512_mask_storeu_ps(cstore + t, k, (__m512)v))              \
        int64_t tot[M];                                                                         \
        for (int j = 0; j < M; j++) tot[j] = MR_W(lanes_sum)(acc[j]);                           \
        for (; t < hi; t++) {                                                                   \
            float v = comb_value(pp, gg, m, t);                                                 \
            if (cstore) cstore[t] = v;                                                          \
            for (int j = 0; j < M; j++) tot[j] += v > b[j];                                     \
        }                                                                                       \
        for (int j = 0; j < M; j++) out[j] += tot[j];                                           \
    }
#else
#define DEFINE_FUSED(M)                                                                         \
    MR_INLINE void MR_W(fused_##M)(const float *const *pp, const float *const *gg, int m,        \
                                   int64_t lo, int64_t hi, const float *b,                      \
                                   int64_t *MR_RESTRICT out, float *cstore) {                   \
        int64_t tot[M] = {0};                                                                   \
        for (int64_t t = lo; t < hi; t++) {                                                     \
            float v = comb_value(pp, gg, m, t);                                                 \
            if (cstore) cstore[t] = v;                                                          \
            for (int j = 0; j < M; j++) tot[j] += v > b[j];                                     \
        }                                                                                       \
        for (int j = 0; j < M; j++) out[j] += tot[j];                                           \
    }
#endif

DEFINE_FUSED(1)
DEFINE_FUSED(2)
DEFINE_FUSED(3)
DEFINE_FUSED(4)
DEFINE_FUSED(5)
DEFINE_FUSED(6)
#undef DEFINE_FUSED

MR_INLINE void MR_W(fused_any)(int64_t mb, const float *const *pp, const float *const *gg, int m, int64_t lo,
                               int64_t hi, const float *b, int64_t *out, float *cstore) {
    switch (mb) {
        case 1: MR_W(fused_1)(pp, gg, m, lo, hi, b, out, cstore); break;
        case 2: MR_W(fused_2)(pp, gg, m, lo, hi, b, out, cstore); break;
        case 3: MR_W(fused_3)(pp, gg, m, lo, hi, b, out, cstore); break;
        case 4: MR_W(fused_4)(pp, gg, m, lo, hi, b, out, cstore); break;
        case 5: MR_W(fused_5)(pp, gg, m, lo, hi, b, out, cstore); break;
        default: MR_W(fused_6)(pp, gg, m, lo, hi, b, out, cstore); break;
    }
}

/* ---- drivers ------------------------------------------------------------------------------ */

/* counts (F,) += PPV counts of one series over output positions [t_begin, t_end). */
MR_HOT static int MR_W(series_counts)(const mr_plan *p, const float *x, int64_t t_begin, int64_t t_end,
                                      int64_t *counts, float *work) {
    const int64_t C = p->n_channels, L = p->length, T = tile_of(p);
    const int64_t stride = T;
    const int64_t per_ch = TR_ARRAYS * stride;
    float *bufs = work;
    float *c = work + C * per_ch;
    const float *pp_stack[MAX_CH_FUSED], *gg_stack[MAX_CH_FUSED];
    for (int64_t i = 0; i < p->n_dilations; i++) {
        const int64_t d = p->dilations[i], nfd = p->nfd[i], pad = 4 * d;
        const int64_t f0 = p->feat_offsets[i];
        for (int64_t t0 = t_begin; t0 < t_end; t0 += T) {
            const int64_t n = min64(T, t_end - t0);
            for (int64_t ch = 0; ch < C; ch++) {
                float *buf = bufs + ch * per_ch;
                tile_taps(x + ch * L, L, d, t0, n, stride, buf, buf + NTAPS * stride);
                tile_pairs(buf, n, stride);
            }
            for (int k = 0; k < NK; k++) {
                const int valid = p->all_padded ? 0 : (int)((i + k) & 1);
                const int64_t r0 = valid ? pad : 0, r1 = valid ? L - pad : L;
                const int64_t lo = max64(r0, t0) - t0, hi = min64(r1, t0 + n) - t0;
                if (hi <= lo || nfd <= 0) continue;
                const int64_t comb = i * NK + k;
                const int32_t *chans = p->chan_idx + p->comb_off[comb];
                const int m = p->comb_nch[comb];
                const int pid = PAIR_ID[KIDX[k][0]][KIDX[k][1]];
                const float *b = p->biases + f0 + k * nfd;
                int64_t *out = counts + f0 + k * nfd;
                if (m <= MAX_CH_FUSED) {
                    for (int j = 0; j < m; j++) {
                        const float *buf = bufs + (int64_t)chans[j] * per_ch;
                        pp_stack[j] = buf + (NTAPS + 1 + pid) * stride;
                        gg_stack[j] = buf + KIDX[k][2] * stride;
                    }
                    if (nfd <= 6) {
                        MR_W(fused_any)(nfd, pp_stack, gg_stack, m, lo, hi, b, out, NULL);
                    } else {
                        MR_W(fused_6)(pp_stack, gg_stack, m, lo, hi, b, out, c);
                        MR_W(count_all)(c + lo, hi - lo, b + 6, nfd - 6, out + 6);
                    }
                } else { /* many channels: accumulate c channel by channel, then count */
                    for (int j = 0; j < m; j++) {
                        const float *buf = bufs + (int64_t)chans[j] * per_ch;
                        const float *pj = buf + (NTAPS + 1 + pid) * stride, *gj = buf + KIDX[k][2] * stride;
                        if (j == 0)
                            for (int64_t t = lo; t < hi; t++) c[t] = pj[t] + gj[t];
                        else
                            for (int64_t t = lo; t < hi; t++) c[t] = c[t] + (pj[t] + gj[t]);
                    }
                    MR_W(count_all)(c + lo, hi - lo, b, nfd, out);
                }
            }
        }
    }
    return 0;
}

/* One channel's term of kernel k over output positions [t0, t0 + n), straight from the series, in
 * the reference bias fit's order (gamma first): C_alpha + ((G_i0 + G_i1) + G_i2), with C_alpha summed
 * as in tile_taps and G = 3x, without storing the nine windows. The range is cut where a tap
 * enters or leaves [0, L); in each piece a tap outside the series reads from `zeros`, so it is
 * subtracted and added as the zero it is in the padded windows (the same bits). c = term, or
 * c = c + term when `add`. */
MR_HOT static void MR_W(fit_term)(const float *MR_RESTRICT xs, int64_t L, int64_t d, int k, int64_t t0,
                                  int64_t n, const float *MR_RESTRICT zeros, float *MR_RESTRICT c, int add) {
    int64_t cuts[2 * NTAPS + 2];
    int nc = 0;
    cuts[nc++] = 0;
    cuts[nc++] = n;
    for (int g = 0; g < NTAPS; g++) {
        const int64_t off = t0 + (int64_t)(g - 4) * d, a = -off, b = L - off;
        if (a > 0 && a < n) cuts[nc++] = a;
        if (b > 0 && b < n) cuts[nc++] = b;
    }
    for (int i = 1; i < nc; i++) /* insertion sort: at most 20 cuts */
        for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
            const int64_t tmp = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = tmp;
        }
    for (int q = 0; q + 1 < nc; q++) {
        const int64_t lo = cuts[q], hi = cuts[q + 1];
        if (hi <= lo) continue;
        const float *w[NTAPS];
        for (int g = 0; g < NTAPS; g++) {
            const int64_t at = t0 + (int64_t)(g - 4) * d + lo; /* x index of position lo */
            w[g] = (at >= 0 && at < L) ? xs + at : zeros; /* the whole piece is in, or out */
        }
        const float *MR_RESTRICT x0 = w[0], *MR_RESTRICT x1 = w[1], *MR_RESTRICT x2 = w[2];
        const float *MR_RESTRICT x3 = w[3], *MR_RESTRICT x4 = w[4], *MR_RESTRICT x5 = w[5];
        const float *MR_RESTRICT x6 = w[6], *MR_RESTRICT x7 = w[7], *MR_RESTRICT x8 = w[8];
        const float *MR_RESTRICT y0 = w[KIDX[k][0]], *MR_RESTRICT y1 = w[KIDX[k][1]];
        const float *MR_RESTRICT y2 = w[KIDX[k][2]];
        float *MR_RESTRICT cc = c + lo;
        const int64_t m = hi - lo;
        for (int64_t t = 0; t < m; t++) { /* `add` is the same for the whole loop: the compiler splits it */
            float s = -x4[t];
            s = s - x0[t];
            s = s - x1[t];
            s = s - x2[t];
            s = s - x3[t];
            s = s - x5[t];
            s = s - x6[t];
            s = s - x7[t];
            s = s - x8[t];
            const float g0 = y0[t] * 3.0f, g1 = y1[t] * 3.0f, g2 = y2[t] * 3.0f;
            const float v = s + ((g0 + g1) + g2);
            cc[t] = add ? cc[t] + v : v;
        }
    }
}

/* Bias-fit outputs of rows (see mr_fit_outputs), gamma-first order. */
MR_HOT static int MR_W(fit_rows)(const mr_plan *p, const float *rows, int64_t n_rows, int64_t dil,
                                 const int32_t *kernels, float *out, float *work) {
    const int64_t C = p->n_channels, L = p->length, T = tile_of(p), d = p->dilations[dil];
    float *zeros = work; /* T zeros: the taps outside the series */
    memset(zeros, 0, (size_t)T * sizeof(float));
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = rows + r * C * L;
        const int k = kernels[r];
        const int64_t comb = dil * NK + k;
        const int32_t *chans = p->chan_idx + p->comb_off[comb];
        for (int64_t t0 = 0; t0 < L; t0 += T) { /* channels summed a tile at a time, in cache */
            const int64_t n = min64(T, L - t0);
            for (int32_t j = 0; j < p->comb_nch[comb]; j++)
                MR_W(fit_term)(x + (int64_t)chans[j] * L, L, d, k, t0, n, zeros, out + r * L + t0, j > 0);
        }
    }
    return 0;
}

#if MR_VECTOR_EXT
#undef VF
#undef VI
#undef MR_MASKED_HEAD
#undef MR_MASKED_TAIL
#endif

#endif /* MR_BODY */
