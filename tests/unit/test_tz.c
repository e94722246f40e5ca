/*
 * test_tz.c - time zones from TZif files (common/tz.h): offsets on both
 * sides of a change, wall-clock times that happen twice or never, the
 * footer's rule past a file's table, and names that are not zones.
 */
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "fixtures.h"
#include "common/tz.h"

TEST(tz_offsets_around_changes) {
    cairn_tz *ny = fx_zone("America/New_York");
    CHECK_STR(cairn_tz_name(ny), "America/New_York");
    CHECK_INT(cairn_tz_offset(ny, fx_at("2026-03-08T06:59:59Z")), -5 * 3600);
    CHECK_INT(cairn_tz_offset(ny, fx_at("2026-03-08T07:00:00Z")), -4 * 3600);
    CHECK_INT(cairn_tz_offset(ny, fx_at("2026-11-01T05:59:59Z")), -4 * 3600);
    CHECK_INT(cairn_tz_offset(ny, fx_at("2026-11-01T06:00:00Z")), -5 * 3600);
    /* past the table (fat files end in 2037): the footer's rule */
    CHECK_INT(cairn_tz_offset(ny, fx_at("2090-07-01T00:00:00Z")), -4 * 3600);
    CHECK_INT(cairn_tz_offset(ny, fx_at("2090-03-12T06:59:59Z")), -5 * 3600);   /* 2nd Sunday: 12th */
    CHECK_INT(cairn_tz_offset(ny, fx_at("2090-03-12T07:00:00Z")), -4 * 3600);
    CHECK_INT(cairn_tz_offset(ny, fx_at("2090-12-01T00:00:00Z")), -5 * 3600);
    cairn_tz_free(ny);
    cairn_tz *berlin = fx_zone("Europe/Berlin");
    CHECK_INT(cairn_tz_offset(berlin, fx_at("2026-03-29T00:59:59Z")), 3600);
    CHECK_INT(cairn_tz_offset(berlin, fx_at("2026-03-29T01:00:00Z")), 7200);
    CHECK_INT(cairn_tz_offset(berlin, fx_at("2026-10-25T01:00:00Z")), 3600);
    cairn_tz_free(berlin);
    cairn_tz *sydney = fx_zone("Australia/Sydney");   /* summer across the new year */
    CHECK_INT(cairn_tz_offset(sydney, fx_at("2090-01-15T00:00:00Z")), 11 * 3600);
    CHECK_INT(cairn_tz_offset(sydney, fx_at("2090-07-15T00:00:00Z")), 10 * 3600);
    cairn_tz_free(sydney);
    cairn_tz *utc = fx_zone("UTC");
    CHECK_INT(cairn_tz_offset(utc, fx_at("2026-07-01T00:00:00Z")), 0);
    CHECK_INT(cairn_tz_offset(NULL, fx_at("2026-07-01T00:00:00Z")), 0);
    cairn_tz_free(utc);
}

TEST(tz_resolve_gaps_and_repeats) {
    cairn_tz *ny = fx_zone("America/New_York");
    int64_t u[2];
    /* local seconds are the wall clock read as UTC */
    CHECK_INT(cairn_tz_resolve(ny, fx_at("2026-03-08T01:59:00Z"), u), 1);
    CHECK_INT(u[0], fx_at("2026-03-08T06:59:00Z"));
    CHECK_INT(cairn_tz_resolve(ny, fx_at("2026-03-08T02:30:00Z"), u), 0);        /* skipped */
    CHECK_INT(cairn_tz_resolve(ny, fx_at("2026-03-08T03:00:00Z"), u), 1);
    CHECK_INT(u[0], fx_at("2026-03-08T07:00:00Z"));
    CHECK_INT(cairn_tz_resolve(ny, fx_at("2026-11-01T01:30:00Z"), u), 2);        /* twice */
    CHECK_INT(u[0], fx_at("2026-11-01T05:30:00Z"));
    CHECK_INT(u[1], fx_at("2026-11-01T06:30:00Z"));
    CHECK_INT(cairn_tz_resolve(ny, fx_at("2026-11-01T02:00:00Z"), u), 1);
    CHECK_INT(u[0], fx_at("2026-11-01T07:00:00Z"));
    cairn_tz_free(ny);
}

TEST(tz_refuses_unknown_zones_and_paths) {
    static const char *const bad[] = {"Mars/Olympus_Mons", "../../../etc/passwd", "/etc/localtime",
                                      "Europe/../../../../etc/passwd", "Europe//Berlin", "", ".",
                                      "Europe/Berlin/", "Europe/Ber lin", NULL};
    for (int i = 0; bad[i]; i++) {
        cairn_tz *tz = (cairn_tz *)1;
        cairn_err err;
        if (cairn_tz_load(bad[i], &tz, &err) != CAIRN_ENOTFOUND) TEST_FAIL("'%s' loaded", bad[i]);
        CHECK(tz == NULL);
    }
    cairn_tz *tz = NULL;
    cairn_err err;
    CHECK_INT(cairn_tz_load("Mars/Olympus_Mons", &tz, &err), CAIRN_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "unknown time zone 'Mars/Olympus_Mons'");
    CHECK_INT(cairn_tz_load("zone.tab", &tz, &err), CAIRN_ECORRUPT);   /* a file, not TZif */
}

/* The version 1 part of a TZif file (its header and 32-bit data). */
static void write_v1(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    unsigned char buf[1 << 16];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(len > 44);
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (uint32_t)buf[20 + 4 * i] << 24 | buf[21 + 4 * i] << 16 | buf[22 + 4 * i] << 8 |
               buf[23 + 4 * i];
    size_t v1 = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    buf[4] = 0;   /* version 1 */
    f = fopen(to, "wb");
    CHECK(f != NULL && fwrite(buf, 1, v1, f) == v1);
    fclose(f);
}

TEST(tz_reads_version_1_and_tzdir) {
    /* TZDIR moves the database: a copy of one zone, cut to its version 1 part */
    char dir[] = "/tmp/cairn-tzXXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/Test", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/Test/Old", dir);
    write_v1("/usr/share/zoneinfo/Europe/Berlin", path);
    setenv("TZDIR", dir, 1);
    cairn_tz *tz = fx_zone("Test/Old");
    CHECK_INT(cairn_tz_offset(tz, fx_at("2026-03-29T00:59:59Z")), 3600);
    CHECK_INT(cairn_tz_offset(tz, fx_at("2026-03-29T01:00:00Z")), 7200);
    CHECK_INT(cairn_tz_offset(tz, fx_at("2026-12-01T00:00:00Z")), 3600);
    cairn_tz_free(tz);
    cairn_err err;
    CHECK_INT(cairn_tz_load("Europe/Berlin", &tz, &err), CAIRN_ENOTFOUND);   /* not in TZDIR */
    unsetenv("TZDIR");
    unlink(path);
    snprintf(path, sizeof path, "%s/Test", dir);
    rmdir(path);
    rmdir(dir);
}

/* A version 1 TZif file of one transition at `at` from type 0 (offset
 * off0) to type 1 (off1). */
static size_t tzif_v1(unsigned char *buf, int32_t at, int32_t off0, int32_t off1) {
    memset(buf, 0, 44);
    memcpy(buf, "TZif", 4);
    const uint32_t counts[6] = {0, 0, 0, 1, 2, 4};   /* isut, isstd, leap, time, type, chars */
    unsigned char *p = buf + 20;
    for (int i = 0; i < 6; i++, p += 4)
        p[0] = counts[i] >> 24, p[1] = counts[i] >> 16, p[2] = counts[i] >> 8, p[3] = counts[i];
    const int32_t words[3] = {at, off0, off1};
    for (int i = 0; i < 3; i++) {
        uint32_t w = (uint32_t)words[i];
        if (i == 1) *p++ = 1;                          /* the transition's type */
        p[0] = w >> 24, p[1] = w >> 16, p[2] = w >> 8, p[3] = w;
        p += 4;
        if (i > 0) *p++ = 0, *p++ = 0;                 /* isdst, designation */
    }
    memcpy(p, "AB\0\0", 4);
    return (size_t)(p + 4 - buf);
}

TEST(tz_parse_refuses_impossible_offsets) {
    unsigned char buf[128];
    cairn_tz *tz = NULL;
    cairn_err err;
    size_t n = tzif_v1(buf, 1000000, 3600, 7200);
    CHECK_INT(cairn_tz_parse("Test/Good", buf, n, &tz, &err), 0);
    CHECK_INT(cairn_tz_offset(tz, 999999), 3600);
    CHECK_INT(cairn_tz_offset(tz, 1000000), 7200);
    cairn_tz_free(tz);
    n = tzif_v1(buf, 1000000, 3600, 26 * 3600 + 1);   /* past RFC 8536's range */
    CHECK_INT(cairn_tz_parse("Test/Bad", buf, n, &tz, &err), CAIRN_ECORRUPT);
    CHECK(tz == NULL);
    CHECK_INT(cairn_tz_parse("Test/Cut", buf, n - 5, &tz, &err), CAIRN_ECORRUPT);
}
