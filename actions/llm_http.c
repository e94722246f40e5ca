/*
 * llm_http.c - one HTTP POST for the `llm` action, on libcurl.
 *
 * The transfer runs on a private multi handle so that this thread wakes at
 * least every CAIRN_LLM_POLL_SLICE_MS to look at the stop flag and the
 * deadline: a stalled server can hold a transfer for as long as it likes,
 * and neither a stop nor the deadline waits for it.  The reply body is kept
 * up to CAIRN_LLM_BODY_MAX bytes; one byte more ends the transfer (kind
 * "size").  No redirects are followed; only http and https are spoken.
 *
 * Nothing here uses jv: it runs on a worker thread.
 */
#include "actions/llm_int.h"
#include "common/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LLM_USER_AGENT "cairn-llm/1"
#define LLM_DEADLINE_BACKSTOP_MS 1000   /* curl's own time-out, past ours */

typedef struct http_ctx {
    llm_http_resp *resp;
    bool over;                         /* the body passed the cap */
    int64_t ra_seconds_ms, ra_ms;      /* retry-after, retry-after-ms; -1: absent */
} http_ctx;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- retry-after and waiting -------------------------------------------- */

int64_t cairn__llm_retry_after_ms(const char *value, time_t now) {
    while (*value == ' ' || *value == '\t') value++;
    char *end = NULL;
    errno = 0;
    double secs = strtod(value, &end);
    if (end != value && value[0] >= '0' && value[0] <= '9') {
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (*end || errno || !isfinite(secs)) return -1;
        return secs > 1e9 ? (int64_t)1e12 : (int64_t)(secs * 1000);
    }
    time_t at = curl_getdate(value, NULL);
    if (at == (time_t)-1) return -1;
    return at > now ? (int64_t)(at - now) * 1000 : 0;
}

int cairn__llm_sleep(int64_t ms, const cairn_stop *stop) {
    int64_t until = cairn_now_ms() + ms;
    for (;;) {
        if (cairn_stop_requested(stop)) return -1;
        int64_t left = until - cairn_now_ms();
        if (left <= 0) return 0;
        if (left > CAIRN_LLM_POLL_SLICE_MS) left = CAIRN_LLM_POLL_SLICE_MS;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- callbacks ---------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    http_ctx *c = ud;
    size_t len = size * n;
    if (c->resp->body.len + len > CAIRN_LLM_BODY_MAX) {
        c->over = true;
        return 0;                      /* ends the transfer: CURLE_WRITE_ERROR */
    }
    cairn_buf_append(&c->resp->body, p, len);
    return len;
}

/* "Name: value\r\n" when name matches (case-insensitive): the value, else NULL. */
static const char *header_value(const char *line, size_t len, const char *name) {
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return NULL;
    return line + n + 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    http_ctx *c = ud;
    size_t len = size * n;
    char line[256];
    if (len >= sizeof line) return len;          /* not one we read */
    memcpy(line, p, len);
    line[len] = '\0';
    const char *v;
    if (strncmp(line, "HTTP/", 5) == 0) {        /* a new response (after 100...) */
        c->ra_seconds_ms = c->ra_ms = -1;
    } else if ((v = header_value(line, len, "retry-after-ms")) != NULL) {
        int64_t s = cairn__llm_retry_after_ms(v, time(NULL));
        c->ra_ms = s < 0 ? -1 : s / 1000;        /* the value is already milliseconds */
    } else if ((v = header_value(line, len, "retry-after")) != NULL) {
        c->ra_seconds_ms = cairn__llm_retry_after_ms(v, time(NULL));
    }
    return len;
}

/* ---- the transfer --------------------------------------------------------- */

static struct curl_slist *make_headers(const char *const *extra) {
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: application/json", "Expect:"};
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) h = curl_slist_append(h, fixed[i]);
    for (; extra && *extra; extra++) h = curl_slist_append(h, *extra);
    return h;
}

static CURL *make_easy(const llm_http_req *req, struct curl_slist *hdrs, http_ctx *c,
                       char *errbuf) {
    int64_t left = req->deadline_ms - cairn_now_ms();
    if (left < 1) left = 1;
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, LLM_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(left < CAIRN_LLM_CONNECT_TIMEOUT_MS ? left
                                                               : CAIRN_LLM_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left + LLM_DEADLINE_BACKSTOP_MS));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    return e;
}

/* Drive the transfer to its end, or stop at the deadline or a stop request.
 * Returns 0 with *res, or -1 with f set. */
static int drive(CURL *e, const llm_http_req *req, CURLcode *res, cairn_fail *f) {
    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, e);
    int64_t start = cairn_now_ms();
    int running = 1, rc = 0;
    while (rc == 0) {
        int64_t now = cairn_now_ms();
        if (cairn_stop_requested(req->stop))
            rc = cairn_fail_set(f, "cancelled", "stop requested during the request to %s",
                                req->url);
        else if (now >= req->deadline_ms)
            rc = cairn_fail_set(f, "timeout", "no complete reply from %s within %lld ms",
                                req->url, (long long)(now - start));
        else if (curl_multi_perform(m, &running) != CURLM_OK)
            rc = cairn_fail_set(f, "protocol", "libcurl failed while talking to %s", req->url);
        else if (running == 0)
            break;
        else
            curl_multi_poll(m, NULL, 0, CAIRN_LLM_POLL_SLICE_MS, NULL);
    }
    CURLMsg *msg;
    int left = 0;
    *res = CURLE_OK;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) *res = msg->data.result;
    curl_multi_remove_handle(m, e);
    curl_multi_cleanup(m);
    return rc;
}

static bool is_tls_error(CURLcode c) {
    switch (c) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

/* The failure kind of a libcurl error. */
static const char *curl_kind(CURL *e, CURLcode c) {
    curl_off_t connected = 0;
    switch (c) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
        return connected == 0 ? "connect" : "timeout";
    default:
        return is_tls_error(c) ? "tls" : "protocol";
    }
}

static int classify(CURL *e, CURLcode c, const http_ctx *ctx, const char *url,
                    const char *errbuf, cairn_fail *f) {
    if (c == CURLE_OK) return 0;
    if (ctx->over)
        return cairn_fail_set(f, "size", "the reply from %s is larger than %d bytes", url,
                              CAIRN_LLM_BODY_MAX);
    return cairn_fail_set(f, curl_kind(e, c), "POST %s: %s", url,
                          errbuf[0] ? errbuf : curl_easy_strerror(c));
}

int cairn__llm_http_post(const llm_http_req *req, llm_http_resp *resp, cairn_fail *f) {
    pthread_once(&curl_once, curl_init_once);
    char errbuf[CURL_ERROR_SIZE] = "";
    http_ctx c = {resp, false, -1, -1};
    resp->status = 0;
    resp->content_type[0] = '\0';
    resp->retry_after_ms = -1;
    struct curl_slist *hdrs = make_headers(req->headers);
    CURL *e = make_easy(req, hdrs, &c, errbuf);
    CURLcode res = CURLE_OK;
    int rc = drive(e, req, &res, f);
    if (rc == 0) rc = classify(e, res, &c, req->url, errbuf, f);
    if (rc == 0) {
        char *ct = NULL;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ct ? ct : "");
        resp->retry_after_ms = c.ra_ms >= 0 ? c.ra_ms : c.ra_seconds_ms;
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
    return rc;
}

void cairn__llm_http_resp_free(llm_http_resp *r) {
    if (r == NULL) return;
    cairn_buf_free(&r->body);
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
}
