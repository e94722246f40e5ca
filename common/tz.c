/*
 * tz.c - TZif files (RFC 8536) and the POSIX TZ rule of their footer
 * (tz.h).
 *
 * A zone is its transitions (UTC instants, ascending) with the offset each
 * one starts, the offset before the first (time type 0, as the RFC says),
 * and the footer's rule for instants after the last, when it has one.
 */
#include "common/tz.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/mem.h"

#define DAY 86400
#define TZ_OFFSET_MAX (26 * 3600)   /* RFC 8536: offsets lie within -25:59:59 .. +25:59:59 */

/* A rule's day: Jn (1-365, February 29 never counted), n (0-365), or
 * Mm.w.d (day d, Sunday 0, of week w, 5 the last, of month m). */
typedef struct rule_day {
    char kind;                   /* 'J', 'D' or 'M' */
    int n, m, w, d;
    int32_t time;                /* seconds after local midnight; may be negative or past 24 h */
} rule_day;

typedef struct posix_rule {
    int32_t std_off, dst_off;    /* seconds east of UTC */
    bool has_dst;
    rule_day start, end;
} posix_rule;

struct cairn_tz {
    char name[CAIRN_TZ_NAME_MAX + 1];
    int64_t *at;                 /* transitions */
    int32_t *off;                /* the offset each starts */
    int n;
    int32_t first_off;           /* before the first transition */
    bool has_rule;
    posix_rule rule;
};

/* ---- calendar ------------------------------------------------------------------ */

int64_t cairn_days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cairn_civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 1970-01-01 was a Thursday */
int cairn_weekday(int64_t days) { return (int)(((days + 4) % 7 + 7) % 7); }

int64_t cairn_floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && a < 0); }

static int64_t year_of(int64_t utc) {
    int64_t y;
    int m, d;
    cairn_civil_from_days(cairn_floor_div(utc, DAY), &y, &m, &d);
    return y;
}

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[m - 1] + (m == 2 && leap(y));
}

/* The day (from 1970) a rule's day falls on in year y. */
static int64_t rule_date(const rule_day *r, int64_t y) {
    int64_t jan1 = cairn_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->n - 1 + (leap(y) && r->n >= 60);
    if (r->kind == 'D') return jan1 + r->n;
    int64_t first = cairn_days_from_civil(y, r->m, 1);
    int wd = cairn_weekday(first);
    int64_t day = first + (r->d - wd + 7) % 7 + (int64_t)(r->w - 1) * 7;
    while (day >= first + month_days(y, r->m)) day -= 7;
    return day;
}

static int32_t rule_offset(const posix_rule *r, int64_t utc) {
    if (!r->has_dst) return r->std_off;
    int64_t y = year_of(utc);
    int64_t start = rule_date(&r->start, y) * DAY + r->start.time - r->std_off;
    int64_t end = rule_date(&r->end, y) * DAY + r->end.time - r->dst_off;
    bool dst = start < end ? utc >= start && utc < end : !(utc >= end && utc < start);
    return dst ? r->dst_off : r->std_off;
}

/* ---- the footer's POSIX TZ string --------------------------------------------------- */

static bool rule_name(const char **s) {
    const char *p = *s;
    if (*p == '<') {
        while (*++p && *p != '>')
            if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-') return false;
        if (*p != '>' || p - *s < 4) return false;
        *s = p + 1;
        return true;
    }
    while (isalpha((unsigned char)*p)) p++;
    if (p - *s < 3) return false;
    *s = p;
    return true;
}

/* [+-]hh[:mm[:ss]] into seconds (hours up to 167, as version 3 allows). */
static bool rule_clock(const char **s, int32_t *out) {
    const char *p = *s;
    int sign = *p == '-' ? -1 : 1, part[3] = {0, 0, 0};
    if (*p == '+' || *p == '-') p++;
    for (int i = 0; i < 3; i++) {
        if (i > 0 && *p != ':') break;
        if (i > 0) p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p) && part[i] < 1000) part[i] = part[i] * 10 + (*p++ - '0');
    }
    if (part[0] > 167 || part[1] > 59 || part[2] > 59) return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *s = p;
    return true;
}

static bool rule_number(const char **s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(*s, &end, 10);
    if (end == *s || !isdigit((unsigned char)**s) || v < lo || v > hi) return false;
    *out = (int)v;
    *s = end;
    return true;
}

static bool rule_when(const char **s, rule_day *r) {
    const char *p = *s;
    bool ok;
    r->time = 7200;
    if (*p == 'J') {
        r->kind = 'J';
        p++;
        ok = rule_number(&p, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = 'M';
        p++;
        ok = rule_number(&p, 1, 12, &r->m) && *p++ == '.' && rule_number(&p, 1, 5, &r->w) &&
             *p++ == '.' && rule_number(&p, 0, 6, &r->d);
    } else {
        r->kind = 'D';
        ok = rule_number(&p, 0, 365, &r->n);
    }
    if (ok && *p == '/') {
        p++;
        ok = rule_clock(&p, &r->time);
    }
    *s = p;
    return ok;
}

/* "STD OFFSET [DST [OFFSET] [,START[/TIME],END[/TIME]]]"; offsets count
 * west, as POSIX writes them. */
static bool parse_rule(const char *s, posix_rule *r) {
    int32_t west;
    memset(r, 0, sizeof *r);
    if (!rule_name(&s) || !rule_clock(&s, &west)) return false;
    r->std_off = -west;
    if (west < -TZ_OFFSET_MAX || west > TZ_OFFSET_MAX) return false;
    if (*s == '\0') return true;
    if (!rule_name(&s)) return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!rule_clock(&s, &west) || west < -TZ_OFFSET_MAX || west > TZ_OFFSET_MAX) return false;
        r->dst_off = -west;
    }
    if (*s == '\0') s = ",M3.2.0,M11.1.0";   /* the rule tzcode assumes */
    return *s++ == ',' && rule_when(&s, &r->start) && *s++ == ',' && rule_when(&s, &r->end) &&
           *s == '\0';
}

/* ---- TZif ------------------------------------------------------------------------------- */

typedef struct tzif_head {
    int version;
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_head;

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

/* The header at p, and the size of the data block after it (times of
 * `width` bytes); 0 when it is not a header. */
static size_t tzif_header(const uint8_t *p, size_t len, int width, tzif_head *h) {
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return 0;
    h->version = p[4] ? p[4] - '0' : 1;
    uint32_t *c[6] = {&h->isut, &h->isstd, &h->leap, &h->time, &h->type, &h->chars};
    for (int i = 0; i < 6; i++) *c[i] = be32(p + 20 + 4 * i);
    if (h->type == 0 || h->type > 256 || h->time > CAIRN_TZ_FILE_MAX) return 0;
    size_t body = (size_t)h->time * ((size_t)width + 1) + (size_t)h->type * 6 + h->chars +
                  (size_t)h->leap * ((size_t)width + 4) + h->isstd + h->isut;
    return 44 + body <= len ? 44 + body : 0;
}

/* Read the data block after header h at p into tz. */
static bool tzif_data(cairn_tz *tz, const uint8_t *p, const tzif_head *h, int width) {
    const uint8_t *times = p + 44, *idx = times + (size_t)h->time * width;
    const uint8_t *types = idx + h->time;
    tz->n = (int)h->time;
    tz->at = cairn_calloc(h->time + 1, sizeof *tz->at);
    tz->off = cairn_calloc(h->time + 1, sizeof *tz->off);
    for (uint32_t i = 0; i < h->time; i++) {
        if (idx[i] >= h->type) return false;
        tz->at[i] = width == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
        if (tz->off[i] < -TZ_OFFSET_MAX || tz->off[i] > TZ_OFFSET_MAX) return false;
        if (i > 0 && tz->at[i] <= tz->at[i - 1]) return false;
    }
    tz->first_off = (int32_t)be32(types);
    return tz->first_off >= -TZ_OFFSET_MAX && tz->first_off <= TZ_OFFSET_MAX;
}

static bool tzif_parse(cairn_tz *tz, const uint8_t *p, size_t len) {
    tzif_head h;
    size_t v1 = tzif_header(p, len, 4, &h);
    if (v1 == 0) return false;
    if (h.version < 2) return tzif_data(tz, p, &h, 4);
    size_t v2 = tzif_header(p + v1, len - v1, 8, &h);
    if (v2 == 0 || !tzif_data(tz, p + v1, &h, 8)) return false;
    const char *foot = (const char *)p + v1 + v2, *end = (const char *)p + len;
    if (foot >= end || *foot != '\n') return true;
    const char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
    if (nl == NULL || nl == foot + 1) return true;
    char text[256];
    if ((size_t)(nl - foot - 1) >= sizeof text) return false;
    memcpy(text, foot + 1, (size_t)(nl - foot - 1));
    text[nl - foot - 1] = '\0';
    tz->has_rule = parse_rule(text, &tz->rule);
    return tz->has_rule;
}

/* Letters, digits, '_', '-', '+', '.' in '/'-separated parts, none empty,
 * "." or "..": a name never leaves the zone directory. */
static bool good_name(const char *name) {
    if (strlen(name) > CAIRN_TZ_NAME_MAX) return false;
    for (const char *p = name;; ) {
        size_t n = strcspn(p, "/");
        if (n == 0 || strncmp(p, "..", n) == 0) return false;   /* "", "." and ".." */
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr("_-+.", p[i])) return false;
        if (p[n] == '\0') return true;
        p += n + 1;
    }
}

const char *cairn_tz_dir(void) {
    const char *dir = getenv("TZDIR");
    return dir && *dir ? dir : "/usr/share/zoneinfo";
}

int cairn_tz_parse(const char *name, const void *buf, size_t len, cairn_tz **out, cairn_err *err) {
    cairn_tz *tz = cairn_calloc(1, sizeof *tz);
    snprintf(tz->name, sizeof tz->name, "%s", name);
    *out = NULL;
    if (!tzif_parse(tz, buf, len)) {
        cairn_tz_free(tz);
        return cairn_err_set(err, CAIRN_ECORRUPT, "time zone '%s': not a TZif file", name);
    }
    *out = tz;
    return 0;
}

int cairn_tz_load(const char *name, cairn_tz **out, cairn_err *err) {
    *out = NULL;
    if (!good_name(name)) return cairn_err_set(err, CAIRN_ENOTFOUND, "'%.*s' is not a time zone "
                                               "name", CAIRN_TZ_NAME_MAX, name);
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {   /* with or without tzdata */
        *out = cairn_calloc(1, sizeof **out);
        snprintf((*out)->name, sizeof (*out)->name, "%s", name);
        return 0;
    }
    char *path = cairn_sprintf("%s/%s", cairn_tz_dir(), name);
    char *buf = NULL;
    size_t len = 0;
    int rc = cairn_file_read(path, CAIRN_TZ_FILE_MAX, &buf, &len);
    if (rc != CAIRN_FILE_OK)
        rc = cairn_err_set(err, CAIRN_ENOTFOUND, "unknown time zone '%s' (no %s)", name, path);
    else if ((rc = cairn_tz_parse(name, buf, len, out, err)) != 0)
        cairn_err_set(err, CAIRN_ECORRUPT, "time zone '%s': %s is not a TZif file", name, path);
    free(buf);
    free(path);
    return rc;
}

void cairn_tz_free(cairn_tz *tz) {
    if (tz == NULL) return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

const char *cairn_tz_name(const cairn_tz *tz) { return tz ? tz->name : "UTC"; }

int32_t cairn_tz_offset(const cairn_tz *tz, int64_t utc) {
    if (tz == NULL) return 0;
    if (tz->n == 0 || utc < tz->at[0]) return tz->n == 0 && tz->has_rule ? rule_offset(&tz->rule, utc)
                                                                       : tz->first_off;
    if (utc >= tz->at[tz->n - 1] && tz->has_rule) return rule_offset(&tz->rule, utc);
    int lo = 0, hi = tz->n - 1;   /* the last transition at or before utc */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->at[mid] <= utc) lo = mid;
        else hi = mid - 1;
    }
    return tz->off[lo];
}

int cairn_tz_resolve(const cairn_tz *tz, int64_t local, int64_t out[2]) {
    /* Every offset in force within a day of local: no zone moves twice
     * within two days, so these are the offsets on both sides of a
     * transition near it. */
    int32_t seen[3] = {cairn_tz_offset(tz, local - DAY), cairn_tz_offset(tz, local),
                       cairn_tz_offset(tz, local + DAY)};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++) dup = dup || seen[j] == seen[i];
        int64_t u = local - seen[i];
        if (dup || cairn_tz_offset(tz, u) != seen[i] || n == 2) continue;
        if (n == 1 && out[0] == u) continue;
        out[n++] = u;
    }
    if (n == 2 && out[1] < out[0]) {
        int64_t t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    return n;
}
