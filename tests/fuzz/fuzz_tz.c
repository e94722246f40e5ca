/*
 * Fuzz target: TZif files and the POSIX TZ rule of their footer
 * (common/tz.c), and the next fire of a cron expression on the wall clock
 * they give (dsl/cron.c).  Whatever parses must answer offsets, resolve
 * wall-clock times and find fires without reading out of bounds; each fire
 * found must lie after the instant asked about.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/tz.h"
#include "dsl/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int64_t probes[] = {-2208988800LL, 0, 1796601600LL, 2213568000LL, 4102444800LL};
    cairn_tz *tz = NULL;
    cairn_err err;
    if (cairn_tz_parse("Fuzz/Zone", data, size, &tz, &err) != 0) return 0;
    cairn_cron c;
    char msg[128];
    size_t at;
    if (cairn_cron_parse("*/7 1-3 * * *", &c, msg, sizeof msg, &at) != 0) abort();
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        int64_t u[2], next;
        (void)cairn_tz_offset(tz, probes[i]);
        (void)cairn_tz_resolve(tz, probes[i], u);
        if (cairn_cron_next(&c, tz, probes[i], &next) == 0 && next <= probes[i]) abort();
    }
    cairn_tz_free(tz);
    return 0;
}
