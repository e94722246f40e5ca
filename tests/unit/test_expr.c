/*
 * test_expr.c - expressions and templates (dsl/expr.h).
 */
#include "test.h"

#include <jv.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "dsl/expr.h"
#include "dsl/expr_int.h"

/* ---- helpers ------------------------------------------------------------------ */

static cairn_exprset *compile_ok(const char *const *progs, int n) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) CHECK_INT(cairn_exprset_add(set, progs[i], "w.yaml", i + 1, 3), i);
    cairn_diags d = CAIRN_DIAGS_INIT;
    int rc = cairn_exprset_compile(set, &d);
    if (rc != 0) TEST_FAIL("compile failed: %s", d.count ? d.items[0].msg : "?");
    cairn_diags_free(&d);
    return set;
}

/* Evaluate one program over the JSON text doc; returns the result as compact
 * JSON (caller frees) or NULL with err filled. */
static char *eval_json(const char *prog, const char *doc, cairn_err *err) {
    cairn_exprset *set = compile_ok(&prog, 1);
    jv d = jv_parse(doc), out;
    char *s = NULL;
    if (cairn_exprset_eval(set, 0, d, &out, err) == 0) {
        jv text = jv_dump_string(out, 0);
        s = cairn_strdup(jv_string_value(text));
        jv_free(text);
    }
    jv_free(d);
    cairn_exprset_free(set);
    return s;
}

#define CHECK_EVAL(prog, doc, want)                                          \
    do {                                                                     \
        cairn_err e_;                                                        \
        char *got_ = eval_json(prog, doc, &e_);                              \
        if (got_ == NULL) TEST_FAIL("%s: %s", prog, e_.msg);                 \
        CHECK_STR(got_, want);                                               \
        free(got_);                                                          \
    } while (0)

/* Render a one-string template over doc; the result as compact JSON, or NULL
 * with err filled (and the set's diagnostics must be empty). */
static char *render_str(const char *s, const char *doc, cairn_err *err) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string(s, 3, 9, set, "w.yaml", &d);
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    CHECK_INT(d.count, 0);
    jv in = jv_parse(doc), out;
    char *res = NULL;
    if (cairn_tmpl_render(t, set, in, &out, err) == 0) {
        jv text = jv_dump_string(out, 0);
        res = cairn_strdup(jv_string_value(text));
        jv_free(text);
    }
    jv_free(in);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);
    return res;
}

#define CHECK_RENDER(s, doc, want)                                     \
    do {                                                                     \
        cairn_err e_;                                                        \
        char *got_ = render_str(s, doc, &e_);                          \
        if (got_ == NULL) TEST_FAIL("%s: %s", s, e_.msg);                    \
        CHECK_STR(got_, want);                                               \
        free(got_);                                                          \
    } while (0)

static const char *DOC = "{\"port\": 8080, \"name\": \"web\", \"obj\": {\"a\": [1, true]}, "
                         "\"flag\": true, \"off\": false, \"nothing\": null}";

/* ---- values --------------------------------------------------------------------- */

TEST(expr_whole_string_keeps_json_type) {
    CHECK_RENDER("${{ .port }}", DOC, "8080");
    CHECK_RENDER("${{.obj}}", DOC, "{\"a\":[1,true]}");
    CHECK_RENDER("${{ .flag }}", DOC, "true");
    CHECK_RENDER("${{ .nothing }}", DOC, "null");
    CHECK_RENDER("${{ .name }}", DOC, "\"web\"");
}

TEST(expr_splices_strings_raw_and_other_values_as_json) {
    CHECK_RENDER("http://${{ .name }}:${{ .port }}/x", DOC,
                 "\"http://web:8080/x\"");
    CHECK_RENDER("obj=${{ .obj }} flag=${{ .flag }} none=${{ .nothing }}", DOC,
                 "\"obj={\\\"a\\\":[1,true]} flag=true none=null\"");
    /* Text around one expression makes it a splice, even blanks. */
    CHECK_RENDER(" ${{ .port }}", DOC, "\" 8080\"");
    /* `$` without `{{` is literal text. */
    CHECK_RENDER("cost $5 ${x} $ {{y}} ${{ .port }}$", DOC,
                 "\"cost $5 ${x} $ {{y}} 8080$\"");
}

TEST(expr_nothing_gives_null_and_two_values_fail) {
    CHECK_EVAL("empty", "{}", "null");
    CHECK_EVAL(".a[]?", "{\"a\": []}", "null");
    cairn_err e;
    CHECK(eval_json("1, 2", "{}", &e) == NULL);
    CHECK_INT(e.code, CAIRN_EEXPR);
    CHECK_STR(e.msg, "expression yielded more than one value");
    CHECK(eval_json(".a[]", "{\"a\": [1, 2, 3]}", &e) == NULL);
    CHECK_STR(e.msg, "expression yielded more than one value");
    /* An error after the first value is still an error. */
    CHECK(eval_json("1, error(\"late\")", "{}", &e) == NULL);
    CHECK_STR(e.msg, "late");
}

TEST(expr_runtime_error_carries_jq_message) {
    cairn_err e;
    CHECK(eval_json(".a.b", "{\"a\": 5}", &e) == NULL);
    CHECK_INT(e.code, CAIRN_EEXPR);
    CHECK_STR(e.msg, "Cannot index number with string \"b\"");
    CHECK_STR(e.file, "w.yaml");
    CHECK_INT(e.line, 1);
    CHECK(eval_json("error({\"why\": 1})", "{}", &e) == NULL);
    CHECK_STR(e.msg, "{\"why\":1} (not a string)");
    /* Through a template, the message names the expression's place. */
    CHECK(render_str("x=${{ .a.b }}", "{\"a\": 5}", &e) == NULL);
    CHECK_INT(e.code, CAIRN_EEXPR);
    CHECK_STR(e.msg, "expression at w.yaml:3:11: Cannot index number with string \"b\"");
}

/* A remainder by -1 of a number past 2^63 (from a payload) is 0, as it is
 * for every smaller number, and does not trap as (intmax_t)x % -1 does. */
TEST(expr_remainder_by_minus_one_of_a_huge_number_is_zero) {
    CHECK_EVAL(".x % .y", "{\"x\":1e300,\"y\":-1}", "0");
    CHECK_EVAL(".x % .y", "{\"x\":-1e300,\"y\":-1.5}", "0");
    CHECK_EVAL(".x % -1", "{\"x\":7}", "0");
    CHECK_EVAL(".x % .y", "{\"x\":7,\"y\":-2}", "1");
}

TEST(expr_truthy) {
    CHECK(!cairn_truthy(jv_false()));
    CHECK(!cairn_truthy(jv_null()));
    CHECK(!cairn_truthy(jv_invalid()));
    CHECK(cairn_truthy(jv_true()));
    CHECK(cairn_truthy(jv_number(0)));
    jv s = jv_string(""), a = jv_array();
    CHECK(cairn_truthy(s));
    CHECK(cairn_truthy(a));
    jv_free(s);
    jv_free(a);
}

/* The caller's document must not stay shared with the jq state: it would be
 * copied on its next change. */
TEST(expr_eval_keeps_no_reference_to_the_document) {
    /* jq, then native (a path, arithmetic, an error, one deferred to jq) */
    const char *progs[] = {"empty", "[.a, .a]", "1, 2", ". as $d | 1, 2, $d", ".a, error(.)",
                           ".a", ".a + 1", ".a // .", ".a.b", ".a * \"x\""};
    const int want[] = {0, 0, CAIRN_EEXPR, CAIRN_EEXPR, CAIRN_EEXPR, 0, 0, 0, CAIRN_EEXPR, 0};
    int n = (int)(sizeof progs / sizeof progs[0]);
    cairn_exprset *set = compile_ok(progs, n);
    jv doc = jv_parse("{\"a\": 5}");
    for (int i = 0; i < n; i++) {
        jv out;
        cairn_err e;
        int rc = cairn_exprset_eval(set, i, doc, &out, &e);
        CHECK_INT(rc, want[i]);
        jv_free(out);
        CHECK_INT(jv_get_refcnt(doc), 1);
    }
    jv_free(doc);
    cairn_exprset_free(set);
}

TEST(expr_eval_needs_a_compiled_set) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_exprset_add(set, ".", "w.yaml", 1, 1);
    jv out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(set, 0, jv_null(), &out, &e), CAIRN_ESTATE);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    CHECK_INT(cairn_exprset_eval(set, 1, jv_null(), &out, &e), CAIRN_EINVAL);
    CHECK_INT(cairn_exprset_eval(set, 0, jv_null(), &out, &e), 0);
    CHECK(jv_get_kind(out) == JV_KIND_NULL);
    cairn_exprset_free(set);
    cairn_exprset_free(NULL);
}

/* ---- compile errors ---------------------------------------------------------------- */

typedef struct bad_case {
    const char *prog;
    const char *msg;     /* expected in the diagnostic; NULL: the program is fine */
} bad_case;

/* Compile cases[i].prog, each added at line i + 1: every one must be refused
 * with a diagnostic at its own line holding cases[i].msg. */
static void expect_each_refused(const bad_case *cases, int n) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) cairn_exprset_add(set, cases[i].prog, "w.yaml", i + 1, 1);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    CHECK_INT(d.count, n);
    for (int i = 0; i < n && i < d.count; i++) {
        CHECK_INT(d.items[i].line, i + 1);
        CHECK_CONTAINS(d.items[i].msg, cases[i].msg);
    }
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

/* Syntax errors, undefined names (found only once the rest parses) and
 * lexical refusals, all among good programs: one diagnostic each, at the
 * position of its own program, none for the good ones. */
TEST(expr_reports_every_bad_program_at_its_position) {
    static const bad_case cases[] = {
        {".a", NULL},
        {".a |||", "in expression `.a |||`: syntax error, unexpected '|'"},
        {".b + 1", NULL},
        {"if . then 1", "`if . then 1`: syntax error, unexpected ')'; Possibly unterminated 'if' "
                        "statement"},
        {"nosuchfn(1)", "in expression `nosuchfn(1)`: nosuchfn/1 is not defined"},
        {"(.a", "syntax error: '(' is never closed"},
        {".x ^ 2", "syntax error, unexpected INVALID_CHARACTER"},
        {"{a: 1}", NULL},
        {"$undefined_var", "$undefined_var is not defined"},
        {"\"unterminated", "syntax error: unterminated string"},
        {"", "empty expression"},
        {"[.[] | select(.ok)] | length", NULL},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) cairn_exprset_add(set, cases[i].prog, "w.yaml", 10 + i, 5 + i);
    /* The same bad text twice is reported at both places. */
    cairn_exprset_add(set, ".a |||", "other.yaml", 99, 1);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (cases[i].msg == NULL) continue;
        if (k >= d.count) TEST_FAIL("no diagnostic for %s", cases[i].prog);
        CHECK_STR(d.items[k].file, "w.yaml");
        CHECK_INT(d.items[k].line, 10 + i);
        CHECK_INT(d.items[k].col, 5 + i);
        CHECK_CONTAINS(d.items[k].msg, cases[i].msg);
        CHECK(strstr(d.items[k].msg, "top-level") == NULL);
        CHECK(strstr(d.items[k].msg, "shell quoting") == NULL);
        k++;
    }
    CHECK(k < d.count);
    CHECK_STR(d.items[k].file, "other.yaml");
    CHECK_INT(d.items[k].line, 99);
    CHECK_INT(d.count, k + 1);
    jv out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(set, 0, jv_null(), &out, &e), CAIRN_ESTATE);
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

/* Outside the native subset (`| .`), 600 programs are compiled in two
 * halves on two threads: the broken ones in both are found. */
TEST(expr_bad_programs_among_many_all_found) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < 600; i++) {
        char *p = i % 97 == 5 ? cairn_sprintf(".v%d |||", i)
                : i % 89 == 7 ? cairn_sprintf("undefined_%d", i)
                              : cairn_sprintf(".v%d | .", i);
        cairn_exprset_add(set, p, "w.yaml", i + 1, 1);
        free(p);
    }
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    int k = 0;
    for (int i = 0; i < 600; i++) {
        if (i % 97 != 5 && i % 89 != 7) continue;
        CHECK(k < d.count);
        CHECK_INT(d.items[k].line, i + 1);
        CHECK_CONTAINS(d.items[k].msg, i % 97 == 5 ? "syntax error" : "is not defined");
        k++;
    }
    CHECK_INT(d.count, k);
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

/* ---- isolation and shadowed builtins --------------------------------------------- */

TEST(expr_programs_cannot_break_out_of_their_place) {
    static const bad_case cases[] = {
        {"1); def now: 5; (1", "')' without a matching '('"},
        {"1), (2", "')' without a matching '('"},
        {"\"x\\\"", "unterminated string"},
        {"\"\\(1\"", "unterminated"},
        {"[1}", "'}' without a matching '{'"},
        {"1; 2", "syntax error"},
        {"def f: 1;", "syntax error"},
    };
    expect_each_refused(cases, (int)(sizeof cases / sizeof cases[0]));

    /* A comment runs to the end of the program only. */
    const char *progs[] = {".a # a comment )\"", "\"#\\\")\" + .b"};
    cairn_exprset *set = compile_ok(progs, 2);
    jv doc = jv_parse("{\"a\": 1, \"b\": \"x\"}"), out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(set, 0, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 1);
    CHECK_INT(cairn_exprset_eval(set, 1, doc, &out, &e), 0);
    CHECK_STR(jv_string_value(out), "#\")x");
    jv_free(out);
    jv_free(doc);
    cairn_exprset_free(set);
}

/* Each is refused when the set compiles, at the program's own position:
 * calls in any place code stands, including interpolations, arguments and
 * a program's own def of the name. */
TEST(expr_clock_environment_and_input_are_refused_at_compile_time) {
    static const bad_case cases[] = {
        {"now", "now is not available in expressions: it reads the clock"},
        {"input", "input is not available"}, {"inputs", "inputs is not available"},
        {"env", "env is not available"}, {"env.HOME", "env is not available"},
        {"localtime", "localtime is not available"},
        {"strflocaltime(\"%H\")", "strflocaltime is not available"},
        {"input_filename", "input_filename is not available"},
        {"input_line_number", "input_line_number is not available"},
        {"debug", "debug is not available"}, {"stderr", "stderr is not available"},
        {"halt", "halt is not available"}, {"halt_error", "halt_error is not available"},
        {"halt_error(1)", "halt_error is not available"},
        {"get_search_list", "get_search_list is not available"},
        {"get_prog_origin", "get_prog_origin is not available"},
        {"get_jq_origin", "get_jq_origin is not available"},
        {"modulemeta", "modulemeta is not available"},
        {"import \"m\" as m; 1", "import is not available"},
        {"include \"m\"; 1", "include is not available"},
        {"[limit(3; repeat(now))]", "now is not available"},
        {"\"at \\(now)\"", "now is not available"},
        {".a|now", "now is not available"}, {"{a: now}", "now is not available"},
        {"{(now|tostring): 1}", "now is not available"}, {"{a: 1} | now", "now is not available"},
        {"[1, now]", "now is not available"}, {"def now: 5; now", "now is not available"},
        {"$__loc__", "$__loc__ is not available"}, {"$ __loc__.file", "$__loc__ is not available"},
        {"{a: $__loc__}", "$__loc__ is not available"},
    };
    expect_each_refused(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* The same names as fields, strings, object keys, variables of the
 * program's own, formats and parts of longer names are data, not calls. */
TEST(expr_refused_names_as_data_are_allowed) {
    CHECK_EVAL("{now: 1, env: 2} | .now + .env", "{}", "3");
    CHECK_EVAL("{a: 1, now} | .now", "{\"now\": 4}", "4");
    CHECK_EVAL(".\"now\" // .[\"input\"]", "{\"input\": 5}", "5");
    CHECK_EVAL(".now", "{\"now\": 6}", "6");
    CHECK_EVAL(".a.env", "{\"a\": {\"env\": 7}}", "7");
    CHECK_EVAL("\"now env $ENV $__loc__\"", "{}", "\"now env $ENV $__loc__\"");
    CHECK_EVAL("1 as $now | $now", "{}", "1");
    CHECK_EVAL("def nowish: 2; nowish", "{}", "2");
    CHECK_EVAL("[.[] | select(.inputs_ok)] | length", "[{\"inputs_ok\": true}]", "1");
    CHECK_EVAL("0 | todate", "{}", "\"1970-01-01T00:00:00Z\"");
    CHECK_EVAL("\"2015-03-05T23:51:47Z\" | fromdate", "{}", "1425599507");
    CHECK_EVAL("0 | gmtime | mktime", "{}", "0");
}

TEST(expr_env_variable_is_refused_at_compile_time) {
    const char *progs[] = {"$ENV", "$ENV.HOME", "$ ENV", "$ # comment\nENV", "\"\\($ENV)\"",
                           "{$ENV}"};
    int n = (int)(sizeof progs / sizeof progs[0]);
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) cairn_exprset_add(set, progs[i], "w.yaml", i + 1, 2);
    cairn_exprset_add(set, "$ENVIRONMENT_IS_NOT_ENV", "w.yaml", 50, 2);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    CHECK_INT(d.count, n + 1);
    for (int i = 0; i < n; i++) {
        CHECK_INT(d.items[i].line, i + 1);
        CHECK_CONTAINS(d.items[i].msg, "$ENV is not available in expressions");
    }
    CHECK_CONTAINS(d.items[n].msg, "$ENVIRONMENT_IS_NOT_ENV is not defined");
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

TEST(expr_home_jq_file_is_refused) {
    char *home = cairn_sprintf("%s/home", test_tmpdir());
    CHECK_INT(mkdir(home, 0700), 0);
    CHECK_INT(setenv("HOME", home, 1), 0);
    const char *ok[] = {".a", ".a * .b"};
    cairn_exprset *native = compile_ok(ok, 2);
    char *rc = cairn_sprintf("%s/.jq", home);
    FILE *f = fopen(rc, "w");
    CHECK(f != NULL);
    fputs("def foo: 42;\n", f);
    fclose(f);
    /* A native program that needs jq once the file is there is refused too. */
    jv doc = jv_parse("{\"a\": \"x\", \"b\": 2}"), out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(native, 0, doc, &out, &e), 0);
    jv_free(out);
    CHECK_INT(cairn_exprset_eval(native, 1, doc, &out, &e), CAIRN_EEXPR);
    CHECK_CONTAINS(e.msg, "/.jq exists, and libjq would load its definitions");
    CHECK_INT(native->nchunks, 0);
    jv_free(doc);
    cairn_exprset_free(native);
    cairn_exprset *set = cairn_exprset_new();
    cairn_exprset_add(set, "foo", "w.yaml", 4, 2);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    CHECK_INT(d.count, 1);
    CHECK_CONTAINS(d.items[0].msg, "/.jq exists, and libjq would load its definitions");
    cairn_diags_free(&d);
    cairn_exprset_free(set);
    free(rc);
    free(home);
}

/* ---- scale --------------------------------------------------------------------------- */

/* n programs `.steps.sK.output.v * 1000 + V` plus tail; with the tail JQ_TAIL
 * they are outside the native subset and compiled by jq in chunks. */
#define JQ_TAIL " | . as $x | $x"
static void check_many(int n, const char *tail, int want_chunks) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) {
        /* Every fifth text repeats an earlier one: shared, still right. */
        int v = i % 5 == 4 ? i - 1 : i;
        char *p = cairn_sprintf(".steps.s%d.output.v * 1000 + %d%s", v % 50, v, tail);
        CHECK_INT(cairn_exprset_add(set, p, "w.yaml", i + 1, 7), i);
        free(p);
    }
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    CHECK_INT(d.count, 0);
    CHECK_INT(set->nchunks, want_chunks);
    jv doc = jv_object();
    for (int s = 0; s < 50; s++)
        doc = jv_object_set(doc, jv_string_fmt("s%d", s),
                            JV_OBJECT(jv_string("output"),
                                      JV_OBJECT(jv_string("v"), jv_number(s))));
    doc = JV_OBJECT(jv_string("steps"), doc);
    for (int i = n - 1; i >= 0; i--) {
        int v = i % 5 == 4 ? i - 1 : i;
        jv out;
        cairn_err e;
        CHECK_INT(cairn_exprset_eval(set, i, doc, &out, &e), 0);
        if (jv_number_value(out) != (v % 50) * 1000 + v)
            TEST_FAIL("program %d gave %g", i, jv_number_value(out));
        jv_free(out);
    }
    jv_free(doc);
    cairn_exprset_free(set);
}

/* From CAIRN_EXPR_SPLIT_MIN programs one chunk is cut in two, compiled on two
 * threads; every program must still evaluate to its own value. */
TEST(expr_thousand_programs_in_one_set) {
    check_many(CAIRN_EXPR_SPLIT_MIN - 1, JQ_TAIL, 1);
    check_many(1000, JQ_TAIL, 2);
    check_many(1000, "", 0);                /* the native subset: no jq at all */
}

/* More distinct programs than one jq program holds: several chunks. */
TEST(expr_programs_past_one_chunk) { check_many(CAIRN_EXPR_CHUNK_MAX * 2 + 300, JQ_TAIL, 2); }

/* ---- templates ------------------------------------------------------------------------ */

TEST(expr_close_braces_inside_jq_strings) {
    CHECK_RENDER("${{ \"}}\" }}", "{}", "\"}}\"");
    CHECK_RENDER("<${{ \"a\\\"}}\" + .x }}>", "{\"x\": \"b\"}",
                 "\"<a\\\"}}b>\"");
    CHECK_RENDER("${{ \"\\(\"}}\")}}\" }}", "{}", "\"}}}}\"");
    CHECK_RENDER("${{ {a: {b: 1} } | .a.b }}", "{}", "1");
}

TEST(expr_unterminated_expression_is_reported_at_its_column) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string("ab ${{ .x } }", 3, 5, set,
                                           "w.yaml", &d);
    CHECK_INT(d.count, 1);
    CHECK_INT(d.items[0].line, 3);
    CHECK_INT(d.items[0].col, 8);
    CHECK_CONTAINS(d.items[0].msg, "unterminated expression");
    CHECK_INT(cairn_exprset_count(set), 0);
    cairn_tmpl_free(t);
    /* On several lines, the string's own position. */
    t = cairn_tmpl_from_string("a\n${{ \"}}", 4, 2, set, "w.yaml", &d);
    CHECK_INT(d.count, 2);
    CHECK_INT(d.items[1].line, 4);
    CHECK_INT(d.items[1].col, 2);
    cairn_tmpl_free(t);
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

/* Hand-built nodes: a map {name: web, url: "http://${{ .h }}/", tags: [a,
 * "${{ .t }}"], fixed: {n: 1}} at known positions. */
static cairn_node *scalar(const char *text, bool quoted, int line, int col) {
    cairn_node *n = cairn_calloc(1, sizeof *n);
    n->kind = CAIRN_NODE_SCALAR;
    n->text = cairn_strdup(text);
    n->len = strlen(text);
    n->quoted = quoted;
    n->line = line;
    n->col = col;
    n->text_col = col + (quoted ? 1 : 0);    /* one line, no escapes, as the parser says */
    return n;
}

static cairn_node *coll(cairn_node_kind kind, int count, cairn_node **keys, cairn_node **values) {
    cairn_node *n = cairn_calloc(1, sizeof *n);
    n->kind = kind;
    n->count = count;
    n->line = n->col = 1;
    if (keys) {
        n->keys = cairn_calloc((size_t)count, sizeof *keys);
        memcpy(n->keys, keys, (size_t)count * sizeof *keys);
    }
    n->values = cairn_calloc((size_t)count, sizeof *values);
    memcpy(n->values, values, (size_t)count * sizeof *values);
    return n;
}

static void node_free(cairn_node *n) {
    for (int i = 0; i < n->count; i++) {
        if (n->keys) node_free(n->keys[i]);
        node_free(n->values[i]);
    }
    free(n->keys);
    free(n->values);
    free(n->text);
    free(n);
}

TEST(expr_template_tree_renders_only_dynamic_parts) {
    cairn_node *tags = coll(CAIRN_NODE_SEQ, 3, NULL,
                            (cairn_node *[]){scalar("a", false, 4, 9),
                                             scalar("${{ .t }}", true, 4, 12),
                                             scalar("7", false, 4, 25)});
    cairn_node *fixed = coll(CAIRN_NODE_MAP, 1, (cairn_node *[]){scalar("n", false, 5, 12)},
                             (cairn_node *[]){scalar("1", false, 5, 15)});
    cairn_node *root = coll(
        CAIRN_NODE_MAP, 5,
        (cairn_node *[]){scalar("name", false, 2, 3), scalar("url", false, 3, 3),
                         scalar("tags", false, 4, 3), scalar("fixed", false, 5, 3),
                         scalar("${{ key }}", false, 6, 3)},
        (cairn_node *[]){scalar("web", false, 2, 9), scalar("http://${{ .h }}/", true, 3, 8),
                         tags, fixed, scalar("${{ .bad |||}}", false, 6, 16)});
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_new(root, set, "w.yaml", &d);
    CHECK(!cairn_tmpl_is_const(t));
    CHECK(jv_get_kind(cairn_tmpl_const_value(t)) == JV_KIND_INVALID);
    CHECK_INT(cairn_exprset_count(set), 3);
    /* Positions: the quoted url's expression starts 8 bytes after its quote. */
    const char *file;
    int line, col;
    cairn_exprset_pos(set, 0, &file, &line, &col);
    CHECK_STR(file, "w.yaml");
    CHECK_INT(line, 3);
    CHECK_INT(col, 16);
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    CHECK_INT(d.count, 1);
    CHECK_INT(d.items[0].line, 6);
    CHECK_INT(d.items[0].col, 16);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);

    /* Without the bad entry. */
    root->count = 4;
    set = cairn_exprset_new();
    t = cairn_tmpl_new(root, set, "w.yaml", &d);
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    jv doc = jv_parse("{\"h\": \"example.org\", \"t\": {\"x\": 1}}"), out;
    cairn_err e;
    CHECK_INT(cairn_tmpl_render(t, set, doc, &out, &e), 0);
    jv text = jv_dump_string(out, 0);
    CHECK_STR(jv_string_value(text), "{\"name\":\"web\",\"url\":\"http://example.org/\","
                                     "\"tags\":[\"a\",{\"x\":1},7],\"fixed\":{\"n\":1}}");
    jv_free(text);
    jv_free(doc);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    root->count = 5;

    /* A constant subtree is one constant. */
    set = cairn_exprset_new();
    t = cairn_tmpl_new(fixed, set, "w.yaml", &d);
    CHECK(cairn_tmpl_is_const(t));
    jv c = cairn_tmpl_const_value(t);
    text = jv_dump_string(c, 0);
    CHECK_STR(jv_string_value(text), "{\"n\":1}");
    jv_free(text);
    CHECK_INT(cairn_exprset_count(set), 0);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);
    node_free(root);
}

/* Whether a template may read a top-level field: known for native texts,
 * assumed for the rest (a jq program may read anything). */
static bool reads(const char *s, const char *key) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string(s, 1, 1, set, "w.yaml", &d);
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    bool r = cairn_tmpl_reads(t, set, key);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);
    return r;
}

TEST(expr_template_knows_which_fields_it_may_read) {
    CHECK(!reads("plain text", "step"));
    CHECK(!reads("${{ .steps.a.output.n + 1 }}", "step"));
    CHECK(!reads("x ${{ .inputs.host }} y ${{ .run.id }}", "step"));
    CHECK(reads("${{ .steps.a.output.n }}", "steps"));
    CHECK(reads("a ${{ .inputs.n }} b ${{ .step.attempt }}", "step"));
    CHECK(reads("${{ .[\"step\"].id }}", "step"));
    CHECK(reads("${{ . }}", "step"));                     /* the whole document */
    CHECK(reads("${{ .item // 0 }}", "item"));
    CHECK(reads("${{ .steps.a.output as $x | $x }}", "step"));   /* jq: anything */
    /* pipes: what follows reads the document only where `.` may still be it */
    CHECK(!reads("${{ .steps.a.output | length }}", "step"));
    CHECK(!reads("${{ .steps.a | .step }}", "step"));
    CHECK(reads("${{ . | .step }}", "step"));
    CHECK(reads("${{ (.x // .) | .step }}", "step"));
    CHECK(reads("${{ [.] | .[0].step }}", "step"));
    CHECK(reads("${{ keys }}", "step"));
    CHECK(reads("${{ .[] }}", "step"));
    CHECK(reads("${{ .x[.k] }}", "k"));
    CHECK(!reads("${{ .x[.k] }}", "step"));
    CHECK(reads("${{ {a: .step} }}", "step"));
    CHECK(!reads("${{ .x | map(.step) }}", "step"));
}

TEST(expr_template_error_names_position) {
    cairn_node *n = scalar("a ${{ .x.y }} b", false, 7, 4);
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_new(n, set, "w.yaml", &d);
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    jv doc = jv_parse("{\"x\": [1]}"), out;
    cairn_err e;
    CHECK_INT(cairn_tmpl_render(t, set, doc, &out, &e), CAIRN_EEXPR);
    CHECK_STR(e.msg, "expression at w.yaml:7:6: Cannot index array with string \"y\"");
    jv_free(doc);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);
    node_free(n);
}

/* Plain paths are walked without jq: they must mean what jq means. */
TEST(expr_plain_paths_agree_with_jq) {
    const char *progs[] = {".", ".a", ".a.b", ".a.list[1]", ".a[\"odd key\"]", ".missing.deeper",
                           ".a.list[9]", ".a.b.c", ".a.list.x", ".a.list[0].y", NULL};
    /* the same programs with a no-op tail, which jq must compile and run */
    cairn_exprset *fast = cairn_exprset_new(), *slow = cairn_exprset_new();
    for (int i = 0; progs[i]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s | .", progs[i]);
        cairn_exprset_add(fast, progs[i], "p.yaml", 1, 1);
        cairn_exprset_add(slow, buf, "p.yaml", 1, 1);
    }
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(fast, &d), 0);
    CHECK_INT(cairn_exprset_compile(slow, &d), 0);
    jv doc = jv_parse("{\"a\":{\"b\":5,\"list\":[10,{\"y\":true}],\"odd key\":\"k\"}}");
    for (int i = 0; progs[i]; i++) {
        jv x = jv_invalid(), y = jv_invalid();
        cairn_err e1, e2;
        int r1 = cairn_exprset_eval(fast, i, doc, &x, &e1);
        int r2 = cairn_exprset_eval(slow, i, doc, &y, &e2);
        if (r1 != r2) TEST_FAIL("%s: %d vs %d", progs[i], r1, r2);
        if (r1) CHECK_STR(e1.msg, e2.msg);
        else if (!jv_equal(jv_copy(x), jv_copy(y))) TEST_FAIL("%s: values differ", progs[i]);
        jv_free(x);
        jv_free(y);
    }
    jv_free(doc);
    cairn_diags_free(&d);
    cairn_exprset_free(fast);
    cairn_exprset_free(slow);
}

/* ---- the native subset (dsl/expr_native.c) against libjq itself ----------------- */

static void drop_jq_msg(void *data, jv msg) {
    (void)data;
    jv_free(msg);
}

/* text compiled alone by libjq, as jq would run it; NULL when it does not compile. */
static jq_state *jq_alone(const char *text) {
    jq_state *jq = jq_init();
    jq_set_error_cb(jq, drop_jq_msg, NULL);
    if (jq_compile(jq, text)) return jq;
    jq_teardown(&jq);
    return NULL;
}

/* jq's first result over doc (borrowed): a value or jq's error; null for none. */
static jv jq_first(jq_state *jq, jv doc) {
    jq_start(jq, jv_copy(doc), 0);
    jv v = jq_next(jq);
    jq_start(jq, jv_null(), 0);
    if (jv_is_valid(v) || jv_invalid_has_msg(jv_copy(v))) return v;
    jv_free(v);
    return jv_null();
}

/* A result for messages: its JSON, "error: <msg>" or "deferred".  v borrowed. */
static char *show(jv v) {
    if (jv_is_valid(v)) {
        jv text = jv_dump_string(jv_copy(v), JV_PRINT_SORTED);
        char *s = cairn_sprintf("%s %s", jv_kind_name(jv_get_kind(v)), jv_string_value(text));
        jv_free(text);
        return s;
    }
    jv msg = jv_invalid_get_msg(jv_copy(v));
    char *s = jv_get_kind(msg) == JV_KIND_STRING ? cairn_sprintf("error: %s", jv_string_value(msg))
                                                  : cairn_strdup("deferred");
    jv_free(msg);
    return s;
}

/* The same value (same kind, same JSON with sorted keys: NaN and -0 too)
 * or the same error message.  Both borrowed. */
static void check_same(const char *what, const char *text, jv doc, jv got, jv want) {
    char *g = show(got), *w = show(want);
    if (strcmp(g, w) != 0) {
        jv d = jv_dump_string(jv_copy(doc), 0);
        TEST_FAIL("%s `%s` over %s:\n    got:  %s\n    want: %s (libjq)", what, text,
                  jv_string_value(d), g, w);
    }
    free(g);
    free(w);
}

/* Documents of every kind and shape: numbers of every sort, missing keys,
 * kinds swapped, a root that cannot be indexed by name. */
static jv diff_docs(void) {
    jv docs = jv_parse(
        "[{\"n\": 5, \"m\": 2, \"z\": 0, \"f\": 2.5, \"neg\": -7, \"s\": \"abc\", \"t\": \"x,y\","
        "  \"e\": \"\", \"a\": [1, 2, 3], \"b\": [2], \"o\": {\"k\": 1, \"deep\": {\"x\": 1}},"
        "  \"p\": {\"k\": 2, \"deep\": {\"y\": 2}}, \"t1\": true, \"f1\": false, \"nul\": null,"
        "  \"long\": \"a very long string value, past fifteen bytes\", \"big\": 1e300,"
        "  \"huge\": 1e19, \"and\": 3},"
        " {},"
        " null,"
        " [10, 20],"
        " \"root\","
        " {\"n\": \"5\", \"m\": null, \"z\": -0.0, \"f\": 0.5, \"neg\": -5, \"s\": 7,"
        "  \"a\": {\"x\": 1}, \"o\": [1], \"b\": \"2\", \"t1\": 0, \"f1\": null, \"nul\": false,"
        "  \"long\": \"\u00e9\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301\","
        "  \"t\": [\"x\"], \"p\": 1, \"huge\": 9.3e18, \"big\": 4503599627370497},"
        " {\"n\": -3, \"m\": 0.3, \"z\": 1e-320, \"f\": -2.5, \"neg\": 3, \"s\": \"\", \"a\": [],"
        "  \"b\": [], \"o\": {}, \"p\": {}, \"t1\": \"false\", \"f1\": [], \"nul\": {}}]");
    /* numbers JSON cannot carry, but a computation can */
    jv odd = JV_OBJECT(jv_string("n"), jv_number(NAN), jv_string("m"), jv_number(INFINITY),
                       jv_string("z"), jv_number(-INFINITY), jv_string("f"), jv_number(NAN));
    return jv_array_append(docs, odd);
}

typedef struct diff_case {
    char native;          /* 'N': the native parser must accept it; 'J': decline it */
    const char *text;
} diff_case;

static const diff_case DIFF[] = {
    /* paths */
    {'N', "."}, {'N', ".n"}, {'N', ".o.deep.x"}, {'N', ".a[1]"}, {'N', ".[0]"}, {'N', ".[\"n\"]"},
    {'N', ".o[\"k\"]"}, {'N', ".missing.deeper"}, {'N', ".n.x"}, {'N', ".s[0]"}, {'N', ".a.x"},
    {'N', ".o[0]"}, {'N', ".and"}, {'N', ".a[7]"}, {'N', ".e"}, {'N', ".e3x"}, {'N', ".e_3"},
    {'N', ".E3_"},
    /* literals and constant folding */
    {'N', "1."}, {'N', ".5"}, {'N', "1.5e3"}, {'N', "1e-3"}, {'N', "007"}, {'N', "1E+2"},
    {'N', "0.1 + 0.2"}, {'N', "\"\""}, {'N', "\"a\\tb\\u00e9\\/\\\\\\\"\""},
    {'N', "\"\\ud83d\\ude00\""},
    {'N', "\"\\b\\f\\r\\n\""}, {'N', "\"caf\xc3\xa9 \xff\""}, {'N', "true"}, {'N', "false"},
    {'N', "null"}, {'N', "null + 1 + .n"}, {'N', "(null + \"a\") + 1"}, {'N', "2 * 3 / .z"},
    {'N', ".n / (1 - 1)"}, {'N', "1 + null"}, {'N', "null + null"}, {'N', "1e308 * 1 + 1"},
    {'N', "\"a\" + \"b\""}, {'N', "\"a\" * 0"}, {'N', "true + true"}, {'N', "1 == 1"},
    {'N', "2 > 1.5"}, {'N', "\"a\" == \"a\""},
    /* + */
    {'N', ".n + 1"}, {'N', ".n + .m"}, {'N', ".s + .s"}, {'N', ".s + .n"}, {'N', ".n + .s"},
    {'N', ".a + .b"}, {'N', ".o + .p"}, {'N', ".o + .a"}, {'N', ".nul + 1"}, {'N', "1 + .nul"},
    {'N', ".nul + .nul"}, {'N', ".t1 + .t1"}, {'N', ".long + 1"}, {'N', ".big + .big"},
    {'N', ".missing + .n"},
    /* - * / % */
    {'N', ".n - .m"}, {'N', ".n-1"}, {'N', ".s - 1"}, {'N', ".a - .b"}, {'N', ".a - 1"},
    {'N', ".o - .p"}, {'N', ".o - 1"}, {'N', ".nul - 1"}, {'N', ".f1 - 1"}, {'N', ".long - .long"},
    {'N', ".n * .m"}, {'N', ".s * 2"}, {'N', "2 * .s"}, {'N', ".s * .f"}, {'N', ".s * .n"},
    {'N', ".o * .p"}, {'N', ".nul * 2"}, {'N', ".a * 2"}, {'N', ".big * .big"}, {'N', ".s * .s"},
    {'N', ".n / .m"}, {'N', ".n / .z"}, {'N', ".z / .z"}, {'N', ".t / \",\""}, {'N', ".s / .s"},
    {'N', ".s / 1"}, {'N', ".nul / 1"}, {'N', "1 / .nul"}, {'N', ".n / .f"},
    {'N', ".n % .m"}, {'N', ".n % .z"}, {'N', ".n % .f"}, {'N', ".f % .m"}, {'N', ".neg % .m"},
    {'N', ".n % .neg"}, {'N', ".huge % 7"}, {'N', ".big % 3"}, {'N', ".s % 2"}, {'N', ".nul % 2"},
    {'N', "5 % 2"}, {'N', "-5 % 2"}, {'N', ".m % .n"}, {'N', ".n % .big"},
    /* comparisons */
    {'N', ".n == 5"}, {'N', ".n != 5"}, {'N', ".n < .m"}, {'N', ".n <= .n"}, {'N', ".s > .n"},
    {'N', ".a < .o"}, {'N', ".nul < false"}, {'N', "false < true"}, {'N', ".o == .o"},
    {'N', ".n >= .f"}, {'N', ".s == \"abc\""}, {'N', ".a == .b"}, {'N', ".z == 0"},
    {'N', ".n>.m"}, {'N', ".o != .p"}, {'N', "(1 < 2) < 3"},
    /* and, or, // */
    {'N', "1 == 1 and 2 < 3"}, {'N', ".t1 and .f1"}, {'N', ".t1 or .f1"}, {'N', ".nul or .f1"},
    {'N', ".n and .s"}, {'N', ".f1 and .missing.x"}, {'N', ".t1 or (1 - \"a\")"},
    {'N', ".f1 and (1 - \"a\")"}, {'N', ".t1 and (1 - \"a\")"}, {'N', "(1 - \"a\") or true"},
    {'N', ".a // .b // 3"}, {'N', ".nul // 3"}, {'N', ".f1 // \"d\""}, {'N', ".missing // .n"},
    {'N', ".n.x // 1"}, {'N', "(1 - \"a\") // 2"}, {'N', "null // (1 - \"a\")"},
    {'N', ".f1 // .nul"}, {'N', "(.s - 1) + (.n - \"x\")"}, {'N', ".n.x * .s.y"},
    {'N', "false // false"}, {'N', ".s * 2 // 1"}, {'N', "1and 2"},
    /* precedence */
    {'N', "1 + 2 * 3"}, {'N', "(1 + 2) * 3"}, {'N', "1 - 2 - 3"}, {'N', "8 / 2 / 2"},
    {'N', "2 * 3 % 4"}, {'N', "7 % 4 * 3"}, {'N', "1 + 2 == 3"}, {'N', "true or false and false"},
    {'N', "(true or false) and false"}, {'N', ".n - 1 * 2"}, {'N', ".n+.m*2"},
    {'N', "1 + 2 < 3 + 4"}, {'N', "1 // 2 or 3"}, {'N', "false or true // 3"},
    {'N', ".nul // .n == 5 and .t1"}, {'N', ".a // .b and .c"}, {'N', "\t.n\n+\n1 "},
    /* pipes, unary minus, builders, builtins, if: native since the subset grew */
    {'N', ".a | length"}, {'N', "-1"}, {'N', "-.n"}, {'J', ".n as $x | $x + 1"}, {'N', "{} + {}"},
    {'N', "[.n] + [1]"}, {'J', ".a [0]"}, {'J', ".o .k"}, {'J', "0 / 0"}, {'J', "1e1000"},
    {'J', ".n # comment"}, {'N', "\"\\(.n)\""}, {'J', ".a?"}, {'J', "[.[]?]"}, {'N', ".a[-1]"},
    {'N', "not"}, {'N', "if .t1 then 1 else 2 end"}, {'J', ".\"n\""}, {'N', ".o[\"\\u006b\"]"},
    {'N', "1 * -1"}, {'J', "1e308 * 10"}, {'J', ".n as $x | 1"},
};

/* Each corpus text over each document: the native evaluator alone (where it
 * does not defer), cairn_exprset_eval (native, deferred or jq), and libjq
 * running the text by itself must agree exactly. */
/* jq 1.6 lexes `.e3` and `.E+1` as a (bad) number, not a field: a compile
 * error that the native parser must leave to jq, so that loading refuses it. */
TEST(expr_native_declines_what_jq_reads_as_a_number) {
    const char *texts[] = {".e3", ".E1", ".a.e3", ".e+3", ".e-1 + 1", ".o.E12"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cairn_exprnative *e = cairn__exprnative_parse(texts[i], strlen(texts[i]));
        if (e) TEST_FAIL("`%s` parsed natively; jq refuses it", texts[i]);
        CHECK(jq_alone(texts[i]) == NULL);
        cairn_exprset *set = cairn_exprset_new();
        cairn_exprset_add(set, texts[i], "d.yaml", 1, 1);
        cairn_diags d = CAIRN_DIAGS_INIT;
        CHECK(cairn_exprset_compile(set, &d) != 0);
        CHECK_CONTAINS(d.items[0].msg, "Invalid numeric literal");
        cairn_diags_free(&d);
        cairn_exprset_free(set);
    }
}

TEST(expr_native_agrees_with_jq) {
    int n = (int)(sizeof DIFF / sizeof DIFF[0]);
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) cairn_exprset_add(set, DIFF[i].text, "d.yaml", i + 1, 1);
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_exprset_compile(set, &d) != 0) TEST_FAIL("%s", d.items[0].msg);
    jv docs = diff_docs();
    int ndocs = jv_array_length(jv_copy(docs)), native = 0;
    for (int i = 0; i < n; i++) {
        const char *text = DIFF[i].text;
        cairn_exprnative *e = cairn__exprnative_parse(text, strlen(text));
        if ((e != NULL) != (DIFF[i].native == 'N'))
            TEST_FAIL("`%s` should be %s", text, e ? "declined" : "parsed natively");
        jq_state *jq = jq_alone(text);
        if (jq == NULL) TEST_FAIL("`%s` does not compile with jq", text);
        for (int k = 0; k < ndocs; k++) {
            jv doc = jv_array_get(jv_copy(docs), k), want = jq_first(jq, doc);
            jv got = e ? cairn__exprnative_eval(e, doc) : jv_invalid();
            if (jv_is_valid(got) || jv_invalid_has_msg(jv_copy(got))) {
                check_same("native", text, doc, got, want);
                native++;
            }
            jv_free(got);
            cairn_err err;
            if (cairn_exprset_eval(set, i, doc, &got, &err) != 0)
                got = jv_invalid_with_msg(jv_string(err.msg));
            check_same("cairn_exprset_eval", text, doc, got, want);
            jv_free(got);
            jv_free(want);
            jv_free(doc);
        }
        jq_teardown(&jq);
        cairn__exprnative_free(e);
    }
    /* most cases are answered natively; the test is not vacuous */
    CHECK(native > n * ndocs / 2);
    jv_free(docs);
    cairn_diags_free(&d);
    cairn_exprset_free(set);
}

/* The native parser declines what jq refuses or reads otherwise, so that jq
 * still reports it; and accepts the subset. */
TEST(expr_native_parser_declines_outside_the_subset) {
    static const char *const declined[] = {
        "1 < 2 < 3", "1 == 1 == 1", "1 < 2 == true",
        "$x", "$__loc__", "reduce .[] as $x (0; . + $x)", ".a.[0]", ".a..b",
        "..", ".a?", ".\"a\"", "1 / 0", "0 / 0", "1 / (null + 0)", "1 / (1 - 1)",
        "(1e308 * 10) / 1", "1e308 * 10", "1e1000", ".a\r", "\r.a", ".a\f", ".a # c",
        "\"\\q\"", "\"\\u12\"",
        "\"\\uzzzz\"", "\"\\ud83d\"", "\"\\ud83dx\"", "\"a\\", "1e", "1.a", "1.5.a", "0x10",
        ".a = 1", ".a += 1", ".a -= 1", ".a *= 2", ".a /= 2", ".a %= 2", ".a //= 1", ".a |= 1",
        "1 !=", "+ 1", "()", "(1", "1)", "and", "1 and", "or 1", "true::x",
        "a::b", ".a [0]",
        "@base64", "try .a", ".a as $x | 1",
        "1 ! = 2", "1 <> 2", "1 === 2", "`", ";", ".a .b",
        ".a?.b", "1and2", "truex", "nulls", "__loc__", "", " ", "1 2", ".a 1",
        ".a[1:2]", ".a[]?", "{(1): 2}", "{([]): 1}", "{(null): 1}", "{a: 1 + 1}", "{\"a\"}",
        "{if: 1}", "{a: -1}", "if . then 1 end", "if . then 1 else 2 end.a",
        "length(1)", "map(.a; .b)", "map (.a)", "split(\",\"; \"g\")", "test(\"a\")",
        ".a | .b?", "def f: 1; f", "@base64 \"\\(.a)\"",
        "\"\\(1\"", "[.[] | ", "{a: .b,}", ".a as [$x] | $x", "not()",
    };
    static const char *const accepted[] = {
        ".", " . ", ".a", ".a-1", ".a+1", "1and 2", ".and", ".if", ".a[0][\"k\"].b", ".[\"\"]",
        ".[007]", "(1 < 2) < 3", "\"a\\tb\"", "\"\\u00e9x\"", "1.", ".5", "1.e3", "1E-2",
        ".n\n+\t1", "((.a))", ".a // .b // .c", "null", "true and false or null",
        ".x == \"\" and .y != null", "1 / (1 - 2)", "0 / 1", "null + null", "\"(\" + \"x\"",
        ".n % 0", ".__loc__",
        ".a | .b", "-1", "1 * -1", "\"\\(.a)\"", "\"a\\(.a)\"", ".[]", "not", "length",
        ".a[1.5]", ".a[ 0]", ".a[-1]", ".a[\"k\\\"\"]", ".a[.b]", ".a[]", "{a: 1}",
        "[1]", ".a, .b", "if . then 1 else 2 end", "null.a", "\"x\"[0]", "(.a).b",
    };
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        cairn_exprnative *e = cairn__exprnative_parse(declined[i], strlen(declined[i]));
        if (e) TEST_FAIL("`%s` should be declined", declined[i]);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        cairn_exprnative *e = cairn__exprnative_parse(accepted[i], strlen(accepted[i]));
        if (e == NULL) TEST_FAIL("`%s` should be parsed natively", accepted[i]);
        cairn__exprnative_free(e);
        jq_state *jq = jq_alone(accepted[i]);
        if (jq == NULL) TEST_FAIL("`%s` does not compile with jq", accepted[i]);
        jq_teardown(&jq);
    }
    /* What jq refuses keeps jq's diagnostic. */
    static const bad_case bad[] = {
        {"1 / 0", "Division by zero?"}, {"1 / (null + 0)", "Division by zero?"},
        {"1 < 2 < 3", "syntax error, unexpected '<'"}, {".a\r", "INVALID_CHARACTER"},
        {"\"\\ud83d\"", "surrogate pair"}, {".a.[0]", "syntax error"},
    };
    expect_each_refused(bad, (int)(sizeof bad / sizeof bad[0]));
}

static unsigned next_rand(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

/* A random text of atoms and operators of the subset, some parenthesised,
 * with and without blanks (`.n-1`, `1and .a`), so precedence, association
 * and tokenisation all get exercised, valid or not. */
static void random_text(cairn_buf *b, unsigned *seed, int depth) {
    static const char *const atoms[] = {
        ".n", ".m", ".s", ".a", ".o", ".nul", ".t1", ".f1", ".zz", ".", "1", "0", "2.5", "\"x\"",
        "null", "true", "false", ".z", ".n.x", ".a[0]", "1e2", ".5", ".o[\"k\"]", ".long",
    };
    static const char *const ops[] = {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=",
                                      "and", "or", "//"};
    if (depth == 0 || next_rand(seed) % 4 == 0) {
        cairn_buf_puts(b, atoms[next_rand(seed) % (sizeof atoms / sizeof atoms[0])]);
        return;
    }
    bool paren = next_rand(seed) % 3 == 0;
    if (paren) cairn_buf_putc(b, '(');
    random_text(b, seed, depth - 1);
    const char *op = ops[next_rand(seed) % (sizeof ops / sizeof ops[0])];
    cairn_buf_printf(b, next_rand(seed) % 4 ? " %s " : "%s", op);
    random_text(b, seed, depth - 1);
    if (paren) cairn_buf_putc(b, ')');
}

/* A '/' that is not part of a "//". */
static bool has_division(const char *s) {
    for (size_t i = 0; s[i]; i++)
        if (s[i] == '/' && s[i + 1] != '/' && (i == 0 || s[i - 1] != '/')) return true;
    return false;
}

/* Random texts: each one the native parser accepts compiles with jq and
 * gives jq's results over every document; nearly every one jq compiles is
 * accepted (only constant folds to a NaN are not). */
TEST(expr_native_random_texts_agree_with_jq) {
    unsigned seed = 20261123;
    jv docs = diff_docs();
    int ndocs = jv_array_length(jv_copy(docs)), accepted = 0, valid = 0;
    for (int i = 0; i < 250; i++) {
        cairn_buf b = CAIRN_BUF_INIT;
        random_text(&b, &seed, 1 + i % 4);
        cairn_exprnative *e = cairn__exprnative_parse(b.data, b.len);
        jq_state *jq = jq_alone(b.data);
        if (e && jq == NULL) TEST_FAIL("`%s` is accepted but does not compile with jq", b.data);
        if (jq && e == NULL && !has_division(b.data))
            TEST_FAIL("`%s` compiles with jq but is declined", b.data);
        accepted += e != NULL;
        valid += jq != NULL;
        for (int k = 0; e && k < ndocs; k++) {
            jv doc = jv_array_get(jv_copy(docs), k), want = jq_first(jq, doc);
            jv got = cairn__exprnative_eval(e, doc);
            if (jv_is_valid(got) || jv_invalid_has_msg(jv_copy(got)))
                check_same("native", b.data, doc, got, want);
            jv_free(got);
            jv_free(want);
            jv_free(doc);
        }
        if (jq) jq_teardown(&jq);
        cairn__exprnative_free(e);
        cairn_buf_free(&b);
    }
    CHECK(accepted > 100);
    CHECK(valid - accepted < 10);
    jv_free(docs);
}

/* A set of native programs compiles nothing with jq; one whose operands
 * need jq is compiled alone, once, when first evaluated that way. */
TEST(expr_native_programs_need_no_jq_at_load) {
    const char *progs[] = {".steps.s1.output.n + 1", ".a // \"d\"", ".n * .m", ".x == 1 and .y"};
    cairn_exprset *set = compile_ok(progs, 4);
    CHECK_INT(set->nchunks, 0);
    for (int i = 0; i < set->nleaves; i++) CHECK(set->leaves[i].native != NULL);
    jv doc = jv_parse("{\"n\": 3, \"m\": 4, \"a\": false, \"x\": 1, \"y\": [],"
                      " \"steps\": {\"s1\": {\"output\": {\"n\": 41}}}}"), out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(set, 0, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 42);
    CHECK_INT(cairn_exprset_eval(set, 1, doc, &out, &e), 0);
    CHECK_STR(jv_string_value(out), "d");
    jv_free(out);
    CHECK_INT(cairn_exprset_eval(set, 2, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 12);
    CHECK_INT(cairn_exprset_eval(set, 3, doc, &out, &e), 0);
    CHECK(jv_get_kind(out) == JV_KIND_TRUE);
    CHECK_INT(set->nchunks, 0);
    CHECK_INT(jv_get_refcnt(doc), 1);
    /* string * number is left to jq: compiled now, once */
    jv doc2 = jv_parse("{\"n\": \"ab\", \"m\": 2}");
    for (int round = 0; round < 2; round++) {
        CHECK_INT(cairn_exprset_eval(set, 2, doc2, &out, &e), 0);
        CHECK_STR(jv_string_value(out), "abab");
        jv_free(out);
        CHECK_INT(set->nchunks, 1);
        CHECK_INT(jv_get_refcnt(doc2), 1);
    }
    /* native again for other operands, and errors keep their place */
    CHECK_INT(cairn_exprset_eval(set, 2, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 12);
    jv_free(doc2);
    doc2 = jv_parse("{\"n\": null, \"m\": 2}");
    CHECK_INT(cairn_exprset_eval(set, 2, doc2, &out, &e), CAIRN_EEXPR);
    CHECK_STR(e.msg, "null (null) and number (2) cannot be multiplied");
    CHECK_STR(e.file, "w.yaml");
    CHECK_INT(e.line, 3);
    jv_free(doc2);
    jv_free(doc);
    cairn_exprset_free(set);
}

/* Past CAIRN_EXPR_NATIVE_DEPTH nested levels or CAIRN_EXPR_NATIVE_NODES
 * nodes a text is declined by the native parser and jq computes it: the
 * limits bound recursion, never the result. */
TEST(expr_native_limits_hand_the_text_to_jq) {
    cairn_buf deep = CAIRN_BUF_INIT, wide = CAIRN_BUF_INIT;
    for (int i = 0; i < 100; i++) cairn_buf_puts(&deep, "(");
    cairn_buf_puts(&deep, ".n + 1");
    for (int i = 0; i < 100; i++) cairn_buf_puts(&deep, ")");
    cairn_buf_puts(&wide, ".n");
    for (int i = 0; i < 300; i++) cairn_buf_puts(&wide, " + .n");
    char *deep_s = cairn_buf_detach(&deep), *wide_s = cairn_buf_detach(&wide);
    CHECK(cairn__exprnative_parse(deep_s, strlen(deep_s)) == NULL);
    CHECK(cairn__exprnative_parse(wide_s, strlen(wide_s)) == NULL);
    const char *just_inside = "((((.n + 1))))";
    cairn_exprnative *ok = cairn__exprnative_parse(just_inside, strlen(just_inside));
    CHECK(ok != NULL);
    cairn__exprnative_free(ok);
    CHECK_EVAL(deep_s, "{\"n\": 1}", "2");
    CHECK_EVAL(wide_s, "{\"n\": 1}", "301");
    free(deep_s);
    free(wide_s);
}

/* Whether the native evaluator answered prog over doc itself (false: it
 * handed the text to jq, whose watchdog bounds time and memory). */
static bool native_answers(const char *prog, jv doc /* borrowed */) {
    cairn_exprnative *e = cairn__exprnative_parse(prog, strlen(prog));
    if (e == NULL) TEST_FAIL("%s: not in the native subset", prog);
    jv a, b;
    bool done = cairn__exprnative_run(e, doc, &a, &b);
    jv_free(a);
    jv_free(b);
    cairn__exprnative_free(e);
    return done;
}

/* A payload that would make the native evaluator work past its bounds (the
 * values it yields, the parts it walks, the bytes it concatenates) is handed
 * to jq, which runs under the watchdog; the same text over a small payload
 * is answered natively. */
TEST(expr_native_hands_a_hostile_payload_to_jq) {
    jv big = jv_array(), small = jv_array();
    for (int i = 0; i < 200000; i++) big = jv_array_append(big, jv_number(i));
    for (int i = 0; i < 10; i++) small = jv_array_append(small, jv_number(i));
    jv str = jv_string_fmt("%0*d", 700000, 0);
    jv dbig = jv_object_set(jv_object(), jv_string("a"), big);
    jv dsmall = jv_object_set(jv_object(), jv_string("a"), small);
    jv dstr = jv_object_set(jv_object(), jv_string("s"), str);
    CHECK(native_answers("[.a[] | . + 1] | length", dsmall));
    CHECK(!native_answers("[.a[] | . + 1] | length", dbig));     /* work */
    CHECK(native_answers(".a | sort | length", dsmall));
    CHECK(!native_answers(".a | sort | length", dbig));          /* walk */
    CHECK(native_answers(".s | length", dstr));
    CHECK(!native_answers(".s + .s", dstr));                    /* concat */
    jv_free(dbig);
    jv_free(dsmall);
    jv_free(dstr);
}

/* ---- paths read from the document's root ------------------------------------- */

static void join_ref(void *ctx, const char *name, size_t len) {
    cairn_buf *b = ctx;
    cairn_buf_printf(b, "%s%.*s", b->len ? " " : "", (int)len, name);
}

/* The names prog reads as .steps.NAME, space-separated ("" for none). */
static char *step_refs(const char *prog) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_exprset_add(set, prog, "w.yaml", 1, 1);
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_exprset_refs(set, 0, "steps", join_ref, &b);
    cairn_exprset_free(set);
    char *s = cairn_strdup(b.data ? b.data : "");
    cairn_buf_free(&b);
    return s;
}

#define CHECK_REFS(prog, want)                 \
    do {                                       \
        char *got_ = step_refs(prog);          \
        if (strcmp(got_, want) != 0)           \
            TEST_FAIL("`%s`: found '%s', want '%s'", prog, got_, want); \
        free(got_);                            \
    } while (0)

TEST(expr_refs_found_where_rooted_at_the_document) {
    CHECK_REFS(".steps.a.output", "a");
    CHECK_REFS(".steps.a.status == \"ok\" and .steps.b.x > 1", "a b");
    CHECK_REFS(".steps[\"a-b\"].output // .steps.\"c\"", "a-b c");
    CHECK_REFS(".steps .a", "a");
    CHECK_REFS("(.steps.a.x + 1) * -.steps.b.y", "a b");
    CHECK_REFS("[.steps.a, {k: .steps.b, (.steps.c.k): 1}]", "a b c");
    CHECK_REFS("if .steps.a.x then .steps.b elif .x then 1 else .steps.c end", "a b c");
    CHECK_REFS("\"n=\\(.steps.a.output.n)\"", "a");
    CHECK_REFS(".x[.steps.a.k]", "a");
    CHECK_REFS(".x != 1 or .steps.a.y <= 2", "a");
    CHECK_REFS("{length: 1, b: .steps.a}", "a");
    CHECK_REFS(".steps.a.x as $v | $v", "a");
    CHECK_REFS("\"x\" # .steps.z\n+ .steps.a.y", "a");
}

/* A path after anything that may change `.` is not reported: a false
 * error is worse than a missed one. */
TEST(expr_refs_not_found_where_dot_may_be_another_value) {
    CHECK_REFS(".x | .steps.a", "");
    CHECK_REFS(".x.steps.a", "");
    CHECK_REFS("$v.steps.a", "");
    CHECK_REFS("map(.steps.a)", "");
    CHECK_REFS("length > 0 and .steps.a", "");
    CHECK_REFS("reduce .[] as $x (0; .steps.a)", "");
    CHECK_REFS("def f: .steps.a; f", "");
    CHECK_REFS("try .x catch .steps.a", "");
    CHECK_REFS(".a |= .steps.b", "");
    CHECK_REFS(".a = .steps.b", "");
    CHECK_REFS(".. | .steps.a", "");
    CHECK_REFS("@sh \"\\(.steps.a)\"", "");
    CHECK_REFS("[.[] | .steps.a]", "");
    CHECK_REFS("{a: .x | .steps.b}", "");
    CHECK_REFS("\".steps.a\"", "");
    CHECK_REFS(".steps[\"a\\u0062\"]", "");
    CHECK_REFS(".steps[.k]", "");
    CHECK_REFS(".steps", "");
    CHECK_REFS(".steps.a | (", "");
}
