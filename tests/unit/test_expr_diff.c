/*
 * The native subset of jq (dsl/expr_native.c, dsl/expr_nateval.c) against
 * libjq itself, over generated texts and documents: every text the
 * generator makes is valid jq, and wherever the native parser accepts it,
 * its first two results (values with their key order and number
 * formatting, errors with jq's message, or nothing) must be libjq's.  jq
 * compiles the texts in batches (one jq_compile costs ~20 ms), each text a
 * branch of one if, over the input [doc, index], and runs them in a child
 * process (see jq_results).
 */
#include <jq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mem.h"
#include "dsl/expr_int.h"
#include "test.h"

#define DIFF_TEXTS 5000
#define DIFF_BATCH 60

static unsigned rnd(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

#define PICK(seed, arr) (arr)[rnd(seed) % (sizeof(arr) / sizeof((arr)[0]))]

static bool gen_exp(cairn_buf *b, unsigned *seed, int depth);

/* open, an expression, close. */
static void enclose(cairn_buf *b, unsigned *seed, int depth, const char *open, const char *close) {
    cairn_buf_puts(b, open);
    gen_exp(b, seed, depth);
    cairn_buf_puts(b, close);
}

/* A term: what may take a postfix or be an object's value. */
static void gen_term(cairn_buf *b, unsigned *seed, int depth) {
    static const char *const atoms[] = {
        ".", ".n", ".m", ".s", ".t", ".a", ".o", ".nul", ".t1", ".f1", ".z", ".ss", ".mix",
        ".a[0]", ".o.k", ".[0]", ".o[\"k\"]", ".missing", "1", "0", "2.5", "\"x\"", "\"a,b\"",
        "\"\"", "null", "true", "false", "[]", "{}", "\"k\"", "3", ".a.k",
    };
    static const char *const fns0[] = {
        "length", "keys", "not", "tostring", "tojson", "tonumber", "type", "ascii_downcase",
        "ascii_upcase", "first", "last", "sort", "unique", "add", "any", "all", "empty", "values",
    };
    static const char *const fns1[] = {"has", "startswith", "endswith", "ltrimstr", "rtrimstr",
                                       "split", "contains", "join", "select", "map"};
    unsigned r = depth <= 0 ? rnd(seed) % 3 : rnd(seed) % 12;
    switch (r) {
    case 0: case 1: cairn_buf_puts(b, PICK(seed, atoms)); break;
    case 2: cairn_buf_puts(b, PICK(seed, fns0)); break;
    case 3: case 4:
        cairn_buf_puts(b, PICK(seed, fns1));
        enclose(b, seed, depth - 1, "(", ")");
        break;
    case 5: enclose(b, seed, depth - 1, "(", ")"); break;
    case 6: enclose(b, seed, depth - 1, "[", "]"); break;
    case 7: {
        static const char *const keys[] = {"a", "k", "\"s p\"", "n"};
        int n = (int)(rnd(seed) % 3);
        cairn_buf_putc(b, '{');
        for (int i = 0; i < n; i++) {
            if (i) cairn_buf_puts(b, ", ");
            unsigned kind = rnd(seed) % 4;
            if (kind == 0) {
                cairn_buf_puts(b, PICK(seed, keys));
                cairn_buf_puts(b, ": ");
                gen_term(b, seed, depth - 1);
            } else if (kind == 1) {
                cairn_buf_puts(b, rnd(seed) % 2 ? "n" : "s");        /* {n}: {n: .n} */
            } else if (kind == 2) {              /* not a constant: jq refuses most */
                static const char *const computed[] = {"(.k)", "(.s)", "(.n)", "(.mix[0])",
                                                       "(\"k\", .s)", "(.t | tostring)"};
                cairn_buf_puts(b, PICK(seed, computed));
                cairn_buf_puts(b, ": ");
                gen_term(b, seed, depth - 1);
            } else {
                cairn_buf_puts(b, "\"k\\(.n)\": ");
                gen_term(b, seed, depth - 1);
                cairn_buf_puts(b, " | ");
                gen_term(b, seed, depth - 1);
            }
        }
        cairn_buf_putc(b, '}');
        break;
    }
    case 8: enclose(b, seed, depth - 1, "\"<\\(", rnd(seed) % 2 ? ")>\"" : ")-\\(.s)\""); break;
    case 9:                                   /* postfix on a term */
        gen_term(b, seed, depth - 1);
        cairn_buf_puts(b, rnd(seed) % 2 ? "[]" : "[\"k\"]");      /* `1.k` is not jq */
        break;
    case 10:
        gen_term(b, seed, depth - 1);
        enclose(b, seed, depth - 1, "[", "]");
        break;
    default:
        cairn_buf_puts(b, PICK(seed, ((const char *const[]){".[]", ".a[]", ".o[]", ".mix[]",
                                                            ".ss[]", ".a[-1]", ".[\"n\"]"})));
    }
}

/* Put b's text from at on in parentheses; false (it holds no comparison
 * outside them now). */
static bool wrap(cairn_buf *b, size_t at) {
    cairn_buf_putc(b, ' ');
    memmove(b->data + at + 1, b->data + at, b->len - at - 1);
    b->data[at] = '(';
    cairn_buf_putc(b, ')');
    return false;
}

/* An expression: terms joined by operators, if, unary minus.  Returns
 * whether it ends in a comparison outside brackets, which another
 * comparison may not follow (they do not associate). */
static bool gen_exp(cairn_buf *b, unsigned *seed, int depth) {
    static const char *const ops[] = {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=",
                                      "and", "or", "//", ",", "|"};
    unsigned r = depth <= 0 ? 0 : rnd(seed) % 8;
    if (r <= 2) {
        gen_term(b, seed, depth);
        return false;
    }
    if (r <= 5) {
        const char *op = PICK(seed, ops);
        bool cmp = strchr("=!<>", op[0]) != NULL, word = op[0] == 'a' || op[0] == 'o';
        bool tight = cmp || strchr("+-*/%", op[0]) != NULL;    /* binds a comparison */
        size_t at = b->len;
        bool left = gen_exp(b, seed, depth - 1);
        if (left && tight) left = wrap(b, at);     /* (a < b) < c, (a < b) + c */
        cairn_buf_printf(b, word || rnd(seed) % 4 ? " %s " : "%s", op);
        at = b->len;
        bool right = gen_exp(b, seed, depth - 1);
        if (right && tight) right = wrap(b, at);
        return cmp || left || right;
    }
    if (r == 6) {
        cairn_buf_puts(b, "if ");
        gen_exp(b, seed, depth - 1);
        cairn_buf_puts(b, " then ");
        gen_exp(b, seed, depth - 1);
        if (rnd(seed) % 2) {
            cairn_buf_puts(b, " elif ");
            gen_exp(b, seed, depth - 1);
            cairn_buf_puts(b, " then ");
            gen_exp(b, seed, depth - 1);
        }
        cairn_buf_puts(b, " else ");
        gen_exp(b, seed, depth - 1);
        cairn_buf_puts(b, " end");
        return false;
    }
    cairn_buf_puts(b, "-");
    gen_term(b, seed, depth - 1);
    return false;
}

/* Documents of every kind: numbers, strings, arrays of strings and of
 * mixed values, objects, null, and numbers JSON cannot carry. */
static jv diff_docs(void) {
    jv docs = jv_parse(
        "[{\"n\": 5, \"m\": 2, \"z\": 0, \"s\": \"abc,d\", \"t\": \"Ab,\", \"a\": [1, 2, 3],"
        "  \"o\": {\"k\": 1, \"b\": [2]}, \"t1\": true, \"f1\": false, \"nul\": null,"
        "  \"ss\": [\"x\", \"a,b\", \"\", \"{z}\", \"1.5\", \"[1]\", \"ab\", \"b`a\"], \"mix\": [null, true, 1.5, \"q\", [1], {\"k\": 2}]},"
        " {}, null, [10, \"20\", null], \"a,b\", 7.25, true,"
        " {\"n\": \"5\", \"m\": null, \"s\": 7, \"a\": {\"x\": 1}, \"o\": [1], \"t1\": 0,"
        "  \"ss\": {\"b\": \"B\", \"a\": \"A\"}, \"mix\": \"k\", \"k\": \"n\", \"t\": \"\"},"
        " {\"n\": -3.5, \"m\": 1e300, \"s\": \"\", \"a\": [], \"o\": {}, \"z\": -0.0, \"t\": \"\\u00e9X\","
        "  \"ss\": [\"b\", \"a\", \"b\"], \"mix\": [[2], [1], {\"a\": 1}, {\"a\": 0}]}]");
    jv odd = JV_OBJECT(jv_string("n"), jv_number(NAN), jv_string("m"), jv_number(INFINITY),
                       jv_string("a"), JV_ARRAY(jv_number(NAN), jv_number(-INFINITY)));
    return jv_array_append(docs, odd);
}

/* Append a result to b: its kind and JSON in its own key order, "error:
 * <msg>", or "none"; then a separator.  v borrowed. */
static void describe(cairn_buf *b, jv v) {
    jv text = jv_is_valid(v) ? jv_dump_string(jv_copy(v), 0) : jv_invalid_get_msg(jv_copy(v));
    if (jv_is_valid(v))
        cairn_buf_printf(b, "%s %s", jv_kind_name(jv_get_kind(v)), jv_string_value(text));
    else if (jv_get_kind(text) == JV_KIND_STRING)
        cairn_buf_printf(b, "error: %s", jv_string_value(text));
    else
        cairn_buf_puts(b, "none");
    cairn_buf_puts(b, " | ");
    jv_free(text);
}

static void drop_msg(void *data, jv msg) {
    (void)data;
    jv_free(msg);
}

/* texts[from, to) as one jq program over [doc, index]; NULL when it does
 * not compile (some text is not valid jq). */
static jq_state *compile_batch(char **texts, int from, int to) {
    cairn_buf p = CAIRN_BUF_INIT;
    cairn_buf_puts(&p, ". as [$d, $i] | $d | ");
    for (int i = from; i < to; i++)
        cairn_buf_printf(&p, "%s $i == %d then (\n%s\n)", i == from ? "if" : " elif", i, texts[i]);
    cairn_buf_puts(&p, " else error(\"no text\") end");
    jq_state *jq = jq_init();
    jq_set_error_cb(jq, drop_msg, NULL);
    if (!jq_compile(jq, p.data)) jq_teardown(&jq);
    cairn_buf_free(&p);
    return jq;
}

/* The generator may make a text jq refuses (`1 < 2 < 3` is kept out, a
 * constant key that is not a string is not): the native parser must
 * decline each, and each is replaced by null.  Returns how many. */
static int drop_invalid(char **texts, int from, int to) {
    int n = 0;
    for (int i = from; i < to; i++) {
        jq_state *one = compile_batch(texts, i, i + 1);
        if (one) {
            jq_teardown(&one);
            continue;
        }
        cairn_exprnative *e = cairn__exprnative_parse(texts[i], strlen(texts[i]));
        if (e) TEST_FAIL("`%s` is parsed natively but does not compile with jq", texts[i]);
        free(texts[i]);
        texts[i] = cairn_strdup("null");
        n++;
    }
    return n;
}

/* The first two results of text i over doc as describe() puts them, or
 * "deferred" when the native evaluator leaves the text to jq. */
static char *native_results(const cairn_exprnative *e, jv doc) {
    jv g1, g2;
    if (!cairn__exprnative_run(e, doc, &g1, &g2)) return cairn_strdup("deferred");
    cairn_buf b = CAIRN_BUF_INIT;
    describe(&b, g1);
    describe(&b, g2);
    jv_free(g1);
    jv_free(g2);
    return cairn_buf_detach(&b);
}

/* libjq's, for every text of the batch over every document, one line each
 * ("deferred" where the native evaluator defers: libjq 1.6 itself dies of
 * SIGFPE on `nan % -1`, which it defers).  libjq 1.6 leaks in some builtins
 * (tonumber, ltrimstr of a non-string...), so it runs in a child that ends
 * without the leak check; the native side runs in this process, checked. */
static FILE *jq_results(jq_state *jq, char **texts, int from, int to, jv docs) {
    int fd[2];
    if (pipe(fd) != 0) return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        FILE *out = fdopen(fd[1], "w");
        for (int i = from; i < to; i++) {
            cairn_exprnative *e = cairn__exprnative_parse(texts[i], strlen(texts[i]));
            for (int k = 0; e && k < jv_array_length(jv_copy(docs)); k++) {
                jv doc = jv_array_get(jv_copy(docs), k);
                char *mine = native_results(e, doc);
                cairn_buf b = CAIRN_BUF_INIT;
                if (strcmp(mine, "deferred") == 0) {
                    cairn_buf_puts(&b, mine);
                } else {
                    jq_start(jq, JV_ARRAY(jv_copy(doc), jv_number(i)), 0);
                    jv w1 = jq_next(jq), w2 = jv_is_valid(w1) ? jq_next(jq) : jv_invalid();
                    describe(&b, w1);
                    describe(&b, w2);
                }
                for (size_t j = 0; j < b.len; j++)      /* one line each */
                    if (b.data[j] == '\n') b.data[j] = ' ';
                fprintf(out, "%s\n", b.data);
            }
        }
        fflush(out);
        _exit(0);
    }
    close(fd[1]);
    return pid > 0 ? fdopen(fd[0], "r") : NULL;
}

/* Compare one text's native results over every document with the lines
 * libjq's child wrote; counts what was compared.  False when they differ. */
static bool same_results(FILE *want, const cairn_exprnative *e, const char *text, jv docs,
                         int *compared) {
    bool same = true;
    for (int k = 0; k < jv_array_length(jv_copy(docs)); k++) {
        jv doc = jv_array_get(jv_copy(docs), k);
        char *got = native_results(e, doc), line[65536];
        for (size_t j = 0; got[j]; j++)
            if (got[j] == '\n') got[j] = ' ';
        if (fgets(line, sizeof line, want) == NULL) line[0] = '\0';
        line[strcspn(line, "\n")] = '\0';
        if (same && strcmp(got, line) != 0) {
            jv d = jv_dump_string(jv_copy(doc), 0);
            TEST_FAIL("`%s` over %s:\n    native: %s\n    libjq:  %s", text, jv_string_value(d),
                      got, line);
            same = false;
        }
        *compared += strcmp(got, "deferred") != 0;
        free(got);
        jv_free(doc);
    }
    return same;
}

/* What comparing n texts found. */
typedef struct diff_counts {
    int accepted, invalid, compared, failed;
} diff_counts;

/* Compare each of texts[0, n) natively and by libjq over every document,
 * in batches; stops after a few differences. */
static void compare_texts(char **texts, int n, diff_counts *c) {
    jv docs = diff_docs();
    for (int from = 0; from < n && c->failed < 5; from += DIFF_BATCH) {
        int to = from + DIFF_BATCH < n ? from + DIFF_BATCH : n;
        jq_state *jq = compile_batch(texts, from, to);
        if (jq == NULL) {
            c->invalid += drop_invalid(texts, from, to);
            jq = compile_batch(texts, from, to);
        }
        if (jq == NULL) TEST_FAIL("texts %d to %d do not compile with jq", from, to - 1);
        FILE *want = jq_results(jq, texts, from, to, docs);
        if (want == NULL) TEST_FAIL("cannot run libjq in a child");
        for (int i = from; i < to && c->failed < 5; i++) {
            cairn_exprnative *e = cairn__exprnative_parse(texts[i], strlen(texts[i]));
            c->accepted += e != NULL;
            if (e) c->failed += !same_results(want, e, texts[i], docs, &c->compared);
            cairn__exprnative_free(e);
        }
        fclose(want);
        while (wait(NULL) > 0) continue;
        jq_teardown(&jq);
    }
    jv_free(docs);
}

/* Generated texts, each valid jq: most are parsed natively, and every one
 * that is gives libjq's results over every document. */
TEST(expr_diff_generated_texts_agree_with_libjq) {
    unsigned seed = 20261207;
    char **texts = cairn_calloc(DIFF_TEXTS, sizeof *texts);
    for (int i = 0; i < DIFF_TEXTS; i++) {
        cairn_buf b = CAIRN_BUF_INIT;
        if (i % 3 == 0) enclose(&b, &seed, 1 + i % 4, "[", "]");   /* every value compared */
        else gen_exp(&b, &seed, 1 + i % 4);
        texts[i] = cairn_buf_detach(&b);
    }
    diff_counts c = {0};
    compare_texts(texts, DIFF_TEXTS, &c);
    /* the test is not vacuous: nearly every text, and most evaluations */
    CHECK(c.invalid < DIFF_TEXTS / 10);
    CHECK(c.accepted > (DIFF_TEXTS - c.invalid) * 9 / 10);
    CHECK(c.compared > c.accepted * 10 * 9 / 10);
    for (int i = 0; i < DIFF_TEXTS; i++) free(texts[i]);
    free(texts);
}

/* The shapes runbooks use, each builtin over the values that decide its
 * edges (false, "", strings that are JSON, braces, mixed kinds): all native. */
TEST(expr_diff_common_shapes_agree_with_libjq) {
    static const char *const shapes[] = {
        ".mix[] | values", ".[] | values", ".mix[] | type", ".[] | type", ".ss[] | tonumber",
        ".mix[] | tonumber", ".s | tonumber", ".ss[] | ascii_upcase", ".ss[] | ascii_downcase",
        ".t | ascii_upcase", ".t | ascii_downcase", ".ss[] | endswith(\"b\")",
        ".ss[] | startswith(\"a\")", ".s | endswith(\"d\")", ".s | endswith(\"ab\")",
        ".ss[] | ltrimstr(\"a\")", ".ss[] | rtrimstr(\"b\")", ".s | ltrimstr(\"abc\")",
        ".s | rtrimstr(\",d\")", ".ss[] | split(\",\")", ".s | split(\",\")", ".t | split(\"\")",
        ".ss | unique", ".mix | unique", ".a | unique", "[.[]] | unique", ".ss | sort", ".mix | sort",
        ".ss | join(\"-\")", ".mix | join(\",\")", ".a | join(\", \")", ".ss | map(length)",
        ".mix | map(select(. != null))", ".mix[] | tojson", ".mix[] | tostring", ".ss | any",
        ".mix | all", ".a | add", ".ss | add", ".mix | add", ".o | keys", ".ss | keys",
        ".o | has(\"k\")", ".a | has(1)", ".o | contains({k: 1})", ".s | contains(\"c,\")",
        "\"\\(.n) of \\(.s)\"", "{n, s, k: .o.k}", "[.a[] | . * 2]", ".a | first, last",
        ".nul | length", ".mix[] | length", "-.n", "if .t1 then .s elif .f1 then .n else .m end",
        ".n // \"d\"", ".f1 // \"d\"", ".mix[] // \"d\"", ".ss[] | not", "1 // 2, 3",
        ".ss | map(select(length > 0)) | join(\",\")",
        ".ss[3] | tonumber", ".ss[4] | tonumber", ".ss[5] | tonumber", "[.mix[] | numbers]",
        ".o | to_entries? // keys",
    };
    /* each as it is and in [...], which compares every value, not the first two */
    int n = (int)(sizeof shapes / sizeof shapes[0]);
    char **texts = cairn_calloc((size_t)n * 2, sizeof *texts);
    for (int i = 0; i < n; i++) {
        texts[2 * i] = cairn_strdup(shapes[i]);
        texts[2 * i + 1] = cairn_sprintf("[%s]", shapes[i]);
    }
    diff_counts c = {0};
    compare_texts(texts, n * 2, &c);
    CHECK_INT(c.invalid, 0);
    CHECK_INT(c.accepted, (n - 2) * 2);      /* all but the last two: numbers and `?` */
    for (int i = 0; i < n * 2; i++) free(texts[i]);
    free(texts);
}
