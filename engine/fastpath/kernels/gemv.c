/* One-row (decode) matmuls over Hearth's packed weights: y[n] = sum_k W[n, k] x[k] (+ b[n]).
 *
 * What llama.cpp does for one row (ggml/src/ggml-cpu/arch/x86/quants.c: quantize_row_q8_0/q8_1,
 * ggml_vec_dot_q4_1_q8_1, ggml_vec_dot_q8_0_q8_0; MIT licence, (c) the ggml authors): the activation row
 * is rounded to int8 with one fp32 scale per block of 32 inputs, then the weights are multiplied with
 * integer dot products (AVX-512 VNNI vpdpbusd here) and each block's integer sum is scaled in fp32.
 * The weights are read in the layouts torch's own kernels use, so there is no second copy of them:
 *
 * int4 (Int4 in engine/fastpath/linear.py, torch's CPU int4 layout): p [Npad, K/2] uint8 viewed as
 *   [Npad/64, K, 32]: for row block b and input k, byte j holds row 64b+j in its low nibble and row
 *   64b+32+j in its high one; sz [K/32, Npad, 2] bf16 is (scale, zero) with w = (q - 8) * scale + zero,
 *   or sz [K/32, Npad, 1] the scales alone where every zero is 0 (a symmetric file type: Q4_0).
 * int8 (Int8): q [N, K] int8 row-major, s [N] bf16 row scales, w = q * s.
 *
 * x is fp32 or bf16 [K] (K a multiple of 32), y fp32 [N], b bf16 [N] or NULL. Plain C, no torch headers;
 * OpenMP splits rows between threads (the process's one libgomp: torch's). isa: 0 generic C, 1 AVX2 + FMA
 * (llama.cpp's AVX2 dot products: vpmaddubsw + vpmaddwd), 2 AVX-512 (F, BW, VL, VNNI, VBMI), each used only
 * when compiled in (hearth_gemv_isa() is the best one; a smaller isa runs the smaller path).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__AVX512VBMI__)
#define HEARTH_AVX512 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define HEARTH_AVX2 1
#include <immintrin.h>
#endif

#define GROUP 32
/* Software prefetches (bench/README.md has the figures): the int8 kernel's four row streams ran at 7.5 GB/s
 * from memory without them and 11 GB/s with them (one thread); the int4 kernel's one packed stream is
 * prefetched well by the hardware (256-4096 bytes ahead were all slower), its scales a few groups ahead.
 * Prefetching past the end of a tensor is harmless (a prefetch never faults). -D overrides for experiments. */
#ifndef PF4
#define PF4 0 /* int4: bytes ahead in the packed stream (0: none) */
#endif
#ifndef PF4_HINT
#define PF4_HINT _MM_HINT_T0
#endif
#ifndef SZ_AHEAD
#define SZ_AHEAD 2 /* int4: groups ahead whose scales are prefetched */
#endif
#ifndef INT4_PAIRED
#define INT4_PAIRED 1 /* int4: two row blocks side by side where rows are long (two streams in flight) */
#endif
#ifndef PAIRED_FROM_K
#define PAIRED_FROM_K 2048 /* from memory at two threads 7 % faster on the 1 B shapes, slower on K = 576 */
#endif
#ifndef PF8
#define PF8 2 /* int8: blocks of 4 rows ahead */
#endif

int hearth_gemv_isa(void) {
#if defined(HEARTH_AVX512)
    return 2;
#elif defined(HEARTH_AVX2)
    return 1;
#else
    return 0;
#endif
}

int hearth_gemv_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static inline float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The activation row as int8 blocks: xq [K], one scale per block dx [K/32], xs [K/32] = dx * sum(xq). */
typedef struct {
    int8_t *xq;
    float *dx;
    float *xs;
    float *dlane; /* [K/4]: the scale of the block each 4-input lane of a vpdpbusd falls in */
    float total;  /* sum over blocks of dx * sum(xq) */
    int64_t cap;
} Quantized;

static _Thread_local Quantized tq;

static int reserve(int64_t k) {
    if (k <= tq.cap)
        return 0;
    free(tq.xq);
    free(tq.dx);
    free(tq.xs);
    free(tq.dlane);
    tq.xq = aligned_alloc(64, (size_t)((k + 63) / 64 * 64));
    tq.dx = malloc(sizeof(float) * (size_t)(k / GROUP + 1));
    tq.xs = malloc(sizeof(float) * (size_t)(k / GROUP + 1));
    tq.dlane = malloc(sizeof(float) * (size_t)(k / 4 + 16));
    if (!tq.xq || !tq.dx || !tq.xs || !tq.dlane) {
        tq.cap = 0;
        return -1;
    }
    tq.cap = k;
    return 0;
}

static inline float x_at(const void *x, int bf16, int64_t i) {
    return bf16 ? bf16_to_f32(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

/* Block g rounded: its scale d and the sum of its int8 values; returns d * sum (what the block adds to total). */
static inline float block_done(int64_t g, float d, int sum) {
    tq.dx[g] = d;
    tq.xs[g] = d * (float)sum;
    return tq.xs[g];
}

/* Every block rounded: each 4-input lane's block scale (the int8 kernel's), and the total. */
static void lanes_done(int64_t k, float total) {
    for (int64_t l = 0; l < k / 4; l++)
        tq.dlane[l] = tq.dx[l * 4 / GROUP];
    tq.total = total;
}

static void quantize_generic(const void *x, int bf16, int64_t k) {
    float total = 0.0f;
    for (int64_t g = 0; g < k / GROUP; g++) {
        float amax = 0.0f;
        for (int i = 0; i < GROUP; i++)
            amax = fmaxf(amax, fabsf(x_at(x, bf16, g * GROUP + i)));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < GROUP; i++) {
            int v = (int)nearbyintf(x_at(x, bf16, g * GROUP + i) * id);
            tq.xq[g * GROUP + i] = (int8_t)v;
            sum += v;
        }
        total += block_done(g, d, sum);
    }
    lanes_done(k, total);
}

#ifdef HEARTH_AVX512
static inline __m512 load16(const void *x, int bf16, int64_t i) {
    if (bf16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_loadu_ps((const float *)x + i);
}

static void quantize_avx512(const void *x, int bf16, int64_t k) {
    float total = 0.0f;
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t g = 0; g < k / GROUP; g++) {
        __m512 a = load16(x, bf16, g * GROUP), b = load16(x, bf16, g * GROUP + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(a, sign), _mm512_and_ps(b, sign)));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        __m512 s = _mm512_set1_ps(id);
        /* cvtps rounds to nearest even (MXCSR's default), as nearbyintf does */
        __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, s)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, s));
        _mm_storeu_si128((__m128i *)(tq.xq + g * GROUP), _mm512_cvtsepi32_epi8(qa));
        _mm_storeu_si128((__m128i *)(tq.xq + g * GROUP + 16), _mm512_cvtsepi32_epi8(qb));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
        total += block_done(g, d, sum);
    }
    lanes_done(k, total);
}
#endif

#ifdef HEARTH_AVX2
static inline __m256 load8(const void *x, int bf16, int64_t i) {
    if (bf16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)x + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_loadu_ps((const float *)x + i);
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

static inline int hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The same values as quantize_generic (the same scalar d and 1/d, one fp32 product, round to nearest even). */
static void quantize_avx2(const void *x, int bf16, int64_t k) {
    float total = 0.0f;
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); /* undo the packs' 128-bit lane interleave */
    for (int64_t g = 0; g < k / GROUP; g++) {
        __m256 v[4];
        for (int i = 0; i < 4; i++)
            v[i] = load8(x, bf16, g * GROUP + 8 * i);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], sign), _mm256_and_ps(v[1], sign)),
                                 _mm256_max_ps(_mm256_and_ps(v[2], sign), _mm256_and_ps(v[3], sign)));
        float d = hmax8(m) / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        __m256 s = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], s)); /* MXCSR's round to nearest even */
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(tq.xq + g * GROUP), _mm256_permutevar8x32_epi32(bytes, order));
        int sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        total += block_done(g, d, sum);
    }
    lanes_done(k, total);
}
#endif

/* ---- int4 ------------------------------------------------------------------------------------------- */

/* 64 rows of block b (out[64]) over all K inputs, plain C. */
static void int4_block_generic(const Quantized *Q, const uint8_t *P, const uint16_t *sz, int pairs, int64_t npad,
                               int64_t row0, int64_t k, float *out) {
    for (int r = 0; r < 64; r++)
        out[r] = 0.0f;
    for (int64_t g = 0; g < k / GROUP; g++) {
        int32_t acc[64] = {0};
        for (int i = 0; i < GROUP; i++) {
            const uint8_t *row = P + (g * GROUP + i) * 32;
            int32_t xv = Q->xq[g * GROUP + i];
            for (int j = 0; j < 32; j++) {
                acc[j] += (row[j] & 15) * xv;
                acc[j + 32] += (row[j] >> 4) * xv;
            }
        }
        const uint16_t *s = sz + (g * npad + row0) * pairs;
        float dx = Q->dx[g], xs = Q->xs[g];
        for (int r = 0; r < 64; r++) {
            float scale = bf16_to_f32(s[pairs * r]), zero = pairs == 2 ? bf16_to_f32(s[2 * r + 1]) : 0.0f;
            out[r] += scale * ((float)acc[r] * dx - 8.0f * xs) + zero * xs;
        }
    }
}

#ifdef HEARTH_AVX512
/* NB row blocks of 64 side by side (NB streams of packed bytes in flight). */
static inline __attribute__((always_inline)) void int4_blocks_avx512(const Quantized *Q, const uint8_t *P,
                                                                     const uint16_t *sz, int pairs, int64_t npad,
                                                                     int64_t row0, int64_t k, float *out,
                                                                     const int NB) {
    /* Four inputs k..k+3 of 64 rows are 128 bytes (two vectors A: k, k+1 and B: k+2, k+3, 32 bytes each).
     * vpermt2b gathers, for 16 rows, each row's four nibbles into one 32-bit lane, so vpdpbusd can sum
     * q[row, k..k+3] * xq[k..k+3] into that row's lane. */
    const __m512i idx0 = _mm512_set_epi8(
        111, 79, 47, 15, 110, 78, 46, 14, 109, 77, 45, 13, 108, 76, 44, 12, 107, 75, 43, 11, 106, 74, 42, 10,
        105, 73, 41, 9, 104, 72, 40, 8, 103, 71, 39, 7, 102, 70, 38, 6, 101, 69, 37, 5, 100, 68, 36, 4, 99, 67,
        35, 3, 98, 66, 34, 2, 97, 65, 33, 1, 96, 64, 32, 0);
    const __m512i idx1 = _mm512_add_epi8(idx0, _mm512_set1_epi8(16));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t stride = 64 * (k / 2); /* bytes from one row block to the next */
    __m512 o[8];
#pragma GCC unroll 8
    for (int r = 0; r < 4 * NB; r++)
        o[r] = _mm512_setzero_ps();
    for (int64_t g = 0; g < k / GROUP; g++) {
        __m512i a[8];
#pragma GCC unroll 8
        for (int r = 0; r < 4 * NB; r++)
            a[r] = _mm512_setzero_si512();
        const uint8_t *pg = P + g * GROUP * 32;
        const int8_t *xg = Q->xq + g * GROUP;
        for (int line = 0; line < 2 * pairs * NB; line++)
            _mm_prefetch((const char *)(sz + ((g + SZ_AHEAD) * npad + row0) * pairs + 32 * line), _MM_HINT_T0);
        for (int t = 0; t < GROUP / 4; t++) {
            int32_t x4;
            memcpy(&x4, xg + 4 * t, 4);
            __m512i xb = _mm512_set1_epi32(x4);
#pragma GCC unroll 2
            for (int b = 0; b < NB; b++) {
                const uint8_t *pt = pg + b * stride + t * 128;
                __m512i A = _mm512_loadu_si512(pt), B = _mm512_loadu_si512(pt + 64);
#if PF4 > 0
                _mm_prefetch((const char *)(pt + PF4), PF4_HINT);
                _mm_prefetch((const char *)(pt + PF4 + 64), PF4_HINT);
#endif
                __m512i AL = _mm512_and_si512(A, m4), BL = _mm512_and_si512(B, m4);
                __m512i AH = _mm512_and_si512(_mm512_srli_epi16(A, 4), m4);
                __m512i BH = _mm512_and_si512(_mm512_srli_epi16(B, 4), m4);
                a[4 * b] = _mm512_dpbusd_epi32(a[4 * b], _mm512_permutex2var_epi8(AL, idx0, BL), xb);
                a[4 * b + 1] = _mm512_dpbusd_epi32(a[4 * b + 1], _mm512_permutex2var_epi8(AL, idx1, BL), xb);
                a[4 * b + 2] = _mm512_dpbusd_epi32(a[4 * b + 2], _mm512_permutex2var_epi8(AH, idx0, BH), xb);
                a[4 * b + 3] = _mm512_dpbusd_epi32(a[4 * b + 3], _mm512_permutex2var_epi8(AH, idx1, BH), xb);
            }
        }
        /* sum_k w x = dx * (scale * (sum q xq - 8 sum xq) + zero * sum xq); the NB blocks' rows are adjacent in sz.
         * pairs 2: (scale, zero) per row; 1: scales only (a symmetric weight, e.g. Q4_0: every zero is 0) */
        const uint16_t *s = sz + (g * npad + row0) * pairs;
        const __m512 dx = _mm512_set1_ps(Q->dx[g]), xs = _mm512_set1_ps(Q->xs[g]);
        const __m512 xs8 = _mm512_set1_ps(8.0f * Q->xs[g]);
#pragma GCC unroll 8
        for (int r = 0; r < 4 * NB; r++) {
            __m512 t = _mm512_fmsub_ps(_mm512_cvtepi32_ps(a[r]), dx, xs8);
            if (pairs == 2) {
                __m512i v = _mm512_loadu_si512(s + 32 * r);
                o[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), t, o[r]);
                o[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi16)), xs, o[r]);
            } else {
                __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + 16 * r)));
                o[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), t, o[r]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 4 * NB; r++)
        _mm512_storeu_ps(out + 16 * r, o[r]);
}

static void int4_block_avx512(const Quantized *Q, const uint8_t *P, const uint16_t *sz, int pairs, int64_t npad,
                              int64_t row0, int64_t k, float *out) {
    int4_blocks_avx512(Q, P, sz, pairs, npad, row0, k, out, 1);
}

static void int4_block2_avx512(const Quantized *Q, const uint8_t *P, const uint16_t *sz, int pairs, int64_t npad,
                               int64_t row0, int64_t k, float *out) {
    int4_blocks_avx512(Q, P, sz, pairs, npad, row0, k, out, 2);
}
#endif

#ifdef HEARTH_AVX2
/* 64 rows of block b over all K inputs with AVX2 (llama.cpp's Q4 x Q8 dot product: vpmaddubsw multiplies
 * unsigned nibbles 0..15 by the signed activation bytes, pairs summed in int16, vpmaddwd widens to int32).
 * Four inputs k..k+3 of 64 rows are 128 bytes R0..R3 (32 bytes each, byte j: row j low nibble, row 32 + j
 * high). Two rounds of unpacks (bytes, then 16-bit pairs) transpose them so each 32-bit lane holds one row's
 * four bytes: T[m] lanes 0-3 are rows 4m..4m+3, lanes 4-7 rows 16+4m..16+4m+3 (the unpacks stay inside each
 * 128-bit half). The int16 sums of a whole group fit: 16 products of at most 15 * 127 are 30480 < 32767. */
static void int4_block_avx2(const Quantized *Q, const uint8_t *P, const uint16_t *sz, int pairs, int64_t npad,
                            int64_t row0, int64_t k, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const __m256i hi16 = _mm256_set1_epi32((int)0xffff0000u);
    __m256 o[8]; /* rows 8r..8r+7 */
    for (int r = 0; r < 8; r++)
        o[r] = _mm256_setzero_ps();
    for (int64_t g = 0; g < k / GROUP; g++) {
        __m256i a[8]; /* int16 pair sums: a[m] low nibbles of T[m], a[4 + m] high nibbles */
        for (int r = 0; r < 8; r++)
            a[r] = _mm256_setzero_si256();
        const uint8_t *pg = P + g * GROUP * 32;
        const int8_t *xg = Q->xq + g * GROUP;
        for (int line = 0; line < pairs * 2; line++)
            _mm_prefetch((const char *)(sz + ((g + SZ_AHEAD) * npad + row0) * pairs + 32 * line), _MM_HINT_T0);
        for (int t = 0; t < GROUP / 4; t++) {
            int32_t x4;
            memcpy(&x4, xg + 4 * t, 4);
            const __m256i xb = _mm256_set1_epi32(x4);
            const uint8_t *pt = pg + t * 128;
            __m256i R0 = _mm256_loadu_si256((const __m256i *)pt), R1 = _mm256_loadu_si256((const __m256i *)(pt + 32));
            __m256i R2 = _mm256_loadu_si256((const __m256i *)(pt + 64)), R3 = _mm256_loadu_si256((const __m256i *)(pt + 96));
            for (int half = 0; half < 2; half++) { /* bytes 0-7 (+16) of each half, then 8-15 (+16) */
                __m256i p01 = half ? _mm256_unpackhi_epi8(R0, R1) : _mm256_unpacklo_epi8(R0, R1);
                __m256i p23 = half ? _mm256_unpackhi_epi8(R2, R3) : _mm256_unpacklo_epi8(R2, R3);
                __m256i T0 = _mm256_unpacklo_epi16(p01, p23), T1 = _mm256_unpackhi_epi16(p01, p23);
                const int m = 2 * half;
                a[m] = _mm256_add_epi16(a[m], _mm256_maddubs_epi16(_mm256_and_si256(T0, m4), xb));
                a[m + 1] = _mm256_add_epi16(a[m + 1], _mm256_maddubs_epi16(_mm256_and_si256(T1, m4), xb));
                a[m + 4] = _mm256_add_epi16(
                    a[m + 4], _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(T0, 4), m4), xb));
                a[m + 5] = _mm256_add_epi16(
                    a[m + 5], _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(T1, 4), m4), xb));
            }
        }
        /* int32 row sums in row order: rows 8r..8r+7 from the low or high 128-bit halves of two T's */
        __m256i w[8];
        for (int r = 0; r < 8; r++)
            w[r] = _mm256_madd_epi16(a[r], ones);
        __m256i rows[8];
        for (int h = 0; h < 2; h++) { /* h 0: low nibbles (rows 0-31), 1: high (rows 32-63) */
            __m256i *wh = w + 4 * h, *rh = rows + 4 * h;
            rh[0] = _mm256_permute2x128_si256(wh[0], wh[1], 0x20); /* rows 0-7 */
            rh[1] = _mm256_permute2x128_si256(wh[2], wh[3], 0x20); /* rows 8-15 */
            rh[2] = _mm256_permute2x128_si256(wh[0], wh[1], 0x31); /* rows 16-23 */
            rh[3] = _mm256_permute2x128_si256(wh[2], wh[3], 0x31); /* rows 24-31 */
        }
        /* sum_k w x = dx * (scale * (sum q xq - 8 sum xq) + zero * sum xq), as the AVX-512 path */
        const uint16_t *s = sz + (g * npad + row0) * pairs;
        const __m256 dx = _mm256_set1_ps(Q->dx[g]), xs = _mm256_set1_ps(Q->xs[g]);
        const __m256 xs8 = _mm256_set1_ps(8.0f * Q->xs[g]);
        for (int r = 0; r < 8; r++) {
            __m256 t = _mm256_fmsub_ps(_mm256_cvtepi32_ps(rows[r]), dx, xs8);
            if (pairs == 2) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(s + 16 * r));
                o[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), t, o[r]);
                o[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, hi16)), xs, o[r]);
            } else {
                __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 8 * r)));
                o[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), t, o[r]);
            }
        }
    }
    for (int r = 0; r < 8; r++)
        _mm256_storeu_ps(out + 8 * r, o[r]);
}
#endif

static void int4_blocks(const Quantized *Q, const uint8_t *p, const uint16_t *sz, int pairs, const uint16_t *bias,
                        float *y, int64_t n_out, int64_t npad, int64_t k, int64_t b0, int64_t b1, int isa) {
    float tmp[64];
    for (int64_t b = b0; b < b1; b++) {
        int64_t row0 = b * 64;
        float *out = row0 + 64 <= n_out ? y + row0 : tmp;
        const uint8_t *P = p + row0 * (k / 2);
#ifdef HEARTH_AVX512
#if INT4_PAIRED
        if (isa >= 2 && k >= PAIRED_FROM_K && b + 1 < b1 && row0 + 128 <= n_out) { /* two whole blocks at once */
            int4_block2_avx512(Q, P, sz, pairs, npad, row0, k, y + row0);
            if (bias)
                for (int64_t r = 0; r < 128; r++)
                    y[row0 + r] += bf16_to_f32(bias[row0 + r]);
            b++;
            continue;
        }
#endif
        if (isa >= 2)
            int4_block_avx512(Q, P, sz, pairs, npad, row0, k, out);
        else
#endif
#ifdef HEARTH_AVX2
        if (isa == 1)
            int4_block_avx2(Q, P, sz, pairs, npad, row0, k, out);
        else
#endif
            int4_block_generic(Q, P, sz, pairs, npad, row0, k, out);
        int64_t rows = n_out - row0 < 64 ? n_out - row0 : 64;
        if (out == tmp)
            memcpy(y + row0, tmp, sizeof(float) * (size_t)rows);
        if (bias)
            for (int64_t r = 0; r < rows; r++)
                y[row0 + r] += bf16_to_f32(bias[row0 + r]);
    }
}

static int quantize(const void *x, int bf16, int64_t k, int isa) {
    if (k % GROUP || reserve(k))
        return -1;
#ifdef HEARTH_AVX512
    if (isa >= 2) {
        quantize_avx512(x, bf16, k);
        return 0;
    }
#endif
#ifdef HEARTH_AVX2
    if (isa == 1) {
        quantize_avx2(x, bf16, k);
        return 0;
    }
#endif
    (void)isa;
    quantize_generic(x, bf16, k);
    return 0;
}

/* Inside a parallel region: this thread's even share [*lo, *hi) of [0, count). */
static void team_part(int64_t count, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    int t = omp_get_thread_num(), n = omp_get_num_threads();
#else
    int t = 0, n = 1;
#endif
    *lo = count * t / n;
    *hi = count * (t + 1) / n;
}

/* The activation is quantized on the calling thread; the thread-local buffer is shared with the team. */
int hearth_int4_gemv(const void *x, int x_bf16, const uint8_t *p, const uint16_t *sz, int pairs, const uint16_t *bias,
                     float *y, int64_t n_out, int64_t npad, int64_t k, int n_threads, int isa) {
    if (npad % 64 || (pairs != 1 && pairs != 2) || quantize(x, x_bf16, k, isa))
        return -1;
    const Quantized *Q = &tq; /* this thread's: the team's threads have their own tq */
    int64_t blocks = npad / 64;
    if (n_threads > blocks)
        n_threads = (int)blocks;
    if (n_threads <= 1) {
        int4_blocks(Q, p, sz, pairs, bias, y, n_out, npad, k, 0, blocks, isa);
        return 0;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int64_t lo, hi;
        team_part(blocks, &lo, &hi);
        int4_blocks(Q, p, sz, pairs, bias, y, n_out, npad, k, lo, hi, isa);
    }
    return 0;
}

/* ---- int8 ------------------------------------------------------------------------------------------- */

static void int8_rows_generic(const Quantized *Q, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y, int64_t k,
                              int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; n++) {
        const int8_t *row = q + n * k;
        float acc = 0.0f;
        for (int64_t g = 0; g < k / GROUP; g++) {
            int32_t sum = 0;
            for (int i = 0; i < GROUP; i++)
                sum += (int32_t)row[g * GROUP + i] * Q->xq[g * GROUP + i];
            acc += (float)sum * Q->dx[g];
        }
        y[n] = acc * bf16_to_f32(s[n]) + (bias ? bf16_to_f32(bias[n]) : 0.0f);
    }
}

#ifdef HEARTH_AVX512
/* vpdpbusd multiplies unsigned by signed bytes: the weights are flipped to q + 128 (xor 0x80) and
 * 128 * sum over blocks of dx * sum(xq) taken off at the end (Q->total). */
static void int8_rows_avx512(const Quantized *Q, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y, int64_t k,
                             int64_t r0, int64_t r1) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int64_t full = k / 64;
    const int tail = (k % 64) != 0; /* 32 inputs left: the low half of a vector */
    const __mmask64 tail_bytes = 0xffffffffull;
    const float off = 128.0f * Q->total;
    int64_t n = r0;
#define HEARTH_DOT(acc, w, xv, dv)                                                                             \
    acc = _mm512_fmadd_ps(                                                                                     \
        _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(w, flip), xv)), dv, acc)
#define FULL(ptr) _mm512_loadu_si512(ptr)
#define TAIL(ptr) _mm512_maskz_loadu_epi8(tail_bytes, ptr)
    for (; n + 4 <= r1; n += 4) {
        const int8_t *w0 = q + n * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t c = 0; c < full; c++) {
            __m512i xv = _mm512_load_si512(Q->xq + 64 * c);
            __m512 dv = _mm512_loadu_ps(Q->dlane + 16 * c);
#if PF8 > 0
            for (int j = 0; j < 4; j++) /* the rows PF8 blocks of 4 ahead */
                _mm_prefetch((const char *)(w0 + PF8 * 4 * k + 256 * c + 64 * j), _MM_HINT_T0);
#endif
            HEARTH_DOT(c0, FULL(w0 + 64 * c), xv, dv);
            HEARTH_DOT(c1, FULL(w1 + 64 * c), xv, dv);
            HEARTH_DOT(c2, FULL(w2 + 64 * c), xv, dv);
            HEARTH_DOT(c3, FULL(w3 + 64 * c), xv, dv);
        }
        if (tail) {
            __m512i xv = _mm512_maskz_loadu_epi8(tail_bytes, Q->xq + 64 * full);
            __m512 dv = _mm512_maskz_loadu_ps(0xff, Q->dlane + 16 * full);
            HEARTH_DOT(c0, TAIL(w0 + 64 * full), xv, dv);
            HEARTH_DOT(c1, TAIL(w1 + 64 * full), xv, dv);
            HEARTH_DOT(c2, TAIL(w2 + 64 * full), xv, dv);
            HEARTH_DOT(c3, TAIL(w3 + 64 * full), xv, dv);
        }
        y[n] = (_mm512_reduce_add_ps(c0) - off) * bf16_to_f32(s[n]);
        y[n + 1] = (_mm512_reduce_add_ps(c1) - off) * bf16_to_f32(s[n + 1]);
        y[n + 2] = (_mm512_reduce_add_ps(c2) - off) * bf16_to_f32(s[n + 2]);
        y[n + 3] = (_mm512_reduce_add_ps(c3) - off) * bf16_to_f32(s[n + 3]);
    }
    for (; n < r1; n++) {
        const int8_t *w0 = q + n * k;
        __m512 c0 = _mm512_setzero_ps();
        for (int64_t c = 0; c < full; c++) {
            __m512i xv = _mm512_load_si512(Q->xq + 64 * c);
            HEARTH_DOT(c0, FULL(w0 + 64 * c), xv, _mm512_loadu_ps(Q->dlane + 16 * c));
        }
        if (tail) {
            __m512i xv = _mm512_maskz_loadu_epi8(tail_bytes, Q->xq + 64 * full);
            HEARTH_DOT(c0, TAIL(w0 + 64 * full), xv, _mm512_maskz_loadu_ps(0xff, Q->dlane + 16 * full));
        }
        y[n] = (_mm512_reduce_add_ps(c0) - off) * bf16_to_f32(s[n]);
    }
#undef HEARTH_DOT
#undef FULL
#undef TAIL
    if (bias)
        for (n = r0; n < r1; n++)
            y[n] += bf16_to_f32(bias[n]);
}
#endif

#ifdef HEARTH_AVX2
/* llama.cpp's ggml_vec_dot_q8_0_q8_0 on AVX2: vpmaddubsw(|w|, x with w's sign) (at most 2 * 128 * 127 < 32767,
 * so a -128 weight is right too), vpmaddwd to int32, one fp32 multiply-add by the block's dx; 4 rows share
 * each activation block. */
static void int8_rows_avx2(const Quantized *Q, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y,
                           int64_t k, int64_t r0, int64_t r1) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t blocks = k / GROUP;
    int64_t n = r0;
#define HEARTH_DOT(acc, wp, xv, dv)                                                                            \
    do {                                                                                                       \
        __m256i w_ = _mm256_loadu_si256((const __m256i *)(wp));                                                \
        __m256i p_ = _mm256_maddubs_epi16(_mm256_sign_epi8(w_, w_), _mm256_sign_epi8(xv, w_));                 \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p_, ones)), dv, acc);                       \
    } while (0)
    for (; n + 4 <= r1; n += 4) {
        const int8_t *w0 = q + n * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t g = 0; g < blocks; g++) {
            __m256i xv = _mm256_load_si256((const __m256i *)(Q->xq + GROUP * g));
            __m256 dv = _mm256_broadcast_ss(Q->dx + g);
#if PF8 > 0
            for (int j = 0; j < 2; j++) /* the 4 rows PF8 blocks of 4 ahead (adjacent): 128 bytes a step */
                _mm_prefetch((const char *)(w0 + PF8 * 4 * k + 128 * g + 64 * j), _MM_HINT_T0);
#endif
            HEARTH_DOT(c0, w0 + GROUP * g, xv, dv);
            HEARTH_DOT(c1, w1 + GROUP * g, xv, dv);
            HEARTH_DOT(c2, w2 + GROUP * g, xv, dv);
            HEARTH_DOT(c3, w3 + GROUP * g, xv, dv);
        }
        y[n] = hsum8(c0) * bf16_to_f32(s[n]);
        y[n + 1] = hsum8(c1) * bf16_to_f32(s[n + 1]);
        y[n + 2] = hsum8(c2) * bf16_to_f32(s[n + 2]);
        y[n + 3] = hsum8(c3) * bf16_to_f32(s[n + 3]);
    }
    for (; n < r1; n++) {
        const int8_t *w0 = q + n * k;
        __m256 c0 = _mm256_setzero_ps();
        for (int64_t g = 0; g < blocks; g++) {
            __m256i xv = _mm256_load_si256((const __m256i *)(Q->xq + GROUP * g));
            HEARTH_DOT(c0, w0 + GROUP * g, xv, _mm256_broadcast_ss(Q->dx + g));
        }
        y[n] = hsum8(c0) * bf16_to_f32(s[n]);
    }
#undef HEARTH_DOT
    if (bias)
        for (n = r0; n < r1; n++)
            y[n] += bf16_to_f32(bias[n]);
}
#endif

static void int8_rows(const Quantized *Q, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y, int64_t k, int64_t r0,
                      int64_t r1, int isa) {
#ifdef HEARTH_AVX512
    if (isa >= 2) {
        int8_rows_avx512(Q, q, s, bias, y, k, r0, r1);
        return;
    }
#endif
#ifdef HEARTH_AVX2
    if (isa == 1) {
        int8_rows_avx2(Q, q, s, bias, y, k, r0, r1);
        return;
    }
#endif
    (void)isa;
    int8_rows_generic(Q, q, s, bias, y, k, r0, r1);
}

int hearth_int8_gemv(const void *x, int x_bf16, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y,
                     int64_t n_out, int64_t k, int n_threads, int isa) {
    if (quantize(x, x_bf16, k, isa))
        return -1;
    const Quantized *Q = &tq; /* this thread's: the team's threads have their own tq */
    int64_t chunks = (n_out + 15) / 16; /* rows handed out 16 at a time */
    if (n_threads > chunks)
        n_threads = (int)chunks;
    if (n_threads <= 1) {
        int8_rows(Q, q, s, bias, y, k, 0, n_out, isa);
        return 0;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int64_t lo, hi;
        team_part(chunks, &lo, &hi);
        lo *= 16;
        hi = hi * 16 < n_out ? hi * 16 : n_out;
        int8_rows(Q, q, s, bias, y, k, lo, hi, isa);
    }
    return 0;
}

/* fp32 -> bf16, round to nearest even (finite values) */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- many rows, one at a time (isa 1) ------------------------------------------------------------------ */

/* hearth_int4_gemm's arguments (gemm.c), each row on the one-row kernel: gemm.c has no AVX2 code (its plain C was
 * 25x slower than torch's AVX2 int4 kernel), while the one-row AVX2 kernel row by row is faster than torch's AVX2
 * kernel on prompts, and right where torch's is not: torch packs int4 for its AVX2 and plain kernels in another
 * layout than the AVX-512 one linear.Int4 keeps (bench/README.md). Each row is rounded to int8 per 32, as gemm.c
 * rounds it. y: fp32 or bf16 (round to nearest even) rows ldy apart. */
int hearth_int4_gemv_rows(const void *x, int x_bf16, int64_t m_rows, int64_t ldx, const uint8_t *p, const uint16_t *sz,
                          int pairs, const uint16_t *bias, void *y, int out_bf16, int64_t ldy, int64_t n_out,
                          int64_t npad, int64_t k, int n_threads, int isa) {
    if (m_rows <= 0 || n_out > npad || ldx < k || ldy < n_out)
        return -1;
    float *row = out_bf16 ? malloc(sizeof(float) * (size_t)n_out) : NULL;
    if (out_bf16 && !row)
        return -1;
    int rc = 0;
    for (int64_t i = 0; i < m_rows && !rc; i++) {
        const void *xi = x_bf16 ? (const void *)((const uint16_t *)x + i * ldx) : (const void *)((const float *)x + i * ldx);
        float *yi = out_bf16 ? row : (float *)y + i * ldy;
        rc = hearth_int4_gemv(xi, x_bf16, p, sz, pairs, bias, yi, n_out, npad, k, n_threads, isa);
        if (!rc && out_bf16)
            for (int64_t n = 0; n < n_out; n++)
                ((uint16_t *)y)[i * ldy + n] = f32_to_bf16(row[n]);
    }
    free(row);
    return rc;
}
