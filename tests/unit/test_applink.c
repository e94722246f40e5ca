/*
 * Signed approval links (server/applink.h).
 */
#include "server/applink.h"

#include "common/mem.h"
#include "server/sig.h"
#include "test.h"

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";
#define EXP 1796540531

static char *sign(const char *approver, char nonce[CAIRN_APPLINK_NONCE_HEX + 1]) {
    char *tok = NULL;
    cairn_err err;
    if (cairn_applink_sign(KEY, sizeof KEY, "r-20261207-0001", "approve_restart", approver, EXP,
                           &tok, nonce, &err) != 0)
        TEST_FAIL("sign: %s", err.msg);
    return tok;
}

TEST(applink_signed_link_verifies_with_its_fields) {
    char n1[CAIRN_APPLINK_NONCE_HEX + 1], n2[CAIRN_APPLINK_NONCE_HEX + 1];
    char *a = sign("dana", n1), *b = sign("dana", n2);
    cairn_applink l;
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, a, EXP - 1, &l), CAIRN_APPLINK_OK);
    CHECK_STR(l.run, "r-20261207-0001");
    CHECK_STR(l.step, "approve_restart");
    CHECK_STR(l.approver, "dana");
    CHECK_INT(l.expires_s, EXP);
    CHECK_STR(l.nonce, n1);
    CHECK_INT(strlen(n1), CAIRN_APPLINK_NONCE_HEX);
    CHECK(strcmp(n1, n2) != 0 && strcmp(a, b) != 0);   /* each link its own nonce */
    CHECK(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == strlen(a));
    cairn_applink_clear(&l);
    free(a);
    free(b);
}

TEST(applink_expired_link_is_refused) {
    char n[CAIRN_APPLINK_NONCE_HEX + 1];
    char *a = sign("dana", n);
    cairn_applink l;
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, a, EXP, &l), CAIRN_APPLINK_EXPIRED);
    cairn_applink_clear(&l);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, a, EXP + 86400, &l), CAIRN_APPLINK_EXPIRED);
    cairn_applink_clear(&l);
    free(a);
}

TEST(applink_altered_or_forged_link_is_refused) {
    char n[CAIRN_APPLINK_NONCE_HEX + 1];
    char *a = sign("dana", n);
    cairn_applink l;
    unsigned char other[32];
    memcpy(other, KEY, sizeof other);
    other[31] ^= 1;
    CHECK_INT(cairn_applink_verify(other, sizeof other, a, 0, &l), CAIRN_APPLINK_FORGED);
    CHECK(l.run == NULL);
    /* the approver changed, the signature kept */
    char *dot = strchr(a, '.');
    const char *forged_json = "{\"a\":\"mallory\",\"e\":1796540531,\"n\":\"00000000000000000000000000000000\","
                              "\"r\":\"r-20261207-0001\",\"s\":\"approve_restart\",\"v\":1}";
    char head[512];
    cairn_sig_b64((const unsigned char *)forged_json, strlen(forged_json), true, head);
    char *forged = cairn_sprintf("%s%s", head, dot);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, forged, 0, &l), CAIRN_APPLINK_FORGED);
    /* signed with the key itself, not the key kept for links */
    unsigned char mac[32];
    char mac64[64];
    cairn_sig_hmac(KEY, sizeof KEY, head, strlen(head), NULL, 0, mac);
    cairn_sig_b64(mac, sizeof mac, true, mac64);
    char *plain = cairn_sprintf("%s.%s", head, mac64);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, plain, 0, &l), CAIRN_APPLINK_FORGED);
    /* one character of the MAC changed */
    char *flip = cairn_strdup(a);
    char *last = flip + strlen(flip) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, flip, 0, &l), CAIRN_APPLINK_FORGED);
    free(flip); free(plain); free(forged); free(a);
}

TEST(applink_malformed_links_and_bad_arguments) {
    cairn_applink l;
    char n[CAIRN_APPLINK_NONCE_HEX + 1], *tok;
    cairn_err err;
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, "", 0, &l), CAIRN_APPLINK_MALFORMED);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, "abc", 0, &l), CAIRN_APPLINK_MALFORMED);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, "abc.def", 0, &l), CAIRN_APPLINK_MALFORMED);
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, "abc.!!!", 0, &l), CAIRN_APPLINK_MALFORMED);
    char *big = cairn_malloc(CAIRN_APPLINK_MAX + 2);
    memset(big, 'A', CAIRN_APPLINK_MAX + 1);
    big[10] = '.';
    big[CAIRN_APPLINK_MAX + 1] = '\0';
    CHECK_INT(cairn_applink_verify(KEY, sizeof KEY, big, 0, &l), CAIRN_APPLINK_MALFORMED);
    free(big);
    CHECK_INT(cairn_applink_sign(KEY, 8, "r", "s", "a", EXP, &tok, n, &err), CAIRN_EINVAL);
    CHECK_INT(cairn_applink_sign(KEY, sizeof KEY, "", "s", "a", EXP, &tok, n, &err), CAIRN_EINVAL);
    char name[CAIRN_APPLINK_FIELD_MAX + 2];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK_INT(cairn_applink_sign(KEY, sizeof KEY, "r", "s", name, EXP, &tok, n, &err), CAIRN_EINVAL);
    CHECK(tok == NULL);
    CHECK_STR(cairn_applink_text(CAIRN_APPLINK_FORGED), "the link's signature does not match: altered or forged");
}
