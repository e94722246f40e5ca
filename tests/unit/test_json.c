#include "common/json.h"
#include "test.h"

static void roundtrip(const char *in, const char *want) {
    jv v = jv_parse(in);
    char *got = cairn_json_text(v);
    CHECK_STR(got, want);
    jv back = jv_parse(got);
    CHECK(jv_equal(back, v));   /* consumes both */
    free(got);
}

TEST(json_text_is_canonical_and_reads_back) {
    roundtrip("{\"b\":1,\"a\":[true,false,null],\"c\":{\"z\":\"x\",\"y\":2.5}}",
              "{\"a\":[true,false,null],\"b\":1,\"c\":{\"y\":2.5,\"z\":\"x\"}}");
    roundtrip("\"quote \\\" slash \\\\ nl \\n tab \\t bell \\u0007 é\"",
              "\"quote \\\" slash \\\\ nl \\n tab \\t bell \\u0007 é\"");
    roundtrip("[0.1, -3, 1e300, 123456789012, 0.30000000000000004]",
              "[0.10000000000000001,-3,1.0000000000000001e+300,123456789012,0.30000000000000004]");
    roundtrip("{\"ab\":1,\"a\":2,\"b\":3}", "{\"a\":2,\"ab\":1,\"b\":3}");
}

TEST(json_text_matches_jq_sorted_dump_on_keys) {
    jv v = jv_parse("{\"k10\":1,\"k2\":2,\"K\":3,\"é\":4,\"e\":5}");
    jv jq = jv_dump_string(jv_copy(v), JV_PRINT_SORTED);
    char *ours = cairn_json_text(v);
    CHECK_STR(ours, jv_string_value(jq));
    free(ours);
    jv_free(jq);
    jv_free(v);
}

/* ---- reading JSON from outside ------------------------------------------- */

static void check_parses(const char *text) {
    jv got = cairn_json_parse(text, strlen(text)), want = jv_parse(text);
    if (!jv_is_valid(got)) TEST_FAIL("refused: %s", text);
    CHECK(jv_equal(got, want));
}

static void check_refused(const char *text, size_t n, const char *why) {
    jv v = cairn_json_parse(text, n);
    CHECK(!jv_is_valid(v));
    jv msg = jv_invalid_get_msg(v);
    CHECK_STR(jv_string_value(msg), why);
    jv_free(msg);
}

TEST(json_parse_takes_what_rfc8259_allows) {
    check_parses("{\"a\": [1, -2.5e3, 0, 1E+2, true, false, null], \"b\": {}}");
    check_parses(" \"\\u00e9\\n\\\"\\/\" ");
    check_parses("[[], {}, \"\", -0]");
    check_parses("\t7\r\n");
}

/* The message is the scanner's (jq's would name a line and column): jq
 * never sees a refused text, and so never leaks on one. */
TEST(json_parse_refuses_before_jq_sees_it) {
    check_refused("{\"a\" \"b\"}", 9, "expected ':' at byte 5");
    check_refused("[\"a\" \"b\"]", 9, "expected ',' or ']' at byte 5");
    check_refused("{\"a\":1 \"b\":2}", 13, "expected ',' or '}' at byte 7");
    check_refused("{\"a\":1}x", 8, "more after the value at byte 7");
    check_refused("", 0, "expected a value at byte 0");
    check_refused("nan", 3, "unexpected word at byte 0");
    check_refused("[01]", 4, "expected ',' or ']' at byte 2");
    check_refused("[1.]", 4, "expected a digit at byte 3");
    check_refused("\"a\tb\"", 5, "a control character in a string at byte 2");
    check_refused("\"\\x\"", 4, "a bad escape at byte 2");
    check_refused("\"\\u12g4\"", 8, "a bad \\u escape at byte 5");
    check_refused("\"abc", 4, "unfinished: an unterminated string at byte 4, the end");
    check_refused("[1, {\"a\": ", 10, "unfinished: expected a value at byte 10, the end");
    check_refused("[1,]", 4, "expected a value at byte 3");
    check_refused("{\"a\":1}\0{}", 10, "more after the value at byte 7");
}

TEST(json_parse_nesting_is_bounded) {
    char deep[2 * CAIRN_JSON_DEPTH_MAX + 8];
    int n = CAIRN_JSON_DEPTH_MAX;
    memset(deep, '[', (size_t)n);
    memset(deep + n, ']', (size_t)n);
    deep[2 * n] = '\0';
    check_parses(deep);
    memset(deep, '[', (size_t)n + 1);
    memset(deep + n + 1, ']', (size_t)n + 1);
    deep[2 * n + 2] = '\0';
    char why[64];
    snprintf(why, sizeof why, "nested too deeply at byte %d", n);
    check_refused(deep, strlen(deep), why);
}

/* The members' places in an object's text, the whole text checked; an
 * answer that could be read two ways is no answer. */
TEST(json_members_finds_values_in_the_text_and_refuses_what_is_ambiguous) {
    static const char *const keys[] = {"index", "output"};
    cairn_json_span at[2];
    const char *t = "{\"idempotency_key\":\"k\", \"index\":12,\"output\":{\"a\":[1,\"}\"]}}";
    CHECK(cairn_json_members(t, strlen(t), keys, 2, at));
    CHECK_INT(at[0].len, 2);
    CHECK(memcmp(t + at[0].at, "12", 2) == 0);
    CHECK_INT(at[1].len, strlen("{\"a\":[1,\"}\"]}"));
    CHECK(memcmp(t + at[1].at, "{\"a\":[1,\"}\"]}", at[1].len) == 0);
    const char *none = " {\"input\":{\"index\":3}} ";   /* a nested index is not the member */
    CHECK(cairn_json_members(none, strlen(none), keys, 2, at));
    CHECK_INT(at[0].len, 0);
    CHECK_INT(at[1].len, 0);
    CHECK(cairn_json_members("{}", 2, keys, 2, at));
    const char *bad[] = {"{\"index\":1,\"index\":2}", "{\"ind\\u0065x\":1}", "[1]", "{\"a\":1",
                         "{\"a\":1} x", "{\"a\":01}", "{\"a\":1,}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cairn_json_members(bad[i], strlen(bad[i]), keys, 2, at))
            TEST_FAIL("taken: %s", bad[i]);
}

/* Every byte value at every place of a string longer than a word (the
 * writer skips text that needs no escape eight bytes at a time) is written
 * as a byte-by-byte escaper writes it. */
TEST(json_string_escapes_every_byte_wherever_it_stands) {
    static const char hex[] = "0123456789abcdef";
    char s[21];
    for (int at = 0; at < (int)sizeof s; at++) {
        for (int c = 0; c < 256; c++) {
            memset(s, 'a', sizeof s);
            s[at] = (char)c;
            cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
            cairn_json_write_string(&got, s, sizeof s);
            cairn_buf_putc(&want, '"');
            for (size_t i = 0; i < sizeof s; i++) {
                unsigned char b = (unsigned char)s[i];
                if (b == '"' || b == '\\') {
                    cairn_buf_putc(&want, '\\');
                    cairn_buf_putc(&want, (char)b);
                } else if (b == '\n') cairn_buf_puts(&want, "\\n");
                else if (b == '\t') cairn_buf_puts(&want, "\\t");
                else if (b == '\r') cairn_buf_puts(&want, "\\r");
                else if (b < 0x20) {
                    char esc[7] = {'\\', 'u', '0', '0', hex[b >> 4], hex[b & 15], 0};
                    cairn_buf_puts(&want, esc);
                } else cairn_buf_putc(&want, (char)b);
            }
            cairn_buf_putc(&want, '"');
            if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
                TEST_FAIL("byte 0x%02x at %d: got %s, want %s", c, at, got.data, want.data);
            cairn_buf_free(&got);
            cairn_buf_free(&want);
        }
    }
}
