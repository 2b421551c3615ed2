// cocoon's token sampler (see shim.h, "sampling"): the per-token hot spot on small models, so it
// touches the whole vocabulary at most once or twice per token and sorts only the survivors.
#include "shim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t id;
    float logit;
} cs_cand;

// Per-thread scratch: each model's worker thread samples independently.
static _Thread_local cs_cand * scratch = NULL;
static _Thread_local size_t scratch_cap = 0;
static _Thread_local llama_token_data * grammar_buf = NULL;
static _Thread_local float * work = NULL;
static _Thread_local size_t work_cap = 0;
static _Thread_local size_t grammar_cap = 0;

static cs_cand * scratch_for(size_t n) {
    if (n > scratch_cap) {
        free(scratch);
        scratch = malloc(n * sizeof(cs_cand));
        scratch_cap = scratch ? n : 0;
    }
    return scratch;
}

uint64_t cs_rng_seed(uint64_t seed) {
    // splitmix64 scrambles small consecutive seeds into unrelated states.
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// xorshift64*: a uniform double in [0, 1).
static double rng_uniform(uint64_t * s) {
    uint64_t x = *s ? *s : 0x853c49e6748fea9bULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double) ((x * 0x2545f4914f6cdd1dULL) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_desc(const void * a, const void * b) {
    float x = ((const cs_cand *) a)->logit, y = ((const cs_cand *) b)->logit;
    return (x < y) - (x > y);
}

static int cmp_id(const void * a, const void * b) {
    int32_t x = ((const cs_cand *) a)->id, y = ((const cs_cand *) b)->id;
    return (x > y) - (x < y);
}

static int cmp_int(const void * a, const void * b) {
    int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;
    return (x > y) - (x < y);
}

// Bias and repetition penalties change only the tokens they name, in place in the logits row
// (the row is ours until the next decode).
static void adjust_logits(float * logits, int32_t n_vocab, const float * fp, const int32_t * ip,
                          const int32_t * history, const int32_t * bias_tokens, const float * bias_values) {
    for (int32_t i = 0; i < ip[CS_I_N_BIAS]; i++) {
        int32_t t = bias_tokens[i];
        if (t >= 0 && t < n_vocab) logits[t] += bias_values[i];
    }
    float rep = fp[CS_F_REPEAT_PENALTY], freq = fp[CS_F_FREQUENCY_PENALTY], pres = fp[CS_F_PRESENCE_PENALTY];
    int32_t nh = ip[CS_I_N_HISTORY];
    if (nh <= 0 || (rep == 1.0f && freq == 0.0f && pres == 0.0f)) return;
    // Sorting a copy of the window counts each distinct token once without a vocabulary-sized map.
    int32_t * sorted = malloc((size_t) nh * sizeof(int32_t));
    if (!sorted) return;
    memcpy(sorted, history, (size_t) nh * sizeof(int32_t));
    qsort(sorted, (size_t) nh, sizeof(int32_t), cmp_int);
    for (int32_t i = 0; i < nh;) {
        int32_t t = sorted[i], count = 0;
        while (i < nh && sorted[i] == t) { i++; count++; }
        if (t < 0 || t >= n_vocab) continue;
        float l = logits[t];
        if (rep != 1.0f) l = l > 0 ? l / rep : l * rep;
        l -= (float) count * freq + pres;
        logits[t] = l;
    }
    free(sorted);
}

// log of the softmax denominator over the whole row, for log-probabilities. Terms more than 30
// nats below the maximum add < 1e-13 each and are skipped.
static double log_sum_exp(const float * logits, int32_t n, float max) {
    float sum = 0.0f;
    const float floor = max - 30.0f;
    for (int32_t i = 0; i < n; i++) {
        float d = logits[i] - max;
        sum += logits[i] >= floor ? expf(d) : 0.0f;
    }
    return (double) max + log((double) sum);
}

static void heap_sift_down(cs_cand * h, int32_t n, int32_t i);

// The k largest of cand[0..n) by value into heap[0..k), unordered.
static int32_t top_k_of_cands(const cs_cand * cand, int32_t n, int32_t k, cs_cand * heap) {
    if (k > n) k = n;
    memcpy(heap, cand, (size_t) k * sizeof(cs_cand));
    for (int32_t j = k / 2 - 1; j >= 0; j--) heap_sift_down(heap, k, j);
    float min = heap[0].logit;
    for (int32_t i = k; i < n; i++) {
        if (cand[i].logit > min) {
            heap[0] = cand[i];
            heap_sift_down(heap, k, 0);
            min = heap[0].logit;
        }
    }
    return k;
}

// The choice among candidates (already cut by top-k and min-p) after temperature, typical-p and
// top-p. Only typical-p and top-p need the candidates sorted by probability.
static int32_t draw(cs_cand * cand, int32_t n, float max, bool by_id, const float * fp, uint64_t * rng) {
    float temp = fp[CS_F_TEMPERATURE];
    float top_p = fp[CS_F_TOP_P], typical = fp[CS_F_TYPICAL_P];
    bool use_top_p = top_p > 0.0f && top_p < 1.0f, use_typical = typical > 0.0f && typical < 1.0f;
    // Probabilities replace logits in place (relative to the best token; normalised at the end).
    for (int32_t i = 0; i < n; i++) cand[i].logit = expf((cand[i].logit - max) / temp);
    int32_t keep = n;
    if (use_top_p && !use_typical && n > 256) {
        // Nucleus without sorting the vocabulary: grow a top-k set until it holds top_p of the mass.
        double z = 0.0;
        for (int32_t i = 0; i < n; i++) z += cand[i].logit;
        cs_cand * heap = malloc((size_t) n * sizeof(cs_cand));
        if (heap) {
            for (int32_t k = 64;; k *= 4) {
                if (k >= n) { free(heap); heap = NULL; break; }
                int32_t got = top_k_of_cands(cand, n, k, heap);
                double mass = 0.0;
                for (int32_t i = 0; i < got; i++) mass += heap[i].logit;
                if (mass >= top_p * z) {
                    memcpy(cand, heap, (size_t) got * sizeof(cs_cand));
                    n = got;
                    break;
                }
            }
            free(heap);
        }
    }
    if ((use_top_p || use_typical) && n > 1) {
        qsort(cand, (size_t) n, sizeof(cs_cand), cmp_desc);
        by_id = false;
        double z = 0.0;
        for (int32_t i = 0; i < n; i++) z += cand[i].logit;
        if (use_typical) {
            // Locally typical sampling: keep the tokens whose surprisal is closest to the entropy.
            double h = 0.0;
            for (int32_t i = 0; i < n; i++) { double q = cand[i].logit / z; if (q > 0) h -= q * log(q); }
            cs_cand * tmp = malloc((size_t) n * sizeof(cs_cand));
            if (tmp) {
                // Sort by |surprisal - entropy| using the logit slot of a copy as the key.
                for (int32_t i = 0; i < n; i++) {
                    tmp[i].id = i;
                    tmp[i].logit = -(float) fabs(-log(cand[i].logit / z) - h);
                }
                qsort(tmp, (size_t) n, sizeof(cs_cand), cmp_desc);
                double cum = 0.0;
                int32_t k = 0;
                while (k < n) { cum += cand[tmp[k].id].logit / z; k++; if (cum >= typical) break; }
                for (int32_t i = 0; i < k; i++) tmp[i] = cand[tmp[i].id];
                memcpy(cand, tmp, (size_t) k * sizeof(cs_cand));
                keep = k;
                z = 0.0;
                for (int32_t i = 0; i < keep; i++) z += cand[i].logit;
                free(tmp);
            }
        }
        if (use_top_p) {
            double cum = 0.0;
            int32_t k = 0;
            while (k < keep) { cum += cand[k].logit / z; k++; if (cum >= top_p) break; }
            keep = k;
        }
    }
    // Draw in token-id order: tokens with nearly equal logits swap places in the sorted order at
    // the slightest numeric noise (e.g. a different batch shape), which would change which token
    // a seed picks; summed by id, such noise moves the boundaries only negligibly.
    if (!by_id) qsort(cand, (size_t) keep, sizeof(cs_cand), cmp_id);
    double z = 0.0;
    for (int32_t i = 0; i < keep; i++) z += cand[i].logit;
    double r = rng_uniform(rng) * z, acc = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        acc += cand[i].logit;
        if (r < acc) return cand[i].id;
    }
    return cand[keep - 1].id;
}

// Min-heap helpers over cs_cand by logit, for a one-pass top-k.
static void heap_sift_down(cs_cand * h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].logit < h[m].logit) m = l;
        if (r < n && h[r].logit < h[m].logit) m = r;
        if (m == i) return;
        cs_cand t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

// The k highest logits at or above floor, in one pass over the row; returns how many were found.
// Once the heap is full its minimum (>= floor) is the only threshold, so the hot loop has one
// rarely-taken branch: a floor test per token mispredicts on flat distributions and costs more
// than the scan itself.
static int32_t top_k_of(const float * logits, int32_t n_vocab, int32_t k, float floor, cs_cand * heap) {
    int32_t n = 0, i = 0;
    for (; i < n_vocab && n < k; i++) {
        if (logits[i] >= floor) { heap[n].id = i; heap[n].logit = logits[i]; n++; }
    }
    if (n < k) return n;
    for (int32_t j = k / 2 - 1; j >= 0; j--) heap_sift_down(heap, k, j);
    float min = heap[0].logit;
    for (; i < n_vocab; i++) {
        if (logits[i] > min) {
            heap[0].id = i;
            heap[0].logit = logits[i];
            heap_sift_down(heap, k, 0);
            min = heap[0].logit;
        }
    }
    return n;
}

// The largest logit. Independent lanes let the compiler vectorise the scan (`x > m ? x : m` is
// exactly the SSE max instruction), three times faster than tracking the index as it goes.
static float row_max(const float * logits, int32_t n) {
    float m[16];
    for (int j = 0; j < 16; j++) m[j] = -INFINITY;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) { float x = logits[i + j]; m[j] = x > m[j] ? x : m[j]; }
    float r = -INFINITY;
    for (int j = 0; j < 16; j++) r = m[j] > r ? m[j] : r;
    for (; i < n; i++) r = logits[i] > r ? logits[i] : r;
    return r;
}

// Index of the first largest logit (greedy choice), or -1 when every token is banned.
static int32_t row_argmax(const float * logits, int32_t n, float * max_out) {
    float max = row_max(logits, n);
    *max_out = max;
    if (max == -INFINITY || max != max) return -1;
    for (int32_t i = 0; i < n; i++) if (logits[i] == max) return i;
    return -1;
}

// Without a grammar: the choice over the adjusted row.
static int32_t choose(const float * logits, int32_t n_vocab, const float * fp, const int32_t * ip, uint64_t * rng) {
    float max;
    int32_t best = row_argmax(logits, n_vocab, &max);
    if (best < 0) return -2;
    float temp = fp[CS_F_TEMPERATURE];
    if (temp <= 0.0f) return best;
    // Tokens more than 30 nats (after temperature) below the best have relative probability
    // < 1e-13: dropping them changes nothing observable and spares sorting the vocabulary.
    float floor = max - 30.0f * temp;
    if (fp[CS_F_MIN_P] > 0.0f) {
        float mp = max + temp * logf(fp[CS_F_MIN_P]);
        if (mp > floor) floor = mp;
    }
    cs_cand * cand = scratch_for((size_t) n_vocab);
    if (!cand) return best;
    int32_t k = ip[CS_I_TOP_K], n = 0;
    bool by_id = true;
    if (k > 0 && k < n_vocab) {
        n = top_k_of(logits, n_vocab, k, floor, cand);
        by_id = false;
    } else {
        // Branch-free filter: written unconditionally, kept by advancing n.
        for (int32_t i = 0; i < n_vocab; i++) {
            cand[n].id = i;
            cand[n].logit = logits[i];
            n += logits[i] >= floor;
        }
    }
    return draw(cand, n, max, by_id, fp, rng);
}

// Sets every token the grammar rejects to -inf in the row.
static int apply_grammar(struct llama_sampler * grammar, float * logits, int32_t n_vocab) {
    if ((size_t) n_vocab > grammar_cap) {
        free(grammar_buf);
        grammar_buf = malloc((size_t) n_vocab * sizeof(llama_token_data));
        grammar_cap = grammar_buf ? (size_t) n_vocab : 0;
        if (!grammar_buf) return -1;
    }
    for (int32_t i = 0; i < n_vocab; i++) grammar_buf[i] = (llama_token_data) { i, logits[i], 0.0f };
    llama_token_data_array arr = { grammar_buf, (size_t) n_vocab, -1, false };
    llama_sampler_apply(grammar, &arr);
    for (size_t i = 0; i < arr.size; i++) logits[arr.data[i].id] = arr.data[i].logit;
    return 0;
}

static int grammar_accepts(struct llama_sampler * grammar, int32_t token, float logit) {
    llama_token_data one = { token, logit, 0.0f };
    llama_token_data_array arr = { &one, 1, -1, false };
    llama_sampler_apply(grammar, &arr);
    return arr.data[0].logit != -INFINITY;
}

int32_t cs_sample(struct llama_context * ctx, int32_t idx, const float * fp, const int32_t * ip,
                  const int32_t * history, const int32_t * bias_tokens, const float * bias_values,
                  uint64_t * rng, struct llama_sampler * grammar, int32_t * out_tokens, float * out_logprobs) {
    float * row = llama_get_logits_ith(ctx, idx);
    if (!row) return -1;
    int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    // Several choices of one prompt sample from the same row, so changes go to a private copy,
    // made only when there is something to change.
    bool penalise = ip[CS_I_N_HISTORY] > 0 && (fp[CS_F_REPEAT_PENALTY] != 1.0f || fp[CS_F_FREQUENCY_PENALTY] != 0.0f ||
                                               fp[CS_F_PRESENCE_PENALTY] != 0.0f);
    float * logits = row;
    if (penalise || ip[CS_I_N_BIAS] > 0 || grammar) {
        if ((size_t) n_vocab > work_cap) {
            free(work);
            work = malloc((size_t) n_vocab * sizeof(float));
            work_cap = work ? (size_t) n_vocab : 0;
            if (!work) return -1;
        }
        memcpy(work, row, (size_t) n_vocab * sizeof(float));
        logits = work;
        adjust_logits(logits, n_vocab, fp, ip, history, bias_tokens, bias_values);
    }

    uint64_t rng_before = *rng;
    int32_t token = choose(logits, n_vocab, fp, ip, rng);
    if (grammar && (token < 0 || !grammar_accepts(grammar, token, logits[token]))) {
        // The unconstrained choice breaks the grammar: constrain the whole row and choose again
        // (with the same random draw, so a seed's output does not depend on this fallback).
        if (apply_grammar(grammar, logits, n_vocab) != 0) return -1;
        *rng = rng_before;
        token = choose(logits, n_vocab, fp, ip, rng);
    }
    if (token < 0) return -2;
    if (grammar) llama_sampler_accept(grammar, token);

    int32_t n_probs = ip[CS_I_N_PROBS];
    out_tokens[0] = token;
    out_logprobs[0] = 0.0f;
    if (n_probs >= 0) {
        double lse = log_sum_exp(logits, n_vocab, row_max(logits, n_vocab));
        out_logprobs[0] = (float) ((double) logits[token] - lse);
        if (n_probs > 0) {
            cs_cand * cand = scratch_for((size_t) n_vocab);
            if (!cand) return token;
            int32_t k = top_k_of(logits, n_vocab, n_probs < n_vocab ? n_probs : n_vocab, -INFINITY, cand);
            qsort(cand, (size_t) k, sizeof(cs_cand), cmp_desc);
            for (int32_t i = 0; i < k; i++) {
                out_tokens[1 + i] = cand[i].id;
                out_logprobs[1 + i] = (float) ((double) cand[i].logit - lse);
            }
        }
    }
    return token;
}

int32_t cs_vocab_eog_tokens(const struct llama_vocab * vocab, int32_t * out, int32_t max) {
    int32_t n = llama_vocab_n_tokens(vocab), found = 0;
    for (int32_t i = 0; i < n; i++) {
        if (llama_vocab_is_eog(vocab, i)) {
            if (found < max) out[found] = i;
            found++;
        }
    }
    return found;
}
