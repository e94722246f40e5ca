/*
 * console.c - the compiled console assets served (console.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "server/console.h"

/* What a browser may load for the console: everything from this origin,
 * nothing inline, and no page may frame it (an Approve button under
 * someone else's page is a click they could steal). */
#define CSP "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
};

static const char *type_of(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t k = strlen(types[i].ext);
        if (n >= k && strcmp(path + n - k, types[i].ext) == 0) return types[i].type;
    }
    return "application/octet-stream";
}

static const srv_console_asset *find(const char *path) {
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (const srv_console_asset *a = srv_console_assets; a->path; a++)
        if (strcmp(a->path, path) == 0) return a;
    return NULL;
}

/* If-None-Match names the asset's tag (or is "*"): weak comparison, as
 * RFC 9110 asks of it. */
static bool not_modified(const srv_req *q, const srv_console_asset *a) {
    const char *inm = srv_req_header(q, "If-None-Match");
    return inm && (strcmp(inm, "*") == 0 || strstr(inm, a->etag) != NULL);
}

/* The host of "HOST[:PORT]" or "[V6]:PORT" into out (empty when too long). */
static void host_part(const char *hostport, char *out, size_t len) {
    const char *start = hostport[0] == '[' ? hostport + 1 : hostport;
    const char *end = hostport[0] == '[' ? strchr(start, ']') : strrchr(start, ':');
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= len) n = 0;
    memcpy(out, start, n);
    out[n] = '\0';
}

bool srv_console_foreign(const srv_req *q, bool loopback_only, srv_resp *r) {
    const char *origin = srv_req_header(q, "Origin"), *host = srv_req_header(q, "Host");
    if (origin) {
        const char *o = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                        : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                  : NULL;
        if (o == NULL || host == NULL || strcasecmp(o, host) != 0) {
            srv_resp_error(r, 403, "forbidden", "a request from another site's page (Origin %.200s"
                           " is not %.200s)", origin, host ? host : "this server");
            return true;
        }
    }
    if (loopback_only && host) {
        char name[256];
        host_part(host, name, sizeof name);
        if (!srv_http_loopback(name)) {
            srv_resp_error(r, 403, "forbidden", "with no tokens file the server answers only"
                           " requests addressed to a loopback address or localhost, not %.200s",
                           host);
            return true;
        }
    }
    return false;
}

bool srv_console_serve(const srv_req *q, srv_resp *r) {
    const char *method = srv_req_method(q);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return false;
    const srv_console_asset *a = find(srv_req_path(q));
    if (a == NULL) return false;
    static const char *const fixed[] = {
        "Content-Security-Policy", CSP,
        "X-Content-Type-Options", "nosniff",
        "X-Frame-Options", "DENY",
        "Referrer-Policy", "no-referrer",
        "Cache-Control", "no-cache",
    };
    _Static_assert(sizeof fixed / sizeof fixed[0] / 2 + 1 <= SRV_RESP_HEADERS_MAX,
                   "the console's headers fit an answer");
    size_t n = sizeof fixed / sizeof fixed[0];
    memcpy(r->headers, fixed, sizeof fixed);
    r->headers[n] = "ETag";
    r->headers[n + 1] = a->etag;
    r->headers[n + 2] = NULL;
    r->type = type_of(a->path);
    free(r->body);
    if (not_modified(q, a)) {
        r->status = 304;
        r->body = NULL;
        r->len = 0;
    } else {
        r->status = 200;
        r->len = strlen(a->data);
        r->body = cairn_strdup(a->data);
    }
    return true;
}
