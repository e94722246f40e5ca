/*
 * curl_req.h - one HTTP request, or one SMTP submission, through libcurl with
 * Cairn's limits, deadline and stop flag.  Shared by the `http` and `notify`
 * actions.
 *
 * Each call makes one easy handle (one connection, never shared with another
 * attempt) and drives it through a multi handle of its own, waking at least
 * every CAIRN_CURL_POLL_SLICE_MS to check the stop flag and the deadline.
 * libcurl's progress callback is not used for this: in a quiet transfer (a
 * server that accepted the connection and says nothing) it may run as seldom
 * as once a second, too slow for a prompt stop.  The deadline is the earlier
 * of the step's deadline and the call's own timeout.
 *
 * Failures are sorted into kinds (the `f` of every call):
 *   connect    the host did not resolve, refused, reset or dropped the
 *              connection before answering
 *   tls        handshake failed, certificate not trusted or not matching the
 *              host, or STARTTLS required and not offered
 *   timeout    the deadline passed (the step's or the request's `timeout`)
 *   cancelled  the stop flag was raised
 *   protocol   too many redirects, a redirect to another scheme, a reply that
 *              breaks HTTP or SMTP, a body cut short of its Content-Length
 *   size       the response headers or (when the cap is strict) the body are
 *              over their caps
 *   auth       the SMTP server refused the login
 *   rejected   the SMTP server refused the sender, a recipient or the
 *              message: the message carries the server's reply line
 * A URL that does not parse or has a scheme other than the ones allowed is
 * kind "schema" (cairn_curl_check_url, for prepare).
 *
 * The last section holds what both actions' prepare share to read their
 * `with` (a jv): those functions run on the orchestrator thread only.
 *
 * Threads: the transfer functions touch no jv and run on a worker
 * thread.  libcurl's global initialisation runs once, under pthread_once,
 * before the first handle.  SIGPIPE is blocked in the calling thread during
 * a transfer and a pending one is consumed, so a peer closing its end never
 * kills the process.  Proxies named by the usual environment variables
 * (http_proxy, https_proxy, no_proxy) are honoured, as libcurl does.
 *
 * Memory: requests are borrowed; a response is filled by the call and owned
 * by the caller, who releases it with cairn_http_resp_free (also after a
 * failure; NULL allowed).
 */
#ifndef CAIRN_CURL_REQ_H
#define CAIRN_CURL_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jv.h>

#include "actions/action.h"
#include "actions/with.h"
#include "actions/proc.h"

/* ---- limits ------------------------------------------------------------- */

#define CAIRN_HTTP_BODY_MAX (4 * 1024 * 1024)  /* response body the http action keeps;
                                                  a larger one fails, kind "size" */
#define CAIRN_HTTP_HEADERS_MAX (64 * 1024)     /* bytes of header lines of one response */
#define CAIRN_HTTP_MAX_REDIRECTS 5             /* redirects followed; one more: "protocol" */
#define CAIRN_HTTP_TIMEOUT_DEFAULT_MS 30000    /* a request without `timeout` */
#define CAIRN_HTTP_CONNECT_TIMEOUT_MS 10000    /* resolve + connect + TLS handshake */
#define CAIRN_HTTP_USER_AGENT "cairn/1"
#define CAIRN_CURL_POLL_SLICE_MS 50            /* longest wait between stop checks */
#define CAIRN_CURL_REPLY_MAX 512               /* an SMTP reply line kept for messages */

/* ---- common -------------------------------------------------------------- */

/* What every transfer takes. */
typedef struct cairn_curl_opts {
    bool tls_verify;                   /* check the peer's certificate and name */
    const char *ca_file;               /* PEM bundle to trust; NULL: the system's */
    int64_t timeout_ms;                /* the whole transfer; 0: none */
    int64_t deadline_ms;               /* CLOCK_MONOTONIC ms (the step's); 0: none */
    const cairn_stop *stop;            /* or NULL */
} cairn_curl_opts;

/* Initialise libcurl once per process (thread-safe, idempotent). */
void cairn_curl_global_init(void);

/* Parse url; its scheme, lower-cased, must be one of `schemes` ("http,https").
 * Returns 0, or -1 with f (kind "schema") set.  `what` names the field. */
int cairn_curl_check_url(const char *url, const char *schemes, const char *what,
                         cairn_fail *f);

/* ---- HTTP ---------------------------------------------------------------- */

typedef struct cairn_http_req {
    cairn_curl_opts opts;
    const char *method;                /* "GET", "POST", "HEAD", ... */
    const char *url;
    const char *label;                 /* names the request in messages; NULL:
                                          "METHOD url" (a URL may hold a token) */
    char *const *headers;              /* "Name: value", NULL-terminated; or NULL */
    const char *body;                  /* or NULL: no request body */
    size_t body_len;
    bool follow_redirects;             /* at most CAIRN_HTTP_MAX_REDIRECTS */
    size_t body_max;                   /* bytes of response body kept */
    bool body_over_fails;              /* true: a body over body_max aborts the
                                          transfer (kind "size"); false: the rest
                                          is read, counted and dropped */
} cairn_http_req;

typedef struct cairn_http_header {
    char *name;                        /* lower-cased */
    char *value;                       /* trimmed; folded lines joined by a space */
} cairn_http_header;

typedef struct cairn_http_resp {
    long status;                       /* 0 when no response arrived */
    char *url;                         /* the last URL asked (after redirects), or NULL */
    char *content_type;                /* of the last response, or NULL */
    long redirects;                    /* redirects followed */
    cairn_http_header *headers;        /* of the last response, in order */
    int n_headers, cap_headers;
    size_t headers_bytes;
    cairn_capbuf body;                 /* the first body_max bytes; total counts all */
    bool body_over;                    /* the body went past body_max */
} cairn_http_resp;

/* Send req and read the response.  Returns 0 with *resp filled (any status:
 * judging it is the caller's business), or -1 with f set and *resp holding
 * what arrived (status, headers, body so far). */
int cairn_curl_http(const cairn_http_req *req, cairn_http_resp *resp, cairn_fail *f);

void cairn_http_resp_free(cairn_http_resp *resp);

/* ---- SMTP ---------------------------------------------------------------- */

typedef struct cairn_smtp_req {
    cairn_curl_opts opts;
    const char *url;                   /* smtp://host[:port] or smtps://host[:port] */
    bool require_starttls;             /* smtp:// only: no STARTTLS offered -> "tls" */
    const char *username, *password;   /* username NULL: no AUTH */
    const char *from;                  /* bare address: the envelope sender */
    const char *const *rcpt;           /* bare addresses, NULL-terminated, at least one */
    const char *message;               /* RFC 5322 text with CRLF line ends */
    size_t message_len;
} cairn_smtp_req;

/* Submit the message to every recipient, all or none (one refused recipient
 * fails the whole submission before any data is sent).  Returns 0 and the
 * server's reply to the message ("250 2.0.0 Ok: queued as ...") in reply
 * (NUL-terminated, cut to replylen), or -1 with f set. */
int cairn_curl_smtp(const cairn_smtp_req *req, char *reply, size_t replylen, cairn_fail *f);

/* ---- reading `with` (orchestrator thread: these use jv) ------------------ */

/* An owned list of owned strings, NULL-terminated once non-empty (v is NULL
 * while empty, which the request structs accept). */
typedef struct cairn_strv {
    char **v;
    int n, cap;
} cairn_strv;

void cairn_strv_push(cairn_strv *s, char *owned);
void cairn_strv_free(cairn_strv *s);              /* NULL is allowed */

/* Whether a "Name: value" list holds header `name` (any case). */
bool cairn_strv_has_header(const cairn_strv *s, const char *name);

/* A map of HTTP headers appended to out as "Name: value": names are HTTP
 * tokens; values are strings, numbers or booleans (written as JSON writes
 * them) without CR, LF or NUL, so no value can smuggle in another header. */
int cairn_with_headers(jv with, const char *name, cairn_strv *out, cairn_fail *f);

#endif
