/*
 * llm_openai.c - the OpenAI chat completions wire format, as every
 * OpenAI-compatible server speaks it.
 *
 * Request: POST {base_url}/chat/completions with "Authorization: Bearer
 * <key>" and {model, messages (the system prompt first, as a system
 * message), temperature, max_tokens, response_format}.  max_tokens is the
 * field compatible servers know (OpenAI's newer max_completion_tokens is not
 * sent).  A schema becomes response_format {type: json_schema, json_schema:
 * {name: "reply", schema, strict: true}}; note that OpenAI's strict mode asks
 * for additionalProperties: false and every property listed in required.
 *
 * Reply: choices[0].message.content is the text (null counts as ""),
 * choices[0].finish_reason the finish reason; usage.prompt_tokens and
 * usage.completion_tokens become input_tokens and output_tokens (null when a
 * server leaves usage out).  A message.refusal fails with kind "refused".
 */
#include "actions/llm_int.h"

static jv openai_build(const llm_req *r) {
    jv msgs = jv_array();
    if (jv_is_valid(r->system))
        msgs = jv_array_append(msgs, jv_object_set(jv_object_set(jv_object(), jv_string("role"),
                                                                 jv_string("system")),
                                                   jv_string("content"), jv_copy(r->system)));
    msgs = jv_array_concat(msgs, jv_copy(r->messages));
    jv body = jv_object_set(jv_object(), jv_string("model"), jv_copy(r->model));
    body = jv_object_set(body, jv_string("messages"), msgs);
    if (jv_is_valid(r->temperature))
        body = jv_object_set(body, jv_string("temperature"), jv_copy(r->temperature));
    if (jv_is_valid(r->max_tokens))
        body = jv_object_set(body, jv_string("max_tokens"), jv_copy(r->max_tokens));
    if (jv_is_valid(r->schema)) {
        jv js = jv_object_set(jv_object(), jv_string("name"), jv_string(CAIRN_LLM_REPLY_NAME));
        js = jv_object_set(js, jv_string("schema"), jv_copy(r->schema));
        js = jv_object_set(js, jv_string("strict"), jv_true());
        jv rf = jv_object_set(jv_object(), jv_string("type"), jv_string("json_schema"));
        body = jv_object_set(body, jv_string("response_format"),
                             jv_object_set(rf, jv_string("json_schema"), js));
    }
    return body;
}

/* usage.prompt_tokens / completion_tokens, null when absent. */
static void openai_usage(jv body, llm_reply *out) {
    jv usage = cairn__llm_get(body, "usage", JV_KIND_OBJECT);
    jv in = jv_is_valid(usage) ? cairn__llm_get(usage, "prompt_tokens", JV_KIND_NUMBER)
                               : jv_invalid();
    jv outk = jv_is_valid(usage) ? cairn__llm_get(usage, "completion_tokens", JV_KIND_NUMBER)
                                 : jv_invalid();
    out->input_tokens = jv_is_valid(in) ? in : jv_null();
    out->output_tokens = jv_is_valid(outk) ? outk : jv_null();
    jv_free(usage);
}

/* message.content: a string, or null ("", unless the model refused). */
static int openai_content(jv msg, llm_reply *out, cairn_fail *f) {
    jv content = jv_object_get(jv_copy(msg), jv_string("content"));
    jv refusal = cairn__llm_get(msg, "refusal", JV_KIND_STRING);
    int rc = 0;
    if (jv_is_valid(refusal))
        rc = cairn_fail_set(f, "refused", "the model refused: %.*s", CAIRN_LLM_ERROR_TEXT_MAX,
                            jv_string_value(refusal));
    else if (jv_get_kind(content) == JV_KIND_STRING)
        out->text = jv_copy(content);
    else if (jv_get_kind(content) == JV_KIND_NULL || !jv_is_valid(content))
        out->text = jv_string("");
    else
        rc = cairn_fail_set(f, "protocol", "choices[0].message.content is %s, not a string",
                            jv_kind_name(jv_get_kind(content)));
    jv_free(content);
    jv_free(refusal);
    return rc;
}

static int openai_parse(jv body, bool schema, llm_reply *out, cairn_fail *f) {
    (void)schema;                      /* the content is the JSON text */
    jv choices = cairn__llm_get(body, "choices", JV_KIND_ARRAY);
    jv c0 = jv_is_valid(choices) && jv_array_length(jv_copy(choices)) > 0
                ? jv_array_get(jv_copy(choices), 0) : jv_invalid();
    jv msg = jv_get_kind(c0) == JV_KIND_OBJECT ? cairn__llm_get(c0, "message", JV_KIND_OBJECT)
                                               : jv_invalid();
    int rc;
    if (!jv_is_valid(msg)) {
        rc = cairn_fail_set(f, "protocol", "the reply has no choices[0].message");
    } else if ((rc = openai_content(msg, out, f)) == 0) {
        jv fr = cairn__llm_get(c0, "finish_reason", JV_KIND_STRING);
        jv model = cairn__llm_get(body, "model", JV_KIND_STRING);
        out->finish_reason = jv_is_valid(fr) ? fr : jv_null();
        out->model = jv_is_valid(model) ? model : jv_null();
        openai_usage(body, out);
    }
    jv_free(choices);
    jv_free(c0);
    jv_free(msg);
    return rc;
}

const llm_provider cairn__llm_openai = {
    .name = "openai",
    .default_base_url = "https://api.openai.com/v1",
    .path = "/chat/completions",
    .auth_prefix = "Authorization: Bearer ",
    .extra_header = NULL,
    .roles = NULL,
    .roles_hint = NULL,
    .build = openai_build,
    .parse = openai_parse,
};
