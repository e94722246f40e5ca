/*
 * applink.c - signing and checking approval link tokens (applink.h).
 */
#include "server/applink.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "common/json.h"
#include "common/mem.h"
#include "server/sig.h"

#define DOMAIN "cairn approval link v1"

static const char *const texts[] = {
#define CAIRN_APPLINK_TEXT(name, text) text,
    CAIRN_APPLINK_MAP(CAIRN_APPLINK_TEXT)
#undef CAIRN_APPLINK_TEXT
};

const char *cairn_applink_text(cairn_applink_result r) {
    return (unsigned)r < sizeof texts / sizeof texts[0] ? texts[r] : "unknown";
}

void cairn_applink_clear(cairn_applink *l) {
    if (l == NULL) return;
    free(l->run);
    free(l->step);
    free(l->approver);
    memset(l, 0, sizeof *l);
}

/* The MAC of the payload's text under the key kept for links alone. */
static void link_mac(const unsigned char *key, size_t klen, const char *text, size_t len,
                     unsigned char mac[CAIRN_SIG_SHA256_LEN]) {
    unsigned char sub[CAIRN_SIG_SHA256_LEN];
    cairn_sig_hmac(key, klen, DOMAIN, strlen(DOMAIN), NULL, 0, sub);
    cairn_sig_hmac(sub, sizeof sub, text, len, NULL, 0, mac);
    OPENSSL_cleanse(sub, sizeof sub);
}

static bool field_ok(const char *s) { return s && *s && strlen(s) <= CAIRN_APPLINK_FIELD_MAX; }

int cairn_applink_sign(const unsigned char *key, size_t klen, const char *run, const char *step,
                       const char *approver, int64_t expires_s, char **token,
                       char nonce[CAIRN_APPLINK_NONCE_HEX + 1], cairn_err *err) {
    unsigned char raw[CAIRN_APPLINK_NONCE_HEX / 2], mac[CAIRN_SIG_SHA256_LEN];
    *token = NULL;
    nonce[0] = '\0';
    if (klen < CAIRN_APPLINK_KEY_MIN)
        return cairn_err_set(err, CAIRN_EINVAL, "a link key needs %d bytes or more",
                             CAIRN_APPLINK_KEY_MIN);
    if (!field_ok(run) || !field_ok(step) || !field_ok(approver))
        return cairn_err_set(err, CAIRN_EINVAL, "run, step and approver: 1 to %d bytes each",
                             CAIRN_APPLINK_FIELD_MAX);
    if (cairn_sig_random(raw, sizeof raw) != 0)
        return cairn_err_set(err, CAIRN_EIO, "no random bytes from the operating system");
    cairn_sig_hex(raw, sizeof raw, nonce);
    jv p = jv_object_set(jv_object(), jv_string("a"), jv_string(approver));
    p = jv_object_set(p, jv_string("e"), jv_number((double)expires_s));
    p = jv_object_set(p, jv_string("n"), jv_string(nonce));
    p = jv_object_set(p, jv_string("r"), jv_string(run));
    p = jv_object_set(p, jv_string("s"), jv_string(step));
    p = jv_object_set(p, jv_string("v"), jv_number(1));
    char *text = cairn_json_text(p);
    jv_free(p);
    size_t len = strlen(text);
    char *out = cairn_malloc(4 * (len + 2) / 3 + 4 + 1 + 44 + 1);
    cairn_sig_b64((const unsigned char *)text, len, true, out);
    size_t head = strlen(out);
    link_mac(key, klen, out, head, mac);
    out[head] = '.';
    cairn_sig_b64(mac, sizeof mac, true, out + head + 1);
    free(text);
    *token = out;
    return 0;
}

static char *text_field(jv o, const char *key) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    char *s = jv_get_kind(v) == JV_KIND_STRING && field_ok(jv_string_value(v))
                  ? cairn_strdup(jv_string_value(v)) : NULL;
    jv_free(v);
    return s;
}

/* What was signed, read into out: OK or MALFORMED. */
static cairn_applink_result read_payload(const char *b64, size_t len, cairn_applink *out) {
    unsigned char text[CAIRN_APPLINK_MAX];
    int n = cairn_sig_unb64(b64, len, true, text, sizeof text);
    jv p = n > 0 ? cairn_json_parse((const char *)text, (size_t)n) : jv_invalid();
    if (jv_get_kind(p) != JV_KIND_OBJECT) {
        jv_free(p);
        return CAIRN_APPLINK_MALFORMED;
    }
    jv e = jv_object_get(jv_copy(p), jv_string("e")), v = jv_object_get(jv_copy(p), jv_string("v"));
    char *nonce = text_field(p, "n");
    out->run = text_field(p, "r");
    out->step = text_field(p, "s");
    out->approver = text_field(p, "a");
    bool ok = out->run && out->step && out->approver && nonce &&
              strlen(nonce) == CAIRN_APPLINK_NONCE_HEX && jv_get_kind(e) == JV_KIND_NUMBER &&
              jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) == 1;
    if (ok) {
        out->expires_s = (int64_t)jv_number_value(e);
        memcpy(out->nonce, nonce, CAIRN_APPLINK_NONCE_HEX + 1);
    }
    free(nonce);
    jv_free(e);
    jv_free(v);
    jv_free(p);
    return ok ? CAIRN_APPLINK_OK : CAIRN_APPLINK_MALFORMED;
}

cairn_applink_result cairn_applink_verify(const unsigned char *key, size_t klen, const char *token,
                                          int64_t now_s, cairn_applink *out) {
    memset(out, 0, sizeof *out);
    size_t len = strnlen(token, CAIRN_APPLINK_MAX + 1);
    const char *dot = memchr(token, '.', len);
    unsigned char got[CAIRN_SIG_SHA256_LEN + 2], mac[CAIRN_SIG_SHA256_LEN];
    if (len > CAIRN_APPLINK_MAX || dot == NULL || klen < CAIRN_APPLINK_KEY_MIN)
        return CAIRN_APPLINK_MALFORMED;
    size_t head = (size_t)(dot - token);
    if (cairn_sig_unb64(dot + 1, len - head - 1, true, got, sizeof got) != CAIRN_SIG_SHA256_LEN)
        return CAIRN_APPLINK_MALFORMED;
    link_mac(key, klen, token, head, mac);
    if (CRYPTO_memcmp(got, mac, sizeof mac) != 0) return CAIRN_APPLINK_FORGED;
    cairn_applink_result r = read_payload(token, head, out);
    if (r == CAIRN_APPLINK_OK && now_s >= out->expires_s) r = CAIRN_APPLINK_EXPIRED;
    if (r == CAIRN_APPLINK_MALFORMED) cairn_applink_clear(out);
    return r;
}
