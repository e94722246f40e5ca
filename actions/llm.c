/*
 * llm.c - the `llm` action: ask a language model (OpenAI-compatible or
 * Anthropic) and return its reply, optionally as JSON checked against a
 * schema.  See llm_int.h for the files, the wire formats, the failure kinds
 * and the limits.
 *
 * with: provider (required: openai or anthropic), base_url (default: the
 * provider's own, a trailing slash dropped), model (required), api_key,
 * system, prompt or messages (exactly one; messages is a list of {role,
 * content}), schema, temperature, max_tokens, timeout (a duration bounding
 * the whole call, retries included; the step's deadline applies too, and
 * CAIRN_LLM_TIMEOUT_DEFAULT_MS when there is neither).  A field that is null
 * counts as absent; an empty api_key sends no key.
 *
 * output: text, json (with schema), model (as the server reports it),
 * usage {input_tokens, output_tokens}, finish_reason, requests (HTTP
 * requests made: more than 1 when 429/5xx replies were retried).
 *
 * Retries inside the attempt: on 429 or 5xx the request is sent again, up
 * to CAIRN_LLM_MAX_TRIES requests, after the server's retry-after-ms or
 * retry-after (seconds or an HTTP date), or else CAIRN_LLM_RETRY_DELAY_MS
 * doubling; the wait is cut in stop-aware slices, and a wait that would pass
 * the deadline or exceed CAIRN_LLM_RETRY_AFTER_MAX_MS is not started.
 */
#include "actions/llm_int.h"
#include "common/json.h"
#include "actions/with.h"
#include "actions/proc.h"
#include "common/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cairn_field_sig llm_fields[] = {
    {"provider", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"base_url", CAIRN_FIELD_STRING, 0},
    {"model", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"api_key", CAIRN_FIELD_STRING, 0},
    {"system", CAIRN_FIELD_STRING, 0},
    {"prompt", CAIRN_FIELD_STRING, 0},
    {"messages", CAIRN_FIELD_ARRAY, 0},
    {"schema", CAIRN_FIELD_OBJECT, 0},
    {"temperature", CAIRN_FIELD_NUMBER, 0},
    {"max_tokens", CAIRN_FIELD_INTEGER, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {NULL, 0, 0},
};

/* A constant provider is one Cairn speaks (load time). */
static void llm_check(cairn_wcheck *w) { cairn_wcheck_enum(w, "provider", "openai,anthropic", 0); }

static const cairn_action_sig llm_sig = {
    .name = "llm", .fields = llm_fields, .one_of = "prompt|messages", .check = llm_check};

/* ---- small helpers ------------------------------------------------------ */

jv cairn__llm_get(jv obj, const char *key, jv_kind k) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return jv_invalid();
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    if (jv_get_kind(v) == k) return v;
    jv_free(v);
    return jv_invalid();
}

void cairn__llm_reply_free(llm_reply *r) {
    jv_free(r->text);
    jv_free(r->model);
    jv_free(r->finish_reason);
    jv_free(r->input_tokens);
    jv_free(r->output_tokens);
}

static void secret_free(char *s) {
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

static void job_free(llm_job *j) {
    if (j == NULL) return;
    free(j->url);
    free(j->body);
    for (int i = 0; j->headers[i]; i++) secret_free(j->headers[i]);
    secret_free(j->api_key);
    cairn_jschema_free(j->schema);
    cairn__llm_http_resp_free(&j->resp);
    free(j);
}

/* s with every occurrence of key replaced by "***" (a new string). */
static char *scrub(const char *s, const char *key) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "");
    size_t klen = key ? strlen(key) : 0;
    const char *hit;
    while (klen && (hit = strstr(s, key)) != NULL) {
        cairn_buf_append(&b, s, (size_t)(hit - s));
        cairn_buf_puts(&b, "***");
        s = hit + klen;
    }
    cairn_buf_puts(&b, s);
    return cairn_buf_detach(&b);
}

static void scrub_fail(cairn_fail *f, const char *key) {
    char *clean = scrub(f->message, key);
    snprintf(f->message, sizeof f->message, "%s", clean);
    free(clean);
}

/* with[name], or jv_invalid() when absent or null. */
/* An optional field of kind k (consumed on failure). */
static int typed(jv with, const char *name, jv_kind k, const char *what, jv *out,
                 cairn_fail *f) {
    *out = cairn_with_get(with, name);
    if (!jv_is_valid(*out) || jv_get_kind(*out) == k) return 0;
    int rc = cairn_fail_set(f, "schema", "llm: %s must be %s, not %s", name, what,
                            jv_kind_name(jv_get_kind(*out)));
    jv_free(*out);
    *out = jv_invalid();
    return rc;
}

/* ---- reading `with` ----------------------------------------------------- */

static int read_provider(jv with, llm_job *j, cairn_fail *f) {
    jv p;
    int rc = typed(with, "provider", JV_KIND_STRING, "a string", &p, f);
    if (rc == 0 && !jv_is_valid(p))
        rc = cairn_fail_set(f, "schema", "llm: provider is required (openai or anthropic)");
    else if (rc == 0 && strcmp(jv_string_value(p), "openai") == 0)
        j->prov = &cairn__llm_openai;
    else if (rc == 0 && strcmp(jv_string_value(p), "anthropic") == 0)
        j->prov = &cairn__llm_anthropic;
    else if (rc == 0)
        rc = cairn_fail_set(f, "schema", "llm: provider must be openai or anthropic, not '%s'",
                            jv_string_value(p));
    jv_free(p);
    return rc;
}

/* base_url (or the provider's) without trailing slashes, then the path. */
static int read_url(jv with, llm_job *j, cairn_fail *f) {
    jv b;
    if (typed(with, "base_url", JV_KIND_STRING, "a string", &b, f) != 0) return -1;
    const char *base = jv_is_valid(b) ? jv_string_value(b) : j->prov->default_base_url;
    size_t n = strlen(base);
    int rc = 0;
    while (n > 0 && base[n - 1] == '/') n--;
    if (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0)
        rc = cairn_fail_set(f, "schema", "llm: base_url must start with http:// or https://");
    else if (strpbrk(base, " \t\r\n"))
        rc = cairn_fail_set(f, "schema", "llm: base_url must not contain spaces or line breaks");
    else
        j->url = cairn_sprintf("%.*s%s", (int)n, base, j->prov->path);
    jv_free(b);
    return rc;
}

static int read_key(jv with, llm_job *j, cairn_fail *f) {
    jv k;
    if (typed(with, "api_key", JV_KIND_STRING, "a string", &k, f) != 0) return -1;
    int rc = 0, n = 0;
    if (jv_is_valid(k) && jv_string_value(k)[0]) {
        const char *key = jv_string_value(k);
        if (strpbrk(key, "\r\n") || strlen(key) != (size_t)jv_string_length_bytes(jv_copy(k)))
            rc = cairn_fail_set(f, "schema", "llm: api_key must not contain line breaks "
                                "or NUL bytes");
        else {
            j->api_key = cairn_strdup(key);
            j->headers[n++] = cairn_sprintf("%s%s", j->prov->auth_prefix, key);
        }
    }
    if (j->prov->extra_header) j->headers[n++] = cairn_strdup(j->prov->extra_header);
    jv_free(k);
    return rc;
}

static bool role_ok(const llm_provider *p, const char *role) {
    if (p->roles == NULL) return role[0] != '\0';
    for (const char *const *r = p->roles; *r; r++)
        if (strcmp(*r, role) == 0) return true;
    return false;
}

/* One element of messages (borrowed): {role, content} and nothing else. */
static int check_message(const llm_provider *p, jv m, int i, cairn_fail *f) {
    if (jv_get_kind(m) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "llm: messages[%d] must be a map {role, content}", i);
    jv role = cairn__llm_get(m, "role", JV_KIND_STRING);
    jv content = jv_object_get(jv_copy(m), jv_string("content"));
    jv_kind ck = jv_get_kind(content);
    int rc = 0;
    if (jv_object_length(jv_copy(m)) != 2 || !jv_is_valid(role) || !jv_is_valid(content))
        rc = cairn_fail_set(f, "schema", "llm: messages[%d] must have exactly the keys role and "
                            "content", i);
    else if (!role_ok(p, jv_string_value(role)))
        rc = cairn_fail_set(f, "schema", "llm: messages[%d].role '%s': %s", i,
                            jv_string_value(role), p->roles_hint ? p->roles_hint : "empty");
    else if (ck != JV_KIND_STRING && ck != JV_KIND_ARRAY)
        rc = cairn_fail_set(f, "schema", "llm: messages[%d].content must be a string (or a list "
                            "of content parts), not %s", i, jv_kind_name(ck));
    jv_free(role);
    jv_free(content);
    return rc;
}

/* prompt (one user message) or messages, exactly one, into r->messages. */
static int read_messages(jv with, const llm_provider *p, llm_req *r, cairn_fail *f) {
    jv prompt, msgs;
    if (typed(with, "prompt", JV_KIND_STRING, "a string", &prompt, f) != 0) return -1;
    if (typed(with, "messages", JV_KIND_ARRAY, "a list", &msgs, f) != 0) {
        jv_free(prompt);
        return -1;
    }
    int rc = 0;
    if (jv_is_valid(prompt) == jv_is_valid(msgs))
        rc = cairn_fail_set(f, "schema", "llm needs exactly one of prompt and messages");
    else if (jv_is_valid(prompt))
        r->messages = jv_array_append(jv_array(), jv_object_set(
            jv_object_set(jv_object(), jv_string("role"), jv_string("user")),
            jv_string("content"), jv_copy(prompt)));
    else if (jv_array_length(jv_copy(msgs)) == 0)
        rc = cairn_fail_set(f, "schema", "llm: messages must not be empty");
    for (int i = 0; rc == 0 && jv_is_valid(msgs) && i < jv_array_length(jv_copy(msgs)); i++) {
        jv m = jv_array_get(jv_copy(msgs), i);
        rc = check_message(p, m, i, f);
        jv_free(m);
    }
    if (rc == 0 && jv_is_valid(msgs)) r->messages = jv_copy(msgs);
    jv_free(prompt);
    jv_free(msgs);
    return rc;
}

static int read_schema(jv with, llm_job *j, llm_req *r, cairn_fail *f) {
    if (typed(with, "schema", JV_KIND_OBJECT, "a map (a JSON Schema)", &r->schema, f) != 0)
        return -1;
    if (!jv_is_valid(r->schema)) return 0;
    jv type = cairn__llm_get(r->schema, "type", JV_KIND_STRING);
    bool object = jv_is_valid(type) && strcmp(jv_string_value(type), "object") == 0;
    jv_free(type);
    if (!object)
        return cairn_fail_set(f, "schema", "llm: schema must say type: object at its root "
                              "(both providers take only an object there)");
    cairn_err err;
    cairn_err_clear(&err);
    if (cairn_jschema_new(r->schema, &j->schema, &err) != 0)
        return cairn_fail_set(f, "schema", "llm: %s", err.msg);
    return 0;
}

static int read_numbers(jv with, llm_req *r, cairn_fail *f) {
    if (typed(with, "temperature", JV_KIND_NUMBER, "a number", &r->temperature, f) != 0 ||
        typed(with, "max_tokens", JV_KIND_NUMBER, "an integer", &r->max_tokens, f) != 0)
        return -1;
    double t = jv_is_valid(r->temperature) ? jv_number_value(r->temperature) : 0;
    double m = jv_is_valid(r->max_tokens) ? jv_number_value(r->max_tokens) : 1;
    if (!(t >= 0) || !isfinite(t))     /* NaN too; providers check their own range */
        return cairn_fail_set(f, "schema", "llm: temperature must be a number of 0 or more");
    if (!(m >= 1 && m <= 1e9) || m != (double)(int64_t)m)
        return cairn_fail_set(f, "schema", "llm: max_tokens must be a whole number from 1 to "
                              "1000000000");
    return 0;
}

static int read_request(jv with, llm_job *j, llm_req *r, cairn_fail *f) {
    jv model;
    if (typed(with, "model", JV_KIND_STRING, "a string", &model, f) != 0) return -1;
    if (!jv_is_valid(model) || jv_string_value(model)[0] == '\0') {
        jv_free(model);
        return cairn_fail_set(f, "schema", "llm: model is required");
    }
    r->model = model;
    if (typed(with, "system", JV_KIND_STRING, "a string", &r->system, f) != 0) return -1;
    if (jv_is_valid(r->system) && jv_string_value(r->system)[0] == '\0') {
        jv_free(r->system);
        r->system = jv_invalid();
    }
    return read_messages(with, j->prov, r, f) || read_schema(with, j, r, f) ||
           read_numbers(with, r, f) ? -1 : 0;
}

static void req_free(llm_req *r) {
    jv_free(r->model);
    jv_free(r->system);
    jv_free(r->messages);
    jv_free(r->schema);
    jv_free(r->temperature);
    jv_free(r->max_tokens);
}

/* ---- prepare ------------------------------------------------------------ */

static int build_body(llm_job *j, const llm_req *r, cairn_fail *f) {
    jv text = jv_dump_string(j->prov->build(r), 0);
    j->body_len = (size_t)jv_string_length_bytes(jv_copy(text));
    j->body = cairn_strndup(jv_string_value(text), j->body_len);
    jv_free(text);
    if (j->body_len > CAIRN_LLM_REQUEST_MAX)
        return cairn_fail_set(f, "size", "llm: the request is %zu bytes, more than %d",
                              j->body_len, CAIRN_LLM_REQUEST_MAX);
    return 0;
}

static int llm_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    (void)info;
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "llm: with must be a map");
    llm_job *j = cairn_calloc(1, sizeof *j);
    llm_req r = {jv_invalid(), jv_invalid(), jv_invalid(), jv_invalid(), jv_invalid(),
                 jv_invalid()};
    j->resp.retry_after_ms = -1;
    int rc = cairn_with_keys(with, &llm_sig, f) || read_provider(with, j, f) || read_url(with, j, f) ||
             read_key(with, j, f) || read_request(with, j, &r, f) ||
             cairn_with_duration(with, "timeout", &j->timeout_ms, f) || build_body(j, &r, f) ? -1 : 0;
    req_free(&r);
    if (rc != 0) {
        scrub_fail(f, j->api_key);
        job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

/* ---- execute (worker thread: no jv) ------------------------------------- */

static int64_t effective_deadline(const llm_job *j, const cairn_attempt_info *info) {
    int64_t now = cairn_now_ms();
    if (j->timeout_ms == 0)
        return info->deadline_ms ? info->deadline_ms : now + CAIRN_LLM_TIMEOUT_DEFAULT_MS;
    int64_t d = now + j->timeout_ms;
    return info->deadline_ms && info->deadline_ms < d ? info->deadline_ms : d;
}

static bool retryable(long status) { return status == 429 || (status >= 500 && status <= 599); }

/* After a retryable status: wait as the server asked (or back off), unless
 * that cannot end well.  Returns true when the request should be sent again. */
static bool wait_to_retry(llm_job *j, int64_t deadline, const cairn_stop *stop) {
    int64_t wait = j->resp.retry_after_ms >= 0 ? j->resp.retry_after_ms
                                               : (int64_t)CAIRN_LLM_RETRY_DELAY_MS
                                                     << (j->requests - 1);
    if (wait > CAIRN_LLM_RETRY_AFTER_MAX_MS) {
        snprintf(j->gave_up, sizeof j->gave_up, "the server asked to wait %lld s, more than "
                 "the %d s this action waits", (long long)(wait / 1000),
                 CAIRN_LLM_RETRY_AFTER_MAX_MS / 1000);
        return false;
    }
    if (cairn_now_ms() + wait >= deadline) {
        snprintf(j->gave_up, sizeof j->gave_up, "waiting %lld ms to retry would pass the "
                 "deadline", (long long)wait);
        return false;
    }
    if (cairn__llm_sleep(wait, stop) != 0) {
        j->failed = true;
        cairn_fail_set(&j->fail, "cancelled", "stop requested while waiting to retry after "
                       "HTTP %ld", j->resp.status);
        return false;
    }
    return true;
}

static void llm_execute(void *job, const cairn_attempt_info *info) {
    llm_job *j = job;
    llm_http_req req = {j->url, (const char *const *)j->headers, j->body, j->body_len,
                        effective_deadline(j, info), info->stop};
    for (j->requests = 1;; j->requests++) {
        cairn__llm_http_resp_free(&j->resp);
        if (cairn__llm_http_post(&req, &j->resp, &j->fail) != 0) {
            j->failed = true;
            return;
        }
        if (!retryable(j->resp.status) || j->requests >= CAIRN_LLM_MAX_TRIES ||
            !wait_to_retry(j, req.deadline_ms, info->stop))
            return;
    }
}

/* ---- finish ------------------------------------------------------------- */

/* The provider's error text from an error reply: error.message (with
 * error.type), or a plain error/message/detail string, or the start of the
 * body itself. */
static void error_text(const llm_http_resp *resp, char *out, size_t outlen) {
    jv body = cairn_json_parse(resp->body.data ? resp->body.data : "", resp->body.len);
    jv err = cairn__llm_get(body, "error", JV_KIND_OBJECT);
    jv msg = cairn__llm_get(err, "message", JV_KIND_STRING);
    jv type = cairn__llm_get(err, "type", JV_KIND_STRING);
    const char *alt[] = {"error", "message", "detail"};
    for (size_t i = 0; i < 3 && !jv_is_valid(msg); i++)
        msg = cairn__llm_get(body, alt[i], JV_KIND_STRING);
    if (jv_is_valid(msg) && jv_is_valid(type))
        snprintf(out, outlen, "%.*s (%s)", CAIRN_LLM_ERROR_TEXT_MAX, jv_string_value(msg),
                 jv_string_value(type));
    else if (jv_is_valid(msg))
        snprintf(out, outlen, "%.*s", CAIRN_LLM_ERROR_TEXT_MAX, jv_string_value(msg));
    else {
        cairn_buf fixed = CAIRN_BUF_INIT;
        size_t n = resp->body.len < CAIRN_LLM_ERROR_TEXT_MAX ? resp->body.len
                                                              : CAIRN_LLM_ERROR_TEXT_MAX;
        cairn_utf8_repair(&fixed, resp->body.data ? resp->body.data : "", n, true);
        for (size_t i = 0; i < fixed.len; i++)
            if ((unsigned char)fixed.data[i] < ' ') fixed.data[i] = ' ';
        snprintf(out, outlen, "%s", fixed.len ? fixed.data : "(empty body)");
        cairn_buf_free(&fixed);
    }
    jv_free(body);
    jv_free(err);
    jv_free(msg);
    jv_free(type);
}

static int judge_status(llm_job *j, cairn_fail *f) {
    char detail[CAIRN_LLM_ERROR_TEXT_MAX + 160], after[64] = "";
    long st = j->resp.status;
    error_text(&j->resp, detail, sizeof detail);
    if (j->requests > 1) snprintf(after, sizeof after, " (after %d requests)", j->requests);
    return cairn_fail_set(f, st == 401 || st == 403 ? "auth" : "status",
                          "HTTP %ld from %s%s: %s%s%s", st, j->url, after, detail,
                          j->gave_up[0] ? "; not retried: " : "", j->gave_up);
}

static bool json_content_type(const char *ct) {
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ') n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
            strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* A model's JSON text, without the ```json fence some servers wrap it in. */
static jv unfence(jv text) {
    const char *s = jv_string_value(text);
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1])) n--;
    while (*s && strchr(" \t\r\n", *s)) s++, n--;
    if (n < 6 || strncmp(s, "```", 3) != 0 || strncmp(s + n - 3, "```", 3) != 0) return text;
    const char *nl = memchr(s, '\n', n), *end = s + n - 3;
    if (nl == NULL) return text;
    while (end > nl + 1 && strchr(" \t\r\n", end[-1])) end--;
    jv inner = jv_string_sized(nl + 1, (int)(end - (nl + 1)));
    jv_free(text);
    return inner;
}

/* With a schema: *text is JSON matching it; *json receives it parsed. */
static int structured(llm_job *j, jv *text, const llm_reply *r, jv *json, cairn_fail *f) {
    *text = unfence(*text);
    *json = cairn_json_parse(jv_string_value(*text),
                             (size_t)jv_string_length_bytes(jv_copy(*text)));
    if (!jv_is_valid(*json)) {
        jv msg = jv_invalid_get_msg(*json);
        const char *fr = jv_get_kind(r->finish_reason) == JV_KIND_STRING
                             ? jv_string_value(r->finish_reason) : "null";
        cairn_fail_set(f, "schema", "the reply is not JSON (%s; finish_reason %s)",
                       jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "empty", fr);
        jv_free(msg);
        *json = jv_invalid();
        return -1;
    }
    cairn_err err;
    cairn_err_clear(&err);
    if (cairn_jschema_check(j->schema, *json, &err) != 0)
        return cairn_fail_set(f, "schema", "the reply does not match the schema: %s", err.msg);
    return 0;
}

static jv reply_output(llm_reply *r, jv text, jv json, int requests) {
    jv usage = jv_object_set(jv_object(), jv_string("input_tokens"), jv_copy(r->input_tokens));
    usage = jv_object_set(usage, jv_string("output_tokens"), jv_copy(r->output_tokens));
    jv out = jv_object_set(jv_object(), jv_string("text"), text);
    if (jv_is_valid(json)) out = jv_object_set(out, jv_string("json"), json);
    out = jv_object_set(out, jv_string("model"), jv_copy(r->model));
    out = jv_object_set(out, jv_string("usage"), usage);
    out = jv_object_set(out, jv_string("finish_reason"), jv_copy(r->finish_reason));
    return jv_object_set(out, jv_string("requests"), jv_number(requests));
}

/* v with key replaced by "***" in every string and object key (consumed). */
static jv scrub_jv(jv v, const char *key) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_STRING && strstr(jv_string_value(v), key)) {
        char *clean = scrub(jv_string_value(v), key);
        jv_free(v);
        v = jv_string(clean);
        free(clean);
    } else if (k == JV_KIND_ARRAY) {
        for (int i = 0; i < jv_array_length(jv_copy(v)); i++)
            v = jv_array_set(v, i, scrub_jv(jv_array_get(jv_copy(v), i), key));
    } else if (k == JV_KIND_OBJECT) {
        jv out = jv_object();
        jv_object_foreach(v, name, x) out = jv_object_set(out, scrub_jv(name, key),
                                                          scrub_jv(x, key));
        jv_free(v);
        v = out;
    }
    return v;
}

/* A 2xx reply: the provider's JSON, its text, checked against the schema. */
static int judge_reply(llm_job *j, jv *output, cairn_fail *f) {
    const llm_http_resp *resp = &j->resp;
    if (!json_content_type(resp->content_type))
        return cairn_fail_set(f, "protocol", "HTTP %ld from %s with content type '%s', not "
                              "application/json", resp->status, j->url,
                              resp->content_type[0] ? resp->content_type : "(none)");
    jv body = cairn_json_parse(resp->body.data ? resp->body.data : "", resp->body.len);
    if (!jv_is_valid(body)) {
        jv msg = jv_invalid_get_msg(body);
        int rc = cairn_fail_set(f, "protocol", "the reply from %s is not valid JSON (%s, %zu "
                                "bytes)", j->url, jv_get_kind(msg) == JV_KIND_STRING
                                ? jv_string_value(msg) : "empty", resp->body.len);
        jv_free(msg);
        return rc;
    }
    llm_reply r = {jv_invalid(), jv_null(), jv_null(), jv_null(), jv_null()};
    jv text = jv_invalid(), json = jv_invalid();
    int rc = j->prov->parse(body, j->schema != NULL, &r, f);
    if (rc == 0) text = jv_copy(r.text);
    if (rc == 0 && j->schema) rc = structured(j, &text, &r, &json, f);
    if (rc == 0) {
        *output = reply_output(&r, text, json, j->requests);
        if (j->api_key) *output = scrub_jv(*output, j->api_key);
    } else {
        jv_free(text);
        jv_free(json);
    }
    cairn__llm_reply_free(&r);
    jv_free(body);
    return rc;
}

static int llm_finish(void *job, jv *output, cairn_fail *f) {
    llm_job *j = job;
    int rc;
    if (j->failed)
        rc = cairn_fail_set(f, j->fail.kind, "%s", j->fail.message);
    else if (j->resp.status >= 200 && j->resp.status <= 299)
        rc = judge_reply(j, output, f);
    else
        rc = judge_status(j, f);
    if (rc != 0) scrub_fail(f, j->api_key);
    job_free(j);
    return rc;
}

static void llm_discard(void *job) { job_free(job); }

const cairn_action cairn_action_llm = {
    .sig = &llm_sig,
    .flags = 0,
    .prepare = llm_prepare,
    .execute = llm_execute,
    .finish = llm_finish,
    .discard = llm_discard,
};
