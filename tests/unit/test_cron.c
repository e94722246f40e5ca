/*
 * test_cron.c - cron expressions (dsl/cron.h): what each field accepts, the
 * sets it means, and the error that names the bad field.
 */
#include "test.h"

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
