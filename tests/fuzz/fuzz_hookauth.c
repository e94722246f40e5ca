/*
 * Fuzz target: what a webhook or a link brings from outside to the
 * credential checks (server/hookauth.c, server/applink.c).  The input is
 * split at its first two NUL bytes into a header value, a second header
 * value and a body; the header values are offered as every header a check
 * reads.  Whatever the bytes, each check ends with a known result, and
 * nothing passes: the credentials compare by their hashes, so the fuzzer's
 * comparison tracing cannot lead it to them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/applink.h"
#include "server/hook.h"
#include "server/hookauth.h"

static const char *const creds = "bearer fuzz-bearer-secret\nbasic fuzz:pass-word\n";
static const char *const hmac = "hmac fuzz-hmac-key-0123456789";
static const unsigned char link_key[32] = "fuzz link key, thirty-two bytes";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 2);
    memcpy(copy, data, size);
    copy[size] = copy[size + 1] = '\0';
    const char *v1 = copy, *v2 = copy + strlen(copy) + (strlen(copy) < size);
    const char *body = v2 + strlen(v2) + ((size_t)(v2 + strlen(v2) - copy) < size);
    size_t body_len = size - (size_t)(body - copy) <= size ? size - (size_t)(body - copy) : 0;
    cairn_header h[] = {{"Authorization", v1}, {"X-PagerDuty-Signature", v1},
                        {"X-Grafana-Alerting-Signature", v1},
                        {"X-Grafana-Alerting-Signature-Timestamp", v2}, {"X-Cairn-Signature", v1}};
    for (int s = 0; cairn_hook_source(s); s++) {
        cairn_hook_request req = {cairn_hook_source(s), h, 5, body, body_len, 1796540531};
        cairn_hookauth_result r = cairn_hookauth_verify(&req, creds);
        if (r == CAIRN_HOOKAUTH_OK || (unsigned)r > CAIRN_HOOKAUTH_STALE) abort();
        r = cairn_hookauth_verify(&req, hmac);
        if (r == CAIRN_HOOKAUTH_OK || (unsigned)r > CAIRN_HOOKAUTH_STALE) abort();
    }
    cairn_applink l;
    cairn_applink_result r = cairn_applink_verify(link_key, sizeof link_key, v1, 0, &l);
    if (r == CAIRN_APPLINK_OK || r == CAIRN_APPLINK_EXPIRED || l.run != NULL) abort();
    cairn_applink_clear(&l);
    free(copy);
    return 0;
}
