/*
 * linkpage.c - approval links issued and answered (linkpage.h).
 */
#include "server/linkpage.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/engine.h"

#define CAIRN_LINKPAGE_STR_(x) #x
#define CAIRN_LINKPAGE_STR(x) CAIRN_LINKPAGE_STR_(x)

struct srv_links {
    srv_backend *b;
    char *url;                   /* --public-url, or NULL */
    unsigned char key[CAIRN_HASH_LEN];
};

/* The page's own rules: no script, no frame around it (a click-jacked
 * Approve), no referrer (the link is in the URL), nothing kept. */
static const char *const page_headers[] = {
    "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
                               " frame-ancestors 'none'",
    "X-Frame-Options", "DENY",
    "Referrer-Policy", "no-referrer",
    "Cache-Control", "no-store",
    NULL, NULL,
};

int srv_links_check_url(const char *url, cairn_err *err) {
    size_t n = strlen(url);
    bool scheme = strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
    if (!scheme || n > CAIRN_LINKPAGE_URL_MAX || strpbrk(url, "?#\"'<> \t\r\n") != NULL ||
        strlen(url + (url[4] == 's' ? 8 : 7)) == 0)
        return cairn_err_set(err, CAIRN_EINVAL, "--public-url %.80s: expected http:// or https://,"
                             " a host, an optional path, no query or fragment, at most %d bytes",
                             url, CAIRN_LINKPAGE_URL_MAX);
    return 0;
}

int srv_links_new(srv_backend *b, const char *public_url, srv_links **out, cairn_err *err) {
    *out = NULL;
    if (public_url && srv_links_check_url(public_url, err) != 0) return CAIRN_EINVAL;
    srv_links *l = cairn_calloc(1, sizeof *l);
    l->b = b;
    int rc = srv_backend_derive_key(b, CAIRN_LINKPAGE_KEY_PURPOSE, l->key, err);
    if (rc) {
        srv_links_free(l);
        return rc;
    }
    if (public_url) l->url = cairn_strdup(public_url);
    *out = l;
    return 0;
}

void srv_links_free(srv_links *l) {
    if (l == NULL) return;
    OPENSSL_cleanse(l->key, sizeof l->key);
    free(l->url);
    free(l);
}

/* ---- issuing -------------------------------------------------------------------- */

/* Whether name is a person's: a group gets no link. */
static bool person(const char *name) {
    return strncmp(name, CAIRN_APPROVER_GROUP, strlen(CAIRN_APPROVER_GROUP)) != 0;
}

int srv_links_url(const unsigned char key[CAIRN_HASH_LEN], const char *base_url,
                  const char *run_id, const char *step, const char *name, int64_t expires_ms,
                  char **url, cairn_err *err) {
    char *token = NULL, nonce[CAIRN_APPLINK_NONCE_HEX + 1];
    size_t n = strlen(base_url);
    *url = NULL;
    if (srv_links_check_url(base_url, err) != 0) return CAIRN_EINVAL;
    if (!person(name))
        return cairn_err_set(err, CAIRN_EINVAL, "%s is a group: a link is for one person", name);
    while (n > 0 && base_url[n - 1] == '/') n--;
    int rc = cairn_applink_sign(key, CAIRN_HASH_LEN, run_id, step, name, expires_ms / 1000, &token,
                                nonce, err);
    if (rc == 0) *url = cairn_sprintf("%.*s%s%s", (int)n, base_url, CAIRN_LINKPAGE_PREFIX, token);
    free(token);
    return rc;
}

jv srv_links_issue(srv_links *l, const char *run_id, const char *step, jv approvers,
                   int64_t expires_ms) {
    jv out = jv_object();
    if (l == NULL || l->url == NULL || jv_get_kind(approvers) != JV_KIND_ARRAY) return out;
    jv_array_foreach(approvers, i, v) {
        char *url = NULL;
        cairn_err err;
        if (jv_get_kind(v) == JV_KIND_STRING && person(jv_string_value(v)) &&
            srv_links_url(l->key, l->url, run_id, step, jv_string_value(v), expires_ms, &url,
                          &err) == 0)
            out = jv_object_set(out, jv_copy(v), jv_string(url));
        free(url);
        jv_free(v);
    }
    return out;
}

/* ---- the page ------------------------------------------------------------------------ */

bool srv_links_route(const char *path) {
    return strncmp(path, CAIRN_LINKPAGE_PREFIX, strlen(CAIRN_LINKPAGE_PREFIX)) == 0;
}

static void put_escaped(cairn_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': cairn_buf_puts(b, "&amp;"); break;
        case '<': cairn_buf_puts(b, "&lt;"); break;
        case '>': cairn_buf_puts(b, "&gt;"); break;
        case '"': cairn_buf_puts(b, "&quot;"); break;
        case '\'': cairn_buf_puts(b, "&#39;"); break;
        default: cairn_buf_putc(b, *s);
        }
    }
}

static void page_open(cairn_buf *b, const char *title) {
    cairn_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width\">"
                      "<meta name=\"referrer\" content=\"no-referrer\"><title>");
    put_escaped(b, title);
    cairn_buf_puts(b, " - Cairn</title><style>body{font:16px/1.5 sans-serif;max-width:46em;"
                      "margin:2em auto;padding:0 1em}pre{background:#f4f4f4;padding:.5em;"
                      "overflow:auto;white-space:pre-wrap}th{text-align:left;padding-right:1em}"
                      "button{font-size:1em;padding:.4em 1.2em;margin-right:1em}"
                      "textarea{width:100%}</style></head><body>\n<h1>");
    put_escaped(b, title);
    cairn_buf_puts(b, "</h1>\n");
}

static void page_done(srv_resp *r, int status, cairn_buf *b) {
    cairn_buf_puts(b, "</body></html>\n");
    r->status = status;
    r->len = b->len;
    r->body = cairn_buf_detach(b);
    r->type = "text/html; charset=utf-8";
    for (size_t i = 0; page_headers[i] && i < 2 * SRV_RESP_HEADERS_MAX; i++)
        r->headers[i] = page_headers[i];
}

/* A page that says one thing: title and message (escaped). */
static void notice(srv_resp *r, int status, const char *title, const char *message) {
    cairn_buf b = {0};
    page_open(&b, title);
    cairn_buf_puts(&b, "<p>");
    put_escaped(&b, message);
    cairn_buf_puts(&b, "</p>\n<p>Nothing was decided through this request.</p>\n");
    page_done(r, status, &b);
}

/* An error of the engine or journal as the page's status. */
static int status_of(int code) {
    switch (code) {
    case CAIRN_ENOTFOUND: return 404;
    case CAIRN_EAUTH: return 403;
    case CAIRN_ESTATE: case CAIRN_EEXISTS: case CAIRN_EBUSY: return 409;
    default: return 500;
    }
}

static void refuse(srv_resp *r, const cairn_err *err) {
    notice(r, status_of(err->code), "This approval cannot be decided here", err->msg);
}

static jv get(jv o, const char *key) {
    return jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o), jv_string(key)) : jv_null();
}

/* A field of o as escaped text: strings as they are, anything else as
 * JSON (pretty when pretty). */
static void put_field(cairn_buf *b, jv o, const char *key, bool pretty) {
    jv v = get(o, key);
    if (jv_get_kind(v) == JV_KIND_STRING) {
        put_escaped(b, jv_string_value(v));
    } else if (jv_is_valid(v)) {
        jv text = jv_dump_string(jv_copy(v), pretty ? JV_PRINT_PRETTY | JV_PRINT_SPACE1 : 0);
        put_escaped(b, jv_string_value(text));
        jv_free(text);
    }
    jv_free(v);
}

static void put_row(cairn_buf *b, const char *label, jv o, const char *key) {
    cairn_buf_printf(b, "<tr><th>%s</th><td>", label);
    put_field(b, o, key, false);
    cairn_buf_puts(b, "</td></tr>\n");
}

/* The approval as the page shows it: run, step, prompt, who decides, the
 * run's inputs, and the form. */
static void show(const cairn_applink *link, jv run, srv_resp *r) {
    jv steps = get(run, "steps"), step = get(steps, link->step), a = get(step, "approval");
    jv who = jv_object_set(jv_object(), jv_string("name"), jv_string(link->approver));
    char when[40];
    who = jv_object_set(who, jv_string("expires"),
                        jv_string(cairn_rfc3339(link->expires_s * 1000, when, sizeof when)));
    who = jv_object_set(who, jv_string("step"), jv_string(link->step));
    cairn_buf b = {0};
    page_open(&b, "Approval");
    cairn_buf_puts(&b, "<p class=\"prompt\"><strong>");
    put_field(&b, a, "prompt", false);
    cairn_buf_puts(&b, "</strong></p>\n<table>\n");
    put_row(&b, "Workflow", run, "workflow");
    put_row(&b, "Run", run, "id");
    put_row(&b, "Step", who, "step");
    put_row(&b, "Approvers", a, "approvers");
    put_row(&b, "Quorum", a, "quorum");
    put_row(&b, "Approved by", a, "approvals");
    put_row(&b, "Deadline", a, "deadline");
    put_row(&b, "You decide as", who, "name");
    put_row(&b, "This link expires", who, "expires");
    cairn_buf_puts(&b, "</table>\n<h2>Inputs</h2>\n<pre>");
    put_field(&b, run, "inputs", true);
    /* no action: the form posts to the page's own URL, whatever path a
     * proxy in front gives it */
    cairn_buf_printf(&b, "</pre>\n<form method=\"post\">\n<p><label>Comment (optional)<br>"
                         "<textarea name=\"comment\" rows=\"3\" maxlength=\"%d\"></textarea>"
                         "</label></p>\n", CAIRN_LINKPAGE_COMMENT_MAX);
    cairn_buf_puts(&b, "<p><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>"
                       "<button type=\"submit\" name=\"decision\" value=\"reject\">Reject</button></p>\n"
                       "</form>\n<p>This link decides once: after a decision it is spent.</p>\n");
    page_done(r, 200, &b);
    jv_free(who);
    jv_free(a);
    jv_free(step);
    jv_free(steps);
}

/* ---- the form ---------------------------------------------------------------------------- */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of field name in an application/x-www-form-urlencoded body,
 * decoded (the caller frees), or NULL when absent or badly encoded. */
static char *form_value(const char *body, size_t len, const char *name) {
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            cairn_buf out = {0};
            for (const char *c = p + nlen + 1; c < stop; c++) {
                int hi, lo;
                if (*c == '+') cairn_buf_putc(&out, ' ');
                else if (*c != '%') cairn_buf_putc(&out, *c);
                else if (stop - c >= 3 && (hi = hex_digit(c[1])) >= 0 && (lo = hex_digit(c[2])) >= 0 &&
                         (hi || lo)) {
                    cairn_buf_putc(&out, (char)(hi * 16 + lo));
                    c += 2;
                } else {
                    cairn_buf_free(&out);
                    return NULL;
                }
            }
            cairn_buf_putc(&out, '\0');
            return cairn_buf_detach(&out);
        }
        p = stop + 1;
    }
    return NULL;
}

/* The decision's data for the engine, and what spends the link. */
static char *decision_text(const cairn_applink *link, const char *decision, const char *comment) {
    jv d = jv_object_set(jv_object(), jv_string("step"), jv_string(link->step));
    d = jv_object_set(d, jv_string("by"), jv_string(link->approver));
    d = jv_object_set(d, jv_string("decision"), jv_string(decision));
    if (comment && *comment) d = jv_object_set(d, jv_string("comment"), jv_string(comment));
    d = jv_object_set(d, jv_string("via"), jv_string("link"));
    char *text = cairn_json_text(d);
    jv_free(d);
    return text;
}

static void spent(srv_resp *r, const char *held) {
    jv v = cairn_json_parse(held, strlen(held));
    cairn_buf b = {0};
    page_open(&b, "This link was used already");
    cairn_buf_puts(&b, "<p>An approval link decides once. It decided: ");
    put_field(&b, v, "decision", false);
    cairn_buf_puts(&b, " by ");
    put_field(&b, v, "by", false);
    cairn_buf_puts(&b, " at ");
    put_field(&b, v, "at", false);
    cairn_buf_puts(&b, ".</p>\n<p>Nothing was decided through this request.</p>\n");
    page_done(r, 410, &b);
    jv_free(v);
}

int srv_links_spend(srv_links *l, const cairn_applink *link, const char *decision, char **spent,
                    cairn_err *err) {
    char when[40];
    jv claim = jv_object_set(jv_object(), jv_string("run"), jv_string(link->run));
    claim = jv_object_set(claim, jv_string("step"), jv_string(link->step));
    claim = jv_object_set(claim, jv_string("by"), jv_string(link->approver));
    claim = jv_object_set(claim, jv_string("decision"), jv_string(decision));
    claim = jv_object_set(claim, jv_string("at"),
                          jv_string(cairn_rfc3339(cairn_wall_ms(), when, sizeof when)));
    char *value = cairn_json_text(claim);
    jv_free(claim);
    *spent = NULL;
    int rc = srv_backend_claim(l->b, CAIRN_LINKPAGE_SPACE, link->nonce, value, NULL, spent, err);
    free(value);
    return rc;
}

int srv_links_check(srv_links *l, const char *token, int64_t now_s, cairn_applink *out,
                    char **spent, cairn_err *err) {
    *spent = NULL;
    cairn_applink_result v = cairn_applink_verify(l->key, sizeof l->key, token, now_s, out);
    if (v != CAIRN_APPLINK_OK) return (int)v;
    int rc = srv_backend_get_claim(l->b, CAIRN_LINKPAGE_SPACE, out->nonce, spent, err);
    if (rc == 0) return CAIRN_APPLINK_SPENT;
    return rc == CAIRN_ENOTFOUND ? CAIRN_APPLINK_OK : -1;
}

/* Spend the link, then hand its decision to the engine: checked first, so
 * a decision the approval would refuse leaves the link unspent. */
static void decide(srv_links *l, const cairn_applink *link, const char *decision,
                   const char *comment, srv_resp *r) {
    cairn_err err;
    bool approve = strcmp(decision, "approve") == 0, recorded;
    if (srv_backend_approval_check(l->b, link->run, link->step, link->approver, approve, &err) != 0) {
        refuse(r, &err);
        return;
    }
    char *held = NULL, *data = decision_text(link, decision, comment);
    int rc = srv_links_spend(l, link, decision, &held, &err);
    if (rc == CAIRN_EEXISTS) spent(r, held ? held : "{}");
    else if (rc) notice(r, 500, "The journal refused", err.msg);
    else if (srv_backend_decide_anywhere(l->b, link->run, data, &recorded, &err) != 0)
        notice(r, status_of(err.code), "This link is spent, but the engine refused its decision",
               err.msg);
    else {
        cairn_buf b = {0};
        page_open(&b, approve ? "Approved" : "Rejected");
        cairn_buf_puts(&b, "<p>Recorded under <strong>");
        put_escaped(&b, link->approver);
        cairn_buf_puts(&b, "</strong> for step ");
        put_escaped(&b, link->step);
        cairn_buf_puts(&b, " of run ");
        put_escaped(&b, link->run);
        cairn_buf_puts(&b, recorded ? ": the engine holding the run takes it next.</p>\n"
                                    : ".</p>\n<p>This link is now spent.</p>\n");
        page_done(r, 200, &b);
    }
    free(held);
    free(data);
}

/* POST: the form's fields, then the decision. */
static void post(srv_links *l, const srv_req *q, const cairn_applink *link, srv_resp *r) {
    size_t len;
    const char *body = srv_req_body(q, &len), *type = srv_req_header(q, "Content-Type");
    if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
        notice(r, 415, "Not a form", "The decision comes as the page's form sends it"
               " (application/x-www-form-urlencoded).");
        return;
    }
    char *decision = form_value(body, len, "decision"), *comment = form_value(body, len, "comment");
    bool known = decision && (strcmp(decision, "approve") == 0 || strcmp(decision, "reject") == 0);
    if (!known)
        notice(r, 400, "No decision", "The form must say decision=approve or decision=reject.");
    else if (comment && strlen(comment) > CAIRN_LINKPAGE_COMMENT_MAX)
        notice(r, 413, "Comment too long", "A comment holds at most " CAIRN_LINKPAGE_STR(CAIRN_LINKPAGE_COMMENT_MAX) " bytes.");
    else
        decide(l, link, decision, comment, r);
    free(decision);
    free(comment);
}

/* GET: the approval, if the link's name may still decide it. */
static void get_page(srv_links *l, const cairn_applink *link, srv_resp *r) {
    cairn_err err;
    jv run;
    if (srv_backend_approval_check(l->b, link->run, link->step, link->approver, false, &err) != 0 ||
        srv_backend_get_run(l->b, link->run, &run, &err) != 0) {
        refuse(r, &err);
        return;
    }
    show(link, run, r);
    jv_free(run);
}

void srv_links_handle(srv_links *l, const srv_req *q, srv_resp *r) {
    const char *method = srv_req_method(q), *token = srv_req_path(q) + strlen(CAIRN_LINKPAGE_PREFIX);
    bool is_post = strcmp(method, "POST") == 0;
    if (!is_post && strcmp(method, "GET") != 0) {
        notice(r, 405, "Method not allowed", "An approval link is opened (GET) or its form sent (POST).");
        return;
    }
    cairn_applink link;
    char *held = NULL, when[40], msg[128];
    cairn_err err;
    switch (srv_links_check(l, token, cairn_wall_ms() / 1000, &link, &held, &err)) {
    case CAIRN_APPLINK_OK:
        if (is_post) post(l, q, &link, r);
        else get_page(l, &link, r);
        break;
    case CAIRN_APPLINK_SPENT:
        spent(r, held);
        break;
    case CAIRN_APPLINK_EXPIRED:
        snprintf(msg, sizeof msg, "This approval link expired at %s. Ask for a new one.",
                 cairn_rfc3339(link.expires_s * 1000, when, sizeof when));
        notice(r, 410, "This link has expired", msg);
        break;
    case -1:
        notice(r, 500, "The journal refused", err.msg);
        break;
    default:
        notice(r, 403, "This is not a valid approval link",
               "The link was altered, cut short, or not signed by this journal's servers.");
    }
    free(held);
    cairn_applink_clear(&link);
}
