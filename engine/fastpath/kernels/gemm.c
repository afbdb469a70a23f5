/* Many-row (prompt) matmuls of int4 weights: y [M, N] = x [M, K] W^T (+ b), the int8 way llama.cpp runs them.
 *
 * Each activation row is rounded to int8 with one fp32 scale per block of 32 inputs (as gemv.c does for one row,
 * and as llama.cpp rounds a batch to Q8_0 before its Q4_0 x Q8_0 GEMM), then the 4-bit weights are multiplied
 * with AVX-512 VNNI integer dot products (vpdpbusd: 64 byte products a cycle, twice the bf16 rate) and each
 * block's integer sum is scaled in fp32: y[m, n] = sum_g scale[n, g] dx[m, g] sum_k (q[n, k] - 8) xq[m, k]
 * (+ zero[n, g] dx[m, g] sum_k xq[m, k] where the weight has zeros).
 *
 * The weight is read in torch's CPU int4 layout (engine/fastpath/linear.py Int4; gemv.c's header describes it):
 * p [Npad/64, K, 32] uint8, sz [K/32, Npad, pairs] bf16. Each thread takes whole row blocks of 64 and repacks
 * one at a time into a per-thread panel (K x 64 bytes, in L2) where every 64-byte vector holds 16 rows x 4
 * inputs, vpdpbusd's operand order, with the block's scales as fp32; the panel is then reused by every
 * activation row (a tile of MR rows x 32 outputs keeps its sums in registers, the activation's 4 bytes
 * broadcast from memory). x is fp32 or bf16 [M, K] rows `ldx` elements apart; y bf16 or fp32 rows `ldy` apart.
 * isa: 0 plain C, 2 AVX-512 (F, BW, VL, VNNI, VBMI) where compiled in.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#define GEMM_MMAP 1
#include <pthread.h>
#include <sys/mman.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__AVX512VBMI__)
#define GEMM_AVX512 1
#include <immintrin.h>
#endif

#define G 32 /* inputs per group (one weight scale, one activation scale) */
#ifndef GEMM_MR
#define GEMM_MR 6 /* activation rows per register tile (x 32 outputs: 2 x MR int sums + 2 x MR fp32 sums) */
#endif

static inline float bf16f(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t to_bf16(float f) { /* round to nearest even (finite values) */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The kernel's buffers live as long as their thread and grow to the largest call (unmapping them after each call
 * lowered no peak: bench/README.md); a thread's are unmapped when it exits (a pthread key's destructor), so short-lived
 * callers leave nothing behind. They are mapped apart from malloc's heap, so that a long-lived block allocated
 * mid-prompt cannot sit at the heap's top and keep what is freed below it resident. Page-aligned. */
typedef struct {
    void *base;
    size_t size;
} Buffer;

typedef struct {
    Buffer acts, panel;
    int registered; /* with the exit destructor */
} Buffers;

static _Thread_local Buffers buffers;

static void buffer_free(Buffer *b) {
    if (!b->base)
        return;
#ifdef GEMM_MMAP
    munmap(b->base, b->size);
#else
    free(b->base);
#endif
    b->base = NULL;
    b->size = 0;
}

#ifdef GEMM_MMAP
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;

static void on_thread_exit(void *arg) {
    Buffers *own = arg;
    buffer_free(&own->acts);
    buffer_free(&own->panel);
    own->registered = 0;
}

static void make_exit_key(void) { exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0; }
#endif

static void *buffer_reserve(Buffer *b, size_t size) {
    if (size <= b->size)
        return b->base;
    buffer_free(b);
#ifdef GEMM_MMAP
    if (!buffers.registered) {
        pthread_once(&exit_once, make_exit_key);
        buffers.registered = exit_key_ok && pthread_setspecific(exit_key, &buffers) == 0;
    }
    size = (size + 4095) / 4096 * 4096;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        p = NULL;
#else
    size = (size + 4095) / 4096 * 4096;
    void *p = aligned_alloc(4096, size);
#endif
    b->base = p;
    b->size = p ? size : 0;
    return p;
}

/* The rounded activation: xq [M, K] int8, and per row and group dx (scale), xo = -8 sum(xq) (the weights' -8
 * folded into the integer sum), xs = dx sum(xq) (for the zeros); one buffer, kept by the calling thread. */
typedef struct {
    int8_t *xq;
    float *dx, *xs;
    int32_t *xo;
} Acts;

static _Thread_local Acts acts;

static int acts_reserve(int64_t m, int64_t k) {
    size_t nq = (size_t)((m * k + 63) / 64 * 64), ng = (size_t)(m * (k / G));
    char *p = buffer_reserve(&buffers.acts, nq + 3 * 4 * ng);
    if (!p)
        return -1;
    acts.xq = (int8_t *)p;
    acts.dx = (float *)(p + nq);
    acts.xs = acts.dx + ng;
    acts.xo = (int32_t *)(acts.xs + ng);
    return 0;
}

static inline float xat(const void *x, int bf16, int64_t i) {
    return bf16 ? bf16f(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

/* Row m's group g: amax / 127 as the scale, round half to even (what gemv.c and llama.cpp's quantize_row_q8_0 do). */
static void round_group_generic(const Acts *A, const void *x, int bf16, int64_t base, int64_t m, int64_t g, int64_t k) {
    float amax = 0.0f;
    for (int i = 0; i < G; i++)
        amax = fmaxf(amax, fabsf(xat(x, bf16, base + g * G + i)));
    float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < G; i++) {
        int v = (int)nearbyintf(xat(x, bf16, base + g * G + i) * id);
        A->xq[m * k + g * G + i] = (int8_t)v;
        sum += v;
    }
    int64_t at = m * (k / G) + g;
    A->dx[at] = d;
    A->xs[at] = d * (float)sum;
    A->xo[at] = -8 * sum;
}

#ifdef GEMM_AVX512
static inline __m512 load16(const void *x, int bf16, int64_t i) {
    if (bf16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i))), 16));
    return _mm512_loadu_ps((const float *)x + i);
}

static void round_group_avx512(const Acts *A, const void *x, int bf16, int64_t base, int64_t m, int64_t g, int64_t k) {
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 a = load16(x, bf16, base + g * G), b = load16(x, bf16, base + g * G + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(a, sign), _mm512_and_ps(b, sign)));
    float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    __m512 s = _mm512_set1_ps(id);
    __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, s)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, s));
    _mm_storeu_si128((__m128i *)(A->xq + m * k + g * G), _mm512_cvtsepi32_epi8(qa));
    _mm_storeu_si128((__m128i *)(A->xq + m * k + g * G + 16), _mm512_cvtsepi32_epi8(qb));
    int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    int64_t at = m * (k / G) + g;
    A->dx[at] = d;
    A->xs[at] = d * (float)sum;
    A->xo[at] = -8 * sum;
}
#endif

static void round_rows(const Acts *A, const void *x, int bf16, int64_t ldx, int64_t m0, int64_t m1, int64_t k, int isa) {
    for (int64_t m = m0; m < m1; m++)
        for (int64_t g = 0; g < k / G; g++) {
#ifdef GEMM_AVX512
            if (isa >= 2) {
                round_group_avx512(A, x, bf16, m * ldx, m, g, k);
                continue;
            }
#endif
            round_group_generic(A, x, bf16, m * ldx, m, g, k);
        }
    (void)isa;
}

/* One row block's panel: per group, 8 quads of inputs x 4 vectors of 16 rows x 4 bytes (w[16 v + r, 4 t + j]
 * at byte (t * 4 + v) * 64 + 4 r + j), then the group's 64 scales and 64 zeros as fp32. */
#define PANEL_GROUP_BYTES (G * 64)

typedef struct {
    uint8_t *w;
    float *sc, *ze;
} Panel;

static _Thread_local Panel panel; /* each thread of the team has its own */

static int panel_reserve(int64_t k) {
    size_t nw = (size_t)(k * 64), ns = sizeof(float) * (size_t)(k / G * 64); /* multiples of 64 bytes */
    uint8_t *p = buffer_reserve(&buffers.panel, nw + 2 * ns);
    if (!p)
        return -1;
    panel.w = p;
    panel.sc = (float *)(p + nw);
    panel.ze = (float *)(p + nw + ns);
    return 0;
}

static void pack_scales(const uint16_t *sz, int pairs, int64_t npad, int64_t b, int64_t k) {
    for (int64_t g = 0; g < k / G; g++) {
        const uint16_t *s = sz + (g * npad + b * 64) * pairs;
        for (int r = 0; r < 64; r++) {
            panel.sc[g * 64 + r] = bf16f(s[r * pairs]);
            panel.ze[g * 64 + r] = pairs == 2 ? bf16f(s[r * pairs + 1]) : 0.0f;
        }
    }
}

static void pack_generic(const uint8_t *p, int64_t b, int64_t k) {
    const uint8_t *src = p + b * 64 * (k / 2); /* [K, 32]: row j low nibble, row 32 + j high nibble */
    for (int64_t i = 0; i < k; i++) {
        int64_t g = i / G, t = (i % G) / 4, j = i % 4;
        for (int r = 0; r < 64; r++) {
            uint8_t q = r < 32 ? (src[i * 32 + r] & 15) : (src[i * 32 + r - 32] >> 4);
            panel.w[g * PANEL_GROUP_BYTES + (t * 4 + r / 16) * 64 + 4 * (r % 16) + j] = q;
        }
    }
}

#ifdef GEMM_AVX512
static void pack_avx512(const uint8_t *p, int64_t b, int64_t k) {
    /* gemv.c's gather: four inputs of 64 rows are 128 bytes (A: k, k+1; B: k+2, k+3); vpermt2b puts each of
     * 16 rows' four nibbles in one 32-bit lane. */
    const __m512i idx0 = _mm512_set_epi8(
        111, 79, 47, 15, 110, 78, 46, 14, 109, 77, 45, 13, 108, 76, 44, 12, 107, 75, 43, 11, 106, 74, 42, 10,
        105, 73, 41, 9, 104, 72, 40, 8, 103, 71, 39, 7, 102, 70, 38, 6, 101, 69, 37, 5, 100, 68, 36, 4, 99, 67,
        35, 3, 98, 66, 34, 2, 97, 65, 33, 1, 96, 64, 32, 0);
    const __m512i idx1 = _mm512_add_epi8(idx0, _mm512_set1_epi8(16));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const uint8_t *src = p + b * 64 * (k / 2);
    for (int64_t q = 0; q < k / 4; q++) {
        __m512i A = _mm512_loadu_si512(src + q * 128), B = _mm512_loadu_si512(src + q * 128 + 64);
        __m512i AL = _mm512_and_si512(A, m4), BL = _mm512_and_si512(B, m4);
        __m512i AH = _mm512_and_si512(_mm512_srli_epi16(A, 4), m4), BH = _mm512_and_si512(_mm512_srli_epi16(B, 4), m4);
        uint8_t *dst = panel.w + q * 256; /* (g * 8 + t) * 256 */
        _mm512_store_si512(dst, _mm512_permutex2var_epi8(AL, idx0, BL));
        _mm512_store_si512(dst + 64, _mm512_permutex2var_epi8(AL, idx1, BL));
        _mm512_store_si512(dst + 128, _mm512_permutex2var_epi8(AH, idx0, BH));
        _mm512_store_si512(dst + 192, _mm512_permutex2var_epi8(AH, idx1, BH));
    }
}

static inline void store_row16(void *y, int out_bf16, int64_t at, __m512 v, __mmask16 mask) {
    if (out_bf16) {
        __m512i u = _mm512_castps_si512(v);
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        u = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
        _mm256_mask_storeu_epi16((uint16_t *)y + at, mask, _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
    } else {
        _mm512_mask_storeu_ps((float *)y + at, mask, v);
    }
}

/* Rows m0..m0+MR-1 x outputs 16 v0 .. 16 v0 + 31 of the panel (row block b), over all K. */
static inline __attribute__((always_inline)) void tile_avx512(const Acts *A, int64_t m0, int64_t k, int v0, int zeros,
                                                              const uint16_t *bias, void *y, int out_bf16, int64_t ldy,
                                                              int64_t n0, int64_t n_out, const int MR) {
    const int64_t groups = k / G;
    __m512 f[GEMM_MR][2];
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++)
        f[m][0] = f[m][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        __m512i a[GEMM_MR][2];
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++)
            a[m][0] = a[m][1] = _mm512_set1_epi32(A->xo[(m0 + m) * groups + g]);
        const uint8_t *wg = panel.w + g * PANEL_GROUP_BYTES + v0 * 64;
        const int8_t *xg = A->xq + m0 * k + g * G;
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m512i w0 = _mm512_load_si512(wg + t * 256), w1 = _mm512_load_si512(wg + t * 256 + 64);
#pragma GCC unroll 8
            for (int m = 0; m < MR; m++) {
                int32_t x4;
                memcpy(&x4, xg + m * k + 4 * t, 4);
                __m512i xb = _mm512_set1_epi32(x4);
                a[m][0] = _mm512_dpbusd_epi32(a[m][0], w0, xb);
                a[m][1] = _mm512_dpbusd_epi32(a[m][1], w1, xb);
            }
        }
        __m512 s0 = _mm512_load_ps(panel.sc + g * 64 + 16 * v0), s1 = _mm512_load_ps(panel.sc + g * 64 + 16 * v0 + 16);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            __m512 d = _mm512_set1_ps(A->dx[(m0 + m) * groups + g]);
            f[m][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[m][0]), _mm512_mul_ps(s0, d), f[m][0]);
            f[m][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[m][1]), _mm512_mul_ps(s1, d), f[m][1]);
        }
        if (zeros) {
            __m512 z0 = _mm512_load_ps(panel.ze + g * 64 + 16 * v0), z1 = _mm512_load_ps(panel.ze + g * 64 + 16 * v0 + 16);
#pragma GCC unroll 8
            for (int m = 0; m < MR; m++) {
                __m512 xs = _mm512_set1_ps(A->xs[(m0 + m) * groups + g]);
                f[m][0] = _mm512_fmadd_ps(z0, xs, f[m][0]);
                f[m][1] = _mm512_fmadd_ps(z1, xs, f[m][1]);
            }
        }
    }
    for (int h = 0; h < 2; h++) {
        int64_t n = n0 + 16 * (v0 + h);
        if (n >= n_out)
            break;
        __mmask16 mask = n + 16 <= n_out ? (__mmask16)0xffff : (__mmask16)((1u << (n_out - n)) - 1);
        __m512 bv = bias ? _mm512_castsi512_ps(_mm512_slli_epi32(
                               _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, bias + n)), 16))
                         : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++)
            store_row16(y, out_bf16, (m0 + m) * ldy + n, _mm512_add_ps(f[m][h], bv), mask);
    }
}

static void tiles_avx512(const Acts *A, int64_t rows, int64_t k, int zeros, const uint16_t *bias, void *y, int out_bf16,
                         int64_t ldy, int64_t n0, int64_t n_out) {
    for (int v0 = 0; v0 < 4; v0 += 2) {
        if (n0 + 16 * v0 >= n_out)
            break;
        int64_t m = 0;
        for (; m + GEMM_MR <= rows; m += GEMM_MR)
            tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, GEMM_MR);
        switch (rows - m) { /* the last few rows */
        case 5: tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, 5); break;
        case 4: tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, 4); break;
        case 3: tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, 3); break;
        case 2: tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, 2); break;
        case 1: tile_avx512(A, m, k, v0, zeros, bias, y, out_bf16, ldy, n0, n_out, 1); break;
        default: break;
        }
    }
}
#endif

/* The same sums in plain C, in the same order (fp32 fma per group), from the same panel. */
static void tiles_generic(const Acts *A, int64_t rows, int64_t k, int zeros, const uint16_t *bias, void *y, int out_bf16,
                          int64_t ldy, int64_t n0, int64_t n_out) {
    const int64_t groups = k / G;
    for (int64_t m = 0; m < rows; m++)
        for (int r = 0; r < 64 && n0 + r < n_out; r++) {
            float f = 0.0f;
            for (int64_t g = 0; g < groups; g++) {
                int32_t sum = A->xo[m * groups + g];
                const uint8_t *wg = panel.w + g * PANEL_GROUP_BYTES + (r / 16) * 64 + 4 * (r % 16);
                for (int i = 0; i < G; i++)
                    sum += (int32_t)wg[(i / 4) * 256 + i % 4] * A->xq[m * k + g * G + i];
                f = fmaf((float)sum, panel.sc[g * 64 + r] * A->dx[m * groups + g], f);
                if (zeros)
                    f = fmaf(panel.ze[g * 64 + r], A->xs[m * groups + g], f);
            }
            f += bias ? bf16f(bias[n0 + r]) : 0.0f;
            if (out_bf16)
                ((uint16_t *)y)[m * ldy + n0 + r] = to_bf16(f);
            else
                ((float *)y)[m * ldy + n0 + r] = f;
        }
}

static void team_part(int64_t count, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    int t = omp_get_thread_num(), n = omp_get_num_threads();
#else
    int t = 0, n = 1;
#endif
    *lo = count * t / n;
    *hi = count * (t + 1) / n;
}

typedef struct {
    const uint8_t *p;
    const uint16_t *sz, *bias;
    void *y;
    int64_t ldy, n_out, npad, k, m_rows;
    int pairs, out_bf16, isa;
} Job;

/* Row blocks [b0, b1) of the weight for every activation row: 0, or 1 where the panel found no memory. */
static int row_blocks(const Job *j, const Acts *A, int64_t b0, int64_t b1) {
    if (b0 < b1 && panel_reserve(j->k))
        return 1;
    for (int64_t b = b0; b < b1 && b * 64 < j->n_out; b++) {
        pack_scales(j->sz, j->pairs, j->npad, b, j->k);
#ifdef GEMM_AVX512
        if (j->isa >= 2) {
            pack_avx512(j->p, b, j->k);
            tiles_avx512(A, j->m_rows, j->k, j->pairs == 2, j->bias, j->y, j->out_bf16, j->ldy, b * 64, j->n_out);
            continue;
        }
#endif
        pack_generic(j->p, b, j->k);
        tiles_generic(A, j->m_rows, j->k, j->pairs == 2, j->bias, j->y, j->out_bf16, j->ldy, b * 64, j->n_out);
    }
    return 0;
}

/* y [M, n_out] (bf16 when out_bf16, else fp32; rows ldy apart) = x W^T + b. Returns 0, or -1 on bad arguments
 * or no memory. The threads first round a share of the rows each, then take whole row blocks of the weight
 * (one thread: no parallel region at all, as gemv.c). */
int hearth_int4_gemm(const void *x, int x_bf16, int64_t m_rows, int64_t ldx, const uint8_t *p, const uint16_t *sz,
                     int pairs, const uint16_t *bias, void *y, int out_bf16, int64_t ldy, int64_t n_out, int64_t npad,
                     int64_t k, int n_threads, int isa) {
    if (npad % 64 || k % G || k <= 0 || m_rows <= 0 || (pairs != 1 && pairs != 2) || n_out > npad || ldx < k ||
        ldy < n_out || acts_reserve(m_rows, k))
        return -1;
    const Acts *A = &acts; /* the calling thread's: shared with the team */
    const Job job = {p, sz, bias, y, ldy, n_out, npad, k, m_rows, pairs, out_bf16, isa};
    int64_t blocks = npad / 64;
    if (n_threads > blocks)
        n_threads = (int)blocks;
    if (n_threads <= 1) {
        round_rows(A, x, x_bf16, ldx, 0, m_rows, k, isa);
        return row_blocks(&job, A, 0, blocks) ? -1 : 0;
    }
    int failed = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : failed)
    {
        int64_t lo, hi;
        team_part(m_rows, &lo, &hi);
        round_rows(A, x, x_bf16, ldx, lo, hi, k, isa);
#pragma omp barrier
        team_part(blocks, &lo, &hi);
        failed |= row_blocks(&job, A, lo, hi);
    }
    return failed ? -1 : 0;
}
