/*
 * applink.h - signed approval links: a token in a URL that lets one
 * approver decide one approval step of one run until it expires.
 *
 * A link token is BASE64URL(payload) "." BASE64URL(mac), where payload is
 * the canonical JSON {"a": approver, "e": expiry (Unix seconds), "n":
 * nonce, "r": run, "s": step, "v": 1} and mac the HMAC-SHA-256 of the
 * first part's text under a key derived from the caller's key
 * (HMAC(key, "cairn approval link v1")), so that nothing else signed with
 * that key (the journal's hash chain) can pass for a link, nor a link for
 * anything else.  The nonce is 16 random bytes in hex: the link is
 * single-use when the caller records its nonce as spent on the first
 * decision and refuses it after; that record needs the journal, so this
 * module only gives the nonce out.
 *
 * Verification checks the length (at most CAIRN_APPLINK_MAX characters),
 * then the MAC in constant time, and only then decodes and parses what was
 * signed, and last the expiry: EXPIRED means a genuine link past its time.
 * SPENT is never this module's verdict (it keeps no record): it is for the
 * caller that keeps spent nonces (server/linkpage.h).
 *
 * Pure: the clock is an argument.  Memory: arguments are borrowed; the
 * token from sign and the strings of a verified link belong to the caller
 * (cairn_applink_clear frees them).
 */
#ifndef CAIRN_APPLINK_H
#define CAIRN_APPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_APPLINK_MAX 2048        /* characters of a link token */
#define CAIRN_APPLINK_FIELD_MAX 256   /* bytes of a run id, step id or approver */
#define CAIRN_APPLINK_NONCE_HEX 32    /* hex digits of a nonce (16 bytes) */
#define CAIRN_APPLINK_KEY_MIN 16      /* bytes of the key links are signed under, at least */

#define CAIRN_APPLINK_MAP(X)                                              \
    X(OK,        "valid")                                                 \
    X(MALFORMED, "not an approval link")                                  \
    X(FORGED,    "the link's signature does not match: altered or forged") \
    X(EXPIRED,   "the link has expired")                                  \
    X(SPENT,     "the link was used already")

typedef enum {
#define CAIRN_APPLINK_ENUM(name, text) CAIRN_APPLINK_##name,
    CAIRN_APPLINK_MAP(CAIRN_APPLINK_ENUM)
#undef CAIRN_APPLINK_ENUM
} cairn_applink_result;

const char *cairn_applink_text(cairn_applink_result r);

typedef struct cairn_applink {
    char *run, *step, *approver;
    int64_t expires_s;
    char nonce[CAIRN_APPLINK_NONCE_HEX + 1];
} cairn_applink;

/* A new link token for approver to decide step of run until expires_s,
 * signed under key (klen bytes, at least CAIRN_APPLINK_KEY_MIN).  *token is the caller's;
 * nonce receives the link's nonce.  CAIRN_EINVAL for an empty or too long
 * field or a short key; CAIRN_EIO when no random bytes are to be had. */
int cairn_applink_sign(const unsigned char *key, size_t klen, const char *run, const char *step,
                       const char *approver, int64_t expires_s, char **token,
                       char nonce[CAIRN_APPLINK_NONCE_HEX + 1], cairn_err *err);

/* Check token under key at now_s.  On OK (and on EXPIRED, for the message
 * it lets a caller write) *out holds what was signed; otherwise *out is
 * cleared. */
cairn_applink_result cairn_applink_verify(const unsigned char *key, size_t klen, const char *token,
                                          int64_t now_s, cairn_applink *out);

/* Free the strings of l (NULL allowed) and clear it. */
void cairn_applink_clear(cairn_applink *l);

#endif
