#include "clock.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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

int cairn_rfc3339_parse(const char *s, int64_t *ms) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL) return -1;
    int64_t frac = 0, scale = 1000;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) frac += (*p - '0') * (scale /= 10);
        }
    int64_t offset = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        bool shape = strlen(p) == 6 && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
                     p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]);
        if (!shape || sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return -1;   /* exactly +hh:mm */
        offset = (int64_t)(hh * 60 + mm) * 60000 * (*p == '-' ? -1 : 1);
        p += 6;
    } else if (*p == 'Z' || *p == 'z') {
        p++;
    } else {
        return -1;
    }
    if (*p) return -1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac - offset;
    return 0;
}

