/*
 * test_cron.c - cron expressions (dsl/cron.h): what each field accepts, the
 * sets it means, and the error that names the bad field.
 */
#include "test.h"

#include "common/clock.h"
#include "fixtures.h"
#include "dsl/cron.h"

static cairn_cron parse_ok(const char *text) {
    cairn_cron c;
    char err[256] = "";
    size_t at;
    if (cairn_cron_parse(text, &c, err, sizeof err, &at) != 0)
        TEST_FAIL("'%s' refused: %s", text, err);
    return c;
}

static void parse_bad(const char *text, size_t want_at, const char *want) {
    cairn_cron c;
    char err[256] = "";
    size_t at = 999;
    if (cairn_cron_parse(text, &c, err, sizeof err, &at) == 0) TEST_FAIL("'%s' accepted", text);
    CHECK_STR(err, want);
    CHECK_INT(at, want_at);
}

/* Bits lo..hi, every step-th. */
static uint64_t span(int lo, int hi, int step) {
    uint64_t b = 0;
    for (int v = lo; v <= hi; v += step) b |= 1ull << v;
    return b;
}

TEST(cron_fields_values_ranges_steps_lists) {
    cairn_cron c = parse_ok("*/5 1-5 1,15 * *");
    CHECK(c.minute == span(0, 55, 5));
    CHECK(c.hour == span(1, 5, 1));
    CHECK(c.mday == ((1ull << 1) | (1ull << 15)));
    CHECK(c.month == span(1, 12, 1));
    CHECK(c.wday == span(0, 6, 1));
    CHECK(c.wday_star && !c.mday_star);
    c = parse_ok("  0  9-17/4\t* *  1-5 ");
    CHECK(c.minute == 1);
    CHECK(c.hour == ((1ull << 9) | (1ull << 13) | (1ull << 17)));
    CHECK(c.wday == span(1, 5, 1));
    c = parse_ok("59 23 31 12 7");                 /* the top of each field; 7 is Sunday */
    CHECK(c.minute == 1ull << 59);
    CHECK(c.wday == 1);
}

TEST(cron_month_and_day_names_in_any_case) {
    cairn_cron c = parse_ok("0 0 * JAN-mar,Dec mon-FRI");
    CHECK(c.month == (span(1, 3, 1) | (1ull << 12)));
    CHECK(c.wday == span(1, 5, 1));
    c = parse_ok("0 0 * * SUN,sat");
    CHECK(c.wday == ((1ull << 0) | (1ull << 6)));
}

TEST(cron_refuses_out_of_range_and_malformed_fields) {
    parse_bad("60 * * * *", 0, "field 1 (minute, 0-59): '60': 60 is out of range");
    parse_bad("0-60 * * * *", 0, "field 1 (minute, 0-59): '0-60': 60 is out of range");
    parse_bad("0 24 * * *", 2, "field 2 (hour, 0-23): '24': 24 is out of range");
    parse_bad("0 0 0 * *", 4, "field 3 (day of month, 1-31): '0': 0 is out of range");
    parse_bad("0 0 32 * *", 4, "field 3 (day of month, 1-31): '32': 32 is out of range");
    parse_bad("0 0 * 13 *", 6, "field 4 (month, 1-12): '13': 13 is out of range");
    parse_bad("0 0 * * 8", 8, "field 5 (day of week, 0-7): '8': 8 is out of range");
    parse_bad("0 0 * JANUARY *", 6, "field 4 (month, 1-12): 'JANUARY' is not a value, range or step");
    parse_bad("0 0 * * MON-XYZ", 8, "field 5 (day of week, 0-7): 'MON-XYZ': a range needs a "
              "value after '-'");
    parse_bad("0 0 * MON *", 6, "field 4 (month, 1-12): 'MON' is not a value, range or step");
    parse_bad("5-1 * * * *", 0, "field 1 (minute, 0-59): '5-1': the range 5-1 runs backwards");
    parse_bad("*/0 * * * *", 0, "field 1 (minute, 0-59): '*/0': a step is a whole number from 1");
    parse_bad("* 1,,2 * * *", 2, "field 2 (hour, 0-23): '1,,2' has an empty item");
    parse_bad("* * * *", 0, "expected 5 fields (minute hour day month weekday), got 4");
    parse_bad("* * * * * *", 0, "expected 5 fields (minute hour day month weekday), got 6");
    parse_bad("every 5 minutes", 0, "field 1 (minute, 0-59): 'every' is not a value, range or step");
}

/* ---- the next fire (cairn_cron_next) ------------------------------------------------- */

/* The fires of text in tz after `after`, one after another, as RFC 3339
 * UTC, compared with want (NULL-terminated). */
static void fires(const char *text, const char *tzname, const char *after,
                  const char *const *want) {
    cairn_cron c = parse_ok(text);
    cairn_tz *tz = tzname ? fx_zone(tzname) : NULL;
    int64_t t = fx_at(after);
    for (int i = 0; want[i]; i++) {
        char got[40];
        int64_t next = 0;
        if (cairn_cron_next(&c, tz, t, &next) != 0) TEST_FAIL("'%s': no fire after #%d", text, i);
        cairn_rfc3339(next * 1000, got, sizeof got);
        if (strcmp(got, want[i]) != 0)
            TEST_FAIL("'%s' in %s, fire %d after %s: got %s, want %s", text,
                      tzname ? tzname : "UTC", i, after, got, want[i]);
        t = next;
    }
    cairn_tz_free(tz);
}

#define FIRES(text, tz, after, ...) fires(text, tz, after, (const char *const[]){__VA_ARGS__, NULL})

TEST(cron_next_values_ranges_steps) {
    FIRES("*/15 * * * *", NULL, "2026-12-07T10:07:00Z", "2026-12-07T10:15:00.000Z",
          "2026-12-07T10:30:00.000Z", "2026-12-07T10:45:00.000Z", "2026-12-07T11:00:00.000Z");
    FIRES("0 9-17/4 * * *", NULL, "2026-12-07T13:00:00Z", "2026-12-07T17:00:00.000Z",
          "2026-12-08T09:00:00.000Z", "2026-12-08T13:00:00.000Z");
    FIRES("5,10 23 31 12 *", NULL, "2026-12-31T23:05:00Z", "2026-12-31T23:10:00.000Z",
          "2027-12-31T23:05:00.000Z");
    /* strictly after: a time on a fire gives the next one; seconds count */
    FIRES("* * * * *", NULL, "2026-12-07T10:07:59Z", "2026-12-07T10:08:00.000Z");
    /* around 1970, where minutes and days count from below zero */
    FIRES("*/2 * * * *", NULL, "1969-12-31T23:57:30Z", "1969-12-31T23:58:00.000Z",
          "1970-01-01T00:00:00.000Z", "1970-01-01T00:02:00.000Z");
}

TEST(cron_next_day_of_month_or_day_of_week) {
    /* both restricted: the 13th or a Friday (February 2026: Fridays 6, 13, 20, 27) */
    FIRES("0 0 13 * 5", NULL, "2026-02-01T00:00:00Z", "2026-02-06T00:00:00.000Z",
          "2026-02-13T00:00:00.000Z", "2026-02-20T00:00:00.000Z", "2026-02-27T00:00:00.000Z",
          "2026-03-06T00:00:00.000Z", "2026-03-13T00:00:00.000Z");
    FIRES("0 0 13 * FRI", NULL, "2026-04-10T00:00:00Z", "2026-04-13T00:00:00.000Z",
          "2026-04-17T00:00:00.000Z");
    /* a day field starting with '*' is not a restriction: both must hold */
    FIRES("0 0 */10 * 5", NULL, "2026-01-01T00:00:00Z", "2026-05-01T00:00:00.000Z",
          "2026-07-31T00:00:00.000Z", "2026-08-21T00:00:00.000Z");
    FIRES("0 0 * * 7", NULL, "2026-12-07T00:00:00Z", "2026-12-13T00:00:00.000Z");
}

TEST(cron_next_month_ends_and_leap_years) {
    FIRES("0 0 31 * *", NULL, "2026-04-01T00:00:00Z", "2026-05-31T00:00:00.000Z",
          "2026-07-31T00:00:00.000Z", "2026-08-31T00:00:00.000Z", "2026-10-31T00:00:00.000Z");
    FIRES("0 12 29 2 *", NULL, "2026-01-01T00:00:00Z", "2028-02-29T12:00:00.000Z",
          "2032-02-29T12:00:00.000Z");
    FIRES("0 12 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T12:00:00.000Z");   /* 2100 is not leap */
    FIRES("0 0 28 2 *", NULL, "2027-02-28T00:00:00Z",
          "2028-02-28T00:00:00.000Z");
    cairn_cron c = parse_ok("0 0 30 2 *");
    int64_t next = 0;
    CHECK(cairn_cron_next(&c, NULL, fx_at("2026-01-01T00:00:00Z"), &next) == -1);
    c = parse_ok("0 0 31 4,6,9,11 *");
    CHECK(cairn_cron_next(&c, NULL, fx_at("2026-01-01T00:00:00Z"), &next) == -1);
}

TEST(cron_next_dst_gap_fires_after_it) {
    /* New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC) */
    FIRES("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00.000Z",
          "2026-03-09T06:30:00.000Z");
    /* every skipped quarter fires once, at the end of the gap */
    FIRES("*/15 * * * *", "America/New_York", "2026-03-08T06:40:00Z", "2026-03-08T06:45:00.000Z",
          "2026-03-08T07:00:00.000Z", "2026-03-08T07:15:00.000Z");
    /* Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC) */
    FIRES("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00.000Z",
          "2026-03-30T00:30:00.000Z");
    FIRES("0 9 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T07:00:00.000Z");
}

TEST(cron_next_dst_repeated_hour_fires_once) {
    /* New York, 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC) */
    FIRES("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00.000Z",
          "2026-11-02T06:30:00.000Z");
    /* every hour: both passes, as time goes */
    FIRES("30 * * * *", "America/New_York", "2026-11-01T04:45:00Z", "2026-11-01T05:30:00.000Z",
          "2026-11-01T06:30:00.000Z", "2026-11-01T07:30:00.000Z");
    /* Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC) */
    FIRES("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00.000Z",
          "2026-10-26T01:30:00.000Z");
    FIRES("0,30 * * * *", "Europe/Berlin", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00.000Z",
          "2026-10-25T01:00:00.000Z", "2026-10-25T01:30:00.000Z", "2026-10-25T02:00:00.000Z");
}

TEST(cron_next_follows_the_zone_rule_past_its_table) {
    /* 2040 is past the transitions a zone file lists: the footer's rule */
    FIRES("30 2 * * *", "America/New_York", "2040-03-10T12:00:00Z", "2040-03-11T07:00:00.000Z");
    FIRES("30 1 * * *", "America/New_York", "2040-11-03T12:00:00Z", "2040-11-04T05:30:00.000Z",
          "2040-11-05T06:30:00.000Z");
}
