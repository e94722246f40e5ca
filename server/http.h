/*
 * http.h - the HTTP layer of `cairn serve`, on libmicrohttpd: listening,
 * the limits every request is held to, and one handler for what passes.
 *
 * Each connection has a thread of its own (MHD_USE_THREAD_PER_CONNECTION),
 * so a handler may block: on the journal, on a run's next event (a
 * Server-Sent Events stream).  The limits, each answered before the
 * handler is called and with a JSON error {"error": {"code", "message"}}:
 *
 *   CAIRN_SERVE_BODY_MAX          413 body_too_large (by Content-Length at
 *                                 once, or as the body arrives)
 *   CAIRN_SERVE_HEADER_MAX        431 headers_too_large (the request line
 *                                 and headers; past twice this libmicrohttpd
 *                                 answers 431 itself and closes)
 *   CAIRN_SERVE_CONNECTIONS_MAX   connections past it are closed at once
 *   CAIRN_SERVE_RATE_PER_S,       429 rate_limited, with Retry-After: a token
 *   CAIRN_SERVE_RATE_BURST        bucket per client address
 *   CAIRN_SERVE_REQUEST_MS        a request (headers and body) must arrive
 *                                 within this of the connection's start or
 *                                 of its last answer: else the connection is
 *                                 closed (a client sending a byte a second)
 *   CAIRN_SERVE_IDLE_S            a connection on which nothing moves this long
 *                                 is closed (libmicrohttpd's timeout)
 *   invalid UTF-8 in a body       400 invalid_utf8
 *
 * Each limit may be lowered or raised by an environment variable of the
 * same name (tests do; docs/api.md lists them).
 */
#ifndef CAIRN_SERVER_HTTP_H
#define CAIRN_SERVER_HTTP_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define CAIRN_SERVE_BODY_MAX (1 << 20)
#define CAIRN_SERVE_HEADER_MAX (16 << 10)
#define CAIRN_SERVE_CONNECTIONS_MAX 256
#define CAIRN_SERVE_RATE_PER_S 200
#define CAIRN_SERVE_RATE_BURST 400
#define CAIRN_SERVE_REQUEST_MS 10000
#define CAIRN_SERVE_IDLE_S 60
#define CAIRN_SERVE_CLIENTS_MAX 4096   /* client addresses the rate limit tracks at once */

typedef struct srv_http srv_http;
typedef struct srv_req srv_req;

/* What a handler reads of a request (borrowed for the call). */
const char *srv_req_method(const srv_req *r);
const char *srv_req_path(const srv_req *r);
const char *srv_req_header(const srv_req *r, const char *name);   /* NULL if absent */
const char *srv_req_query(const srv_req *r, const char *name);    /* NULL if absent */
const char *srv_req_body(const srv_req *r, size_t *len);          /* NUL-terminated */
const char *srv_req_client(const srv_req *r);                      /* "127.0.0.1" */

/* A stream's next bytes into buf (at most max): the count, 0 to be called
 * again, -1 at its end.  It may block. */
typedef ssize_t (*srv_stream_fn)(void *cls, char *buf, size_t max);

#define SRV_RESP_HEADERS_MAX 8   /* further headers one answer may carry (srv_resp.headers) */

typedef struct srv_resp {
    int status;
    char *body;                  /* owned (free) */
    size_t len;
    const char *type;            /* static; default application/json */
    char location[256];          /* "" for none */
    int retry_after;             /* seconds, 0 for none */
    const char *challenge;       /* static: WWW-Authenticate, or NULL */
    const char *headers[2 * SRV_RESP_HEADERS_MAX + 1];   /* static name, value pairs; NULL ends */
    srv_stream_fn stream;        /* instead of body: text/event-stream */
    void *stream_cls;
    void (*stream_free)(void *cls);
} srv_resp;

/* v (consumed) as the body. */
void srv_resp_json(srv_resp *r, int status, jv v);
/* {"error": {"code": code, "message": ...}} with status. */
void srv_resp_error(srv_resp *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef void (*srv_handler)(void *ud, const srv_req *req, srv_resp *resp);
/* Told of every answer (metrics). */
typedef void (*srv_answered_fn)(void *ud, int status);

typedef struct srv_http_config {
    const char *host;            /* numeric IPv4 or IPv6 address */
    int port;                    /* 0: any free port */
    srv_handler handler;
    void *ud;                    /* the handler's */
    srv_answered_fn answered;    /* may be NULL */
    void *answered_ud;
} srv_http_config;

/* Listen and serve on threads of libmicrohttpd's.  *port_out (may be
 * NULL) receives the port bound. */
int srv_http_start(const srv_http_config *cfg, srv_http **out, int *port_out, cairn_err *err);
/* Stop accepting connections; those open go on. */
void srv_http_quiesce(srv_http *h);
/* Close every connection and stop.  NULL ok. */
void srv_http_stop(srv_http *h);

/* Whether text is an address of the loopback (127.0.0.0/8, ::1, localhost). */
bool srv_http_loopback(const char *host);

/* The limit named (one of the CAIRN_SERVE_ names above) as in force. */
int64_t srv_http_limit(const char *name);

#endif
