/*
 * Webhook credentials (server/hookauth.h) and the signing pieces under them
 * (server/sig.h).  Signatures are RFC 4231's test case 2 (key "Jefe") and
 * values computed outside Cairn (Python's hmac), never by the code tested.
 */
#include "server/hookauth.h"
#include "server/sig.h"
#include "test.h"

#define BODY "what do ya want for nothing?"
#define MAC "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
#define TS "1796540531"
#define TS_MAC "0f0a0e6bc8f38e04e96df770c33e59d19d42879233c53b18097e594f92f641e3"   /* TS ":" BODY */
#define DOT_MAC "932f68258c470dce3540f2ac62f4b8ee02332df4b085f06e2a1cb6aa96e4977a"  /* TS "." BODY */

static cairn_hookauth_result verify(const char *source, const char *name, const char *value,
                                    const char *name2, const char *value2, int64_t now,
                                    const char *creds) {
    cairn_header h[2] = {{name, value}, {name2, value2}};
    cairn_hook_request req = {source, h, name2 ? 2 : name ? 1 : 0, BODY, strlen(BODY), now};
    return cairn_hookauth_verify(&req, creds);
}

#define NOW 1796540531
#define AUTH "Authorization"

TEST(hookauth_bearer_and_rotation) {
    CHECK_INT(verify("alertmanager", AUTH, "Bearer t0k3n", NULL, NULL, NOW, "bearer t0k3n"), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("alertmanager", "authorization", "bearer t0k3n", NULL, NULL, NOW, "bearer t0k3n"), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("alertmanager", AUTH, "Bearer t0k3m", NULL, NULL, NOW, "bearer t0k3n"), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("alertmanager", AUTH, "Bearer t0k3", NULL, NULL, NOW, "bearer t0k3n"), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("alertmanager", NULL, NULL, NULL, NULL, NOW, "bearer t0k3n"), CAIRN_HOOKAUTH_MISSING);
    /* rotation: the old and the new token both work while both lines stand */
    const char *two = "# rotated 2026-12\nbearer new-one\r\n\nbearer old-one\n";
    CHECK_INT(verify("datadog", AUTH, "Bearer old-one", NULL, NULL, NOW, two), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("datadog", AUTH, "Bearer new-one", NULL, NULL, NOW, two), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("datadog", AUTH, "Bearer other", NULL, NULL, NOW, two), CAIRN_HOOKAUTH_WRONG);
}

TEST(hookauth_basic) {
    const char *creds = "basic ops:pa55:word";
    CHECK_INT(verify("servicenow", AUTH, "Basic b3BzOnBhNTU6d29yZA==", NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("servicenow", AUTH, "Basic b3BzOnBhNTU6d29yZQ==", NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("servicenow", AUTH, "Basic b3BzOnBhNTU6d29yZA=", NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MALFORMED);
    CHECK_INT(verify("servicenow", AUTH, "Bearer ops:pa55:word", NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MISSING);
}

TEST(hookauth_pagerduty_signatures) {
    const char *creds = "hmac Jefe";
    const char *sig = "X-PagerDuty-Signature";
    CHECK_INT(verify("pagerduty", sig, "v1=" MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_OK);
    /* several signatures while PagerDuty rotates its secret: one is enough */
    CHECK_INT(verify("pagerduty", sig, "v1=" DOT_MAC ", v1=" MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("pagerduty", sig, "v0=00,v1=" MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_OK);
    /* forged: one digit changed; a signature of another body; another key */
    CHECK_INT(verify("pagerduty", sig, "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3844",
                     NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("pagerduty", sig, "v1=" DOT_MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("pagerduty", sig, "v1=" MAC, NULL, NULL, NOW, "hmac Jeff"), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("pagerduty", sig, "sha256=" MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MALFORMED);
    CHECK_INT(verify("pagerduty", sig, "v1=5bdc", NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("pagerduty", NULL, NULL, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MISSING);
    char many[2048] = "";
    for (int i = 0; i <= CAIRN_HOOK_SIGNATURES_MAX; i++) strcat(many, "v1=00,");
    strcat(many, "v1=" MAC);
    CHECK_INT(verify("pagerduty", sig, many, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MALFORMED);
}

TEST(hookauth_grafana_timestamp_refuses_replays) {
    const char *creds = "hmac Jefe", *sig = "X-Grafana-Alerting-Signature";
    const char *ts = "X-Grafana-Alerting-Signature-Timestamp";
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, TS, NOW + 10, creds), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, TS, NOW + CAIRN_HOOK_REPLAY_WINDOW_S, creds), CAIRN_HOOKAUTH_OK);
    /* the same request replayed after the window, or stamped in the future */
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, TS, NOW + CAIRN_HOOK_REPLAY_WINDOW_S + 1, creds), CAIRN_HOOKAUTH_STALE);
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, TS, NOW - CAIRN_HOOK_REPLAY_WINDOW_S - 1, creds), CAIRN_HOOKAUTH_STALE);
    /* a fresh timestamp put on an old signature */
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, "1796540999", NOW + 400, creds), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("grafana", sig, MAC, NULL, NULL, NOW, creds), CAIRN_HOOKAUTH_MALFORMED);
    CHECK_INT(verify("grafana", sig, TS_MAC, ts, "17965x0531", NOW, creds), CAIRN_HOOKAUTH_MALFORMED);
}

TEST(hookauth_generic_signature) {
    const char *sig = "X-Cairn-Signature";
    CHECK_INT(verify("generic", sig, "t=" TS ",v1=" DOT_MAC, NULL, NULL, NOW, "hmac Jefe"), CAIRN_HOOKAUTH_OK);
    CHECK_INT(verify("generic", sig, "t=" TS ",v1=" DOT_MAC, NULL, NULL, NOW + 3600, "hmac Jefe"), CAIRN_HOOKAUTH_STALE);
    CHECK_INT(verify("generic", sig, "t=" TS ",v1=" TS_MAC, NULL, NULL, NOW, "hmac Jefe"), CAIRN_HOOKAUTH_WRONG);
    CHECK_INT(verify("generic", sig, "v1=" DOT_MAC, NULL, NULL, NOW, "hmac Jefe"), CAIRN_HOOKAUTH_MALFORMED);
}

TEST(hookauth_configuration_errors_refuse_everything) {
    const char *auth = "Bearer t0k3n";
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, NULL), CAIRN_HOOKAUTH_NONE);
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, "# none yet\n\n"), CAIRN_HOOKAUTH_NONE);
    /* Alertmanager signs nothing: an hmac line for it is an operator's mistake */
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, "bearer t0k3n\nhmac k"), CAIRN_HOOKAUTH_CONFIG);
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, "bearer t0k3n\ntoken t0k3n"), CAIRN_HOOKAUTH_CONFIG);
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, "basic nocolon\nbearer t0k3n"), CAIRN_HOOKAUTH_CONFIG);
    CHECK_INT(verify("alertmanager", AUTH, auth, NULL, NULL, NOW, "bearer"), CAIRN_HOOKAUTH_CONFIG);
    CHECK_STR(cairn_hookauth_text(CAIRN_HOOKAUTH_STALE), "the signed timestamp is outside the replay window");
    char name[CAIRN_HOOK_SECRET_NAME_LEN];
    cairn_hookauth_secret_name("pagerduty", name);
    CHECK_STR(name, "HOOK_PAGERDUTY");
    cairn_hookauth_secret_name("a-source-name-far-too-long-for-it", name);
    CHECK_STR(name, "");
}

TEST(sig_encodings_and_equal) {
    char out[64];
    unsigned char raw[16];
    cairn_sig_b64((const unsigned char *)"foobar", 6, false, out);
    CHECK_STR(out, "Zm9vYmFy");
    cairn_sig_b64((const unsigned char *)"fooba", 5, false, out);
    CHECK_STR(out, "Zm9vYmE=");
    cairn_sig_b64((const unsigned char[]){0xfb, 0xff, 0xfe, 1}, 4, true, out);
    CHECK_STR(out, "-__-AQ");
    CHECK_INT(cairn_sig_unb64("-__-AQ", 6, true, raw, sizeof raw), 4);
    CHECK_INT(raw[0], 0xfb);
    CHECK_INT(raw[3], 1);
    CHECK_INT(cairn_sig_unb64("Zm9vYmE=", 8, false, raw, sizeof raw), 5);
    CHECK(memcmp(raw, "fooba", 5) == 0);
    CHECK_INT(cairn_sig_unb64("Zm9v YmE=", 9, false, raw, sizeof raw), -1);
    CHECK_INT(cairn_sig_unb64("Zm9vYmE", 7, false, raw, sizeof raw), -1);
    CHECK_INT(cairn_sig_unhex("0aFf", 4, raw, sizeof raw), 2);
    CHECK_INT(raw[1], 0xff);
    CHECK_INT(cairn_sig_unhex("0g", 2, raw, sizeof raw), -1);
    CHECK(cairn_sig_equal("abc", 3, "abc", 3));
    CHECK(!cairn_sig_equal("abc", 3, "abd", 3));
    CHECK(!cairn_sig_equal("abc", 3, "abcd", 4));
}
