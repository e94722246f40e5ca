/*
 * test_expr.c - expressions and templates (dsl/expr.h).
 */
#include "test.h"

#include <jv.h>
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
static char *render_str(const char *s, cairn_splice_mode mode, const char *doc, cairn_err *err) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string(s, 3, 9, set, mode, "w.yaml", &d);
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

#define CHECK_RENDER(s, mode, doc, want)                                     \
    do {                                                                     \
        cairn_err e_;                                                        \
        char *got_ = render_str(s, mode, doc, &e_);                          \
        if (got_ == NULL) TEST_FAIL("%s: %s", s, e_.msg);                    \
        CHECK_STR(got_, want);                                               \
        free(got_);                                                          \
    } while (0)

static const char *DOC = "{\"port\": 8080, \"name\": \"web\", \"obj\": {\"a\": [1, true]}, "
                         "\"flag\": true, \"off\": false, \"nothing\": null}";

/* ---- values --------------------------------------------------------------------- */

TEST(expr_whole_string_keeps_json_type) {
    CHECK_RENDER("${{ .port }}", CAIRN_SPLICE_TEXT, DOC, "8080");
    CHECK_RENDER("${{.obj}}", CAIRN_SPLICE_TEXT, DOC, "{\"a\":[1,true]}");
    CHECK_RENDER("${{ .flag }}", CAIRN_SPLICE_TEXT, DOC, "true");
    CHECK_RENDER("${{ .nothing }}", CAIRN_SPLICE_TEXT, DOC, "null");
    CHECK_RENDER("${{ .name }}", CAIRN_SPLICE_TEXT, DOC, "\"web\"");
}

TEST(expr_splices_strings_raw_and_other_values_as_json) {
    CHECK_RENDER("http://${{ .name }}:${{ .port }}/x", CAIRN_SPLICE_TEXT, DOC,
                 "\"http://web:8080/x\"");
    CHECK_RENDER("obj=${{ .obj }} flag=${{ .flag }} none=${{ .nothing }}", CAIRN_SPLICE_TEXT, DOC,
                 "\"obj={\\\"a\\\":[1,true]} flag=true none=null\"");
    /* Text around one expression makes it a splice, even blanks. */
    CHECK_RENDER(" ${{ .port }}", CAIRN_SPLICE_TEXT, DOC, "\" 8080\"");
    /* `$` without `{{` is literal text. */
    CHECK_RENDER("cost $5 ${x} $ {{y}} ${{ .port }}$", CAIRN_SPLICE_TEXT, DOC,
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
    CHECK(render_str("x=${{ .a.b }}", CAIRN_SPLICE_TEXT, "{\"a\": 5}", &e) == NULL);
    CHECK_INT(e.code, CAIRN_EEXPR);
    CHECK_STR(e.msg, "expression at w.yaml:3:11: Cannot index number with string \"b\"");
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
    const char *progs[] = {".a", "empty", "[.a, .a]", ".a.b", "1, 2", ". as $d | 1, 2, $d",
                           ".a, error(.)"};
    cairn_exprset *set = compile_ok(progs, 7);
    jv doc = jv_parse("{\"a\": 5}");
    for (int i = 0; i < 7; i++) {
        jv out;
        cairn_err e;
        int rc = cairn_exprset_eval(set, i, doc, &out, &e);
        CHECK_INT(rc, i >= 3 ? CAIRN_EEXPR : 0);
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

TEST(expr_bad_programs_among_many_all_found) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < 600; i++) {
        char *p = i % 97 == 5 ? cairn_sprintf(".v%d |||", i)
                : i % 89 == 7 ? cairn_sprintf("undefined_%d", i)
                              : cairn_sprintf(".v%d", i);
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
    int n = (int)(sizeof cases / sizeof cases[0]);
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) cairn_exprset_add(set, cases[i].prog, "w.yaml", i + 1, 1);
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), CAIRN_ESYNTAX);
    CHECK_INT(d.count, n);
    for (int i = 0; i < n; i++) {
        CHECK_INT(d.items[i].line, i + 1);
        CHECK_CONTAINS(d.items[i].msg, cases[i].msg);
    }
    cairn_diags_free(&d);
    cairn_exprset_free(set);

    /* A comment runs to the end of the program only; a program's own defs
     * stay its own, even one named like a shadowed builtin. */
    const char *progs[] = {".a # a comment )\"", "def now: 5; now", "now", "\"#\\\")\" + .b"};
    set = compile_ok(progs, 4);
    jv doc = jv_parse("{\"a\": 1, \"b\": \"x\"}"), out;
    cairn_err e;
    CHECK_INT(cairn_exprset_eval(set, 0, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 1);
    CHECK_INT(cairn_exprset_eval(set, 1, doc, &out, &e), 0);
    CHECK(jv_number_value(out) == 5);
    CHECK_INT(cairn_exprset_eval(set, 2, doc, &out, &e), CAIRN_EEXPR);
    CHECK_CONTAINS(e.msg, "now is not available");
    CHECK_INT(cairn_exprset_eval(set, 3, doc, &out, &e), 0);
    CHECK_STR(jv_string_value(out), "#\")x");
    jv_free(out);
    jv_free(doc);
    cairn_exprset_free(set);
}

TEST(expr_clock_environment_and_input_are_shadowed) {
    const char *names[] = {"now", "input", "inputs", "env", "env.HOME", "localtime",
                           "strflocaltime(\"%H\")", "input_filename", "debug", "stderr",
                           "halt", "halt_error", "halt_error(1)", "get_search_list",
                           "input_line_number", "[limit(3; repeat(now))]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cairn_err e;
        char *got = eval_json(names[i], "{}", &e);
        if (got) TEST_FAIL("%s gave %s", names[i], got);
        CHECK_INT(e.code, CAIRN_EEXPR);
        CHECK_CONTAINS(e.msg, "is not available in expressions");
    }
    /* Pure time functions stay. */
    CHECK_EVAL("0 | todate", "{}", "\"1970-01-01T00:00:00Z\"");
    CHECK_EVAL("\"2015-03-05T23:51:47Z\" | fromdate", "{}", "1425599507");
    CHECK_EVAL("$__loc__.file", "{}", "\"<top-level>\"");
    CHECK_EVAL("\"$ENV\"", "{}", "\"$ENV\"");
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
    const char *ok[] = {".a"};
    cairn_exprset_free(compile_ok(ok, 1));
    char *rc = cairn_sprintf("%s/.jq", home);
    FILE *f = fopen(rc, "w");
    CHECK(f != NULL);
    fputs("def foo: 42;\n", f);
    fclose(f);
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

static void check_many(int n) {
    cairn_exprset *set = cairn_exprset_new();
    for (int i = 0; i < n; i++) {
        /* Every fifth text repeats an earlier one: shared, still right. */
        int v = i % 5 == 4 ? i - 1 : i;
        char *p = cairn_sprintf(".steps.s%d.output.v * 1000 + %d", v % 50, v);
        CHECK_INT(cairn_exprset_add(set, p, "w.yaml", i + 1, 7), i);
        free(p);
    }
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    CHECK_INT(d.count, 0);
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

TEST(expr_thousand_programs_in_one_set) { check_many(1000); }

/* More distinct programs than one jq program holds: several chunks. */
TEST(expr_programs_past_one_chunk) { check_many(CAIRN_EXPR_CHUNK_MAX * 2 + 300); }

/* ---- templates ------------------------------------------------------------------------ */

TEST(expr_shell_mode_quotes_spliced_values) {
    CHECK_RENDER("echo ${{ .x }}", CAIRN_SPLICE_SHELL, "{\"x\": \"; rm -rf /\"}",
                 "\"echo '; rm -rf /'\"");
    CHECK_RENDER("echo ${{ .x }}", CAIRN_SPLICE_SHELL, "{\"x\": \"it's\"}",
                 "\"echo 'it'\\\"'\\\"'s'\"");
    CHECK_RENDER("echo ${{ .n }} ${{ .e }}", CAIRN_SPLICE_SHELL, "{\"n\": 5, \"e\": \"\"}",
                 "\"echo '5' ''\"");
    /* The author's whole script is not quoted. */
    CHECK_RENDER("${{ .script }}", CAIRN_SPLICE_SHELL, "{\"script\": \"echo a; echo b\"}",
                 "\"echo a; echo b\"");
    char *q = cairn_shell_quote("a'b", 3);
    CHECK_STR(q, "'a'\"'\"'b'");
    free(q);
}

/* The real shell reads a hostile value back as the same bytes, and runs
 * nothing of it. */
TEST(expr_shell_quoting_holds_against_sh) {
    const char *hostile =
        "x'; touch pwned; echo '$(touch pwned2) `touch pwned3` \\ \" \n ${HOME} *";
    jv doc = JV_OBJECT(jv_string("v"), jv_string(hostile));
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string("cd ${{ .dir }} && printf %s ${{ .v }}", 1, 1, set,
                                           CAIRN_SPLICE_SHELL, "w.yaml", &d);
    CHECK_INT(cairn_exprset_compile(set, &d), 0);
    doc = jv_object_set(doc, jv_string("dir"), jv_string(test_tmpdir()));
    jv out;
    cairn_err e;
    CHECK_INT(cairn_tmpl_render(t, set, doc, &out, &e), 0);
    char *quoted = cairn_shell_quote(jv_string_value(out),
                                     (size_t)jv_string_length_bytes(jv_copy(out)));
    char *cmd = cairn_sprintf("sh -c %s", quoted);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char got[512] = "";
    size_t n = fread(got, 1, sizeof got - 1, p);
    got[n] = '\0';
    CHECK_INT(pclose(p), 0);
    CHECK_STR(got, hostile);
    for (int i = 1; i <= 3; i++) {
        char *pwned = cairn_sprintf("%s/pwned%.0d", test_tmpdir(), i == 1 ? 0 : i);
        CHECK(access(pwned, F_OK) != 0);
        free(pwned);
    }
    free(quoted);
    free(cmd);
    jv_free(out);
    jv_free(doc);
    cairn_tmpl_free(t);
    cairn_exprset_free(set);
    cairn_diags_free(&d);
}

TEST(expr_close_braces_inside_jq_strings) {
    CHECK_RENDER("${{ \"}}\" }}", CAIRN_SPLICE_TEXT, "{}", "\"}}\"");
    CHECK_RENDER("<${{ \"a\\\"}}\" + .x }}>", CAIRN_SPLICE_TEXT, "{\"x\": \"b\"}",
                 "\"<a\\\"}}b>\"");
    CHECK_RENDER("${{ \"\\(\"}}\")}}\" }}", CAIRN_SPLICE_TEXT, "{}", "\"}}}}\"");
    CHECK_RENDER("${{ {a: {b: 1} } | .a.b }}", CAIRN_SPLICE_TEXT, "{}", "1");
}

TEST(expr_unterminated_expression_is_reported_at_its_column) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_from_string("ab ${{ .x } }", 3, 5, set, CAIRN_SPLICE_TEXT,
                                           "w.yaml", &d);
    CHECK_INT(d.count, 1);
    CHECK_INT(d.items[0].line, 3);
    CHECK_INT(d.items[0].col, 8);
    CHECK_CONTAINS(d.items[0].msg, "unterminated expression");
    CHECK_INT(cairn_exprset_count(set), 0);
    cairn_tmpl_free(t);
    /* On several lines, the string's own position. */
    t = cairn_tmpl_from_string("a\n${{ \"}}", 4, 2, set, CAIRN_SPLICE_TEXT, "w.yaml", &d);
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
    cairn_tmpl *t = cairn_tmpl_new(root, set, CAIRN_SPLICE_TEXT, "w.yaml", &d);
    CHECK(!cairn_tmpl_is_const(t));
    CHECK(jv_get_kind(cairn_tmpl_const_value(t)) == JV_KIND_INVALID);
    CHECK_INT(cairn_exprset_count(set), 3);
    /* Positions: the quoted url's expression starts 8 bytes after its quote. */
    const char *file;
    int line, col;
    cairn__exprset_pos(set, 0, &file, &line, &col);
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
    t = cairn_tmpl_new(root, set, CAIRN_SPLICE_TEXT, "w.yaml", &d);
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
    t = cairn_tmpl_new(fixed, set, CAIRN_SPLICE_TEXT, "w.yaml", &d);
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

TEST(expr_template_error_names_position) {
    cairn_node *n = scalar("a ${{ .x.y }} b", false, 7, 4);
    cairn_exprset *set = cairn_exprset_new();
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_tmpl *t = cairn_tmpl_new(n, set, CAIRN_SPLICE_TEXT, "w.yaml", &d);
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
