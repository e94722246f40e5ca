/*
 * http.c - the `http` action: one HTTP(S) request through libcurl
 * (curl_req.h), judged by its status, with the reply as output.
 *
 * `with`:
 *   url               http:// or https:// only (another scheme: kind "schema")
 *   method            default GET, or POST when json or body is given (a GET
 *                     with a body is almost always a mistake); one of
 *                     HTTP_METHODS, in any case (sent upper-cased)
 *   headers           map; the author's value wins over every default below
 *   query             map of name -> string, number, boolean, or a list of
 *                     those (the name repeats); percent-encoded (RFC 3986
 *                     unreserved characters kept) and appended to the URL's
 *                     own query
 *   json | body       json: any value, sent as compact JSON with
 *                     Content-Type: application/json; body: a string sent as
 *                     is, with Content-Type: text/plain; charset=utf-8.  Not
 *                     both.
 *   expect_status     an integer, a string range ("200-299", "204", "2xx"),
 *                     or a list of those; default 200-299
 *   tls_verify        default true
 *   ca_file           a PEM bundle trusted instead of the system's (a private CA)
 *   timeout           per request, default CAIRN_HTTP_TIMEOUT_DEFAULT_MS; the
 *                     step's deadline also applies, the earlier wins
 *   follow_redirects  default true, at most CAIRN_HTTP_MAX_REDIRECTS
 * A field that is null counts as absent.
 *
 * Always sent: Idempotency-Key: <the step's idempotency key> and
 * User-Agent: cairn/1 (unless the author set them), Accept-Encoding for every
 * decoder libcurl has (the body cap applies to decoded bytes).
 *
 * Output: status, headers (lower-cased names, repeated headers joined with
 * ", "), body (parsed when the Content-Type is application/json or any
 * +json type and the body is not empty; else a string, invalid UTF-8
 * replaced), body_bytes, body_truncated (always false: a body over the cap
 * fails), body_cap_bytes, url (after redirects), redirects; with tls_verify
 * false also "tls_verify": false and a `warning`, so the journal shows it.
 *
 * Failures (kinds of curl_req.h, and): "status" for a status outside
 * expect_status, with the start of the body (CAIRN_HTTP_SNIPPET_MAX bytes);
 * "protocol" for a JSON Content-Type whose body does not parse (naming the
 * type and the parser's error); "size" for a body over CAIRN_HTTP_BODY_MAX,
 * unless the status was unexpected anyway ("status" then: it says more).
 *
 * Limits: those of curl_req.h (body, headers, redirects, timeouts), and
 * below: the body bytes quoted in a "status" message, the entries of
 * expect_status.
 *
 * At load time (http_check), constants are held to the same rules: the
 * method, json or body and not both, no body with HEAD.
 */
#include "actions/action.h"
#include "actions/curl_req.h"
#include "common/json.h"
#include "common/mem.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_METHODS "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS"
#define HTTP_STATUS_RANGES_MAX 32      /* entries in expect_status */
#define HTTP_EXPECT_TEXT_MAX 200       /* expect_status as quoted in messages */
#define CAIRN_HTTP_SNIPPET_MAX 512     /* body bytes quoted in a "status" failure */

static const cairn_field_sig http_fields[] = {
    {"url", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"method", CAIRN_FIELD_STRING, 0},
    {"headers", CAIRN_FIELD_OBJECT, 0},
    {"query", CAIRN_FIELD_OBJECT, 0},
    {"json", CAIRN_FIELD_ANY, 0},
    {"body", CAIRN_FIELD_STRING, 0},
    {"expect_status", CAIRN_FIELD_ANY, 0},
    {"tls_verify", CAIRN_FIELD_BOOL, 0},
    {"ca_file", CAIRN_FIELD_STRING, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {"follow_redirects", CAIRN_FIELD_BOOL, 0},
    {NULL, 0, 0},
};

static void http_check(cairn_wcheck *w);

static const cairn_action_sig http_sig = {
    .name = "http", .fields = http_fields, .check = http_check};

typedef struct status_range {
    int lo, hi;
} status_range;

typedef struct http_job {
    char *method, *url, *ca_file;
    cairn_strv headers;
    char *body;                        /* or NULL */
    size_t body_len;
    bool body_is_json;
    status_range expect[HTTP_STATUS_RANGES_MAX];
    int n_expect;
    char expect_text[HTTP_EXPECT_TEXT_MAX];
    bool tls_verify, follow;
    int64_t timeout_ms;
    int rc;                            /* of cairn_curl_http */
    cairn_fail fail;
    cairn_http_resp resp;
} http_job;

static void job_free(http_job *j) {
    if (j == NULL) return;
    free(j->method);
    free(j->url);
    free(j->ca_file);
    free(j->body);
    cairn_strv_free(&j->headers);
    cairn_http_resp_free(&j->resp);
    free(j);
}

/* ---- url and query ------------------------------------------------------ */

static void pct_encode(cairn_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (isalnum(*p) || strchr("-._~", *p)) cairn_buf_putc(b, (char)*p);
        else cairn_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
}

/* One "name=value" pair; value is a string, number or boolean. */
static int query_pair(cairn_buf *q, const char *name, jv value, cairn_fail *f) {
    jv_kind k = jv_get_kind(value);
    jv text = k == JV_KIND_STRING ? jv_copy(value) : jv_dump_string(jv_copy(value), 0);
    int rc = 0;
    if (k != JV_KIND_STRING && k != JV_KIND_NUMBER && k != JV_KIND_TRUE && k != JV_KIND_FALSE)
        rc = cairn_fail_set(f, "schema", "query.%.100s must be a string, number, boolean or "
                                         "a list of those, not %s", name, jv_kind_name(k));
    else {
        if (q->len) cairn_buf_putc(q, '&');
        pct_encode(q, name);
        cairn_buf_putc(q, '=');
        pct_encode(q, jv_string_value(text));
    }
    jv_free(text);
    return rc;
}

static int query_text(jv query, cairn_buf *q, cairn_fail *f) {
    int rc = 0;
    if (jv_get_kind(query) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "query must be a map, not %s",
                              jv_kind_name(jv_get_kind(query)));
    jv_object_foreach(query, key, value) {      /* borrows query; key, value are copies */
        const char *name = jv_string_value(key);
        if (rc == 0 && jv_get_kind(value) == JV_KIND_ARRAY)
            for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(value)); i++) {
                jv item = jv_array_get(jv_copy(value), i);
                rc = query_pair(q, name, item, f);
                jv_free(item);
            }
        else if (rc == 0 && jv_get_kind(value) != JV_KIND_NULL)
            rc = query_pair(q, name, value, f);
        jv_free(key);
        jv_free(value);
    }
    return rc;
}

/* url with query (already encoded) appended to its own query, before any
 * fragment.  Done on the text: libcurl's URL API would re-case the escapes. */
static char *url_with_query(const char *url, const char *query) {
    int base = (int)strcspn(url, "#");
    const char *mark = memchr(url, '?', (size_t)base);
    const char *sep = mark == NULL ? "?" : mark + 1 == url + base ? "" : "&";
    return cairn_sprintf("%.*s%s%s%s", base, url, sep, query, url + base);
}

static int read_url(jv with, http_job *j, cairn_fail *f) {
    if (cairn_with_string(with, "url", true, &j->url, f) ||
        cairn_curl_check_url(j->url, "http,https", "url", f))
        return -1;
    jv query = cairn_with_get(with, "query");
    cairn_buf q = CAIRN_BUF_INIT;
    int rc = jv_is_valid(query) ? query_text(query, &q, f) : 0;
    if (rc == 0 && q.len) {
        char *full = url_with_query(j->url, q.data);
        free(j->url);
        j->url = full;
    }
    cairn_buf_free(&q);
    jv_free(query);
    return rc;
}

/* ---- method, body, headers ---------------------------------------------- */

static int read_body(jv with, http_job *j, cairn_fail *f) {
    jv json = cairn_with_get(with, "json");
    int rc = cairn_with_string(with, "body", false, &j->body, f);
    if (rc == 0 && jv_is_valid(json) && j->body)
        rc = cairn_fail_set(f, "schema", "give json or body, not both");
    else if (rc == 0 && jv_is_valid(json)) {
        j->body_is_json = true;
        jv text = jv_dump_string(jv_copy(json), 0);
        j->body_len = (size_t)jv_string_length_bytes(jv_copy(text));
        j->body = cairn_strndup(jv_string_value(text), j->body_len);
        jv_free(text);
    } else if (j->body)
        j->body_len = strlen(j->body);
    jv_free(json);
    return rc;
}

/* The rules of read_body and read_method, on constants at load time. */
static void http_check(cairn_wcheck *w) {
    bool json = cairn_wcheck_given(w, "json"), body = cairn_wcheck_given(w, "body");
    const char *method = cairn_wcheck_string(w, "method");
    if (json && body) cairn_wcheck_error(w, "body", "give json or body, not both");
    if (cairn_wcheck_enum(w, "method", HTTP_METHODS, CAIRN_WCHECK_ANY_CASE) && method &&
        strcasecmp(method, "HEAD") == 0 && (json || body))
        cairn_wcheck_error(w, "method", "a HEAD request cannot carry json or body");
}

static int read_method(jv with, http_job *j, cairn_fail *f) {
    if (cairn_with_string(with, "method", false, &j->method, f)) return -1;
    if (j->method == NULL) {
        j->method = cairn_strdup(j->body ? "POST" : "GET");
        return 0;
    }
    for (char *c = j->method; *c; c++) *c = (char)toupper((unsigned char)*c);
    if (!cairn_with_listed(HTTP_METHODS, j->method))
        return cairn_fail_set(f, "schema", "method must be one of %s, not '%.40s'",
                              HTTP_METHODS, j->method);
    if (j->body && strcmp(j->method, "HEAD") == 0)
        return cairn_fail_set(f, "schema", "a HEAD request cannot carry json or body");
    return 0;
}

static int read_headers(jv with, const cairn_attempt_info *info, http_job *j, cairn_fail *f) {
    if (cairn_with_headers(with, "headers", &j->headers, f)) return -1;
    if (info->idempotency_key && !cairn_strv_has_header(&j->headers, "idempotency-key"))
        cairn_strv_push(&j->headers, cairn_sprintf("Idempotency-Key: %s", info->idempotency_key));
    if (j->body && !cairn_strv_has_header(&j->headers, "content-type"))
        cairn_strv_push(&j->headers,
                        cairn_strdup(j->body_is_json ? "Content-Type: application/json"
                                                     : "Content-Type: text/plain; charset=utf-8"));
    return 0;
}

/* ---- expect_status ------------------------------------------------------ */

static int add_range(http_job *j, int lo, int hi, cairn_fail *f) {
    if (lo < 100 || hi > 599 || lo > hi)
        return cairn_fail_set(f, "schema", "expect_status: %d-%d is not a range of HTTP "
                                           "statuses (100-599)", lo, hi);
    if (j->n_expect == HTTP_STATUS_RANGES_MAX)
        return cairn_fail_set(f, "schema", "expect_status: more than %d entries",
                              HTTP_STATUS_RANGES_MAX);
    j->expect[j->n_expect++] = (status_range){lo, hi};
    return 0;
}

/* The digits at *p (at most 4) as a number, moving *p past them; -1 when
 * there are none. */
static int status_digits(const char **p) {
    int v = 0, n = 0;
    for (; isdigit((unsigned char)**p) && n < 4; (*p)++, n++) v = v * 10 + (**p - '0');
    return n ? v : -1;
}

/* "200", "200-299" or "2xx". */
static int range_text(http_job *j, const char *s, cairn_fail *f) {
    if (s[0] >= '1' && s[0] <= '5' && (s[1] | 0x20) == 'x' && (s[2] | 0x20) == 'x' && !s[3])
        return add_range(j, (s[0] - '0') * 100, (s[0] - '0') * 100 + 99, f);
    const char *p = s;
    int lo = status_digits(&p), hi = lo;
    if (lo >= 0 && *p == '-') {
        p++;
        hi = status_digits(&p);
    }
    if (lo >= 0 && hi >= 0 && *p == '\0') return add_range(j, lo, hi, f);
    return cairn_fail_set(f, "schema", "expect_status: '%.40s' is not a status, a range such "
                                       "as 200-299, or 2xx", s);
}

static int expect_item(http_job *j, jv v, cairn_fail *f) {
    if (jv_get_kind(v) == JV_KIND_STRING) return range_text(j, jv_string_value(v), f);
    if (jv_get_kind(v) == JV_KIND_NUMBER) {
        double d = jv_number_value(v);
        if (d == floor(d) && d >= 100 && d <= 599) return add_range(j, (int)d, (int)d, f);
    }
    return cairn_fail_set(f, "schema", "expect_status must be a status (100-599), a range "
                                       "string such as \"200-299\", or a list of those");
}

static int read_expect(jv with, http_job *j, cairn_fail *f) {
    jv v = cairn_with_get(with, "expect_status");
    int rc = 0;
    if (!jv_is_valid(v)) {
        snprintf(j->expect_text, sizeof j->expect_text, "200-299");
        rc = add_range(j, 200, 299, f);
    } else if (jv_get_kind(v) == JV_KIND_ARRAY) {
        int n = jv_array_length(jv_copy(v));
        if (n == 0) rc = cairn_fail_set(f, "schema", "expect_status must not be an empty list");
        for (int i = 0; rc == 0 && i < n; i++) {
            jv item = jv_array_get(jv_copy(v), i);
            rc = expect_item(j, item, f);
            jv_free(item);
        }
    } else
        rc = expect_item(j, v, f);
    if (rc == 0 && jv_is_valid(v)) {
        jv text = jv_dump_string(jv_copy(v), 0);
        snprintf(j->expect_text, sizeof j->expect_text, "%s", jv_string_value(text));
        jv_free(text);
    }
    jv_free(v);
    return rc;
}

/* ---- prepare and execute ------------------------------------------------ */

static int read_options(jv with, http_job *j, cairn_fail *f) {
    j->tls_verify = true;
    j->follow = true;
    j->timeout_ms = CAIRN_HTTP_TIMEOUT_DEFAULT_MS;
    return cairn_with_bool(with, "tls_verify", &j->tls_verify, f) ||
           cairn_with_bool(with, "follow_redirects", &j->follow, f) ||
           cairn_with_duration(with, "timeout", &j->timeout_ms, f) ||
           cairn_with_string(with, "ca_file", false, &j->ca_file, f);
}

static int http_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "http: with must be a map");
    http_job *j = cairn_calloc(1, sizeof *j);
    if (cairn_with_keys(with, &http_sig, f) || read_url(with, j, f) || read_body(with, j, f) ||
        read_method(with, j, f) || read_headers(with, info, j, f) ||
        read_expect(with, j, f) || read_options(with, j, f)) {
        job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

static void http_execute(void *job, const cairn_attempt_info *info) {
    http_job *j = job;
    cairn_http_req req = {
        .opts = {.tls_verify = j->tls_verify, .ca_file = j->ca_file,
                 .timeout_ms = j->timeout_ms, .deadline_ms = info->deadline_ms,
                 .stop = info->stop},
        .method = j->method, .url = j->url, .headers = j->headers.v,
        .body = j->body, .body_len = j->body_len, .follow_redirects = j->follow,
        .body_max = CAIRN_HTTP_BODY_MAX, .body_over_fails = true,
    };
    j->rc = cairn_curl_http(&req, &j->resp, &j->fail);
}

/* ---- finish ------------------------------------------------------------- */

static bool status_expected(const http_job *j, long status) {
    for (int i = 0; i < j->n_expect; i++)
        if (status >= j->expect[i].lo && status <= j->expect[i].hi) return true;
    return false;
}

static int status_fail(const http_job *j, cairn_fail *f) {
    const cairn_capbuf *b = &j->resp.body;
    size_t n = b->head.len < CAIRN_HTTP_SNIPPET_MAX ? b->head.len : CAIRN_HTTP_SNIPPET_MAX;
    cairn_buf s = CAIRN_BUF_INIT;
    cairn_utf8_repair(&s, b->head.data ? b->head.data : "", n, true);
    bool more = b->total > n;
    cairn_fail_set(f, "status", "HTTP %ld from %s %.300s (expected %s)%s%s%s", j->resp.status,
                   j->method, j->resp.url ? j->resp.url : j->url, j->expect_text,
                   s.len ? ": " : "", s.len ? s.data : "", s.len && more ? "..." : "");
    cairn_buf_free(&s);
    return -1;
}

/* application/json, or any type with the +json suffix (problem+json...). */
static bool json_type(const char *ct) {
    if (ct == NULL) return false;
    while (*ct == ' ') ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", n) == 0) return true;
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}


static int body_value(const http_job *j, jv *out, cairn_fail *f) {
    const cairn_capbuf *b = &j->resp.body;
    if (!json_type(j->resp.content_type)) {
        *out = cairn_capbuf_jv(b);
        return 0;
    }
    if (b->head.len == 0) {            /* 204, HEAD: no body to parse */
        *out = jv_null();
        return 0;
    }
    jv v = cairn_json_parse(b->head.data, b->head.len);
    if (jv_is_valid(v)) {
        *out = v;
        return 0;
    }
    jv msg = jv_invalid_get_msg(v);
    cairn_fail_set(f, "protocol", "%s %.300s: the response's Content-Type is %.100s but its "
                   "body is not valid JSON: %s", j->method, j->resp.url ? j->resp.url : j->url,
                   j->resp.content_type, jv_string_value(msg));
    jv_free(msg);
    return -1;
}

static jv headers_jv(const cairn_http_resp *r) {
    jv obj = jv_object();
    for (int i = 0; i < r->n_headers; i++) {
        jv key = jv_string(r->headers[i].name);
        jv old = jv_object_get(jv_copy(obj), jv_copy(key));
        jv val = jv_is_valid(old)
                     ? jv_string_fmt("%s, %s", jv_string_value(old), r->headers[i].value)
                     : jv_string(r->headers[i].value);
        jv_free(old);
        obj = jv_object_set(obj, key, val);
    }
    return obj;
}

static int build_output(const http_job *j, jv *output, cairn_fail *f) {
    jv body;
    if (body_value(j, &body, f) != 0) return -1;
    const cairn_http_resp *r = &j->resp;
    jv out = jv_object();
    out = jv_object_set(out, jv_string("status"), jv_number((double)r->status));
    out = jv_object_set(out, jv_string("headers"), headers_jv(r));
    out = jv_object_set(out, jv_string("body"), body);
    out = jv_object_set(out, jv_string("body_bytes"), jv_number((double)r->body.total));
    out = jv_object_set(out, jv_string("body_truncated"), jv_bool(r->body_over));
    out = jv_object_set(out, jv_string("body_cap_bytes"), jv_number((double)r->body.cap));
    out = jv_object_set(out, jv_string("url"), jv_string(r->url ? r->url : j->url));
    out = jv_object_set(out, jv_string("redirects"), jv_number((double)r->redirects));
    if (!j->tls_verify) {
        out = jv_object_set(out, jv_string("tls_verify"), jv_false());
        out = jv_object_set(out, jv_string("warning"),
                            jv_string("TLS certificate verification was off (tls_verify: "
                                      "false): the server's identity was not checked"));
    }
    *output = out;
    return 0;
}

static int http_finish(void *job, jv *output, cairn_fail *f) {
    http_job *j = job;
    int rc;
    /* A body over the cap under an unexpected status: the status says more. */
    bool status_first = j->rc != 0 && j->resp.body_over && j->resp.status &&
                        !status_expected(j, j->resp.status);
    if (j->rc != 0 && !status_first) {
        *f = j->fail;
        rc = -1;
    } else if (!status_expected(j, j->resp.status))
        rc = status_fail(j, f);
    else
        rc = build_output(j, output, f);
    job_free(j);
    return rc;
}

static void http_discard(void *job) { job_free(job); }

const cairn_action cairn_action_http = {
    .sig = &http_sig,
    .flags = 0,
    .prepare = http_prepare,
    .execute = http_execute,
    .finish = http_finish,
    .discard = http_discard,
};
