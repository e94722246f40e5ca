/*
 * cron.c - parse a five-field cron expression into bit sets, and find the
 * next minute they match (cron.h).
 *
 * The search walks wall-clock minutes (days skipped whole when their date
 * does not match) and maps each match to the instants it happens at with
 * cairn_tz_resolve.  Around a clock change wall-clock order and time order
 * differ, so it starts a little before `after`'s wall-clock reading and
 * keeps looking a little past the first candidate (CRON_MARGIN_MIN) for an
 * earlier one.
 */
#include "dsl/cron.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

typedef struct field_spec {
    const char *what;
    int min, max;
    const char *const *names;          /* names[i] is min + i; or NULL */
} field_spec;

static const field_spec specs[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day of week", 0, 7, day_names},
};

typedef struct cron_parse {
    const field_spec *spec;
    int index;                         /* 1-based field number */
    char *err;
    size_t errlen;
} cron_parse;

static int fail(cron_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cron_parse *p, const char *fmt, ...) {
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "field %d (%s, %d-%d): %s", p->index, p->spec->what,
             p->spec->min, p->spec->max, msg);
    return -1;
}

/* A number, or a name of the field; *s moves past it.  -1 when neither. */
static int value(const field_spec *f, const char **s) {
    const char *p = *s;
    if (isdigit((unsigned char)*p)) {
        long v = 0;
        while (isdigit((unsigned char)*p) && v < 1000) v = v * 10 + (*p++ - '0');
        if (isdigit((unsigned char)*p)) return -1;
        *s = p;
        return (int)v;
    }
    for (int i = 0; f->names && f->names[i]; i++)
        if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
            *s = p + 3;
            return f->min + i;
        }
    return -1;
}

/* One item of a list (tok, len bytes): *, a, a-b, each with an optional
 * /step; its values are set in *bits. */
static int item(cron_parse *p, const char *tok, size_t len, uint64_t *bits) {
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)(len < 60 ? len : 60), tok);
    const field_spec *f = p->spec;
    const char *s = text;
    int lo = f->min, hi = f->max, step = 1;
    if (*s == '*') {
        s++;
    } else {
        if ((lo = value(f, &s)) < 0) return fail(p, "'%s' is not a value, range or step", text);
        hi = lo;
        if (*s == '-' && (s++, (hi = value(f, &s)) < 0))
            return fail(p, "'%s': a range needs a value after '-'", text);
    }
    if (*s == '/') {
        s++;
        if ((step = value(&specs[0], &s)) < 1) return fail(p, "'%s': a step is a whole number "
                                                           "from 1", text);
    }
    if (*s != '\0') return fail(p, "'%s' is not a value, range or step", text);
    if (lo < f->min || lo > f->max) return fail(p, "'%s': %d is out of range", text, lo);
    if (hi < f->min || hi > f->max) return fail(p, "'%s': %d is out of range", text, hi);
    if (lo > hi) return fail(p, "'%s': the range %d-%d runs backwards", text, lo, hi);
    for (int v = lo; v <= hi; v += step) *bits |= 1ull << (f->names == day_names && v == 7 ? 0 : v);
    return 0;
}

/* A field (tok, len bytes): items separated by commas. */
static int field(cron_parse *p, const char *tok, size_t len, uint64_t *bits) {
    for (size_t i = 0; i <= len;) {
        size_t n = 0;
        while (i + n < len && tok[i + n] != ',') n++;
        if (n == 0) return fail(p, "'%.*s' has an empty item", (int)(len < 60 ? len : 60), tok);
        if (item(p, tok + i, n, bits) != 0) return -1;
        i += n + 1;
    }
    return 0;
}

int cairn_cron_parse(const char *text, cairn_cron *out, char *err, size_t errlen, size_t *at) {
    uint64_t *bits[5] = {&out->minute, &out->hour, &out->mday, &out->month, &out->wday};
    const char *s = text;
    int n = 0;
    memset(out, 0, sizeof *out);
    *at = 0;
    if (strlen(text) > CAIRN_CRON_TEXT_MAX) {
        snprintf(err, errlen, "longer than %d bytes", CAIRN_CRON_TEXT_MAX);
        return -1;
    }
    for (;;) {
        s += strspn(s, " \t");
        if (*s == '\0') break;
        size_t len = strcspn(s, " \t");
        if (n < 5) {
            cron_parse p = {&specs[n], n + 1, err, errlen};
            *at = (size_t)(s - text);
            if (field(&p, s, len, bits[n]) != 0) return -1;
            if (n == 2) out->mday_star = *s == '*';
            if (n == 4) out->wday_star = *s == '*';
        }
        n++;
        s += len;
    }
    if (n != 5) {
        *at = 0;
        snprintf(err, errlen, "expected 5 fields (minute hour day month weekday), got %d", n);
        return -1;
    }
    return 0;
}

/* ---- the next fire -------------------------------------------------------------------- */

/* Minutes: longer than any hour a clock repeats (1 h; 2 h in old double
 * summer times). */
#define CRON_MARGIN_MIN 180
#define MIN_PER_DAY 1440

static bool day_matches(const cairn_cron *c, int64_t day) {
    int64_t y;
    int m, d;
    cairn_civil_from_days(day, &y, &m, &d);
    if (!(c->month >> m & 1)) return false;
    bool md = c->mday >> d & 1, wd = c->wday >> cairn_weekday(day) & 1;
    return c->mday_star || c->wday_star ? md && wd : md || wd;   /* Vixie cron's OR rule */
}

/* The first wall-clock minute at or after `from` (minutes since 1970 on
 * the wall clock) that c matches, into *out; false when none is before
 * `limit`. */
static bool civil_next(const cairn_cron *c, int64_t from, int64_t limit, int64_t *out) {
    int64_t day = cairn_floor_div(from, MIN_PER_DAY);
    int mod = (int)(from - day * MIN_PER_DAY);
    for (; day * MIN_PER_DAY < limit; day++, mod = 0) {
        if (!day_matches(c, day)) continue;
        for (int h = mod / 60; h < 24; h++) {
            if (!(c->hour >> h & 1)) continue;
            for (int mi = h == mod / 60 ? mod % 60 : 0; mi < 60; mi++)
                if (c->minute >> mi & 1) {
                    *out = day * MIN_PER_DAY + h * 60 + mi;
                    return true;
                }
        }
    }
    return false;
}

/* The instant a skipped wall-clock minute fires at: the first minute the
 * clock shows after the gap; -1 when none within a day (or the budget is
 * spent).  *budget counts down the wall-clock times resolved. */
static int64_t gap_end(const cairn_tz *tz, int64_t minute, int *budget) {
    int64_t u[2];
    for (int k = 1; k <= MIN_PER_DAY + 60 && --*budget > 0; k++)
        if (cairn_tz_resolve(tz, (minute + k) * 60, u) > 0) return u[0];
    return -1;
}

int cairn_cron_next(const cairn_cron *c, const cairn_tz *tz, int64_t after, int64_t *next) {
    bool every_hour = (c->hour & 0xffffff) == 0xffffff;
    int64_t from = cairn_floor_div(after + cairn_tz_offset(tz, after), 60) - CRON_MARGIN_MIN;
    int64_t limit = from + (int64_t)CAIRN_CRON_SEARCH_YEARS * 366 * MIN_PER_DAY;
    int64_t best = INT64_MAX, best_min = 0;
    int budget = CAIRN_CRON_RESOLVE_BUDGET;
    for (int64_t m = from - 1; budget > 0 && civil_next(c, m + 1, limit, &m); budget--) {
        if (best != INT64_MAX && m > best_min + CRON_MARGIN_MIN) break;
        int64_t u[2];
        int n = cairn_tz_resolve(tz, m * 60, u);
        if (n == 0) u[n++] = gap_end(tz, m, &budget);
        for (int i = 0; i < (every_hour ? n : 1); i++)
            if (u[i] > after && u[i] < best) {
                best = u[i];
                best_min = m;
            }
    }
    if (best == INT64_MAX) return -1;
    *next = best;
    return 0;
}
