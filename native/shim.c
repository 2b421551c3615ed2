// cocoon shim: see shim.h. Kept small on purpose: anything that can be called from bun:ffi directly
// is, so this file only exists where by-value structs or C-side callbacks make it necessary.
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "ggml-backend.h"

int32_t cs_abi_version(void) { return CS_ABI_VERSION; }

// ---- logging -------------------------------------------------------------------------------------
// The callback runs on llama.cpp's own threads, so it must never call back into JS.

#define CS_LOG_KEEP 4096

static int32_t cs_min_level = GGML_LOG_LEVEL_WARN;
static int32_t cs_last_level = GGML_LOG_LEVEL_NONE;  // level of the previous message, for CONT lines
static char cs_kept[CS_LOG_KEEP];
static size_t cs_kept_len = 0;
static pthread_mutex_t cs_log_mutex = PTHREAD_MUTEX_INITIALIZER;

static void cs_keep(const char * text) {
    size_t n = strlen(text);
    if (n >= CS_LOG_KEEP) { text += n - (CS_LOG_KEEP - 1); n = CS_LOG_KEEP - 1; }
    if (cs_kept_len + n >= CS_LOG_KEEP) {
        // Drop the oldest bytes: the newest messages explain the failure at hand.
        size_t drop = cs_kept_len + n - (CS_LOG_KEEP - 1);
        memmove(cs_kept, cs_kept + drop, cs_kept_len - drop);
        cs_kept_len -= drop;
    }
    memcpy(cs_kept + cs_kept_len, text, n);
    cs_kept_len += n;
    cs_kept[cs_kept_len] = '\0';
}

static void cs_log_callback(enum ggml_log_level level, const char * text, void * user_data) {
    (void) user_data;
    int32_t effective = level == GGML_LOG_LEVEL_CONT ? cs_last_level : (int32_t) level;
    if (level != GGML_LOG_LEVEL_CONT) cs_last_level = level;
    if (effective >= GGML_LOG_LEVEL_WARN) {
        pthread_mutex_lock(&cs_log_mutex);
        cs_keep(text);
        pthread_mutex_unlock(&cs_log_mutex);
    }
    if (effective >= cs_min_level && cs_min_level > GGML_LOG_LEVEL_NONE) {
        fputs(text, stderr);
    }
}

void cs_log_set(int32_t min_level) {
    cs_min_level = min_level;
    llama_log_set(cs_log_callback, NULL);
}

int32_t cs_log_take(char * buf, int32_t size) {
    if (size <= 0) return 0;
    pthread_mutex_lock(&cs_log_mutex);
    size_t n = cs_kept_len < (size_t) (size - 1) ? cs_kept_len : (size_t) (size - 1);
    memcpy(buf, cs_kept + (cs_kept_len - n), n);
    buf[n] = '\0';
    cs_kept_len = 0;
    cs_kept[0] = '\0';
    pthread_mutex_unlock(&cs_log_mutex);
    return (int32_t) n;
}

// ---- backends ------------------------------------------------------------------------------------

int32_t cs_backend_init(const char * lib_dir) {
    static int loaded = 0;
    if (!loaded) {
        // Without an explicit path ggml scans the directory of the executable (bun), not ours.
        ggml_backend_load_all_from_path(lib_dir);
        llama_backend_init();
        loaded = 1;
    }
    return (int32_t) ggml_backend_dev_count();
}

// ---- model and context ---------------------------------------------------------------------------

struct llama_model * cs_model_load(const char * path, int32_t n_gpu_layers, int32_t load_mode, bool vocab_only,
                                   bool check_tensors) {
    struct llama_model_params p = llama_model_default_params();
    p.n_gpu_layers = n_gpu_layers;
    p.vocab_only = vocab_only;
    p.check_tensors = check_tensors;
    p.load_mode = (enum llama_load_mode) load_mode;
    return llama_model_load_from_file(path, p);
}

struct llama_context * cs_context_init(struct llama_model * model, uint32_t n_ctx, uint32_t n_batch,
                                       uint32_t n_ubatch, uint32_t n_seq_max, int32_t n_threads,
                                       int32_t n_threads_batch, bool embeddings, int32_t pooling,
                                       int32_t flash_attn, bool kv_unified, bool offload_kqv) {
    struct llama_context_params p = llama_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_ubatch = n_ubatch;
    p.n_seq_max = n_seq_max;
    p.n_threads = n_threads;
    p.n_threads_batch = n_threads_batch;
    p.embeddings = embeddings;
    p.pooling_type = (enum llama_pooling_type) pooling;
    p.flash_attn_type = (enum llama_flash_attn_type) flash_attn;
    p.kv_unified = kv_unified;
    p.offload_kqv = offload_kqv;
    p.no_perf = false;
    return llama_init_from_model(model, p);
}

// ---- batches -------------------------------------------------------------------------------------

typedef int32_t (*cs_run_fn)(struct llama_context *, struct llama_batch);

static int32_t cs_run_batch(cs_run_fn run, struct llama_context * ctx, int32_t n, const int32_t * tokens,
                            const int32_t * pos, const int32_t * seq_ids, const int8_t * logits) {
    if (n <= 0) return -1;
    // llama_batch wants one seq-id list per token; ours always has exactly one entry.
    int32_t * n_seq_id = malloc(sizeof(int32_t) * (size_t) n);
    llama_seq_id ** seq_ptrs = malloc(sizeof(llama_seq_id *) * (size_t) n);
    if (!n_seq_id || !seq_ptrs) { free(n_seq_id); free(seq_ptrs); return -3; }
    for (int32_t i = 0; i < n; i++) {
        n_seq_id[i] = 1;
        seq_ptrs[i] = (llama_seq_id *) &seq_ids[i];
    }
    struct llama_batch b = {
        .n_tokens = n,
        .token = (llama_token *) tokens,
        .embd = NULL,
        .pos = (llama_pos *) pos,
        .n_seq_id = n_seq_id,
        .seq_id = seq_ptrs,
        .logits = (int8_t *) logits,
    };
    int32_t rc = run(ctx, b);
    free(n_seq_id);
    free(seq_ptrs);
    return rc;
}

int32_t cs_decode(struct llama_context * ctx, int32_t n, const int32_t * tokens, const int32_t * pos,
                  const int32_t * seq_ids, const int8_t * logits) {
    return cs_run_batch(llama_decode, ctx, n, tokens, pos, seq_ids, logits);
}

int32_t cs_encode(struct llama_context * ctx, int32_t n, const int32_t * tokens, const int32_t * pos,
                  const int32_t * seq_ids, const int8_t * logits) {
    return cs_run_batch(llama_encode, ctx, n, tokens, pos, seq_ids, logits);
}

// ---- samplers, quantize, perf ------------------------------------------------------------------

struct llama_sampler * cs_sampler_chain_init(bool no_perf) {
    struct llama_sampler_chain_params p = llama_sampler_chain_default_params();
    p.no_perf = no_perf;
    return llama_sampler_chain_init(p);
}

uint32_t cs_model_quantize(const char * input, const char * output, int32_t ftype, int32_t n_threads) {
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = (enum llama_ftype) ftype;
    p.nthread = n_threads;
    return llama_model_quantize(input, output, &p);
}

void cs_perf_context(const struct llama_context * ctx, double * out) {
    struct llama_perf_context_data d = llama_perf_context(ctx);
    out[0] = d.t_load_ms;
    out[1] = d.t_p_eval_ms;
    out[2] = d.t_eval_ms;
    out[3] = d.t_start_ms;
    out[4] = d.n_p_eval;
    out[5] = d.n_eval;
    out[6] = d.n_reused;
}

int32_t cs_argmax(struct llama_context * ctx, int32_t idx) {
    static const int32_t greedy[CS_I_COUNT] = { 0, -1, 0, 0 };
    float fp[CS_F_COUNT] = { 0 };  // temperature 0: greedy, no penalties
    fp[CS_F_REPEAT_PENALTY] = 1.0f;
    int32_t token;
    float logprob;
    uint64_t rng = 0;
    return cs_sample(ctx, idx, fp, greedy, NULL, NULL, NULL, &rng, NULL, &token, &logprob);
}
