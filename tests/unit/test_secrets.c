/*
 * Secrets masking: every spelling secrets.h promises to catch, at any depth
 * of a value, and the rule for short secrets.
 */
#include "common/json.h"
#include "common/mem.h"
#include "engine/secrets.h"
#include "engine_harness.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* The set a run would load: no secrets file, these CAIRN_SECRET_* variables. */
static cairn_secrets *load(const char *name, const char *value) {
    char *var = cairn_sprintf("CAIRN_SECRET_%s", name);
    char *file = cairn_sprintf("%s/none.secrets", test_tmpdir());
    char *key = cairn_sprintf("%s/none.key", test_tmpdir());
    setenv(var, value, 1);
    cairn_secrets *s = NULL;
    cairn_err err;
    if (cairn_secrets_load(file, key, &s, &err)) TEST_FAIL("load: %s", err.msg);
    free(var);
    free(file);
    free(key);
    return s;
}

/* v masked, as compact JSON (caller frees). */
static char *masked(jv v, const cairn_secrets *s) {
    cairn_buf b = CAIRN_BUF_INIT;
    jv out = cairn_secrets_mask(v, s);
    cairn_json_write(&b, out);   /* borrows out */
    jv_free(out);
    return cairn_buf_detach(&b);
}

#define CHECK_MASKED(v, s, want)              \
    do {                                      \
        char *got_ = masked((v), (s));        \
        CHECK_STR(got_, (want));              \
        free(got_);                           \
    } while (0)

#define SECRET "pA55/w0rd+x y\"z!~?>"

TEST(secrets_mask_catches_every_spelling_it_promises) {
    /* Each text holds one spelling of SECRET; want is the text as stored. */
    static const struct { const char *spelling, *text, *want; } cases[] = {
        {"exact", "pre pA55/w0rd+x y\"z!~?> post", "pre *** post"},
        {"upper", "pre PA55/W0RD+X Y\"Z!~?> post", "pre *** post"},
        {"lower", "pre pa55/w0rd+x y\"z!~?> post", "pre *** post"},
        {"json", "{\"t\": \"pA55/w0rd+x y\\\"z!~?>\"}", "{\"t\": \"***\"}"},
        {"hex", "0x704135352f773072642b782079227a217e3f3e.", "0x***."},
        {"HEX", "0x704135352F773072642B782079227A217E3F3E.", "0x***."},
        {"url", "https://h/?t=pA55%2Fw0rd%2Bx%20y%22z%21~%3F%3E&x=1", "https://h/?t=***&x=1"},
        {"url lower", "https://h/?t=pa55%2fw0rd%2bx%20y%22z%21~%3f%3e&x=1", "https://h/?t=***&x=1"},
        {"url plus", "t=pA55%2Fw0rd%2Bx+y%22z%21~%3F%3E&x=1", "t=***&x=1"},
        {"url keeps /", "t=pA55/w0rd%2Bx%20y%22z%21~%3F%3E&x=1", "t=***&x=1"},
        {"base64 alone", "cEE1NS93MHJkK3ggeSJ6IX4/Pg==", "***=="},
        {"base64url alone", "cEE1NS93MHJkK3ggeSJ6IX4_Pg", "***"},
        /* base64 of prefix + SECRET + "tail", the prefix 0, 1 or 2 bytes:
         * the whole 3-byte groups inside the secret become *** */
        {"base64 at 0", "cEE1NS93MHJkK3ggeSJ6IX4/PnRhaWw=", "***PnRhaWw="},
        {"base64url at 0", "cEE1NS93MHJkK3ggeSJ6IX4_PnRhaWw=", "***PnRhaWw="},
        {"base64 at 1", "QnBBNTUvdzByZCt4IHkieiF+Pz50YWls", "QnBB***Pz50YWls"},
        {"base64url at 1", "QnBBNTUvdzByZCt4IHkieiF-Pz50YWls", "QnBB***Pz50YWls"},
        {"base64 at 2", "QmVwQTU1L3cwcmQreCB5Inohfj8+dGFpbA==", "QmVw***dGFpbA=="},
        {"base64url at 2", "QmVwQTU1L3cwcmQreCB5Inohfj8-dGFpbA==", "QmVw***dGFpbA=="},
    };
    cairn_secrets *s = load("TOK", SECRET);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jv out = cairn_secrets_mask(jv_string(cases[i].text), s);
        if (strcmp(jv_string_value(out), cases[i].want) != 0)
            TEST_FAIL("%s: got \"%s\", want \"%s\"", cases[i].spelling, jv_string_value(out),
                      cases[i].want);
        jv_free(out);
    }
    cairn_secrets_free(s);
}

TEST(secrets_mask_reaches_every_array_element_and_object_key) {
    cairn_secrets *s = load("TOK", "hunter22-token");
    CHECK_MASKED(test_json("['hunter22-token', 'b', 'x hunter22-token']"), s, "[\"***\",\"b\",\"x ***\"]");
    CHECK_MASKED(test_json("[['hunter22-token'], [[1, 'hunter22-token']]]"), s,
                 "[[\"***\"],[[1,\"***\"]]]");
    CHECK_MASKED(test_json("{'hunter22-token': {'k hunter22-token': ['hunter22-token']}}"), s,
                 "{\"***\":{\"k ***\":[\"***\"]}}");
    CHECK_MASKED(test_json("{'n': 1, 'ok': true, 'none': null, 's': 'plain'}"), s,
                 "{\"n\":1,\"none\":null,\"ok\":true,\"s\":\"plain\"}");
    cairn_secrets_free(s);
}

TEST(secrets_mask_merges_overlapping_spellings_into_one) {
    /* Side by side, two ***; overlapping (the value and its upper case), one. */
    cairn_secrets *s = load("TOK", "zyzzyva1");
    CHECK_MASKED(jv_string("zyzzyva1zyzzyva1"), s, "\"******\"");
    CHECK_MASKED(jv_string("zyzzyZYZZYVA1"), s, "\"zyzzy***\"");
    cairn_secrets_free(s);
    s = load("TOK", "aaaaaaaa");   /* overlapping occurrences of one spelling */
    CHECK_MASKED(jv_string("baaaaaaaaab"), s, "\"b***b\"");
    cairn_secrets_free(s);
}

TEST(secrets_mask_takes_short_secrets_only_as_they_are) {
    cairn_secrets *s = load("PIN", "4a7Z");   /* under CAIRN_SECRET_SPELLING_MIN */
    CHECK_MASKED(jv_string("pin 4a7Z"), s, "\"pin ***\"");
    /* its upper case, hex and base64 are left: text holds them by chance */
    CHECK_MASKED(jv_string("4A7Z 34613761 NGE3Wg"), s, "\"4A7Z 34613761 NGE3Wg\"");
    cairn_secrets_free(s);
    s = load("PIN", "4a7Zq9_x");   /* at the minimum: every spelling */
    CHECK_MASKED(jv_string("4A7ZQ9_X 3461375a71395f78"), s, "\"*** ***\"");
    cairn_secrets_free(s);
}

TEST(secrets_mask_without_secrets_changes_nothing) {
    jv v = test_json("{'a': ['x', {'b': 'y'}]}");
    CHECK_MASKED(cairn_secrets_mask(jv_copy(v), NULL), NULL, "{\"a\":[\"x\",{\"b\":\"y\"}]}");
    cairn_secrets *s = load("EMPTY", "");
    CHECK_MASKED(v, s, "{\"a\":[\"x\",{\"b\":\"y\"}]}");
    cairn_secrets_free(s);
}

/* Through the engine: a foreach whose items hold the secret, as a string,
 * inside a list, upper-cased and as the first element of a `set` list. */
TEST(secrets_mask_foreach_items_and_set_lists_in_the_journal) {
    setenv("CAIRN_SECRET_TOK", "hunter22-token", 1);
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: items\nsteps:\n"
            "  - id: each\n"
            "    foreach: ${{ [.secrets.TOK, \"plain\", [.secrets.TOK], (.secrets.TOK | ascii_upcase)] }}\n"
            "    uses: set\n    with: { v: \"${{ .item }}\", i: \"${{ .index }}\" }\n"
            "  - id: list\n    uses: set\n"
            "    with: { l: [\"${{ .secrets.TOK }}\", [\"${{ .secrets.TOK }}\"], x] }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.each.output",
             "[{\"i\":0,\"v\":\"***\"},{\"i\":1,\"v\":\"plain\"},{\"i\":2,\"v\":[\"***\"]},"
             "{\"i\":3,\"v\":\"***\"}]");
    CHECK_AT(run, "steps.list.output", "{\"l\":[\"***\",[\"***\"],\"x\"]}");
    int n = 0;
    cairn_event *evs = journal_of(&h, id, &n);
    for (int i = 0; i < n; i++) {
        if (strcasestr(evs[i].data, "hunter22-token"))
            TEST_FAIL("event %d (%s) holds the secret: %s", i, cairn_event_type_name(evs[i].type),
                      evs[i].data);
    }
    CHECK(n > 10);
    cairn_events_free(evs, n);
    jv_free(run);
    free_h(&h);
}
