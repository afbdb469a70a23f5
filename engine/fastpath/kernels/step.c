/* One token through every decoder layer, in C: what LeanForward.layer (engine/fastpath/forward.py) does for one
 * row, op for op, with the matmuls on gemv.c's kernels.
 *
 * Why: a decode step is ~20 small torch ops per layer around four matmuls. Each op is a dispatch from Python
 * (~2.5 us) on data the weights have just pushed out of the caches, so on 2 threads the small ops took as long
 * as the matmuls on the default model (bench/README.md). Here they are plain loops over a few thousand floats.
 * forward.py stays the reference: the tests check this file against it for every family the fast path runs.
 *
 * Per layer, for the residual x [D] (fp32, updated in place) at position pos:
 *   h = rmsnorm(x) * attn_norm                  (the weight may be folded into qkv: NULL)
 *   qkv = h @ Wqkv.T (+ b)                      [H + 2 KV heads, Dh] fp32; q/k heads RMS-normed if asked
 *   rotate q and k heads by RoPE at pos         (pairs (2i, 2i+1) as complex numbers: forward.py's layout)
 *   cache[k, v][pos] = the KV heads
 *   att = softmax(q k^T * scale) v              per query head over [lo, pos], lo from the sliding window
 *   x += post_attn_norm(att @ Wo.T)
 *   h = rmsnorm(x) * ffn_norm; gu = h @ Wgu.T; x += post_ff_norm(act(gate) * up @ Wdown.T)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int hearth_int4_gemv(const void *x, int x_bf16, const uint8_t *p, const uint16_t *sz, int pairs, const uint16_t *bias,
                     float *y, int64_t n_out, int64_t npad, int64_t k, int n_threads, int isa);
int hearth_int8_gemv(const void *x, int x_bf16, const int8_t *q, const uint16_t *s, const uint16_t *bias, float *y,
                     int64_t n_out, int64_t k, int n_threads, int isa);

#define MAX_PARTS 4

/* One weight in gemv.c's formats: kind 4 (p [Npad, K/2] uint8, sz, pairs) or 8 (p = q [N, K] int8, sz = s [N]). */
typedef struct {
    int32_t kind, pairs;
    const void *p;
    const uint16_t *sz, *bias; /* bf16 */
    int64_t n_out, npad, k;
} HearthPart;

/* A linear: parts side by side on the same input (linear.Concat: q/k/v or gate/up in different formats). */
typedef struct {
    HearthPart parts[MAX_PARTS];
    int32_t n_parts;
} HearthLinear;

typedef struct {
    HearthLinear qkv, o, gate_up, down;
    const float *attn_norm, *ffn_norm;          /* [D], NULL: folded into qkv / gate_up */
    const float *q_norm, *k_norm;               /* [Dh], NULL: none (Qwen3, Gemma3 have them) */
    const float *post_attn_norm, *post_ff_norm; /* [D], NULL: none (Gemma2/3 have them) */
    float *cache;                               /* [2 KV, capacity, Dh]: this layer's keys, then values */
    const float *rope;                          /* [capacity, Dh/2, 2]: each pair's rotation (re, im) */
    int64_t window;                             /* attend to the last `window` positions; 0: all */
} HearthLayer;

typedef struct {
    int64_t hidden, heads, kv_heads, head_dim, intermediate, capacity;
    float eps, scale, attn_softcap; /* attn_softcap 0: none */
    int32_t gelu;                   /* the gate's activation: 0 SiLU, 1 GELU-tanh */
} HearthShape;

/* 1 / rms(x): x * this is what F.rms_norm multiplies by the weight. */
static float inv_rms(const float *x, int64_t n, float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    return 1.0f / sqrtf(ss / (float)n + eps);
}

/* The matmul's input: rmsnorm(x) * w (w NULL: 1), kept in fp32 for the kernels' int8 rounding, as llama.cpp does
 * (rounding it to bf16 first was a second rounding: the decode route's perplexity, bench/README.md). */
static void norm_row(const float *x, const float *w, int64_t n, float eps, float *out) {
    float inv = inv_rms(x, n, eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = w ? inv * x[i] * w[i] : inv * x[i];
}

static void norm_inplace(float *x, const float *w, int64_t n, float eps) {
    float inv = inv_rms(x, n, eps);
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] * inv * w[i];
}

/* x += post_norm(out) (post_norm NULL: out as it is; Gemma2/3 norm a sublayer's output before the residual) */
static void add_residual(float *x, float *out, const float *post_norm, int64_t n, float eps) {
    if (post_norm)
        norm_inplace(out, post_norm, n, eps);
    for (int64_t i = 0; i < n; i++)
        x[i] += out[i];
}

static int linear(const HearthLinear *L, const float *x, float *y, int threads, int isa) { /* x: fp32 */
    for (int i = 0; i < L->n_parts; i++) {
        const HearthPart *P = &L->parts[i];
        int rc = P->kind == 4 ? hearth_int4_gemv(x, 0, P->p, P->sz, P->pairs, P->bias, y, P->n_out, P->npad,
                                                 P->k, threads, isa)
                              : hearth_int8_gemv(x, 0, P->p, P->sz, P->bias, y, P->n_out, P->k, threads, isa);
        if (rc)
            return rc;
        y += P->n_out;
    }
    return 0;
}

/* Pairs (2i, 2i+1) of each of `heads` heads [Dh] times rope[i] as complex numbers. */
static void rotate(float *v, int64_t heads, int64_t dh, const float *rope) {
    for (int64_t h = 0; h < heads; h++, v += dh)
        for (int64_t i = 0; i < dh / 2; i++) {
            float a = v[2 * i], b = v[2 * i + 1], c = rope[2 * i], s = rope[2 * i + 1];
            v[2 * i] = a * c - b * s;
            v[2 * i + 1] = a * s + b * c;
        }
}

/* One query head q [Dh] over keys/values [T, Dh] (T = hi - lo rows from lo): out [Dh]; scores: T floats. */
static void attend_head(const float *q, const float *keys, const float *values, int64_t lo, int64_t hi, int64_t dh,
                        float scale, float softcap, float *scores, float *out) {
    float top = -INFINITY;
    for (int64_t t = lo; t < hi; t++) {
        const float *k = keys + t * dh;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < dh; i++)
            s += q[i] * k[i];
        s *= scale;
        if (softcap > 0.0f)
            s = softcap * tanhf(s / softcap);
        scores[t - lo] = s;
        top = s > top ? s : top;
    }
    float total = 0.0f;
    for (int64_t t = 0; t < hi - lo; t++) {
        scores[t] = expf(scores[t] - top);
        total += scores[t];
    }
    for (int64_t i = 0; i < dh; i++)
        out[i] = 0.0f;
    for (int64_t t = lo; t < hi; t++) {
        const float *v = values + t * dh;
        float p = scores[t - lo] / total;
#pragma omp simd
        for (int64_t i = 0; i < dh; i++)
            out[i] += p * v[i];
    }
}

/* Scratch for one step, per calling thread, grown as needed and kept. */
static _Thread_local struct {
    float *buf;
    int64_t cap;
} scratch;

static float *reserve_scratch(int64_t floats) {
    if (floats > scratch.cap) {
        free(scratch.buf);
        scratch.buf = aligned_alloc(64, (size_t)((floats * 4 + 63) / 64 * 64));
        scratch.cap = scratch.buf ? floats : 0;
    }
    return scratch.buf;
}

static int layer_step(const HearthShape *m, const HearthLayer *L, float *x, int64_t pos, float *work, int threads,
                      int isa) {
    const int64_t D = m->hidden, H = m->heads, KV = m->kv_heads, Dh = m->head_dim, I = m->intermediate;
    const int64_t G = H / KV, cap = m->capacity;
    float *qkv = work, *att = qkv + (H + 2 * KV) * Dh, *out = att + H * Dh, *gu = out + D;
    float *scores = gu + 2 * I; /* [H, cap] */
    float *h = scores + H * cap; /* [D] */
    int rc;

    norm_row(x, L->attn_norm, D, m->eps, h);
    if ((rc = linear(&L->qkv, h, qkv, threads, isa)))
        return rc;
    if (L->q_norm)
        for (int64_t i = 0; i < H; i++)
            norm_inplace(qkv + i * Dh, L->q_norm, Dh, m->eps);
    if (L->k_norm)
        for (int64_t i = H; i < H + KV; i++)
            norm_inplace(qkv + i * Dh, L->k_norm, Dh, m->eps);
    rotate(qkv, H + KV, Dh, L->rope + pos * Dh);
    for (int64_t j = 0; j < KV; j++) { /* keys, then values */
        memcpy(L->cache + (j * cap + pos) * Dh, qkv + (H + j) * Dh, sizeof(float) * (size_t)Dh);
        memcpy(L->cache + ((KV + j) * cap + pos) * Dh, qkv + (H + KV + j) * Dh, sizeof(float) * (size_t)Dh);
    }
    const int64_t hi = pos + 1, lo = L->window > 0 && hi > L->window ? hi - L->window : 0;
    /* Long contexts: query heads split between threads (a short one costs less than waking them). */
#pragma omp parallel for num_threads(threads) if (threads > 1 && (hi - lo) * H * Dh >= (1 << 16))
    for (int64_t i = 0; i < H; i++) {
        const int64_t j = i / G; /* the KV head query head i reads */
        attend_head(qkv + i * Dh, L->cache + j * cap * Dh, L->cache + (KV + j) * cap * Dh, lo, hi, Dh, m->scale,
                    m->attn_softcap, scores + i * cap, att + i * Dh);
    }
    if ((rc = linear(&L->o, att, out, threads, isa)))
        return rc;
    add_residual(x, out, L->post_attn_norm, D, m->eps);

    norm_row(x, L->ffn_norm, D, m->eps, h);
    if ((rc = linear(&L->gate_up, h, gu, threads, isa)))
        return rc;
    for (int64_t i = 0; i < I; i++) { /* act(gate) * up, written over the gate */
        float g = gu[i];
        float a = m->gelu ? 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g)))
                          : g / (1.0f + expf(-g));
        gu[i] = a * gu[I + i];
    }
    if ((rc = linear(&L->down, gu, out, threads, isa)))
        return rc;
    add_residual(x, out, L->post_ff_norm, D, m->eps);
    return 0;
}

/* x [D] fp32 through layers [0, n_layers) at position pos (pos < capacity), writing each layer's key and value
 * into its cache. Returns 0, or nonzero if a kernel refused its arguments or memory ran out. */
int hearth_decode_layers(const HearthShape *m, const HearthLayer *layers, int64_t n_layers, float *x, int64_t pos,
                         int n_threads, int isa) {
    if (pos < 0 || pos >= m->capacity || m->kv_heads <= 0 || m->heads % m->kv_heads || m->head_dim % 2)
        return -1;
    const int64_t H = m->heads, KV = m->kv_heads, Dh = m->head_dim;
    float *work = reserve_scratch((H + 2 * KV) * Dh + H * Dh + m->hidden + 2 * m->intermediate + H * m->capacity +
                                  m->hidden + 16);
    if (!work)
        return -2;
    for (int64_t i = 0; i < n_layers; i++) {
        int rc = layer_step(m, layers + i, x, pos, work, n_threads, isa);
        if (rc)
            return rc;
    }
    return 0;
}
