/*
 * hookauth.c - a webhook request against HOOK_<SOURCE>'s lines (hookauth.h).
 */
#include "server/hookauth.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/sig.h"

static const char *const texts[] = {
#define CAIRN_HOOKAUTH_TEXT(name, text) text,
    CAIRN_HOOKAUTH_MAP(CAIRN_HOOKAUTH_TEXT)
#undef CAIRN_HOOKAUTH_TEXT
};

const char *cairn_hookauth_text(cairn_hookauth_result r) {
    return (unsigned)r < sizeof texts / sizeof texts[0] ? texts[r] : "unknown";
}

void cairn_hookauth_secret_name(const char *source, char out[CAIRN_HOOK_SECRET_NAME_LEN]) {
    size_t n = strlen(source);
    out[0] = '\0';
    if (n + 6 > CAIRN_HOOK_SECRET_NAME_LEN) return;
    memcpy(out, "HOOK_", 5);
    for (size_t i = 0; i <= n; i++) out[5 + i] = (char)toupper((unsigned char)source[i]);
}

/* One credential line, its value not NUL-terminated. */
typedef struct {
    char scheme[8];
    const char *value;
    size_t len;
} cred;

static const char *header(const cairn_hook_request *req, const char *name) {
    for (int i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

/* ---- the schemes that sign ----------------------------------------------------- */

static bool mac_matches(const unsigned char mac[CAIRN_SIG_SHA256_LEN], const char *hex, size_t len) {
    unsigned char got[CAIRN_SIG_SHA256_LEN];
    return cairn_sig_unhex(hex, len, got, sizeof got) == CAIRN_SIG_SHA256_LEN &&
           CRYPTO_memcmp(got, mac, sizeof got) == 0;
}

/* "v1=HEX, v1=HEX": any one v1 that checks; others are skipped. */
static cairn_hookauth_result pagerduty(const cairn_hook_request *req, const cred *c) {
    const char *h = header(req, "X-PagerDuty-Signature");
    if (h == NULL) return CAIRN_HOOKAUTH_MISSING;
    unsigned char mac[CAIRN_SIG_SHA256_LEN];
    cairn_sig_hmac(c->value, c->len, req->body, req->body_len, NULL, 0, mac);
    int seen = 0, v1 = 0;
    bool ok = false;
    for (const char *p = h; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ') n--;
        if (n == 0) break;
        if (++seen > CAIRN_HOOK_SIGNATURES_MAX) return CAIRN_HOOKAUTH_MALFORMED;
        if (n > 3 && memcmp(p, "v1=", 3) == 0) {
            v1++;
            ok |= mac_matches(mac, p + 3, n - 3);   /* every one is checked: no early exit */
        }
        p += n;
    }
    if (v1 == 0) return CAIRN_HOOKAUTH_MALFORMED;
    return ok ? CAIRN_HOOKAUTH_OK : CAIRN_HOOKAUTH_WRONG;
}

/* A Unix time of at most 12 digits, or -1. */
static int64_t unix_time(const char *s, size_t n) {
    if (n == 0 || n > 12 || strspn(s, "0123456789") < n) return -1;
    int64_t t = 0;
    for (size_t i = 0; i < n; i++) t = t * 10 + (s[i] - '0');
    return t;
}

/* The signature hex of "TS<sep>BODY" checked, then the time. */
static cairn_hookauth_result timed(const cairn_hook_request *req, const cred *c, const char *ts,
                                   size_t ts_len, char sep, const char *hex, size_t hex_len) {
    int64_t t = unix_time(ts, ts_len);
    if (t < 0) return CAIRN_HOOKAUTH_MALFORMED;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.*s%c", (int)ts_len, ts, sep);
    unsigned char mac[CAIRN_SIG_SHA256_LEN];
    cairn_sig_hmac(c->value, c->len, prefix, strlen(prefix), req->body, req->body_len, mac);
    if (!mac_matches(mac, hex, hex_len)) return CAIRN_HOOKAUTH_WRONG;
    int64_t off = req->now_s - t;
    return off > CAIRN_HOOK_REPLAY_WINDOW_S || -off > CAIRN_HOOK_REPLAY_WINDOW_S
               ? CAIRN_HOOKAUTH_STALE : CAIRN_HOOKAUTH_OK;
}

static cairn_hookauth_result grafana(const cairn_hook_request *req, const cred *c) {
    const char *sig = header(req, "X-Grafana-Alerting-Signature");
    const char *ts = header(req, "X-Grafana-Alerting-Signature-Timestamp");
    if (sig == NULL) return CAIRN_HOOKAUTH_MISSING;
    if (ts == NULL) return CAIRN_HOOKAUTH_MALFORMED;   /* unsigned time: replayable */
    return timed(req, c, ts, strlen(ts), ':', sig, strlen(sig));
}

/* "t=TS,v1=HEX" */
static cairn_hookauth_result generic(const cairn_hook_request *req, const cred *c) {
    const char *h = header(req, "X-Cairn-Signature");
    if (h == NULL) return CAIRN_HOOKAUTH_MISSING;
    const char *comma = strchr(h, ',');
    if (strncmp(h, "t=", 2) != 0 || comma == NULL || strncmp(comma + 1, "v1=", 3) != 0)
        return CAIRN_HOOKAUTH_MALFORMED;
    return timed(req, c, h + 2, (size_t)(comma - h - 2), '.', comma + 4, strlen(comma + 4));
}

typedef cairn_hookauth_result (*hmac_fn)(const cairn_hook_request *req, const cred *c);

static const struct {
    const char *source;
    hmac_fn fn;
} signers[] = {{"pagerduty", pagerduty}, {"grafana", grafana}, {"generic", generic}};

static hmac_fn signer(const char *source) {
    for (size_t i = 0; i < sizeof signers / sizeof signers[0]; i++)
        if (strcmp(signers[i].source, source) == 0) return signers[i].fn;
    return NULL;
}

/* ---- bearer and basic ---------------------------------------------------------- */

/* The credentials after "Authorization: <scheme> ", or NULL. */
static const char *authorization(const cairn_hook_request *req, const char *scheme) {
    const char *h = header(req, "Authorization");
    size_t n = strlen(scheme);
    if (h == NULL || strncasecmp(h, scheme, n) != 0 || h[n] != ' ') return NULL;
    h += n;
    while (*h == ' ') h++;
    return h;
}

static cairn_hookauth_result bearer(const cairn_hook_request *req, const cred *c) {
    const char *t = authorization(req, "Bearer");
    if (t == NULL) return CAIRN_HOOKAUTH_MISSING;
    return cairn_sig_equal(t, strlen(t), c->value, c->len) ? CAIRN_HOOKAUTH_OK : CAIRN_HOOKAUTH_WRONG;
}

static cairn_hookauth_result basic(const cairn_hook_request *req, const cred *c) {
    const char *b64 = authorization(req, "Basic");
    if (b64 == NULL) return CAIRN_HOOKAUTH_MISSING;
    unsigned char plain[CAIRN_HOOK_CREDENTIAL_MAX];
    int n = cairn_sig_unb64(b64, strlen(b64), false, plain, sizeof plain);
    if (n < 0 || memchr(plain, ':', (size_t)n) == NULL) return CAIRN_HOOKAUTH_MALFORMED;
    bool eq = cairn_sig_equal(plain, (size_t)n, c->value, c->len);
    return eq ? CAIRN_HOOKAUTH_OK : CAIRN_HOOKAUTH_WRONG;
}

/* ---- the lines ------------------------------------------------------------------ */

/* Parse the line of n bytes at s into c: 1 a credential, 0 nothing (blank,
 * comment), -1 malformed or not for this source. */
static int parse_line(const char *source, const char *s, size_t n, cred *c) {
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
    while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
    if (n == 0 || *s == '#') return 0;
    size_t w = 0;
    while (w < n && s[w] != ' ') w++;
    if (w >= sizeof c->scheme || w == n || n > CAIRN_HOOK_CREDENTIAL_MAX) return -1;
    memcpy(c->scheme, s, w);
    c->scheme[w] = '\0';
    c->value = s + w;
    c->len = n - w;
    while (c->len > 0 && *c->value == ' ') c->value++, c->len--;
    if (c->len == 0) return -1;
    if (strcmp(c->scheme, "basic") == 0) return memchr(c->value, ':', c->len) ? 1 : -1;
    if (strcmp(c->scheme, "hmac") == 0) return signer(source) ? 1 : -1;
    return strcmp(c->scheme, "bearer") == 0 ? 1 : -1;
}

static cairn_hookauth_result check(const cairn_hook_request *req, const cred *c) {
    if (strcmp(c->scheme, "bearer") == 0) return bearer(req, c);
    if (strcmp(c->scheme, "basic") == 0) return basic(req, c);
    return signer(req->source)(req, c);
}

/* Which failure says most: STALE (genuine but old), WRONG, MALFORMED, MISSING. */
static int rank(cairn_hookauth_result r) {
    switch (r) {
    case CAIRN_HOOKAUTH_OK: return 5;
    case CAIRN_HOOKAUTH_STALE: return 4;
    case CAIRN_HOOKAUTH_WRONG: return 3;
    case CAIRN_HOOKAUTH_MALFORMED: return 2;
    default: return 1;
    }
}

/* Call each line of text, in order: the first -1 of parse stops with CONFIG. */
static cairn_hookauth_result each_line(const cairn_hook_request *req, const char *text, bool run,
                                       int *lines) {
    cairn_hookauth_result best = CAIRN_HOOKAUTH_MISSING;
    *lines = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        cred c;
        int got = parse_line(req->source, p, n, &c);
        if (got < 0) return CAIRN_HOOKAUTH_CONFIG;
        if (got > 0) {
            (*lines)++;
            cairn_hookauth_result r = run ? check(req, &c) : CAIRN_HOOKAUTH_MISSING;
            if (rank(r) > rank(best)) best = r;
        }
        p += n + (p[n] == '\n');
    }
    return best;
}

cairn_hookauth_result cairn_hookauth_verify(const cairn_hook_request *req, const char *credentials) {
    int lines = 0;
    if (credentials == NULL) return CAIRN_HOOKAUTH_NONE;
    /* every line is checked before any is tried: a broken one refuses all */
    if (each_line(req, credentials, false, &lines) == CAIRN_HOOKAUTH_CONFIG)
        return CAIRN_HOOKAUTH_CONFIG;
    if (lines == 0) return CAIRN_HOOKAUTH_NONE;
    return each_line(req, credentials, true, &lines);
}
