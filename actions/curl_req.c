/*
 * curl_req.c - libcurl transfers for the http and notify actions: setup, the
 * polling loop that honours the stop flag and the deadline, capped capture
 * of the response, the map from libcurl's errors to failure kinds; and the
 * readers of `with` both actions' prepare share.
 */
#include "actions/curl_req.h"
#include "common/clock.h"
#include "common/mem.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CURL_WHAT_MAX 400              /* "METHOD url" in messages */

enum { DRIVE_DONE, DRIVE_STOPPED, DRIVE_EXPIRED };

/* One transfer's state, shared with libcurl's callbacks. */
typedef struct xfer {
    CURL *e;
    const cairn_curl_opts *o;
    int64_t started, until;            /* until: the earlier deadline; 0: none */
    bool until_is_step;                /* the step's deadline is the earlier one */
    char errbuf[CURL_ERROR_SIZE];
    const cairn_http_req *http;        /* HTTP: the request and its response */
    cairn_http_resp *resp;
    bool headers_over;
    const char *upload;                /* SMTP: the message and how far it went */
    size_t upload_len, upload_off;
    char reply[CAIRN_CURL_REPLY_MAX];  /* SMTP: the last reply line before QUIT */
    int reply_code;
    bool quit_sent;
} xfer;

/* ---- process-wide set-up ------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "cairn: curl_global_init failed\n");
        abort();                       /* only fails when memory is short */
    }
}

void cairn_curl_global_init(void) { pthread_once(&global_once, global_init_once); }

/* SIGPIPE blocked in this thread for a transfer; one raised meanwhile (and
 * not pending before) is consumed when it ends. */
typedef struct pipe_guard {
    sigset_t set, old;
    bool was_pending;
} pipe_guard;

static void guard_begin(pipe_guard *g) {
    sigset_t pending;
    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
}

static void guard_end(pipe_guard *g) {
    sigset_t pending;
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&g->set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- URLs ---------------------------------------------------------------- */

static bool scheme_allowed(const char *scheme, const char *schemes) {
    size_t n = strlen(scheme);
    for (const char *p = schemes; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncasecmp(p, scheme, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

int cairn_curl_check_url(const char *url, const char *schemes, const char *what,
                         cairn_fail *f) {
    cairn_curl_global_init();
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK)
        rc = cairn_fail_set(f, "schema", "%s '%.300s' is not a valid URL (%s)", what, url,
                            curl_url_strerror(uc));
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             !scheme_allowed(scheme, schemes))
        rc = cairn_fail_set(f, "schema", "%s: scheme '%s' is not allowed (allowed: %s)", what,
                            scheme ? scheme : "", schemes);
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        rc = cairn_fail_set(f, "schema", "%s '%.300s' has no host", what, url);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* ---- the transfer -------------------------------------------------------- */

static void xfer_init(xfer *x, const cairn_curl_opts *o) {
    memset(x, 0, sizeof *x);
    x->o = o;
    x->started = cairn_now_ms();
    if (o->timeout_ms > 0) x->until = x->started + o->timeout_ms;
    if (o->deadline_ms > 0 && (x->until == 0 || o->deadline_ms <= x->until)) {
        x->until = o->deadline_ms;
        x->until_is_step = true;
    }
}

static int timeout_fail(const xfer *x, const char *what, cairn_fail *f) {
    if (x->until_is_step)
        return cairn_fail_set(f, "timeout", "%s: step deadline reached after %lld ms", what,
                              (long long)(cairn_now_ms() - x->started));
    return cairn_fail_set(f, "timeout", "%s: no complete answer within the %lld ms timeout",
                          what, (long long)x->o->timeout_ms);
}

/* Stop or deadline before anything starts: -1 with f set; else 0. */
static int early_fail(const xfer *x, const char *what, cairn_fail *f) {
    if (cairn_stop_requested(x->o->stop))
        return cairn_fail_set(f, "cancelled", "%s: stop requested before the start", what);
    if (x->until && cairn_now_ms() >= x->until) return timeout_fail(x, what, f);
    return 0;
}

static CURL *easy_new(xfer *x, const char *url, const char *protocols) {
    cairn_curl_global_init();
    CURL *e = curl_easy_init();
    if (e == NULL) {
        fprintf(stderr, "cairn: curl_easy_init failed\n");
        abort();                       /* out of memory: see mem.h */
    }
    const cairn_curl_opts *o = x->o;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CAIRN_HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->tls_verify ? 2L : 0L);
    if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (x->until) {
        /* A backstop for any blocking path inside libcurl, one slice after
         * the deadline so that drive() is the one that notices it. */
        int64_t left = x->until - cairn_now_ms();
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)((left > 0 ? left : 0) + CAIRN_CURL_POLL_SLICE_MS));
    }
    x->e = e;
    return e;
}

static CURLcode done_result(CURLM *m) {
    CURLcode rc = CURLE_FAILED_INIT;   /* when libcurl reported no end at all */
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
    return rc;
}

/* Run the easy handle to its end, the stop flag or the deadline, whichever
 * comes first; *why says which.  Returns libcurl's result when done. */
static CURLcode drive(xfer *x, int *why) {
    CURLM *m = curl_multi_init();
    int running = 1;
    *why = DRIVE_DONE;
    curl_multi_add_handle(m, x->e);
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK || !running) break;
        if (cairn_stop_requested(x->o->stop)) {
            *why = DRIVE_STOPPED;
            break;
        }
        int64_t wait = CAIRN_CURL_POLL_SLICE_MS;
        if (x->until) {
            int64_t left = x->until - cairn_now_ms();
            if (left <= 0) {
                *why = DRIVE_EXPIRED;
                break;
            }
            if (left < wait) wait = left;
        }
        curl_multi_poll(m, NULL, 0, (int)wait, NULL);
    }
    CURLcode rc = *why == DRIVE_DONE ? done_result(m) : CURLE_OK;
    curl_multi_remove_handle(m, x->e);
    curl_multi_cleanup(m);
    return rc;
}

static const char *kind_of(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: case CURLE_INTERFACE_FAILED:
        return "connect";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED: case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return "tls";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_LOGIN_DENIED: case CURLE_AUTH_ERROR: case CURLE_REMOTE_ACCESS_DENIED:
        return "auth";
    case CURLE_FILESIZE_EXCEEDED:
        return "size";
    case CURLE_URL_MALFORMAT:
        return "schema";
    default:                           /* redirects, bad replies, cut bodies, ... */
        return "protocol";
    }
}

/* The failure for a transfer that did not end well; -1. */
static int xfer_fail(const xfer *x, CURLcode rc, int why, const char *what, cairn_fail *f) {
    if (why == DRIVE_STOPPED)
        return cairn_fail_set(f, "cancelled", "%s: stop requested, transfer aborted", what);
    if (why == DRIVE_EXPIRED || (rc == CURLE_OPERATION_TIMEDOUT && x->until &&
                                 cairn_now_ms() >= x->until))
        return timeout_fail(x, what, f);
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    return cairn_fail_set(f, kind_of(rc), "%s: %s", what, detail);
}

/* ---- HTTP ---------------------------------------------------------------- */

static void header_push(cairn_http_resp *r, char *name, char *value) {
    if (r->n_headers == r->cap_headers) {
        r->cap_headers = r->cap_headers ? r->cap_headers * 2 : 16;
        r->headers = cairn_realloc(r->headers, (size_t)r->cap_headers * sizeof *r->headers);
    }
    r->headers[r->n_headers++] = (cairn_http_header){name, value};
}

static void headers_clear(cairn_http_resp *r) {
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->n_headers = 0;
    r->headers_bytes = 0;
}

static char *trimmed(const char *p, size_t n) {
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    return cairn_strndup(p, n);
}

/* One header line (CRLF stripped) of the current response. */
static void header_line(cairn_http_resp *r, const char *p, size_t n) {
    if ((p[0] == ' ' || p[0] == '\t') && r->n_headers) {   /* obsolete line folding */
        cairn_http_header *h = &r->headers[r->n_headers - 1];
        char *more = trimmed(p, n), *joined = cairn_sprintf("%s %s", h->value, more);
        free(h->value);
        free(more);
        h->value = joined;
        return;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL || colon == p) return;          /* not a header: ignored */
    char *name = trimmed(p, (size_t)(colon - p));
    for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
    header_push(r, name, trimmed(colon + 1, n - (size_t)(colon - p) - 1));
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    cairn_http_resp *r = x->resp;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {   /* a new response: redirect, 100 */
        headers_clear(r);
        return len;
    }
    r->headers_bytes += len;
    if (r->headers_bytes > CAIRN_HTTP_HEADERS_MAX) {
        x->headers_over = true;
        return 0;                      /* aborts the transfer */
    }
    size_t k = len;
    while (k && (p[k - 1] == '\n' || p[k - 1] == '\r')) k--;
    if (k) header_line(r, p, k);
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    cairn_http_resp *r = x->resp;
    size_t len = size * n;
    cairn_capbuf_append(&r->body, p, len);    /* keeps at most the cap */
    if (cairn_capbuf_truncated(&r->body)) {
        r->body_over = true;
        if (x->http->body_over_fails) return 0;  /* aborts the transfer */
    }
    return len;
}

static bool has_header(char *const *headers, const char *name) {
    size_t n = strlen(name);
    for (char *const *h = headers; h && *h; h++)
        if (strncasecmp(*h, name, n) == 0 && ((*h)[n] == ':' || (*h)[n] == ';')) return true;
    return false;
}

static bool body_method(const char *m) {
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* The author's headers, then "Expect:" (no 100-continue round trip) and,
 * where a body goes out without a Content-Type, "Content-Type:" so that
 * libcurl does not claim a form. */
static struct curl_slist *http_headers(const cairn_http_req *req, bool sends_body) {
    struct curl_slist *list = NULL;
    for (char *const *h = req->headers; h && *h; h++) list = curl_slist_append(list, *h);
    if (!has_header(req->headers, "expect")) list = curl_slist_append(list, "Expect:");
    if (sends_body && !has_header(req->headers, "content-type"))
        list = curl_slist_append(list, "Content-Type:");
    return list;
}

static void http_method(CURL *e, const cairn_http_req *req) {
    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (req->body || body_method(m)) { /* POST, PUT, PATCH send Content-Length: 0 at least */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    if (strcmp(m, "GET") == 0 && !req->body) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(m, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

static void http_setup(xfer *x, const cairn_http_req *req, struct curl_slist *headers) {
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)CAIRN_HTTP_MAX_REDIRECTS);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, CAIRN_HTTP_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  /* every decoder libcurl has */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    http_method(e, req);
}

static void http_collect(xfer *x, cairn_http_resp *r) {
    char *s = NULL;
    curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(x->e, CURLINFO_REDIRECT_COUNT, &r->redirects);
    if (curl_easy_getinfo(x->e, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK && s)
        r->url = cairn_strdup(s);
    s = NULL;
    if (curl_easy_getinfo(x->e, CURLINFO_CONTENT_TYPE, &s) == CURLE_OK && s)
        r->content_type = cairn_strdup(s);
}

static int http_fail(const xfer *x, CURLcode rc, int why, const char *what, cairn_fail *f) {
    if (why == DRIVE_DONE && rc == CURLE_WRITE_ERROR && x->headers_over)
        return cairn_fail_set(f, "size", "%s: response headers are over the %d-byte cap",
                              what, CAIRN_HTTP_HEADERS_MAX);
    if (why == DRIVE_DONE && rc == CURLE_WRITE_ERROR && x->resp->body_over) {
        curl_off_t declared = -1;
        curl_easy_getinfo(x->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
        char len[64] = "";
        if (declared >= 0)
            snprintf(len, sizeof len, " (Content-Length: %lld)", (long long)declared);
        return cairn_fail_set(f, "size", "%s: response body is over the %zu-byte cap%s", what,
                              x->resp->body.cap, len);
    }
    return xfer_fail(x, rc, why, what, f);
}

static int http_run(const cairn_http_req *req, cairn_http_resp *resp, cairn_fail *f) {
    xfer x;
    char what[CURL_WHAT_MAX];
    const char *method = req->method ? req->method : "GET";
    xfer_init(&x, &req->opts);
    if (req->label) snprintf(what, sizeof what, "%.300s", req->label);
    else snprintf(what, sizeof what, "%s %.300s", method, req->url);
    if (early_fail(&x, what, f)) return -1;
    x.http = req;
    x.resp = resp;
    easy_new(&x, req->url, "http,https");
    bool sends_body = strcmp(method, "HEAD") != 0 && (req->body || body_method(method));
    struct curl_slist *headers = http_headers(req, sends_body);
    http_setup(&x, req, headers);
    int why;
    CURLcode rc = drive(&x, &why);
    http_collect(&x, resp);
    int out = why == DRIVE_DONE && rc == CURLE_OK ? 0 : http_fail(&x, rc, why, what, f);
    curl_easy_cleanup(x.e);
    curl_slist_free_all(headers);
    return out;
}

int cairn_curl_http(const cairn_http_req *req, cairn_http_resp *resp, cairn_fail *f) {
    memset(resp, 0, sizeof *resp);
    cairn_capbuf_init(&resp->body, req->body_max);
    pipe_guard g;
    guard_begin(&g);
    int rc = http_run(req, resp, f);
    guard_end(&g);
    return rc;
}

void cairn_http_resp_free(cairn_http_resp *resp) {
    if (resp == NULL) return;
    headers_clear(resp);
    free(resp->headers);
    free(resp->url);
    free(resp->content_type);
    cairn_capbuf_free(&resp->body);
    memset(resp, 0, sizeof *resp);
}

/* ---- SMTP ---------------------------------------------------------------- */

static size_t on_discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    size_t room = size * n, left = x->upload_len - x->upload_off;
    size_t k = left < room ? left : room;
    memcpy(p, x->upload + x->upload_off, k);
    x->upload_off += k;
    return k;
}

/* Keep the last complete reply line ("250 ok", the end of a multi-line
 * reply) that arrived before QUIT; commands sent (AUTH holds a secret) are
 * never kept. */
static int on_debug(CURL *e, curl_infotype type, char *p, size_t n, void *ud) {
    xfer *x = ud;
    (void)e;
    if (type == CURLINFO_HEADER_OUT && n >= 4 && strncasecmp(p, "QUIT", 4) == 0)
        x->quit_sent = true;
    if (type != CURLINFO_HEADER_IN || x->quit_sent) return 0;
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r')) n--;
    bool coded = n >= 3 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
                 isdigit((unsigned char)p[2]);
    if (!coded || (n > 3 && p[3] != ' ')) return 0;
    size_t k = n < sizeof x->reply - 1 ? n : sizeof x->reply - 1;
    memcpy(x->reply, p, k);
    x->reply[k] = '\0';
    x->reply_code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    return 0;
}

static struct curl_slist *smtp_rcpt(const cairn_smtp_req *req) {
    struct curl_slist *list = NULL;
    for (const char *const *r = req->rcpt; r && *r; r++) {
        char *addr = cairn_sprintf("<%s>", *r);
        list = curl_slist_append(list, addr);
        free(addr);
    }
    return list;
}

static void smtp_setup(xfer *x, const cairn_smtp_req *req, const char *from,
                       struct curl_slist *rcpt) {
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_discard);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->message_len);
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     req->require_starttls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    if (req->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, req->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, req->password ? req->password : "");
    }
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);          /* feeds on_debug, prints nothing */
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, x);
    /* Close (QUIT) inside the transfer, under its time limits, rather than
     * at clean-up under libcurl's own two-minute reply timeout. */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    int64_t secs = x->until ? (x->until - cairn_now_ms() + 999) / 1000 : 0;
    if (secs > 0) curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)secs);
}

static int smtp_fail(const xfer *x, CURLcode rc, int why, const char *what, cairn_fail *f) {
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    if (why != DRIVE_DONE || rc == CURLE_OPERATION_TIMEDOUT)
        return xfer_fail(x, rc, why, what, f);
    if (rc == CURLE_LOGIN_DENIED)
        return cairn_fail_set(f, "auth", "%s: login refused (server replied: %s)", what,
                              x->reply[0] ? x->reply : detail);
    if (rc == CURLE_USE_SSL_FAILED)
        return cairn_fail_set(f, "tls", "%s: STARTTLS is required but the server does not "
                                        "offer it (%s)", what, detail);
    if (x->reply_code >= 400)
        return cairn_fail_set(f, "rejected", "%s: %s (server replied: %s)", what, detail,
                              x->reply);
    return xfer_fail(x, rc, why, what, f);
}

static int smtp_run(const cairn_smtp_req *req, char *reply, size_t replylen, cairn_fail *f) {
    xfer x;
    char what[CURL_WHAT_MAX];
    xfer_init(&x, &req->opts);
    snprintf(what, sizeof what, "%.300s", req->url);
    if (early_fail(&x, what, f)) return -1;
    x.upload = req->message;
    x.upload_len = req->message_len;
    easy_new(&x, req->url, "smtp,smtps");
    char *from = cairn_sprintf("<%s>", req->from);
    struct curl_slist *rcpt = smtp_rcpt(req);
    smtp_setup(&x, req, from, rcpt);
    int why;
    CURLcode rc = drive(&x, &why);
    int out = why == DRIVE_DONE && rc == CURLE_OK ? 0 : smtp_fail(&x, rc, why, what, f);
    if (out == 0 && replylen) snprintf(reply, replylen, "%s", x.reply);
    curl_easy_cleanup(x.e);
    curl_slist_free_all(rcpt);
    free(from);
    return out;
}

int cairn_curl_smtp(const cairn_smtp_req *req, char *reply, size_t replylen, cairn_fail *f) {
    if (replylen) reply[0] = '\0';
    pipe_guard g;
    guard_begin(&g);
    int rc = smtp_run(req, reply, replylen, f);
    guard_end(&g);
    return rc;
}

/* ---- reading `with` ------------------------------------------------------ */

void cairn_strv_push(cairn_strv *s, char *owned) {
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = cairn_realloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

void cairn_strv_free(cairn_strv *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

bool cairn_strv_has_header(const cairn_strv *s, const char *name) {
    return has_header(s->v, name);
}

static bool is_token(const char *s) {
    if (*s == '\0') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return false;
    return true;
}

/* One header value as text: a string, or a number or boolean as JSON writes
 * it.  Consumes v. */
static int header_value(jv v, const char *what, char **out, cairn_fail *f) {
    if (cairn_with_scalar_text(v, "", what, out, f) != 0) return -1;
    if (strpbrk(*out, "\r\n") == NULL) return 0;
    free(*out);
    *out = NULL;
    return cairn_fail_set(f, "schema", "%s must not contain a line break", what);
}

int cairn_with_headers(jv with, const char *name, cairn_strv *out, cairn_fail *f) {
    jv map = cairn_with_get(with, name);
    int rc = 0;
    if (jv_is_valid(map) && jv_get_kind(map) != JV_KIND_OBJECT)
        rc = cairn_fail_set(f, "schema", "%s must be a map of header names to values, not %s",
                            name, jv_kind_name(jv_get_kind(map)));
    if (rc == 0 && jv_is_valid(map)) {
        jv_object_foreach(map, key, value) {   /* borrows map; key, value are copies */
            const char *k = jv_string_value(key);
            char what[160], *text = NULL;
            snprintf(what, sizeof what, "%s.%.100s", name, k);
            if (rc == 0 && !is_token(k))
                rc = cairn_fail_set(f, "schema", "%s: '%.100s' is not a valid header name",
                                    name, k);
            if (rc == 0 && (rc = header_value(jv_copy(value), what, &text, f)) == 0)
                /* "Name;" is libcurl's way to send a header with an empty value */
                cairn_strv_push(out, text[0] ? cairn_sprintf("%s: %s", k, text)
                                             : cairn_sprintf("%s;", k));
            free(text);
            jv_free(key);
            jv_free(value);
        }
    }
    jv_free(map);
    return rc;
}
