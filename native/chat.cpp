// cocoon chat shim: a C surface over llama.cpp's common chat library (libllama-common), the code
// llama-server itself uses for chat templates, tool calls and reasoning. JSON text in, JSON text out,
// so no C++ type crosses into bun:ffi. Built by setup against the pinned release's common/ headers and
// linked to that exact libllama-common (its C++ ABI is tied to the release).
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chat.h"
#include "json.h"

#define CS_CHAT_ABI_VERSION 1

namespace {

char * dup_string(const std::string & s) {
    char * out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out) std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

void set_error(char ** err, const std::string & message) {
    if (err) *err = dup_string(message);
}

std::string random_id() {
    static const char chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(0, 61);
    std::string id = "call_";
    for (int i = 0; i < 24; i++) id += chars[pick(rng)];
    return id;
}

const char * trigger_type_name(common_grammar_trigger_type type) {
    switch (type) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: return "token";
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: return "word";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: return "pattern";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: return "pattern_full";
    }
    return "word";
}

common_json msg_to_json(const common_chat_msg & msg) {
    common_json out = common_json::object();
    out["content"] = msg.content;
    out["reasoning_content"] = msg.reasoning_content;
    common_json calls = common_json::array();
    for (const auto & call : msg.tool_calls) {
        common_json c = common_json::object();
        c["id"] = call.id;
        c["name"] = call.name;
        c["arguments"] = call.arguments;
        calls.push_back(c);
    }
    out["tool_calls"] = calls;
    return out;
}

// One generation's parser: llama-server's task_result_state::update_chat_msg, kept in C++ so the
// whole text is re-parsed natively each step and only the differences cross into JS.
struct stream_state {
    common_chat_parser_params params;
    std::string text;
    common_chat_msg msg;
    std::vector<std::string> ids;
    std::set<size_t> sent_names;
};

common_json diff_to_json(const common_chat_msg_diff & d) {
    common_json j = common_json::object();
    if (!d.reasoning_content_delta.empty()) j["reasoning"] = d.reasoning_content_delta;
    if (!d.content_delta.empty()) j["content"] = d.content_delta;
    if (d.tool_call_index != std::string::npos) {
        j["index"] = static_cast<int64_t>(d.tool_call_index);
        if (!d.tool_call_delta.id.empty()) j["id"] = d.tool_call_delta.id;
        if (!d.tool_call_delta.name.empty()) j["name"] = d.tool_call_delta.name;
        if (!d.tool_call_delta.arguments.empty()) j["arguments"] = d.tool_call_delta.arguments;
    }
    return j;
}

// A call's name is announced once, whole, before its first arguments (never split across deltas).
void filter_diffs(stream_state & s, std::vector<common_chat_msg_diff> & all, bool is_partial, common_json & out) {
    auto header = [&](size_t i) {
        common_chat_msg_diff h;
        h.tool_call_index = i;
        h.tool_call_delta.id = s.msg.tool_calls[i].id;
        h.tool_call_delta.name = s.msg.tool_calls[i].name;
        out.push_back(diff_to_json(h));
        s.sent_names.insert(i);
    };
    for (auto & d : all) {
        for (size_t i = 0; i < s.msg.tool_calls.size(); ++i) {
            if (s.sent_names.count(i) || s.msg.tool_calls[i].name.empty()) continue;
            if (d.tool_call_index != i || !d.tool_call_delta.arguments.empty()) header(i);
        }
        if (d.tool_call_index == std::string::npos) {
            out.push_back(diff_to_json(d));
            continue;
        }
        size_t i = d.tool_call_index;
        if (s.sent_names.count(i)) {
            if (!d.tool_call_delta.arguments.empty()) {
                d.tool_call_delta.name.clear();
                d.tool_call_delta.id.clear();
                out.push_back(diff_to_json(d));
            }
        } else if (!d.tool_call_delta.arguments.empty() || !is_partial) {
            d.tool_call_delta.name = s.msg.tool_calls[i].name;
            d.tool_call_delta.id = s.msg.tool_calls[i].id;
            out.push_back(diff_to_json(d));
            s.sent_names.insert(i);
        }
    }
    if (!is_partial) {
        for (size_t i = 0; i < s.msg.tool_calls.size(); ++i) {
            if (!s.sent_names.count(i) && !s.msg.tool_calls[i].name.empty()) header(i);
        }
    }
}

}  // namespace

extern "C" {

int32_t cs_chat_abi_version(void) { return CS_CHAT_ABI_VERSION; }

void cs_chat_free_string(char * s) { std::free(s); }

// model may be null (then template_src must be given); template_src overrides the model's template.
void * cs_chat_templates_init(const struct llama_model * model, const char * template_src, const char * bos,
                              const char * eos, char ** err) {
    try {
        auto ptr = common_chat_templates_init(model, template_src ? template_src : "", bos ? bos : "", eos ? eos : "");
        return ptr.release();
    } catch (const std::exception & e) {
        set_error(err, e.what());
        return nullptr;
    }
}

void cs_chat_templates_free(void * tmpls) { common_chat_templates_free(static_cast<common_chat_templates *>(tmpls)); }

// {"caps": {...}, "supports_thinking": bool, "source": "..."}
char * cs_chat_templates_info(void * handle) {
    auto * tmpls = static_cast<common_chat_templates *>(handle);
    common_json out = common_json::object();
    common_json caps = common_json::object();
    for (const auto & [k, v] : common_chat_templates_get_caps(tmpls)) caps[k] = v;
    out["caps"] = caps;
    out["supports_thinking"] = common_chat_templates_support_enable_thinking(tmpls);
    out["source"] = common_chat_templates_source(tmpls);
    out["tool_use_source"] = common_chat_templates_source(tmpls, "tool_use");
    return dup_string(out.dump_safe());
}

// The request half of llama-server's oaicompat_chat_params_parse: OpenAI-shaped messages and tools,
// tool_choice ("auto" | "none" | "required"), parallel_tool_calls, add_generation_prompt,
// enable_thinking, chat_template_kwargs (values as JSON), reasoning_format, json_schema. Absent fields
// take llama-server's defaults.
char * cs_chat_templates_apply(void * handle, const char * request_json, char ** err) {
    try {
        auto * tmpls = static_cast<common_chat_templates *>(handle);
        common_json body = common_json::parse(request_json);
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(body.at("messages"));
        if (body.contains("tools") && !body.at("tools").is_null()) {
            inputs.tools = common_chat_tools_parse_oaicompat(body.at("tools"));
        }
        inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
        auto caps = common_chat_templates_get_caps(tmpls);
        inputs.parallel_tool_calls = body.value("parallel_tool_calls", caps["supports_parallel_tool_calls"]);
        inputs.add_generation_prompt = body.value("add_generation_prompt", true);
        // llama-server's defaults: thinking on where the template has the switch, earlier turns' reasoning kept.
        inputs.enable_thinking = body.value("enable_thinking", common_chat_templates_support_enable_thinking(tmpls));
        inputs.chat_template_kwargs["preserve_reasoning"] = "true";
        inputs.reasoning_format = common_reasoning_format_from_name(body.value("reasoning_format", std::string("deepseek")));
        inputs.json_schema = body.value("json_schema", std::string());
        inputs.use_jinja = true;
        if (body.contains("chat_template_kwargs")) {
            for (const auto & item : body.at("chat_template_kwargs").items()) {
                inputs.chat_template_kwargs[item.key()] = item.value().dump();
            }
        }
        if (body.contains("now")) {
            inputs.now = std::chrono::system_clock::time_point(std::chrono::seconds(body.at("now").get<int64_t>()));
        }
        common_chat_params p = common_chat_templates_apply(tmpls, inputs);
        common_json out = common_json::object();
        out["prompt"] = p.prompt;
        out["format"] = std::string(common_chat_format_name(p.format));
        out["format_id"] = static_cast<int64_t>(p.format);
        out["grammar"] = p.grammar;
        out["grammar_lazy"] = p.grammar_lazy;
        out["generation_prompt"] = p.generation_prompt;
        out["supports_thinking"] = p.supports_thinking;
        out["thinking_start_tag"] = p.thinking_start_tag;
        out["thinking_end_tags"] = p.thinking_end_tags;
        common_json triggers = common_json::array();
        for (const auto & t : p.grammar_triggers) {
            common_json tj = common_json::object();
            tj["type"] = std::string(trigger_type_name(t.type));
            tj["value"] = t.value;
            tj["token"] = static_cast<int64_t>(t.token);
            triggers.push_back(tj);
        }
        out["grammar_triggers"] = triggers;
        out["preserved_tokens"] = p.preserved_tokens;
        out["additional_stops"] = p.additional_stops;
        out["parser"] = p.parser;
        return dup_string(out.dump_safe());
    } catch (const std::exception & e) {
        set_error(err, e.what());
        return nullptr;
    }
}

// params_json: {"format_id", "parser", "generation_prompt", "reasoning_format", "parse_tool_calls"}.
void * cs_chat_stream_new(const char * params_json, char ** err) {
    try {
        common_json j = common_json::parse(params_json);
        auto * s = new stream_state();
        s->params.format = static_cast<common_chat_format>(j.value("format_id", static_cast<int64_t>(0)));
        s->params.generation_prompt = j.value("generation_prompt", std::string());
        s->params.reasoning_format = common_reasoning_format_from_name(j.value("reasoning_format", std::string("deepseek")));
        s->params.parse_tool_calls = j.value("parse_tool_calls", true);
        std::string parser = j.value("parser", std::string());
        if (!parser.empty()) s->params.parser.load(parser);
        return s;
    } catch (const std::exception & e) {
        set_error(err, e.what());
        return nullptr;
    }
}

void cs_chat_stream_free(void * handle) { delete static_cast<stream_state *>(handle); }

// Appends text and re-parses everything generated so far; returns {"diffs": [...], "message": {...}}
// with the message only when final. A partial parse that fails changes nothing (more text may fix it);
// a final one that fails reports {"error"} and the caller decides what the text becomes.
char * cs_chat_stream_push(void * handle, const char * text, bool is_partial) {
    auto * s = static_cast<stream_state *>(handle);
    s->text += text;
    common_json out = common_json::object();
    common_json diffs = common_json::array();
    try {
        common_chat_msg prev = s->msg;
        common_chat_msg next = common_chat_parse(s->text, is_partial, s->params);
        if (!next.empty() || !is_partial) {
            next.set_tool_call_ids(s->ids, random_id);
            s->msg = next;
            auto all = common_chat_msg_diff::compute_diffs(prev, s->msg);
            filter_diffs(*s, all, is_partial, diffs);
        }
    } catch (const std::exception & e) {
        if (!is_partial) out["error"] = std::string(e.what());
    }
    out["diffs"] = diffs;
    if (!is_partial) out["message"] = msg_to_json(s->msg);
    return dup_string(out.dump_safe());
}

// One whole text at once (tests, non-streamed checks): the message, or {"error"}.
char * cs_chat_parse(const char * params_json, const char * text, bool is_partial) {
    char * err = nullptr;
    void * h = cs_chat_stream_new(params_json, &err);
    if (!h) {
        common_json out = common_json::object();
        out["error"] = std::string(err ? err : "bad parser params");
        std::free(err);
        return dup_string(out.dump_safe());
    }
    auto * s = static_cast<stream_state *>(h);
    common_json out = common_json::object();
    try {
        common_chat_msg msg = common_chat_parse(text, is_partial, s->params);
        out["message"] = msg_to_json(msg);
    } catch (const std::exception & e) {
        out["error"] = std::string(e.what());
    }
    delete s;
    return dup_string(out.dump_safe());
}

}  // extern "C"
