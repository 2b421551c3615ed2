// cocoon shim: C wrappers for the llama.h functions bun:ffi cannot call directly (structs passed or
// returned by value), plus a log filter that keeps llama.cpp's logging inside C.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

// Version of this shim's ABI; the TS side refuses a shim whose version differs from what it declares.
#define CS_ABI_VERSION 2
int32_t cs_abi_version(void);

// Loads ggml backends (CPU variants, CUDA, ...) from lib_dir, then initialises llama. Returns the
// number of backend devices found. Safe to call more than once.
int32_t cs_backend_init(const char * lib_dir);

// Messages below min_level (ggml_log_level: 1 debug, 2 info, 3 warn, 4 error) are dropped; the rest
// go to stderr. Warnings and errors are also kept, so a failed call can report why.
void cs_log_set(int32_t min_level);
// Copies (and clears) the recently captured warnings and errors into buf; returns bytes written.
int32_t cs_log_take(char * buf, int32_t size);

// load_mode: llama_load_mode (-1 auto, 0 read, 1 mmap, 2 mlock, 3 mmap+mlock, 4 direct I/O).
struct llama_model * cs_model_load(const char * path, int32_t n_gpu_layers, int32_t load_mode, bool vocab_only,
                                   bool check_tensors);

// flash_attn: -1 auto, 0 off, 1 on. pooling: -1 model default, 0 none, 1 mean, 2 cls, 3 last, 4 rank.
struct llama_context * cs_context_init(struct llama_model * model, uint32_t n_ctx, uint32_t n_batch,
                                       uint32_t n_ubatch, uint32_t n_seq_max, int32_t n_threads,
                                       int32_t n_threads_batch, bool embeddings, int32_t pooling,
                                       int32_t flash_attn, bool kv_unified, bool offload_kqv);

// One decode over n tokens, each in exactly one sequence (seq_ids[i]); logits[i] != 0 asks for that
// token's output. Returns llama_decode's status (0 ok, 1 no KV slot, 2 aborted, <0 error).
int32_t cs_decode(struct llama_context * ctx, int32_t n, const int32_t * tokens, const int32_t * pos,
                  const int32_t * seq_ids, const int8_t * logits);
int32_t cs_encode(struct llama_context * ctx, int32_t n, const int32_t * tokens, const int32_t * pos,
                  const int32_t * seq_ids, const int8_t * logits);

struct llama_sampler * cs_sampler_chain_init(bool no_perf);

// ftype: llama_ftype (7 = Q8_0, 15 = Q4_K_M, 1 = F16). Returns 0 on success.
uint32_t cs_model_quantize(const char * input, const char * output, int32_t ftype, int32_t n_threads);

// out[0..3] = t_load_ms, t_p_eval_ms, t_eval_ms, t_start_ms; out[4..6] = n_p_eval, n_eval, n_reused.
void cs_perf_context(const struct llama_context * ctx, double * out);

// Argmax over the logits of output row idx: greedy sampling without building a candidate array.
int32_t cs_argmax(struct llama_context * ctx, int32_t idx);

// ---- sampling -----------------------------------------------------------------------------------
// Our sampler: llama.cpp's chain builds a 151,936-entry candidate array per token; this one adjusts
// only the tokens that need it (bias, penalties), cuts candidates before sorting, and computes full
// log-probabilities only when asked. Parameters arrive as flat arrays (indices below).
enum {
    CS_F_TEMPERATURE = 0, CS_F_TOP_P, CS_F_MIN_P, CS_F_TYPICAL_P,
    CS_F_REPEAT_PENALTY, CS_F_FREQUENCY_PENALTY, CS_F_PRESENCE_PENALTY, CS_F_COUNT
};
enum {
    CS_I_TOP_K = 0,    // <= 0: no top-k cut
    CS_I_N_PROBS,      // -1: no logprobs; 0: the chosen token's; n: plus the n most likely
    CS_I_N_HISTORY,    // tokens in history (penalty window)
    CS_I_N_BIAS,       // entries in bias_tokens / bias_values (-INFINITY bans a token)
    CS_I_COUNT
};

// Samples one token from output row idx. rng is a 64-bit state advanced per draw. grammar (nullable)
// constrains the choice and is advanced with the chosen token. out_tokens[0] / out_logprobs[0] get
// the choice and its log-probability, [1..n_probs] the most likely tokens. Returns the token, or -1
// when the row has no logits, -2 when the grammar allows no token.
int32_t cs_sample(struct llama_context * ctx, int32_t idx, const float * fp, const int32_t * ip,
                  const int32_t * history, const int32_t * bias_tokens, const float * bias_values,
                  uint64_t * rng, struct llama_sampler * grammar, int32_t * out_tokens, float * out_logprobs);

// Seeds a sampler RNG state the same way on every platform.
uint64_t cs_rng_seed(uint64_t seed);

// Writes up to max end-of-generation token ids of the vocabulary; returns how many there are.
int32_t cs_vocab_eog_tokens(const struct llama_vocab * vocab, int32_t * out, int32_t max);

#ifdef __cplusplus
}
#endif
