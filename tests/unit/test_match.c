/*
 * The `match` action driven through prepare/execute/finish as the engine
 * drives it, and the load-time check of a constant pattern.
 */
#include "test.h"
#include "actions/action.h"
#include "common/clock.h"
#include "common/mem.h"
#include "dsl/workflow.h"

#include <jv.h>
#include <pthread.h>
#include <time.h>

extern const cairn_action cairn_action_match;

#define MATCH_MAX 10000                /* CAIRN_MATCH_MAX in actions/match.c */
#define TEXT_MAX (4 << 20)             /* CAIRN_MATCH_TEXT_MAX */

static cairn_stop match_stop;
static cairn_attempt_info match_info = {
    .run_id = "r1", .step_id = "s1", .idempotency_key = "r1/s1", .attempt = 1,
    .stop = &match_stop,
};

/* `with` of text and pattern; flags NULL: absent. */
static jv with_of(const char *text, const char *pattern, const char *flags, bool all) {
    jv w = jv_object_set(jv_object(), jv_string("text"), jv_string(text));
    w = jv_object_set(w, jv_string("pattern"), jv_string(pattern));
    if (flags) w = jv_object_set(w, jv_string("flags"), jv_string(flags));
    if (all) w = jv_object_set(w, jv_string("all"), jv_true());
    return w;
}

/* Run over with (consumed).  Returns 1 when prepare refused, else finish's
 * result (0 or -1). */
static int run(jv with, const cairn_attempt_info *info, jv *out, cairn_fail *f) {
    const cairn_action *a = &cairn_action_match;
    void *job = NULL;
    memset(f, 0, sizeof *f);
    *out = jv_invalid();
    int rc = a->prepare(with, info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, info);
    return a->finish(job, out, f);
}

/* out (consumed) matches the JSON text, where ' stands for ". */
static void check_json(jv out, const char *want_text) {
    jv want = test_json(want_text);
    if (!jv_equal(jv_copy(out), jv_copy(want))) {
        jv got = jv_dump_string(jv_copy(out), JV_PRINT_SORTED);
        jv exp = jv_dump_string(want, JV_PRINT_SORTED);
        TEST_FAIL("output:\n    got:  %s\n    want: %s", jv_string_value(got),
                  jv_string_value(exp));
    }
    jv_free(want);
    jv_free(out);
}

/* Expect a failure of kind (prepare's or finish's) whose message holds msg. */
static void check_fails(jv with, const cairn_attempt_info *info, const char *kind,
                        const char *msg) {
    jv out;
    cairn_fail f;
    int rc = run(with, info, &out, &f);
    if (rc == 0) TEST_FAIL("expected a failure of kind %s", kind);
    CHECK_STR(f.kind, kind);
    CHECK_CONTAINS(f.message, msg);
}

static jv ok_output(jv with) {
    jv out;
    cairn_fail f;
    int rc = run(with, &match_info, &out, &f);
    if (rc != 0) TEST_FAIL("failed: %s: %s", f.kind, f.message);
    return out;
}

static char *repeat(char c, size_t n, const char *tail) {
    char *s = cairn_malloc(n + strlen(tail) + 1);
    memset(s, c, n);
    strcpy(s + n, tail);
    return s;
}

TEST(match_is_registered_and_runs_on_a_worker) {
    const cairn_action *a = cairn_action_find("match");
    CHECK(a == &cairn_action_match);
    CHECK(!(a->flags & CAIRN_ACTION_INLINE));    /* a long text may take a while */
    const cairn_action_sig *sig = cairn_action_lookup_sig("match");
    CHECK_STR(sig->fields[1].name, "pattern");
    CHECK_INT(sig->fields[1].type, CAIRN_FIELD_PATTERN);
}

TEST(match_first_with_numbered_and_named_groups) {
    jv out = ok_output(with_of("user=alice id=42", "(?<key>\\w+)=(?<value>\\w+)", NULL, false));
    check_json(out, "{'matched': true, 'match': 'user=alice', 'offset': 0,"
                    " 'groups': ['user', 'alice'], 'named': {'key': 'user', 'value': 'alice'}}");
    out = ok_output(with_of("user=alice id=42", "id=(\\d+)", NULL, false));
    check_json(out, "{'matched': true, 'match': 'id=42', 'offset': 11, 'groups': ['42'],"
                    " 'named': {}}");
}

TEST(match_group_that_did_not_take_part_is_null) {
    jv out = ok_output(with_of("b", "(a)|(b)", NULL, false));
    check_json(out, "{'matched': true, 'match': 'b', 'offset': 0, 'groups': [null, 'b'],"
                    " 'named': {}}");
    out = ok_output(with_of("port 80", "(?<host>[a-z]+:)?(?<port>\\d+)", NULL, false));
    check_json(out, "{'matched': true, 'match': '80', 'offset': 5, 'groups': [null, '80'],"
                    " 'named': {'host': null, 'port': '80'}}");
    /* A name used twice: the group of that name that took part. */
    out = ok_output(with_of("b2", "(?J)(?:a(?<n>\\d)|b(?<n>\\d))", NULL, false));
    check_json(out, "{'matched': true, 'match': 'b2', 'offset': 0, 'groups': [null, '2'],"
                    " 'named': {'n': '2'}}");
}

TEST(match_all_lists_matches_with_byte_offsets) {
    /* E_ACUTE is two bytes: offsets count bytes, not characters. */
#define E_ACUTE "\xc3\xa9"
    jv out = ok_output(with_of(E_ACUTE "=1, b=22, c=333", "(?<k>[^ ,]+)=(\\d+)", NULL, true));
    check_json(out, "{'matched': true, 'match': '" E_ACUTE "=1', 'offset': 0,"
                    " 'groups': ['" E_ACUTE "', '1'], 'named': {'k': '" E_ACUTE "'},"
                    " 'truncated': false, 'matches': ["
                    "  {'match': '" E_ACUTE "=1', 'offset': 0, 'groups': ['" E_ACUTE "', '1'],"
                    "   'named': {'k': '" E_ACUTE "'}},"
                    "  {'match': 'b=22', 'offset': 6, 'groups': ['b', '22'], 'named': {'k': 'b'}},"
                    "  {'match': 'c=333', 'offset': 12, 'groups': ['c', '333'],"
                    "   'named': {'k': 'c'}}]}");
}

TEST(match_all_empty_matches_move_on_one_character) {
    jv out = ok_output(with_of("axb", "x*", NULL, true));
    jv m = jv_object_get(out, jv_string("matches"));
    check_json(m, "[{'match': '', 'offset': 0, 'groups': [], 'named': {}},"
                  " {'match': 'x', 'offset': 1, 'groups': [], 'named': {}},"
                  " {'match': '', 'offset': 2, 'groups': [], 'named': {}},"
                  " {'match': '', 'offset': 3, 'groups': [], 'named': {}}]");
    /* One character, even of two bytes. */
    out = ok_output(with_of("\xc3\xa9", "", NULL, true));
    m = jv_object_get(out, jv_string("matches"));
    check_json(m, "[{'match': '', 'offset': 0, 'groups': [], 'named': {}},"
                  " {'match': '', 'offset': 2, 'groups': [], 'named': {}}]");
}

TEST(match_no_match_is_not_a_failure) {
    jv out = ok_output(with_of("hello", "(?<x>\\d+)", NULL, false));
    check_json(out, "{'matched': false, 'match': null, 'offset': null, 'groups': [], 'named': {}}");
    out = ok_output(with_of("hello", "(\\d+)", NULL, true));
    check_json(out, "{'matched': false, 'match': null, 'offset': null, 'groups': [], 'named': {},"
                    " 'matches': [], 'truncated': false}");
}

static bool matches(const char *text, const char *pattern, const char *flags) {
    jv out = ok_output(with_of(text, pattern, flags, false));
    bool yes = jv_get_kind(jv_object_get(jv_copy(out), jv_string("matched"))) == JV_KIND_TRUE;
    jv_free(out);
    return yes;
}

TEST(match_flags) {
    /* The same pattern with and without a flag: cached apart. */
    CHECK(!matches("HELLO", "^hello$", NULL));
    CHECK(matches("HELLO", "^hello$", "i"));
    CHECK(!matches("HELLO", "^hello$", ""));
    CHECK(!matches("a\nb", "^b$", NULL));
    CHECK(matches("a\nb", "^b$", "m"));
    CHECK(!matches("a\nb", "a.b", NULL));
    CHECK(matches("a\nb", "a.b", "s"));
    CHECK(!matches("ab", "a b # the letters", NULL));
    CHECK(matches("ab", "a b # the letters", "x"));
    CHECK(matches("A\nB", "^a.b$", "isx"));
    CHECK(matches("\xc3\x89T\xc3\x89", "^\xc3\xa9t\xc3\xa9$", "i"));   /* caseless beyond ASCII */
    check_fails(with_of("a", "a", "iq", false), &match_info, "schema",
                "match: flags may hold only the letters i, m, s and x, not 'iq'");
    jv w = jv_object_set(with_of("a", "a", NULL, false), jv_string("flags"),
                         jv_string_sized("i\0q", 3));
    check_fails(w, &match_info, "schema", "flags may hold only the letters");
    w = with_of("a", "a", NULL, false);
    w = jv_object_set(w, jv_string("flags"), jv_number(1));
    check_fails(w, &match_info, "schema", "flags must be a string");
}

TEST(match_bad_with_fails_schema) {
    jv w = jv_object_set(with_of("a", "a", NULL, false), jv_string("text2"), jv_string("x"));
    check_fails(w, &match_info, "schema", "match: unknown field 'text2'");
    w = jv_object_set(jv_object(), jv_string("pattern"), jv_string("a"));
    check_fails(w, &match_info, "schema", "match: text is required");
    w = jv_object_set(with_of("a", "a", NULL, false), jv_string("text"), jv_number(5));
    check_fails(w, &match_info, "schema", "match: text must be a string, not number");
    w = jv_object_set(with_of("a", "a", NULL, false), jv_string("all"), jv_string("yes"));
    check_fails(w, &match_info, "schema", "match: all must be true or false, not string");
    check_fails(jv_array(), &match_info, "schema", "with must be a map");
    /* null counts as absent */
    w = jv_object_set(with_of("a", "a", NULL, false), jv_string("all"), jv_null());
    w = jv_object_set(w, jv_string("flags"), jv_null());
    check_json(ok_output(w),
               "{'matched': true, 'match': 'a', 'offset': 0, 'groups': [], 'named': {}}");
}

/* A pattern that came from an expression is compiled at run time. */
TEST(match_bad_pattern_at_run_time_fails_schema) {
    check_fails(with_of("a", "(a", NULL, false), &match_info, "schema",
                "match: invalid PCRE2 pattern at offset 2: missing closing parenthesis");
    /* The offset is the author's, whatever is compiled around it. */
    check_fails(with_of("a", "(*UTF)[a", NULL, false), &match_info, "schema",
                "match: invalid PCRE2 pattern at offset 8: missing terminating ]");
    check_fails(with_of("a", "*a", NULL, false), &match_info, "schema",
                "at offset 0: quantifier does not follow a repeatable item");
}

static int load(const char *src, cairn_workflow **wf, cairn_diags *d) {
    return cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, wf, d);
}

TEST(match_constant_pattern_is_checked_at_load_time) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    const char *src = "cairn: 1\nname: t\nsteps:\n"
                      "  - id: m\n    uses: match\n"
                      "    with: {text: abc, pattern: \"a(b|c\"}\n";
    CHECK_INT(load(src, &wf, &d), CAIRN_ESYNTAX);
    CHECK(wf == NULL);
    CHECK_INT(cairn_diags_count(&d), 1);
    CHECK_INT(d.items[0].line, 6);
    CHECK_INT(d.items[0].col, 32);
    CHECK_STR(d.items[0].file, "w.yaml");
    CHECK_STR(d.items[0].msg, "with.pattern (action 'match'): invalid PCRE2 pattern at offset 5: "
                              "missing closing parenthesis");
    cairn_diags_free(&d);

    /* Good, extended-only, and ${{ }} patterns load. */
    src = "cairn: 1\nname: t\ninputs: {re: {type: string, default: '('}}\nsteps:\n"
          "  - {id: a, uses: match, with: {text: abc, pattern: '^a(b|c)$'}}\n"
          "  - {id: b, uses: match, with: {text: abc, pattern: 'a # (', flags: x}}\n"
          "  - {id: c, uses: match, with: {text: abc, pattern: '${{ .inputs.re }}'}}\n";
    cairn_diags d2 = CAIRN_DIAGS_INIT;
    if (load(src, &wf, &d2) != 0) TEST_FAIL("load failed: %s", d2.items[0].msg);
    cairn_workflow_free(wf);
    cairn_diags_free(&d2);
}

TEST(match_catastrophic_backtracking_fails_with_limit) {
    /* Exponential in the length: the match limit ends it at the first try. */
    check_fails(with_of("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "^(a+)+$", NULL, false),
                &match_info, "limit", "PCRE2 match limit");
    /* A limit the pattern sets itself may only be lower; it is honoured. */
    check_fails(with_of("aaaaaaaaaaaaaaaaaaaaaaaaab", "(*LIMIT_MATCH=1000)^(a+)+$", NULL, false),
                &match_info, "limit", "PCRE2 match limit");
}

/* Each start position costs just under the match limit: hours in all.  The
 * checkpoint at every start position sees the deadline. */
#define SLOW_PATTERN "(?:a|aa){1,17}(?:z|y)"

TEST(match_deadline_stops_a_long_search) {
    char *text = repeat('a', 4000, "");
    cairn_attempt_info info = match_info;
    info.deadline_ms = cairn_now_ms() + 100;
    check_fails(with_of(text, SLOW_PATTERN, NULL, false), &info, "timeout", "deadline reached");
    /* Also behind items that must open the pattern. */
    info.deadline_ms = cairn_now_ms() + 100;
    check_fails(with_of(text, "(*UTF)(*NO_JIT)" SLOW_PATTERN, NULL, false), &info, "timeout",
                "deadline reached");
    free(text);
}

static void *stop_soon(void *arg) {
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(&((cairn_stop *)arg)->requested, 1);
    return NULL;
}

TEST(match_stop_ends_a_long_search) {
    char *text = repeat('a', 4000, "");
    cairn_stop stop = {0};
    cairn_attempt_info info = match_info;
    info.stop = &stop;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stop_soon, &stop) == 0);
    check_fails(with_of(text, SLOW_PATTERN, NULL, true), &info, "cancelled", "stop requested");
    pthread_join(t, NULL);
    /* Asked before it starts: nothing is searched. */
    check_fails(with_of("a", "a", NULL, false), &info, "cancelled", "stop requested");
    free(text);
}

TEST(match_all_is_capped) {
    char *text = repeat('a', MATCH_MAX, "");
    jv out = ok_output(with_of(text, "a", NULL, true));
    CHECK_INT(jv_array_length(jv_object_get(jv_copy(out), jv_string("matches"))), MATCH_MAX);
    CHECK(jv_get_kind(jv_object_get(jv_copy(out), jv_string("truncated"))) == JV_KIND_FALSE);
    jv_free(out);
    free(text);
    text = repeat('a', MATCH_MAX + 5, "");
    out = ok_output(with_of(text, "(a)", NULL, true));
    jv m = jv_object_get(jv_copy(out), jv_string("matches"));
    CHECK_INT(jv_array_length(jv_copy(m)), MATCH_MAX);
    check_json(jv_array_get(m, MATCH_MAX - 1),
               "{'match': 'a', 'offset': 9999, 'groups': ['a'], 'named': {}}");
    CHECK(jv_get_kind(jv_object_get(jv_copy(out), jv_string("truncated"))) == JV_KIND_TRUE);
    jv_free(out);
    free(text);
}

TEST(match_sizes_are_capped) {
    char *text = repeat('a', TEXT_MAX, "");
    /* Each match captures the rest of the text: the third is over 8 MiB. */
    jv out = ok_output(with_of(text, "(?s)(?=(.*))", NULL, true));
    CHECK_INT(jv_array_length(jv_object_get(jv_copy(out), jv_string("matches"))), 2);
    CHECK(jv_get_kind(jv_object_get(jv_copy(out), jv_string("truncated"))) == JV_KIND_TRUE);
    jv_free(out);
    /* The first match alone over the cap fails. */
    check_fails(with_of(text, "(?s)((.*))", NULL, false), &match_info, "size",
                "the match and its groups hold 12582912 bytes");
    free(text);
    text = repeat('a', TEXT_MAX + 1, "");
    check_fails(with_of(text, "a", NULL, false), &match_info, "size",
                "match: text is 4194305 bytes, more than the 4194304 allowed");
    free(text);
    text = repeat('a', 70000, "");
    check_fails(with_of("a", text, NULL, false), &match_info, "size", "match: pattern is 70000");
    free(text);
}

/* More distinct patterns than the cache holds: evicted ones compile again. */
TEST(match_cache_eviction_keeps_results_right) {
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            char pat[32], text[32];
            snprintf(pat, sizeof pat, "^n(%d)$", i);
            snprintf(text, sizeof text, "n%d", i);
            jv out = ok_output(with_of(text, pat, NULL, false));
            jv g = jv_array_get(jv_object_get(out, jv_string("groups")), 0);
            CHECK_STR(jv_string_value(g), text + 1);
            jv_free(g);
        }
}

TEST(match_text_with_nul_and_discard) {
    jv w = jv_object_set(jv_object(), jv_string("text"), jv_string_sized("a\0b", 3));
    w = jv_object_set(w, jv_string("pattern"), jv_string_sized("\0(b)", 4));
    jv out = ok_output(w);
    check_json(out, "{'matched': true, 'match': '\\u0000b', 'offset': 1, 'groups': ['b'],"
                    " 'named': {}}");
    void *job = NULL;
    cairn_fail f;
    jv with = with_of("abc", "b", NULL, true);
    CHECK_INT(cairn_action_match.prepare(with, &match_info, &job, &f), 0);
    jv_free(with);
    cairn_action_match.discard(job);   /* never executed: freed all the same */
    cairn_action_match.discard(NULL);
}
