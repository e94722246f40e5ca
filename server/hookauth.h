/*
 * hookauth.h - checking a webhook request against its source's credentials.
 *
 * A source's credentials are the secret HOOK_<SOURCE> (HOOK_ALERTMANAGER,
 * HOOK_PAGERDUTY, ...), one credential a line so that a secret can rotate:
 * a request is accepted when any line accepts it.  Blank lines and lines
 * starting with '#' are skipped.  A line is one of:
 *
 *   bearer TOKEN          `Authorization: Bearer TOKEN`
 *   basic USER:PASSWORD   `Authorization: Basic base64(USER:PASSWORD)`
 *   hmac KEY              a signature of the body under KEY, as the source
 *                         signs it:
 *       pagerduty  `X-PagerDuty-Signature: v1=HEX[,v1=HEX]...`, HEX the
 *                  HMAC-SHA256 of the body; any one signature that checks
 *                  is enough (PagerDuty sends several while its secret
 *                  rotates).  PagerDuty signs no time: a replayed delivery
 *                  is caught by the trigger's dedupe key, not here.
 *       grafana    `X-Grafana-Alerting-Signature: HEX`, the HMAC-SHA256 of
 *                  "TIMESTAMP:BODY", TIMESTAMP (Unix seconds) from
 *                  `X-Grafana-Alerting-Signature-Timestamp`, which must be
 *                  set (Grafana's "Timestamp Header") and within
 *                  CAIRN_HOOK_REPLAY_WINDOW_S of now, either way: a
 *                  signature without a time could be replayed for ever.
 *       generic    `X-Cairn-Signature: t=TIMESTAMP,v1=HEX`, HEX the
 *                  HMAC-SHA256 of "TIMESTAMP.BODY", the time checked as
 *                  Grafana's.
 *     Alertmanager, Datadog and ServiceNow sign nothing: an hmac line for
 *     them is refused as a configuration error; use bearer or basic.
 *
 * Every comparison of a secret takes a time that does not depend on where
 * the bytes differ (server/sig.h), and every line is tried even after one
 * has accepted, so the time taken does not tell which line matched either.
 *
 * Pure: the clock is an argument; nothing is read or kept.
 *
 * Memory: everything is borrowed.
 */
#ifndef CAIRN_HOOKAUTH_H
#define CAIRN_HOOKAUTH_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_HOOK_REPLAY_WINDOW_S 300     /* seconds a signed timestamp may be off now */
#define CAIRN_HOOK_CREDENTIAL_MAX 4096     /* bytes of one credential line */
#define CAIRN_HOOK_SIGNATURES_MAX 16       /* signatures in one PagerDuty header */

/* The outcome, from one X-macro: its name and its text. */
#define CAIRN_HOOKAUTH_MAP(X)                                                      \
    X(OK,         "accepted")                                                      \
    X(NONE,       "the source has no credential")                                  \
    X(CONFIG,     "a credential line is malformed or does not fit the source")     \
    X(MISSING,    "the request carries no credential of the kinds configured")     \
    X(MALFORMED,  "the request's credential header is malformed")                  \
    X(WRONG,      "the credential or signature does not match")                    \
    X(STALE,      "the signed timestamp is outside the replay window")

typedef enum {
#define CAIRN_HOOKAUTH_ENUM(name, text) CAIRN_HOOKAUTH_##name,
    CAIRN_HOOKAUTH_MAP(CAIRN_HOOKAUTH_ENUM)
#undef CAIRN_HOOKAUTH_ENUM
} cairn_hookauth_result;

#define CAIRN_HOOK_SECRET_NAME_LEN 32   /* bytes of "HOOK_<SOURCE>" and its NUL */

/* The name of source's secret, "HOOK_" and the source in capitals, into
 * out; a source too long for it gives "". */
void cairn_hookauth_secret_name(const char *source, char out[CAIRN_HOOK_SECRET_NAME_LEN]);

/* The text of a result ("unknown" for anything else). */
const char *cairn_hookauth_text(cairn_hookauth_result r);

/* One request header; names compare without regard to case. */
typedef struct cairn_header {
    const char *name;
    const char *value;
} cairn_header;

typedef struct cairn_hook_request {
    const char *source;            /* a source of hook.h */
    const cairn_header *headers;
    int n_headers;
    const char *body;
    size_t body_len;
    int64_t now_s;                 /* Unix seconds, the caller's clock */
} cairn_hook_request;

/* Check req against credentials (the HOOK_<SOURCE> secret's text, or NULL
 * when there is none: CAIRN_HOOKAUTH_NONE, which the server accepts only in
 * its loopback mode).  A line that is malformed, or an hmac line for a
 * source that signs nothing, gives CAIRN_HOOKAUTH_CONFIG whatever the
 * request holds: a broken secret is the operator's to fix, and must not
 * fall back to accepting less.  Otherwise OK when a line accepts the
 * request, else the most telling failure: STALE, WRONG, MALFORMED, then
 * MISSING. */
cairn_hookauth_result cairn_hookauth_verify(const cairn_hook_request *req, const char *credentials);

#endif
