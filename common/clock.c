#include "clock.h"

#include <stdio.h>
#include <time.h>

/* The clock in units of 1/per second. */
static int64_t clock_read(clockid_t id, int64_t per) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * per + ts.tv_nsec / (1000000000 / per);
}

int64_t cairn_now_ms(void) { return clock_read(CLOCK_MONOTONIC, 1000); }

int64_t cairn_now_us(void) { return clock_read(CLOCK_MONOTONIC, 1000000); }

int64_t cairn_wall_ms(void) { return clock_read(CLOCK_REALTIME, 1000); }

char *cairn_rfc3339(int64_t wall_ms, char *out, size_t outlen) {
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(wall_ms % 1000));
    return out;
}
