/*
 * llm_anthropic.c - the Anthropic messages wire format.
 *
 * Request: POST {base_url}/v1/messages with "x-api-key: <key>" and
 * "anthropic-version: 2023-06-01", and {model, max_tokens (required by the
 * API: CAIRN_LLM_MAX_TOKENS_DEFAULT when not given), system (top-level, not
 * a message), messages, temperature}.  Message roles are "user" and
 * "assistant" only.
 *
 * Structured replies: the API has no response format, so a schema becomes a
 * forced tool, tools [{name: "reply", description, input_schema: schema}]
 * and tool_choice {type: tool, name: "reply"}; the model must answer by
 * "calling" it, and the tool_use block's input is the reply.
 *
 * Reply: the text blocks of content, joined, are the text (with a schema,
 * the compact JSON of the tool input); stop_reason is the finish reason;
 * usage.input_tokens and usage.output_tokens pass through.
 */
#include "actions/llm_int.h"

#include <string.h>

#define ANTHROPIC_TOOL_DESCRIPTION \
    "Give your whole answer by calling this tool; its input is the answer."

static const char *const anthropic_roles[] = {"user", "assistant", NULL};

static jv anthropic_tools(jv schema) {
    jv tool = jv_object_set(jv_object(), jv_string("name"), jv_string(CAIRN_LLM_REPLY_NAME));
    tool = jv_object_set(tool, jv_string("description"), jv_string(ANTHROPIC_TOOL_DESCRIPTION));
    tool = jv_object_set(tool, jv_string("input_schema"), schema);
    return jv_array_append(jv_array(), tool);
}

static jv anthropic_build(const llm_req *r) {
    jv body = jv_object_set(jv_object(), jv_string("model"), jv_copy(r->model));
    body = jv_object_set(body, jv_string("max_tokens"),
                         jv_is_valid(r->max_tokens) ? jv_copy(r->max_tokens)
                                                    : jv_number(CAIRN_LLM_MAX_TOKENS_DEFAULT));
    if (jv_is_valid(r->system)) body = jv_object_set(body, jv_string("system"), jv_copy(r->system));
    body = jv_object_set(body, jv_string("messages"), jv_copy(r->messages));
    if (jv_is_valid(r->temperature))
        body = jv_object_set(body, jv_string("temperature"), jv_copy(r->temperature));
    if (jv_is_valid(r->schema)) {
        body = jv_object_set(body, jv_string("tools"), anthropic_tools(jv_copy(r->schema)));
        jv choice = jv_object_set(jv_object(), jv_string("type"), jv_string("tool"));
        choice = jv_object_set(choice, jv_string("name"), jv_string(CAIRN_LLM_REPLY_NAME));
        body = jv_object_set(body, jv_string("tool_choice"), choice);
    }
    return body;
}

/* Walk the content blocks: join the text blocks into *text, and give the
 * input of the tool_use block for our tool in *input (invalid when none). */
static int anthropic_blocks(jv content, jv *text, jv *input, cairn_fail *f) {
    int rc = 0;
    *text = jv_string("");
    *input = jv_invalid();
    jv_array_foreach(content, i, block) {
        jv type = cairn__llm_get(block, "type", JV_KIND_STRING);
        const char *t = jv_is_valid(type) ? jv_string_value(type) : "";
        jv s = cairn__llm_get(block, "text", JV_KIND_STRING);
        jv name = cairn__llm_get(block, "name", JV_KIND_STRING);
        if (rc == 0 && strcmp(t, "text") == 0 && !jv_is_valid(s))
            rc = cairn_fail_set(f, "protocol", "content[%d] is a text block without text", i);
        else if (rc == 0 && strcmp(t, "text") == 0)
            *text = jv_string_concat(*text, jv_copy(s));
        else if (rc == 0 && strcmp(t, "tool_use") == 0 && !jv_is_valid(*input) &&
                 jv_is_valid(name) && strcmp(jv_string_value(name), CAIRN_LLM_REPLY_NAME) == 0)
            *input = jv_object_get(jv_copy(block), jv_string("input"));
        jv_free(type);
        jv_free(s);
        jv_free(name);
        jv_free(block);
    }
    return rc;
}

static void anthropic_meta(jv body, llm_reply *out) {
    jv stop = cairn__llm_get(body, "stop_reason", JV_KIND_STRING);
    jv model = cairn__llm_get(body, "model", JV_KIND_STRING);
    jv usage = cairn__llm_get(body, "usage", JV_KIND_OBJECT);
    jv in = jv_is_valid(usage) ? cairn__llm_get(usage, "input_tokens", JV_KIND_NUMBER)
                               : jv_invalid();
    jv outk = jv_is_valid(usage) ? cairn__llm_get(usage, "output_tokens", JV_KIND_NUMBER)
                                 : jv_invalid();
    out->finish_reason = jv_is_valid(stop) ? stop : jv_null();
    out->model = jv_is_valid(model) ? model : jv_null();
    out->input_tokens = jv_is_valid(in) ? in : jv_null();
    out->output_tokens = jv_is_valid(outk) ? outk : jv_null();
    jv_free(usage);
}

/* With a schema the reply is the tool input, as compact JSON text. */
static int anthropic_structured(jv input, jv body, llm_reply *out, cairn_fail *f) {
    if (jv_get_kind(input) == JV_KIND_OBJECT) {
        out->text = jv_dump_string(jv_copy(input), 0);
        return 0;
    }
    jv stop = cairn__llm_get(body, "stop_reason", JV_KIND_STRING);
    int rc = jv_is_valid(input)
                 ? cairn_fail_set(f, "schema", "the %s tool input is %s, not an object",
                                  CAIRN_LLM_REPLY_NAME, jv_kind_name(jv_get_kind(input)))
                 : cairn_fail_set(f, "schema", "the reply has no tool_use block for the %s "
                                  "tool (stop_reason %s)", CAIRN_LLM_REPLY_NAME,
                                  jv_is_valid(stop) ? jv_string_value(stop) : "null");
    jv_free(stop);
    return rc;
}

static int anthropic_parse(jv body, bool schema, llm_reply *out, cairn_fail *f) {
    jv type = cairn__llm_get(body, "type", JV_KIND_STRING);
    jv content = cairn__llm_get(body, "content", JV_KIND_ARRAY);
    jv text = jv_invalid(), input = jv_invalid();
    int rc = 0;
    if (jv_is_valid(type) && strcmp(jv_string_value(type), "message") != 0)
        rc = cairn_fail_set(f, "protocol", "the reply is of type \"%s\", not \"message\"",
                            jv_string_value(type));
    else if (!jv_is_valid(content))
        rc = cairn_fail_set(f, "protocol", "the reply has no content list");
    else if ((rc = anthropic_blocks(content, &text, &input, f)) == 0 && schema)
        rc = anthropic_structured(input, body, out, f);
    else if (rc == 0)
        out->text = jv_copy(text);
    if (rc == 0) anthropic_meta(body, out);
    jv_free(type);
    jv_free(content);
    jv_free(text);
    jv_free(input);
    return rc;
}

const llm_provider cairn__llm_anthropic = {
    .name = "anthropic",
    .default_base_url = "https://api.anthropic.com",
    .path = "/v1/messages",
    .auth_prefix = "x-api-key: ",
    .extra_header = "anthropic-version: " CAIRN_LLM_ANTHROPIC_VERSION,
    .roles = anthropic_roles,
    .roles_hint = "anthropic takes \"user\" or \"assistant\" (give a system prompt in `system`)",
    .build = anthropic_build,
    .parse = anthropic_parse,
};
