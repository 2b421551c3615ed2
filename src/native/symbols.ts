// The only dlopen table: every native function cocoon calls, llama.h's own (resolved through the shim,
// which links the exact libllama of its variant) and our cs_* wrappers from native/shim.c.
import { dlopen } from "bun:ffi";

export const symbols = {
  // shim (native/shim.c)
  cs_abi_version: { args: [], returns: "i32" },
  cs_backend_init: { args: ["ptr"], returns: "i32" },
  cs_log_set: { args: ["i32"], returns: "void" },
  cs_log_take: { args: ["ptr", "i32"], returns: "i32" },
  cs_model_load: { args: ["ptr", "i32", "i32", "bool", "bool"], returns: "ptr" },
  cs_context_init: { args: ["ptr", "u32", "u32", "u32", "u32", "i32", "i32", "bool", "i32", "i32", "bool", "bool"], returns: "ptr" },
  cs_decode: { args: ["ptr", "i32", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  cs_encode: { args: ["ptr", "i32", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  cs_sampler_chain_init: { args: ["bool"], returns: "ptr" },
  cs_model_quantize: { args: ["ptr", "ptr", "i32", "i32"], returns: "u32" },
  cs_perf_context: { args: ["ptr", "ptr"], returns: "void" },
  cs_argmax: { args: ["ptr", "i32"], returns: "i32" },
  cs_sample: { args: ["ptr", "i32", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  cs_rng_seed: { args: ["u64"], returns: "u64" },
  cs_vocab_eog_tokens: { args: ["ptr", "ptr", "i32"], returns: "i32" },

  // system
  llama_print_system_info: { args: [], returns: "cstring" },
  llama_supports_gpu_offload: { args: [], returns: "bool" },
  llama_supports_mmap: { args: [], returns: "bool" },
  llama_max_devices: { args: [], returns: "usize" },
  llama_time_us: { args: [], returns: "i64" },

  // model
  llama_model_free: { args: ["ptr"], returns: "void" },
  llama_model_get_vocab: { args: ["ptr"], returns: "ptr" },
  llama_model_n_ctx_train: { args: ["ptr"], returns: "i32" },
  llama_model_n_embd: { args: ["ptr"], returns: "i32" },
  llama_model_n_layer: { args: ["ptr"], returns: "i32" },
  llama_model_n_head: { args: ["ptr"], returns: "i32" },
  llama_model_n_head_kv: { args: ["ptr"], returns: "i32" },
  llama_model_size: { args: ["ptr"], returns: "u64" },
  llama_model_n_params: { args: ["ptr"], returns: "u64" },
  llama_model_has_encoder: { args: ["ptr"], returns: "bool" },
  llama_model_has_decoder: { args: ["ptr"], returns: "bool" },
  llama_model_desc: { args: ["ptr", "ptr", "usize"], returns: "i32" },
  llama_model_meta_count: { args: ["ptr"], returns: "i32" },
  llama_model_meta_val_str: { args: ["ptr", "ptr", "ptr", "usize"], returns: "i32" },
  llama_model_meta_key_by_index: { args: ["ptr", "i32", "ptr", "usize"], returns: "i32" },
  llama_model_meta_val_str_by_index: { args: ["ptr", "i32", "ptr", "usize"], returns: "i32" },
  llama_model_chat_template: { args: ["ptr", "ptr"], returns: "ptr" },

  // vocab
  llama_vocab_n_tokens: { args: ["ptr"], returns: "i32" },
  llama_vocab_bos: { args: ["ptr"], returns: "i32" },
  llama_vocab_eos: { args: ["ptr"], returns: "i32" },
  llama_vocab_eot: { args: ["ptr"], returns: "i32" },
  llama_vocab_is_eog: { args: ["ptr", "i32"], returns: "bool" },
  llama_vocab_is_control: { args: ["ptr", "i32"], returns: "bool" },
  llama_vocab_get_add_bos: { args: ["ptr"], returns: "bool" },
  llama_vocab_get_add_eos: { args: ["ptr"], returns: "bool" },
  llama_vocab_type: { args: ["ptr"], returns: "i32" },
  llama_vocab_fim_pre: { args: ["ptr"], returns: "i32" },
  llama_vocab_fim_suf: { args: ["ptr"], returns: "i32" },
  llama_vocab_fim_mid: { args: ["ptr"], returns: "i32" },
  llama_tokenize: { args: ["ptr", "ptr", "i32", "ptr", "i32", "bool", "bool"], returns: "i32" },
  llama_token_to_piece: { args: ["ptr", "i32", "ptr", "i32", "i32", "bool"], returns: "i32" },
  llama_detokenize: { args: ["ptr", "ptr", "i32", "ptr", "i32", "bool", "bool"], returns: "i32" },

  // context
  llama_free: { args: ["ptr"], returns: "void" },
  llama_n_ctx: { args: ["ptr"], returns: "u32" },
  llama_n_ctx_seq: { args: ["ptr"], returns: "u32" },
  llama_n_batch: { args: ["ptr"], returns: "u32" },
  llama_n_ubatch: { args: ["ptr"], returns: "u32" },
  llama_n_seq_max: { args: ["ptr"], returns: "u32" },
  llama_pooling_type: { args: ["ptr"], returns: "i32" },
  llama_set_n_threads: { args: ["ptr", "i32", "i32"], returns: "void" },
  llama_set_embeddings: { args: ["ptr", "bool"], returns: "void" },
  llama_synchronize: { args: ["ptr"], returns: "void" },
  llama_get_logits_ith: { args: ["ptr", "i32"], returns: "ptr" },
  llama_get_embeddings_ith: { args: ["ptr", "i32"], returns: "ptr" },
  llama_get_embeddings_seq: { args: ["ptr", "i32"], returns: "ptr" },
  llama_perf_context_reset: { args: ["ptr"], returns: "void" },

  // memory (KV cache)
  llama_get_memory: { args: ["ptr"], returns: "ptr" },
  llama_memory_clear: { args: ["ptr", "bool"], returns: "void" },
  llama_memory_seq_rm: { args: ["ptr", "i32", "i32", "i32"], returns: "bool" },
  llama_memory_seq_cp: { args: ["ptr", "i32", "i32", "i32", "i32"], returns: "void" },
  llama_memory_seq_keep: { args: ["ptr", "i32"], returns: "void" },
  llama_memory_seq_add: { args: ["ptr", "i32", "i32", "i32", "i32"], returns: "void" },
  llama_memory_seq_pos_min: { args: ["ptr", "i32"], returns: "i32" },
  llama_memory_seq_pos_max: { args: ["ptr", "i32"], returns: "i32" },
  llama_memory_can_shift: { args: ["ptr"], returns: "bool" },

  // per-sequence state
  llama_state_seq_get_size: { args: ["ptr", "i32"], returns: "usize" },
  llama_state_seq_get_data: { args: ["ptr", "ptr", "usize", "i32"], returns: "usize" },
  llama_state_seq_set_data: { args: ["ptr", "ptr", "usize", "i32"], returns: "usize" },

  // samplers
  llama_sampler_chain_add: { args: ["ptr", "ptr"], returns: "void" },
  llama_sampler_chain_n: { args: ["ptr"], returns: "i32" },
  llama_sampler_free: { args: ["ptr"], returns: "void" },
  llama_sampler_reset: { args: ["ptr"], returns: "void" },
  llama_sampler_accept: { args: ["ptr", "i32"], returns: "void" },
  llama_sampler_sample: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  llama_sampler_get_seed: { args: ["ptr"], returns: "u32" },
  llama_sampler_init_greedy: { args: [], returns: "ptr" },
  llama_sampler_init_dist: { args: ["u32"], returns: "ptr" },
  llama_sampler_init_temp: { args: ["f32"], returns: "ptr" },
  llama_sampler_init_top_k: { args: ["i32"], returns: "ptr" },
  llama_sampler_init_top_p: { args: ["f32", "usize"], returns: "ptr" },
  llama_sampler_init_min_p: { args: ["f32", "usize"], returns: "ptr" },
  llama_sampler_init_typical: { args: ["f32", "usize"], returns: "ptr" },
  llama_sampler_init_penalties: { args: ["i32", "i32", "f32", "f32", "f32"], returns: "ptr" },
  llama_sampler_init_logit_bias: { args: ["i32", "i32", "ptr"], returns: "ptr" },
  llama_sampler_init_grammar: { args: ["ptr", "ptr", "ptr"], returns: "ptr" },
  llama_sampler_init_grammar_lazy_patterns: { args: ["ptr", "ptr", "ptr", "ptr", "usize", "ptr", "usize"], returns: "ptr" },
  llama_sampler_clone: { args: ["ptr"], returns: "ptr" },
} as const;

/** The chat shim (native/chat.cpp over libllama-common): JSON text in, malloc'd JSON text out. */
export const chatSymbols = {
  cs_chat_abi_version: { args: [], returns: "i32" },
  cs_chat_free_string: { args: ["ptr"], returns: "void" },
  cs_chat_templates_init: { args: ["ptr", "ptr", "ptr", "ptr", "ptr"], returns: "ptr" },
  cs_chat_templates_free: { args: ["ptr"], returns: "void" },
  cs_chat_templates_info: { args: ["ptr"], returns: "ptr" },
  cs_chat_templates_apply: { args: ["ptr", "ptr", "ptr"], returns: "ptr" },
  cs_chat_stream_new: { args: ["ptr", "ptr"], returns: "ptr" },
  cs_chat_stream_free: { args: ["ptr"], returns: "void" },
  cs_chat_stream_push: { args: ["ptr", "ptr", "bool"], returns: "ptr" },
  cs_chat_parse: { args: ["ptr", "ptr", "bool"], returns: "ptr" },
} as const;

export type NativeSymbols = ReturnType<typeof openNative>["symbols"];
export type ChatSymbols = ReturnType<typeof openChat>["symbols"];

/** Opens the shim; llama.h's symbols resolve through it because it links libllama itself. */
export function openNative(shimPath: string) {
  return dlopen(shimPath, symbols);
}

/** Opens the chat shim; it links libllama-common and the same libllama the main shim loaded. */
export function openChat(chatShimPath: string) {
  return dlopen(chatShimPath, chatSymbols);
}
