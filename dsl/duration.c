/*
 * duration.c - "250ms", "30s", "5m", "2h", "1d", "1h30m" to milliseconds.
 *
 * A duration is one or more <integer><unit> parts, concatenated, with no
 * sign, spaces or fractions; units are ms, s, m, h, d.  The parts add up
 * (as Go's time.ParseDuration does), and any overflow of int64 is refused.
 */
#include <stdint.h>
#include <string.h>

#include "dsl/workflow.h"

static const struct {
    const char *unit;
    int64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

/* Read one <integer><unit> at *p; returns its value in ms or -1. */
static int64_t read_part(const char **p) {
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9') return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].unit);
        if (strncmp(s, units[i].unit, n) != 0) continue;
        if (s[n] >= 'a' && s[n] <= 'z') continue;   /* "m" must not eat "ms" */
        if (v > INT64_MAX / units[i].ms) return -1;
        *p = s + n;
        return v * units[i].ms;
    }
    return -1;
}

int cairn_duration_parse(const char *s, int64_t *ms) {
    if (s == NULL || *s == '\0') return CAIRN_EINVAL;
    int64_t total = 0;
    while (*s) {
        int64_t part = read_part(&s);
        if (part < 0 || part > INT64_MAX - total) return CAIRN_EINVAL;
        total += part;
    }
    *ms = total;
    return 0;
}
