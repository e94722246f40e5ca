/*
 * The `llm` action against the stand-in server (tests/servers/llm_standin.py)
 * on 127.0.0.1, driven as the engine drives it: prepare and finish on this
 * thread, execute here or, where a stop must arrive meanwhile, on another.
 *
 * The stand-in records every request it receives, so each test checks both
 * what the action sent and what it made of the reply.  No test waits by
 * sleeping: the server's readiness is its port file and a request's arrival
 * is a line in its log, both polled with a deadline.  No test ever names a
 * real provider's host except to check the default URLs, which are read
 * from a prepared job that is discarded unsent.
 */
#include "test.h"
#include "actions/action.h"
#include "actions/llm_int.h"
#include "common/clock.h"

#include <arpa/inet.h>
#include <jv.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const cairn_action cairn_action_llm;

#define STANDIN_READY_MS 15000         /* python start-up, generous under sanitizers */

/* ---- the stand-in server ------------------------------------------------- */

typedef struct standin {
    pid_t pid;
    char port_file[300], log[300], control[300], replies[300];
    char base[64];                     /* "http://127.0.0.1:PORT" */
} standin;

static standin *live_standin;

/* Kill the server's process group and reap it; runs at exit too, so a
 * failed CHECK (which exits) leaves nothing behind. */
static void standin_stop(void) {
    standin *s = live_standin;
    if (s == NULL || s->pid <= 0) return;
    kill(-s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    live_standin = NULL;
}

static void nap_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void standin_wait_ready(standin *s) {
    int64_t until = cairn_now_ms() + STANDIN_READY_MS;
    int port = 0;
    while (port == 0) {
        FILE *fp = fopen(s->port_file, "r");
        if (fp && fscanf(fp, "%d", &port) != 1) port = 0;
        if (fp) fclose(fp);
        if (port == 0 && waitpid(s->pid, NULL, WNOHANG) == s->pid)
            TEST_FAIL("the stand-in exited before it was ready");
        if (port == 0 && cairn_now_ms() > until) TEST_FAIL("the stand-in did not start");
        if (port == 0) nap_ms(10);
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", port);
}

/* Start the stand-in; api_key (or NULL) is the key it accepts. */
static void standin_start(standin *s, const char *api_key) {
    static int registered;
    memset(s, 0, sizeof *s);
    snprintf(s->port_file, sizeof s->port_file, "%s/port", test_tmpdir());
    snprintf(s->log, sizeof s->log, "%s/requests.jsonl", test_tmpdir());
    snprintf(s->control, sizeof s->control, "%s/control.json", test_tmpdir());
    snprintf(s->replies, sizeof s->replies, "%s/replies.jsonl", test_tmpdir());
    unsetenv("http_proxy"), unsetenv("HTTP_PROXY"), unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("python3", "python3", "tests/servers/llm_standin.py", "--port-file",
               s->port_file, "--log", s->log, "--control", s->control, "--replies", s->replies,
               api_key ? "--api-key" : (char *)NULL, api_key, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    s->pid = pid;
    live_standin = s;
    if (!registered++) atexit(standin_stop);
    standin_wait_ready(s);
}

/* Script the replies: a JSON list (with ' for "), one entry per request. */
static void standin_control(standin *s, const char *script) {
    jv v = test_json(script);
    jv text = jv_dump_string(v, 0);
    FILE *fp = fopen(s->control, "w");
    CHECK(fp != NULL);
    fputs(jv_string_value(text), fp);
    fclose(fp);
    jv_free(text);
}

/* The JSON lines of a file, as an array. */
static jv read_lines(const char *path) {
    jv all = jv_array();
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    while (fp && getline(&line, &cap, fp) > 0) {
        jv r = jv_parse(line);
        if (!jv_is_valid(r)) TEST_FAIL("bad log line: %s", line);
        all = jv_array_append(all, r);
    }
    free(line);
    if (fp) fclose(fp);
    return all;
}

/* The requests the stand-in received. */
static jv standin_requests(standin *s) { return read_lines(s->log); }

static int standin_count(standin *s) { return jv_array_length(standin_requests(s)); }

/* Replies the stand-in has wholly written. */
static int standin_replied(standin *s) { return jv_array_length(read_lines(s->replies)); }

/* ---- reading values ------------------------------------------------------ */

/* v at a dotted path ("body.messages.0.role"; digits index arrays); borrowed
 * v, returns a new value (invalid when absent). */
static jv at(jv v, const char *path) {
    char *copy = strdup(path), *save = NULL;
    jv cur = jv_copy(v);
    for (char *k = strtok_r(copy, ".", &save); k && jv_is_valid(cur); k = strtok_r(NULL, ".", &save)) {
        if (jv_get_kind(cur) == JV_KIND_ARRAY && k[0] >= '0' && k[0] <= '9')
            cur = jv_array_get(cur, atoi(k));
        else if (jv_get_kind(cur) == JV_KIND_OBJECT)
            cur = jv_object_get(cur, jv_string(k));
        else {
            jv_free(cur);
            cur = jv_invalid();
        }
    }
    free(copy);
    return cur;
}

static void check_str_at(jv v, const char *path, const char *want, int line) {
    jv x = at(v, path);
    if (jv_get_kind(x) != JV_KIND_STRING)
        TEST_FAIL("line %d: %s is %s, not a string", line, path, jv_kind_name(jv_get_kind(x)));
    if (strcmp(jv_string_value(x), want) != 0)
        TEST_FAIL("line %d: %s is \"%s\", want \"%s\"", line, path, jv_string_value(x), want);
    jv_free(x);
}

static void check_num_at(jv v, const char *path, double want, int line) {
    jv x = at(v, path);
    if (jv_get_kind(x) != JV_KIND_NUMBER)
        TEST_FAIL("line %d: %s is %s, not a number", line, path, jv_kind_name(jv_get_kind(x)));
    if (jv_number_value(x) != want)
        TEST_FAIL("line %d: %s is %g, want %g", line, path, jv_number_value(x), want);
    jv_free(x);
}

/* v at path equals the JSON text want (with ' for "). */
static void check_json_at(jv v, const char *path, const char *want, int line) {
    jv x = at(v, path), w = test_json(want);
    if (!jv_equal(jv_copy(x), jv_copy(w))) {
        jv got = jv_dump_string(x, 0);
        TEST_FAIL("line %d: %s is %s, want %s", line, path, jv_string_value(got), want);
    }
    jv_free(x);
    jv_free(w);
}

static int absent_at(jv v, const char *path) {
    jv x = at(v, path);
    int absent = !jv_is_valid(x);
    jv_free(x);
    return absent;
}

#define STR_AT(v, p, w) check_str_at(v, p, w, __LINE__)
#define NUM_AT(v, p, w) check_num_at(v, p, w, __LINE__)
#define JSON_AT(v, p, w) check_json_at(v, p, w, __LINE__)

/* ---- running the action ---------------------------------------------------- */

typedef struct attempt {
    cairn_stop stop;
    cairn_attempt_info info;
} attempt;

static void attempt_init(attempt *a, int64_t deadline_ms) {
    memset(a, 0, sizeof *a);
    a->info = (cairn_attempt_info){
        .run_id = "run-1", .step_id = "ask", .idempotency_key = "run-1/ask", .attempt = 1,
        .deadline_ms = deadline_ms, .stop = &a->stop,
    };
}

/* with (JSON text, ' for ") plus base_url = base + suffix (base NULL: none). */
static jv with_at(const char *base, const char *suffix, const char *json) {
    jv w = test_json(json);
    if (base == NULL) return w;
    char url[200];
    snprintf(url, sizeof url, "%s%s", base, suffix);
    return jv_object_set(w, jv_string("base_url"), jv_string(url));
}

static jv openai_with(const standin *s, const char *json) { return with_at(s->base, "/v1", json); }
static jv anthropic_with(const standin *s, const char *json) { return with_at(s->base, "", json); }

/* prepare + execute + finish.  Returns 1 when prepare refused, else finish's
 * result (0 or -1). */
static int llm_run(jv with, const cairn_attempt_info *info, jv *out, cairn_fail *f) {
    const cairn_action *a = &cairn_action_llm;
    void *job = NULL;
    int rc = a->prepare(with, info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, info);
    return a->finish(job, out, f);
}

static jv llm_ok(jv with) {
    attempt a;
    attempt_init(&a, 0);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    int rc = llm_run(with, &a.info, &out, &f);
    if (rc != 0) TEST_FAIL("llm failed (%d): %s: %s", rc, f.kind, f.message);
    return out;
}

static cairn_fail llm_fails(jv with, int64_t deadline_ms, int want_rc) {
    attempt a;
    attempt_init(&a, deadline_ms);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    int rc = llm_run(with, &a.info, &out, &f);
    if (rc == 0) {
        jv text = jv_dump_string(out, 0);
        TEST_FAIL("llm succeeded: %s", jv_string_value(text));
    }
    CHECK_INT(rc, want_rc);
    return f;
}

#define VERDICT_SCHEMA                                                                 \
    "{'type': 'object', 'properties': {'verdict': {'enum': ['real', 'false_positive']}, " \
    "'confidence': {'type': 'number', 'minimum': 0, 'maximum': 1}}, "                   \
    "'required': ['verdict', 'confidence'], 'additionalProperties': false}"

/* ---- request shapes and text replies ------------------------------------- */

TEST(llm_openai_request_shape_and_text_reply) {
    standin s;
    standin_start(&s, "sk-test-123");
    standin_control(&s, "[{'reply': 'Disk is full on web-1.', 'model': 'gpt-standin-2024-01-01', "
                        "'usage': [17, 6]}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'gpt-standin', "
                                    "'api_key': 'sk-test-123', 'system': 'You are an SRE.', "
                                    "'prompt': 'Why is web-1 failing?', 'temperature': 0.2, "
                                    "'max_tokens': 50}"));
    STR_AT(out, "text", "Disk is full on web-1.");
    STR_AT(out, "model", "gpt-standin-2024-01-01");
    NUM_AT(out, "usage.input_tokens", 17);
    NUM_AT(out, "usage.output_tokens", 6);
    STR_AT(out, "finish_reason", "stop");
    NUM_AT(out, "requests", 1);
    CHECK(absent_at(out, "json"));
    jv reqs = standin_requests(&s);
    CHECK_INT(jv_array_length(jv_copy(reqs)), 1);
    STR_AT(reqs, "0.path", "/v1/chat/completions");
    STR_AT(reqs, "0.headers.authorization", "Bearer sk-test-123");
    STR_AT(reqs, "0.headers.content-type", "application/json");
    CHECK(absent_at(reqs, "0.headers.x-api-key"));
    JSON_AT(reqs, "0.body", "{'model': 'gpt-standin', 'messages': [{'role': 'system', "
                            "'content': 'You are an SRE.'}, {'role': 'user', 'content': "
                            "'Why is web-1 failing?'}], 'temperature': 0.2, 'max_tokens': 50}");
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_anthropic_request_shape_and_text_reply) {
    standin s;
    standin_start(&s, "ant-key-456");
    standin_control(&s, "[{'reply': 'Restart nginx.'}]");
    jv out = llm_ok(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'claude-standin', "
                                       "'api_key': 'ant-key-456', 'system': 'Be brief.', "
                                       "'prompt': 'What now?', 'temperature': 0.5}"));
    STR_AT(out, "text", "Restart nginx.");
    STR_AT(out, "model", "claude-standin");
    NUM_AT(out, "usage.input_tokens", 4);       /* the stand-in counts words */
    NUM_AT(out, "usage.output_tokens", 2);
    STR_AT(out, "finish_reason", "end_turn");
    jv reqs = standin_requests(&s);
    STR_AT(reqs, "0.path", "/v1/messages");
    STR_AT(reqs, "0.headers.x-api-key", "ant-key-456");
    STR_AT(reqs, "0.headers.anthropic-version", "2023-06-01");
    CHECK(absent_at(reqs, "0.headers.authorization"));
    /* system at the top level, never as a message; max_tokens defaulted */
    JSON_AT(reqs, "0.body", "{'model': 'claude-standin', 'max_tokens': 1024, 'system': "
                            "'Be brief.', 'messages': [{'role': 'user', 'content': "
                            "'What now?'}], 'temperature': 0.5}");
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_messages_list_is_sent_as_given) {
    standin s;
    standin_start(&s, NULL);
    const char *msgs = "[{'role': 'user', 'content': 'ping'}, {'role': 'assistant', "
                       "'content': 'pong'}, {'role': 'user', 'content': 'again'}]";
    char with[600];
    snprintf(with, sizeof with, "{'provider': 'anthropic', 'model': 'm', 'max_tokens': 7, "
             "'messages': %s}", msgs);
    jv out = llm_ok(anthropic_with(&s, with));
    jv reqs = standin_requests(&s);
    JSON_AT(reqs, "0.body.messages", msgs);
    NUM_AT(reqs, "0.body.max_tokens", 7);
    CHECK(absent_at(reqs, "0.body.system"));
    CHECK(absent_at(reqs, "0.headers.x-api-key"));   /* no api_key: no key header */
    snprintf(with, sizeof with, "{'provider': 'openai', 'model': 'm', 'system': 'sys', "
             "'messages': %s}", msgs);
    jv_free(out);
    out = llm_ok(openai_with(&s, with));
    jv_free(reqs);
    reqs = standin_requests(&s);
    JSON_AT(reqs, "1.body.messages.0", "{'role': 'system', 'content': 'sys'}");
    JSON_AT(reqs, "1.body.messages.3", "{'role': 'user', 'content': 'again'}");
    CHECK(absent_at(reqs, "1.body.max_tokens"));    /* OpenAI: only when given */
    CHECK(absent_at(reqs, "1.headers.authorization"));
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_trailing_slash_of_base_url_is_dropped) {
    standin s;
    standin_start(&s, NULL);
    jv out = llm_ok(with_at(s.base, "/v1/", "{'provider': 'openai', 'model': 'm', "
                                            "'prompt': 'hi'}"));
    jv_free(out);
    out = llm_ok(with_at(s.base, "/", "{'provider': 'anthropic', 'model': 'm', 'prompt': 'hi'}"));
    jv reqs = standin_requests(&s);
    STR_AT(reqs, "0.path", "/v1/chat/completions");
    STR_AT(reqs, "1.path", "/v1/messages");
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_default_base_urls_are_the_providers) {
    /* Prepared and discarded, never sent. */
    const char *cases[][2] = {
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x'}",
         "https://api.openai.com/v1/chat/completions"},
        {"{'provider': 'anthropic', 'model': 'm', 'prompt': 'x'}",
         "https://api.anthropic.com/v1/messages"},
    };
    for (int i = 0; i < 2; i++) {
        attempt a;
        attempt_init(&a, 0);
        void *job = NULL;
        cairn_fail f = {{0}, {0}};
        jv with = test_json(cases[i][0]);
        CHECK_INT(cairn_action_llm.prepare(with, &a.info, &job, &f), 0);
        jv_free(with);
        CHECK_STR(((llm_job *)job)->url, cases[i][1]);
        cairn_action_llm.discard(job);
    }
}

/* ---- structured replies ---------------------------------------------------- */

TEST(llm_openai_schema_reply_is_parsed_and_checked) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': '{\\\"verdict\\\": \\\"real\\\", \\\"confidence\\\": 0.9}'}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': 'judge', "
                                    "'schema': " VERDICT_SCHEMA "}"));
    JSON_AT(out, "json", "{'verdict': 'real', 'confidence': 0.9}");
    STR_AT(out, "text", "{\"verdict\": \"real\", \"confidence\": 0.9}");
    jv reqs = standin_requests(&s);
    JSON_AT(reqs, "0.body.response_format", "{'type': 'json_schema', 'json_schema': {'name': "
                                            "'reply', 'schema': " VERDICT_SCHEMA ", "
                                            "'strict': true}}");
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_anthropic_schema_uses_a_forced_tool) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': '{\\\"verdict\\\": \\\"false_positive\\\", "
                        "\\\"confidence\\\": 0.25}'}]");
    jv out = llm_ok(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': "
                                       "'judge', 'schema': " VERDICT_SCHEMA "}"));
    JSON_AT(out, "json", "{'verdict': 'false_positive', 'confidence': 0.25}");
    STR_AT(out, "finish_reason", "tool_use");
    jv reqs = standin_requests(&s);
    STR_AT(reqs, "0.body.tools.0.name", "reply");
    JSON_AT(reqs, "0.body.tools.0.input_schema", VERDICT_SCHEMA);
    JSON_AT(reqs, "0.body.tool_choice", "{'type': 'tool', 'name': 'reply'}");
    CHECK(absent_at(reqs, "0.body.response_format"));
    jv_free(reqs);
    /* text is the tool input as JSON */
    jv t = at(out, "text");
    jv parsed = jv_parse(jv_string_value(t));
    JSON_AT(parsed, "", "{'verdict': 'false_positive', 'confidence': 0.25}");
    jv_free(parsed);
    jv_free(t);
    jv_free(out);
    standin_stop();
}

TEST(llm_reply_not_matching_schema_fails_schema) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': '{\\\"verdict\\\": \\\"maybe\\\", \\\"confidence\\\": 1}'}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'judge', 'schema': " VERDICT_SCHEMA "}"), 0, -1);
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, "$.verdict: expected one of [\"real\",\"false_positive\"]");
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': "
                                     "'judge', 'schema': " VERDICT_SCHEMA "}"), 0, -1);
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, "$.verdict: expected one of [\"real\",\"false_positive\"]");
    standin_stop();
}

TEST(llm_reply_that_is_not_json_fails_schema) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': 'I think it is real.', 'finish_reason': 'length'}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'judge', 'schema': " VERDICT_SCHEMA "}"), 0, -1);
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, "the reply is not JSON");
    CHECK_CONTAINS(f.message, "finish_reason length");
    /* Anthropic: no tool_use block came back */
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': "
                                     "'judge', 'schema': " VERDICT_SCHEMA "}"), 0, -1);
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, "no tool_use block for the reply tool (stop_reason length)");
    standin_stop();
}

TEST(llm_fenced_json_reply_is_accepted) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': '```json\\n{\\\"verdict\\\": \\\"real\\\", "
                        "\\\"confidence\\\": 0}\\n```\\n'}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': 'judge', "
                                    "'schema': " VERDICT_SCHEMA "}"));
    JSON_AT(out, "json", "{'verdict': 'real', 'confidence': 0}");
    STR_AT(out, "text", "{\"verdict\": \"real\", \"confidence\": 0}");
    jv_free(out);
    standin_stop();
}

TEST(llm_openai_refusal_fails_refused) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'refusal': 'I cannot help with that.'}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x', 'schema': " VERDICT_SCHEMA "}"), 0, -1);
    CHECK_STR(f.kind, "refused");
    CHECK_CONTAINS(f.message, "I cannot help with that.");
    standin_stop();
}

/* ---- retries inside the attempt ------------------------------------------ */

/* Seconds between the stand-in receiving requests i and i + 1. */
static double gap(jv reqs, int i) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%d.time", i);
    snprintf(b, sizeof b, "%d.time", i + 1);
    jv t0 = at(reqs, a), t1 = at(reqs, b);
    double d = jv_number_value(t1) - jv_number_value(t0);
    jv_free(t0);
    jv_free(t1);
    return d;
}

TEST(llm_429_with_retry_after_is_retried_once) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 429, 'retry_after': '1'}, {'reply': 'second time lucky'}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': 'x'}"));
    STR_AT(out, "text", "second time lucky");
    NUM_AT(out, "requests", 2);
    jv reqs = standin_requests(&s);
    CHECK_INT(jv_array_length(jv_copy(reqs)), 2);
    CHECK(gap(reqs, 0) >= 0.95);       /* retry-after: 1 was honoured */
    JSON_AT(reqs, "1.body", "{'model': 'm', 'messages': [{'role': 'user', 'content': 'x'}]}");
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_anthropic_529_overloaded_is_retried) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 529, 'retry_after': '1'}, {'reply': 'ok now'}]");
    jv out = llm_ok(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x'}"));
    STR_AT(out, "text", "ok now");
    NUM_AT(out, "requests", 2);
    jv reqs = standin_requests(&s);
    CHECK_INT(jv_array_length(jv_copy(reqs)), 2);
    CHECK(gap(reqs, 0) >= 0.95);
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_retry_after_as_http_date) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 503, 'retry_after_in': 2}, {'reply': 'ok'}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': 'x'}"));
    NUM_AT(out, "requests", 2);
    jv reqs = standin_requests(&s);
    CHECK(gap(reqs, 0) >= 0.9);        /* the date has whole seconds: at least 1 s ahead */
    jv_free(reqs);
    jv_free(out);
    standin_stop();
}

TEST(llm_persistent_500_fails_status_after_max_tries) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 500}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), 0, -1);
    CHECK_STR(f.kind, "status");
    CHECK_CONTAINS(f.message, "HTTP 500");
    CHECK_CONTAINS(f.message, "The server had an error (server_error)");
    CHECK_CONTAINS(f.message, "after 3 requests");
    jv reqs = standin_requests(&s);
    CHECK_INT(jv_array_length(jv_copy(reqs)), CAIRN_LLM_MAX_TRIES);
    /* no retry-after: the default back-off, doubling */
    CHECK(gap(reqs, 0) >= CAIRN_LLM_RETRY_DELAY_MS / 1000.0 * 0.95);
    CHECK(gap(reqs, 1) >= 2 * CAIRN_LLM_RETRY_DELAY_MS / 1000.0 * 0.95);
    jv_free(reqs);
    standin_stop();
}

TEST(llm_retry_after_past_the_deadline_is_not_waited) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 429, 'retry_after': '30', 'message': 'slow down'}]");
    int64_t t0 = cairn_now_ms();
    cairn_fail f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', "
                                                "'prompt': 'x'}"), t0 + 5000, -1);
    CHECK(cairn_now_ms() - t0 < 4000);
    CHECK_STR(f.kind, "status");
    CHECK_CONTAINS(f.message, "HTTP 429");
    CHECK_CONTAINS(f.message, "slow down (rate_limit_error)");
    CHECK_CONTAINS(f.message, "waiting 30000 ms to retry would pass the deadline");
    CHECK_INT(standin_count(&s), 1);
    standin_stop();
}

TEST(llm_other_4xx_fails_status_at_once) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 400, 'message': 'temperature: must be at most 1'}]");
    cairn_fail f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', "
                                                "'prompt': 'x', 'temperature': 1.5}"), 0, -1);
    CHECK_STR(f.kind, "status");
    CHECK_CONTAINS(f.message, "HTTP 400");
    CHECK_CONTAINS(f.message, "temperature: must be at most 1 (invalid_request_error)");
    CHECK_INT(standin_count(&s), 1);
    standin_stop();
}

/* ---- failures of the exchange -------------------------------------------- */

TEST(llm_401_fails_auth_and_never_shows_the_key) {
    standin s;
    standin_start(&s, "the-right-key");
    const char *secret = "sk-wrong-secret-999";
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x', 'api_key': 'sk-wrong-secret-999'}"), 0, -1);
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "HTTP 401");
    CHECK_CONTAINS(f.message, "Incorrect API key provided: ***.");   /* the server echoed it */
    CHECK(strstr(f.message, secret) == NULL);
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x', "
                                     "'api_key': 'sk-wrong-secret-999'}"), 0, -1);
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "invalid x-api-key: ***");
    CHECK(strstr(f.message, secret) == NULL);
    CHECK_INT(standin_count(&s), 2);   /* 401 is not retried */
    standin_stop();
}

TEST(llm_key_echoed_by_the_model_is_masked) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'reply': 'your key is sk-abc-123456 ok'}, "
                        "{'reply': '{\\\"note\\\": \\\"key sk-abc-123456\\\"}'}]");
    jv out = llm_ok(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': 'x', "
                                    "'api_key': 'sk-abc-123456'}"));
    STR_AT(out, "text", "your key is *** ok");
    jv_free(out);
    out = llm_ok(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x', "
                                    "'api_key': 'sk-abc-123456', 'schema': {'type': 'object'}}"));
    STR_AT(out, "json.note", "key ***");
    STR_AT(out, "text", "{\"note\":\"key ***\"}");
    jv_free(out);
    standin_stop();
}

TEST(llm_stall_past_the_deadline_fails_timeout) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'stall': 30}]");
    int64_t t0 = cairn_now_ms();
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), t0 + 400, -1);
    int64_t took = cairn_now_ms() - t0;
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "no complete reply from");
    CHECK(took >= 400 && took < 2000);
    /* with.timeout bounds the call when there is no step deadline */
    t0 = cairn_now_ms();
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x', "
                                     "'timeout': '300ms'}"), 0, -1);
    took = cairn_now_ms() - t0;
    CHECK_STR(f.kind, "timeout");
    CHECK(took >= 300 && took < 2000);
    standin_stop();
}

TEST(llm_truncated_json_fails_protocol) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'truncate': true}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), 0, -1);
    CHECK_STR(f.kind, "protocol");
    CHECK_CONTAINS(f.message, "is not valid JSON");
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x'}"),
                  0, -1);
    CHECK_STR(f.kind, "protocol");
    standin_stop();
}

TEST(llm_wrong_content_type_fails_protocol) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'raw': '<html>gateway says hi</html>', 'content_type': 'text/html'}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), 0, -1);
    CHECK_STR(f.kind, "protocol");
    CHECK_CONTAINS(f.message, "content type 'text/html', not application/json");
    standin_stop();
}

TEST(llm_reply_missing_fields_fails_protocol) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'raw': '{\\\"object\\\": \\\"chat.completion\\\"}'}]");
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), 0, -1);
    CHECK_STR(f.kind, "protocol");
    CHECK_CONTAINS(f.message, "no choices[0].message");
    f = llm_fails(anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', 'prompt': 'x'}"),
                  0, -1);
    CHECK_STR(f.kind, "protocol");
    CHECK_CONTAINS(f.message, "no content list");
    standin_stop();
}

TEST(llm_reply_over_the_cap_fails_size) {
    standin s;
    standin_start(&s, NULL);
    char script[100];
    snprintf(script, sizeof script, "[{'body_bytes': %d}]", CAIRN_LLM_BODY_MAX + 100);
    standin_control(&s, script);
    cairn_fail f = llm_fails(openai_with(&s, "{'provider': 'openai', 'model': 'm', 'prompt': "
                                             "'x'}"), 0, -1);
    CHECK_STR(f.kind, "size");
    CHECK_CONTAINS(f.message, "larger than 4194304 bytes");
    standin_stop();
}

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

TEST(llm_refused_connection_fails_connect) {
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", closed_port());
    cairn_fail f = llm_fails(with_at(base, "/v1", "{'provider': 'openai', 'model': 'm', "
                                                  "'prompt': 'x', 'api_key': 'k-77'}"), 0, -1);
    CHECK_STR(f.kind, "connect");
    CHECK_CONTAINS(f.message, "127.0.0.1");
}

/* ---- stop ------------------------------------------------------------------ */

typedef struct bg_run {
    void *job;
    const cairn_attempt_info *info;
} bg_run;

static void *bg_execute(void *arg) {
    bg_run *b = arg;
    cairn_action_llm.execute(b->job, b->info);
    return NULL;
}

/* Prepare with, execute it on another thread, and once the stand-in has
 * seen `seen` requests and written `replied` replies, ask it to stop;
 * returns the failure. */
static cairn_fail stop_after(standin *s, jv with, int seen, int replied) {
    attempt a;
    attempt_init(&a, 0);
    cairn_fail f = {{0}, {0}};
    bg_run b = {NULL, &a.info};
    CHECK_INT(cairn_action_llm.prepare(with, &a.info, &b.job, &f), 0);
    jv_free(with);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, bg_execute, &b), 0);
    int64_t until = cairn_now_ms() + 10000;
    while ((standin_count(s) < seen || standin_replied(s) < replied) && cairn_now_ms() < until)
        nap_ms(10);
    CHECK_INT(standin_count(s), seen);
    CHECK_INT(standin_replied(s), replied);
    int64_t t0 = cairn_now_ms();
    atomic_store(&a.stop.requested, 1);
    pthread_join(t, NULL);
    CHECK(cairn_now_ms() - t0 < 1000);
    jv out = jv_invalid();
    CHECK_INT(cairn_action_llm.finish(b.job, &out, &f), -1);
    return f;
}

TEST(llm_stop_cancels_a_request_in_flight) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'stall': 30}]");
    cairn_fail f = stop_after(&s, openai_with(&s, "{'provider': 'openai', 'model': 'm', "
                                                  "'prompt': 'x'}"), 1, 0);
    CHECK_STR(f.kind, "cancelled");
    CHECK_CONTAINS(f.message, "stop requested during the request");
    standin_stop();
}

TEST(llm_stop_cancels_the_wait_between_tries) {
    standin s;
    standin_start(&s, NULL);
    standin_control(&s, "[{'status': 529, 'retry_after': '30'}]");
    cairn_fail f = stop_after(&s, anthropic_with(&s, "{'provider': 'anthropic', 'model': 'm', "
                                                     "'prompt': 'x'}"), 1, 1);
    /* The 529 is written; the action is about to wait 30 s, or (if this
     * thread won the race to it) already waiting.  Either way the stop must
     * end it at once, and no second request is sent. */
    CHECK_STR(f.kind, "cancelled");
    if (strstr(f.message, "stop requested during the request") == NULL)
        CHECK_CONTAINS(f.message, "stop requested while waiting to retry after HTTP 529");
    CHECK_INT(standin_count(&s), 1);
    standin_stop();
}

/* ---- checking `with` ------------------------------------------------------ */

TEST(llm_bad_with_fails_schema_in_prepare) {
    const char *cases[][2] = {
        {"{'model': 'm', 'prompt': 'x'}", "provider is required"},
        {"{'provider': 'gemini', 'model': 'm', 'prompt': 'x'}", "provider must be openai or"},
        {"{'provider': 'openai', 'prompt': 'x'}", "model is required"},
        {"{'provider': 'openai', 'model': 'm'}", "exactly one of prompt and messages"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'messages': [{'role': 'user', "
         "'content': 'y'}]}", "exactly one of prompt and messages"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'temprature': 1}",
         "unknown field 'temprature'"},
        {"{'provider': 'openai', 'model': 'm', 'messages': []}", "messages must not be empty"},
        {"{'provider': 'openai', 'model': 'm', 'messages': [{'role': 'user'}]}",
         "messages[0] must have exactly the keys role and content"},
        {"{'provider': 'anthropic', 'model': 'm', 'messages': [{'role': 'system', 'content': "
         "'s'}]}", "messages[0].role 'system': anthropic takes"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 3}", "prompt must be a string"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'temperature': -1}",
         "temperature must be"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'max_tokens': 0.5}",
         "max_tokens must be a whole number"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'timeout': 'soon'}",
         "timeout must be a positive duration such as 30s, not 'soon'"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'base_url': 'ftp://h'}",
         "base_url must start with http:// or https://"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'schema': {'type': 'array'}}",
         "schema must say type: object"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'schema': {'type': 'object', "
         "'properties': {'a': {'pattern': '(['}}}}", "schema $.properties.a.pattern: bad pattern"},
        {"{'provider': 'openai', 'model': 'm', 'prompt': 'x', 'api_key': 'a\\nb'}",
         "api_key must not contain line breaks"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cairn_fail f = llm_fails(test_json(cases[i][0]), 0, 1);
        CHECK_STR(f.kind, "schema");
        CHECK_CONTAINS(f.message, cases[i][1]);
    }
}

TEST(llm_sig_describes_fields) {
    const cairn_action_sig *sig = cairn_action_llm.sig;
    CHECK_STR(sig->name, "llm");
    CHECK_STR(sig->one_of, "prompt|messages");
    CHECK(!sig->open);
    int required = 0, n = 0;
    for (const cairn_field_sig *fs = sig->fields; fs->name; fs++, n++)
        if (fs->flags & CAIRN_FIELD_REQUIRED) required++;
    CHECK_INT(n, 11);
    CHECK_INT(required, 2);            /* provider, model */
    CHECK(!(cairn_action_llm.flags & CAIRN_ACTION_INLINE));
}

static void *stop_soon(void *arg) {
    atomic_store(&((cairn_stop *)arg)->requested, 1);
    return NULL;
}

TEST(llm_wait_between_tries_ends_at_a_stop) {
    cairn_stop stop = {0};
    int64_t t0 = cairn_now_ms();
    CHECK_INT(cairn__llm_sleep(200, &stop), 0);          /* no stop: the whole wait */
    CHECK(cairn_now_ms() - t0 >= 200);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, stop_soon, &stop), 0);
    t0 = cairn_now_ms();
    CHECK_INT(cairn__llm_sleep(30000, &stop), -1);
    CHECK(cairn_now_ms() - t0 < 1000);
    pthread_join(t, NULL);
}

TEST(llm_retry_after_values) {
    time_t now = 1700000000;           /* Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK_INT(cairn__llm_retry_after_ms("2", now), 2000);
    CHECK_INT(cairn__llm_retry_after_ms(" 0\r\n", now), 0);
    CHECK_INT(cairn__llm_retry_after_ms("1.5", now), 1500);
    CHECK_INT(cairn__llm_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT\r\n", now), 5000);
    CHECK_INT(cairn__llm_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    CHECK_INT(cairn__llm_retry_after_ms("soon", now), -1);
    CHECK_INT(cairn__llm_retry_after_ms("5s", now), -1);
}
