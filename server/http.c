/*
 * http.c - libmicrohttpd underneath the server (http.h): limits first,
 * then the handler.
 *
 * The request deadline (CAIRN_SERVE_REQUEST_MS) is kept by a reaper thread:
 * libmicrohttpd's own timeout counts idle time only, and a client that
 * sends one byte a second is never idle.  Each connection's record holds
 * its deadline; the reaper shuts down the socket of one past it, and the
 * connection's thread then sees the end of its input and closes.  Records
 * leave the table in the connection's CLOSED notification, under the same
 * lock, before libmicrohttpd closes the descriptor: a shutdown never hits a
 * descriptor that was reused.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "server/http.h"

#define REAP_EVERY_MS 100

/* ---- limits ------------------------------------------------------------------ */

typedef struct limit {
    const char *name;
    int64_t value;
} limit;

static limit limits[] = {
    {"CAIRN_SERVE_BODY_MAX", CAIRN_SERVE_BODY_MAX},
    {"CAIRN_SERVE_HEADER_MAX", CAIRN_SERVE_HEADER_MAX},
    {"CAIRN_SERVE_CONNECTIONS_MAX", CAIRN_SERVE_CONNECTIONS_MAX},
    {"CAIRN_SERVE_RATE_PER_S", CAIRN_SERVE_RATE_PER_S},
    {"CAIRN_SERVE_RATE_BURST", CAIRN_SERVE_RATE_BURST},
    {"CAIRN_SERVE_REQUEST_MS", CAIRN_SERVE_REQUEST_MS},
    {"CAIRN_SERVE_IDLE_S", CAIRN_SERVE_IDLE_S},
};

static void limits_from_env(void) {
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        const char *v = getenv(limits[i].name);
        if (v && atoll(v) > 0) limits[i].value = atoll(v);
    }
}

int64_t srv_http_limit(const char *name) {
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (strcmp(limits[i].name, name) == 0) return limits[i].value;
    return 0;
}

/* ---- connections and their deadlines -------------------------------------------- */

typedef struct conn_rec {
    int fd;
    int64_t deadline;            /* monotonic ms; 0 while answering */
    struct conn_rec *prev, *next;
} conn_rec;

/* The rate limit's bucket for one client address. */
typedef struct bucket {
    double tokens;
    int64_t at_ms;
} bucket;

struct srv_http {
    srv_http_config cfg;
    struct MHD_Daemon *d;
    pthread_mutex_t mu;          /* conns, buckets */
    pthread_cond_t cond;
    conn_rec *conns;
    bool stopping;
    pthread_t reaper;
    cairn_strmap *bucket_of;     /* client address -> index in buckets */
    bucket *buckets;
    int n_buckets;
};

static void *reap(void *arg) {
    srv_http *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = cairn_now_ms();
        for (conn_rec *c = h->conns; c; c = c->next)
            if (c->deadline && now > c->deadline) {
                shutdown(c->fd, SHUT_RDWR);
                c->deadline = 0;
            }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += REAP_EVERY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cond, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void set_deadline(srv_http *h, struct MHD_Connection *conn, int64_t deadline) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || ci->socket_context == NULL) return;
    pthread_mutex_lock(&h->mu);
    ((conn_rec *)ci->socket_context)->deadline = deadline;
    pthread_mutex_unlock(&h->mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    srv_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *c = cairn_calloc(1, sizeof *c);
        c->fd = ci ? ci->connect_fd : -1;
        c->deadline = c->fd >= 0 ? cairn_now_ms() + srv_http_limit("CAIRN_SERVE_REQUEST_MS") : 0;
        pthread_mutex_lock(&h->mu);
        c->next = h->conns;
        if (h->conns) h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->mu);
        *socket_context = c;
    } else if (*socket_context) {
        conn_rec *c = *socket_context;
        pthread_mutex_lock(&h->mu);
        if (c->prev) c->prev->next = c->next; else h->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        pthread_mutex_unlock(&h->mu);
        free(c);
        *socket_context = NULL;
    }
}

/* A token bucket per client address.  The table is bounded: when full it
 * starts over (every client gets a full bucket), which errs towards letting
 * requests through. */
static bool rate_ok(srv_http *h, const char *client, int *retry_after) {
    double per_s = (double)srv_http_limit("CAIRN_SERVE_RATE_PER_S");
    double burst = (double)srv_http_limit("CAIRN_SERVE_RATE_BURST");
    int64_t now = cairn_now_ms(), pos;
    pthread_mutex_lock(&h->mu);
    if (!cairn_strmap_get(h->bucket_of, client, &pos)) {
        if (h->n_buckets == CAIRN_SERVE_CLIENTS_MAX) {
            cairn_strmap_free(h->bucket_of);
            h->bucket_of = cairn_strmap_new();
            h->n_buckets = 0;
        }
        pos = h->n_buckets++;
        h->buckets[pos] = (bucket){.tokens = burst, .at_ms = now};
        cairn_strmap_put(h->bucket_of, client, pos);
    }
    bucket *b = &h->buckets[pos];
    b->tokens += (double)(now - b->at_ms) * per_s / 1000.0;
    if (b->tokens > burst) b->tokens = burst;
    b->at_ms = now;
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    else *retry_after = (int)((1.0 - b->tokens) / per_s) + 1;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

/* ---- requests ------------------------------------------------------------------ */

struct srv_req {
    struct MHD_Connection *conn;
    const char *method, *path;
    char client[INET6_ADDRSTRLEN];
    cairn_buf body;
    int64_t declared;            /* Content-Length, or -1 */
    bool too_large;
    size_t header_bytes;
};

const char *srv_req_method(const srv_req *r) { return r->method; }
const char *srv_req_path(const srv_req *r) { return r->path; }
const char *srv_req_client(const srv_req *r) { return r->client; }

const char *srv_req_header(const srv_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_req_query(const srv_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *srv_req_body(const srv_req *r, size_t *len) {
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size) {
    (void)kind;
    (void)key;
    (void)value;
    ((srv_req *)cls)->header_bytes += key_size + value_size + 4;   /* ": " and CRLF */
    return MHD_YES;
}

static void client_text(struct MHD_Connection *conn, char out[INET6_ADDRSTRLEN]) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, INET6_ADDRSTRLEN, "?");
    if (ci == NULL || ci->client_addr == NULL) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, INET6_ADDRSTRLEN);
}

/* Whether s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/* ---- responses --------------------------------------------------------------------- */

void srv_resp_json(srv_resp *r, int status, jv v) {
    free(r->body);
    r->status = status;
    r->body = cairn_json_text(v);
    r->len = strlen(r->body);
    r->type = "application/json";
    jv_free(v);
}

void srv_resp_error(srv_resp *r, int status, const char *code, const char *fmt, ...) {
    char msg[CAIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jv e = jv_object_set(jv_object(), jv_string("code"), jv_string(code));
    e = jv_object_set(e, jv_string("message"), jv_string(msg));
    srv_resp_json(r, status, jv_object_set(jv_object(), jv_string("error"), e));
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_resp *r = cls;
    ssize_t n;
    while ((n = r->stream(r->stream_cls, buf, max)) == 0) {}   /* it blocks; 0 is "again" */
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void stream_done(void *cls) {
    srv_resp *r = cls;
    if (r->stream_free) r->stream_free(r->stream_cls);
    free(r);
}

static enum MHD_Result send_resp(srv_http *h, struct MHD_Connection *conn, srv_resp *r) {
    struct MHD_Response *m;
    if (r->stream) {
        srv_resp *kept = cairn_malloc(sizeof *kept);
        *kept = *r;
        r->stream_free = NULL;
        m = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, kept,
                                              stream_done);
        MHD_add_response_header(m, "Content-Type", "text/event-stream");
        MHD_add_response_header(m, "Cache-Control", "no-store");
    } else {
        m = MHD_create_response_from_buffer(r->len, r->body ? r->body : "", MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(m, "Content-Type", r->type ? r->type : "application/json");
    }
    if (r->location[0]) MHD_add_response_header(m, "Location", r->location);
    if (r->challenge) MHD_add_response_header(m, "WWW-Authenticate", r->challenge);
    for (int i = 0; i < 2 * SRV_RESP_HEADERS_MAX && r->headers[i]; i += 2)
        MHD_add_response_header(m, r->headers[i], r->headers[i + 1]);
    if (r->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(m, "Retry-After", ra);
    }
    set_deadline(h, conn, 0);   /* answering: the request deadline no longer applies */
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)r->status, m);
    MHD_destroy_response(m);
    if (h->cfg.answered) h->cfg.answered(h->cfg.answered_ud, r->status);
    free(r->body);
    r->body = NULL;
    return ok;
}

static enum MHD_Result send_error(srv_http *h, struct MHD_Connection *conn, int status,
                                  const char *code, const char *msg, int retry_after) {
    srv_resp r = {0};
    srv_resp_error(&r, status, code, "%s", msg);
    r.retry_after = retry_after;
    return send_resp(h, conn, &r);
}

/* The checks made once the headers are in: 0 to go on, else answered. */
static int first_checks(srv_http *h, srv_req *q, enum MHD_Result *ret) {
    char msg[160];
    int retry = 0;
    MHD_get_connection_values_n(q->conn, MHD_HEADER_KIND, count_header, q);
    q->header_bytes += strlen(q->method) + strlen(q->path) + 12;
    int64_t header_max = srv_http_limit("CAIRN_SERVE_HEADER_MAX");
    int64_t body_max = srv_http_limit("CAIRN_SERVE_BODY_MAX");
    const char *cl = srv_req_header(q, "Content-Length");
    q->declared = cl ? atoll(cl) : -1;
    if ((int64_t)q->header_bytes > header_max) {
        snprintf(msg, sizeof msg, "the request's headers are %zu bytes; at most %lld",
                 q->header_bytes, (long long)header_max);
        *ret = send_error(h, q->conn, 431, "headers_too_large", msg, 0);
    } else if (!rate_ok(h, q->client, &retry)) {
        snprintf(msg, sizeof msg, "more than %lld requests a second from %s",
                 (long long)srv_http_limit("CAIRN_SERVE_RATE_PER_S"), q->client);
        *ret = send_error(h, q->conn, 429, "rate_limited", msg, retry);
    } else if (q->declared > body_max) {
        snprintf(msg, sizeof msg, "the body is %lld bytes; at most %lld", (long long)q->declared,
                 (long long)body_max);
        *ret = send_error(h, q->conn, 413, "body_too_large", msg, 0);
    } else {
        return 0;
    }
    return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    srv_http *h = cls;
    srv_req *q = *con_cls;
    if (q == NULL) {
        q = cairn_calloc(1, sizeof *q);
        q->conn = conn;
        q->method = method;
        q->path = url;
        client_text(conn, q->client);
        *con_cls = q;
        enum MHD_Result ret;
        if (first_checks(h, q, &ret)) return ret;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        int64_t body_max = srv_http_limit("CAIRN_SERVE_BODY_MAX");
        if (!q->too_large && (int64_t)(q->body.len + *upload_data_size) > body_max) {
            q->too_large = true;
            cairn_buf_free(&q->body);
            q->body = (cairn_buf){0};
        }
        if (!q->too_large) cairn_buf_append(&q->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->too_large) {
        char msg[120];
        snprintf(msg, sizeof msg, "the body is larger than %lld bytes",
                 (long long)srv_http_limit("CAIRN_SERVE_BODY_MAX"));
        return send_error(h, conn, 413, "body_too_large", msg, 0);
    }
    if (!utf8_valid((const unsigned char *)q->body.data, q->body.len))
        return send_error(h, conn, 400, "invalid_utf8", "the body is not valid UTF-8", 0);
    srv_resp r = {.status = 500};
    h->cfg.handler(h->cfg.ud, q, &r);
    enum MHD_Result ok = send_resp(h, conn, &r);
    if (r.stream_free) r.stream_free(r.stream_cls);   /* never handed over */
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)toe;
    srv_http *h = cls;
    srv_req *q = *con_cls;
    if (q) {
        cairn_buf_free(&q->body);
        free(q);
        *con_cls = NULL;
    }
    /* the next request on this connection has its own deadline */
    set_deadline(h, conn, cairn_now_ms() + srv_http_limit("CAIRN_SERVE_REQUEST_MS"));
}

/* ---- the daemon ------------------------------------------------------------------- */

bool srv_http_loopback(const char *host) {
    struct in_addr a4;
    if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0) return true;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int srv_http_start(const srv_http_config *cfg, srv_http **out, int *port_out, cairn_err *err) {
    limits_from_env();
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    const char *host = strcmp(cfg->host, "localhost") == 0 ? "127.0.0.1" : cfg->host;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        return cairn_err_set(err, CAIRN_EINVAL, "--listen %s: not a numeric address", cfg->host);
    }
    srv_http *h = cairn_calloc(1, sizeof *h);
    h->cfg = *cfg;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->bucket_of = cairn_strmap_new();
    h->buckets = cairn_calloc(CAIRN_SERVE_CLIENTS_MAX, sizeof *h->buckets);
    size_t memory = (size_t)srv_http_limit("CAIRN_SERVE_HEADER_MAX") * 2 + 8192;
    h->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv_http_limit("CAIRN_SERVE_CONNECTIONS_MAX"),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv_http_limit("CAIRN_SERVE_IDLE_S"),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_END);
    if (h->d == NULL) {
        cairn_strmap_free(h->bucket_of);
        free(h->buckets);
        free(h);
        return cairn_err_set(err, CAIRN_EIO, "cannot listen on %s port %d (in use, or not an"
                             " address of this host)", cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (port_out) *port_out = di ? di->port : cfg->port;
    pthread_create(&h->reaper, NULL, reap, h);
    *out = h;
    return 0;
}

void srv_http_quiesce(srv_http *h) {
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(srv_http *h) {
    if (h == NULL) return;
    MHD_stop_daemon(h->d);
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->reaper, NULL);
    cairn_strmap_free(h->bucket_of);
    free(h->buckets);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cond);
    free(h);
}
