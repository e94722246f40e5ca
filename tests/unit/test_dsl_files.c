/*
 * test_dsl_files.c - workflows read from files: the golden error files of
 * tests/fixtures/dsl (X.yaml with its exact diagnostics in X.err), the good
 * examples beside them, cairn_workflow_load_file, the graph output and
 * durations.  These use the real built-in action catalogue.
 */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actions/action.h"
#include "common/mem.h"
#include "dsl/workflow.h"

#define HEAD "cairn: 1\nname: t\n"
#define ONE_STEP "steps:\n  - id: a\n    uses: set\n"

static char *render(const cairn_diags *d, const char *src, size_t len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cairn_diags_print(d, f, src, len);
    fclose(f);
    return buf;
}

static cairn_workflow *load_ok(const char *src) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d) != 0) {
        cairn_diags_print(&d, stderr, src, strlen(src));
        TEST_FAIL("load failed");
    }
    cairn_diags_free(&d);
    return wf;
}

TEST(workflow_load_file_refuses_missing_and_huge_files) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    char *path = cairn_sprintf("%s/none.yaml", test_tmpdir());
    CHECK_INT(cairn_workflow_load_file(path, cairn_action_lookup_sig, &wf, &d), CAIRN_EIO);
    char *text = render(&d, NULL, 0);
    char *want = cairn_sprintf("%s: error: cannot open: No such file or directory\n", path);
    CHECK_STR(text, want);
    free(text), free(want), free(path);
    cairn_diags_free(&d);

    path = cairn_sprintf("%s/big.yaml", test_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 10 << 20) == 0);       /* 10 MB, never read */
    close(fd);
    CHECK_INT(cairn_workflow_load_file(path, cairn_action_lookup_sig, &wf, &d), CAIRN_ELIMIT);
    CHECK(wf == NULL);
    text = render(&d, NULL, 0);
    want = cairn_sprintf("%s: error: file too large: 10485760 bytes (the limit is 1048576)\n", path);
    CHECK_STR(text, want);
    free(text), free(want);
    cairn_diags_free(&d);

    FILE *f = fopen(path, "w");
    fputs(HEAD ONE_STEP, f);
    fclose(f);
    CHECK_INT(cairn_workflow_load_file(path, cairn_action_lookup_sig, &wf, &d), 0);
    CHECK_STR(wf->file, path);
    CHECK_STR(wf->sha256, "db766c61698debd192ae9c4d5d044ada306e22c46102568d37790c39d68a0d0c");
    cairn_workflow_free(wf);
    cairn_workflow_free(NULL);
    free(path);
}

/* ---- durations ------------------------------------------------------------ */

TEST(duration_parse) {
    static const struct { const char *s; int64_t ms; } good[] = {
        {"250ms", 250}, {"30s", 30000}, {"5m", 300000}, {"2h", 7200000}, {"1d", 86400000},
        {"1h30m", 5400000}, {"1m30s500ms", 90500}, {"0s", 0}, {"90m", 5400000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        CHECK_INT(cairn_duration_parse(good[i].s, &ms), 0);
        CHECK_INT(ms, good[i].ms);
    }
    static const char *const bad[] = {
        "", "5", "s", "5x", "5 m", "-5s", "1.5h", "5mss", "5sm", " 5s", "5s ",
        "9223372036854775807s", "99999999999999999999ms", "106751991168d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 0;
        if (cairn_duration_parse(bad[i], &ms) != CAIRN_EINVAL) TEST_FAIL("accepted '%s'", bad[i]);
    }
    int64_t ms;
    CHECK_INT(cairn_duration_parse(NULL, &ms), CAIRN_EINVAL);
}

/* ---- graph ---------------------------------------------------------------- */

static char *graph(const cairn_workflow *wf, const char *fmt) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    int rc = cairn_workflow_graph(wf, fmt, f);
    fclose(f);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

TEST(workflow_graph_dot_and_mermaid) {
    cairn_workflow *wf = load_ok(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: b, run: x, needs: []}\n"
                    "  - {id: c, uses: set, needs: [a, b], compensate: {uses: fail, with: {message: m}}}\n"
                    "on_failure:\n  - {id: p, uses: set}\n  - {id: q, uses: set}\n");
    char *dot = graph(wf, "dot");
    CHECK_STR(dot, "digraph \"t\" {\n"
                   "  rankdir=TB;\n"
                   "  node [shape=box, fontname=\"sans-serif\"];\n"
                   "  s_a [label=\"a\\nset\"];\n"
                   "  s_b [label=\"b\\nshell\"];\n"
                   "  s_c [label=\"c\\nset\"];\n"
                   "  c_c [label=\"undo c\\nfail\", style=dashed];\n"
                   "  s_a -> s_c;\n"
                   "  s_b -> s_c;\n"
                   "  s_c -> c_c [style=dashed, label=compensate];\n"
                   "  subgraph cluster_on_failure {\n"
                   "  label=\"on_failure\";\n"
                   "  style=dashed;\n"
                   "  f_p [label=\"p\\nset\"];\n"
                   "  f_q [label=\"q\\nset\"];\n"
                   "  f_p -> f_q [style=dashed];\n"
                   "  }\n"
                   "}\n");
    char *mm = graph(wf, "mermaid");
    CHECK_STR(mm, "flowchart TD\n"
                  "  s_a[\"a<br/>set\"]\n"
                  "  s_b[\"b<br/>shell\"]\n"
                  "  s_c[\"c<br/>set\"]\n"
                  "  c_c[/\"undo c<br/>fail\"/]\n"
                  "  s_a --> s_c\n"
                  "  s_b --> s_c\n"
                  "  s_c -.->|compensate| c_c\n"
                  "  subgraph on_failure\n"
                  "  f_p[\"p<br/>set\"]\n"
                  "  f_q[\"q<br/>set\"]\n"
                  "  f_p -.-> f_q\n"
                  "  end\n");
    CHECK(graph(wf, "svg") == NULL);
    free(dot), free(mm);
    cairn_workflow_free(wf);
}

/* ---- golden files --------------------------------------------------------- */

#define FIXTURES "tests/fixtures/dsl"

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.yaml names in dir, sorted. */
static char **list_yaml(const char *dir, int *n) {
    DIR *d = opendir(dir);
    if (d == NULL) TEST_FAIL("cannot open %s (run the tests from the repository root)", dir);
    char **names = NULL;
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        names = cairn_realloc(names, (size_t)(*n + 1) * sizeof *names);
        names[(*n)++] = cairn_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*n, sizeof *names, name_cmp);
    return names;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    cairn_buf b = CAIRN_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) cairn_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data ? b.data : cairn_strdup("");
}

/* Each tests/fixtures/dsl/X.yaml fails to load with exactly the text of
 * X.err (file named "X.yaml", with source lines and carets).  Set
 * CAIRN_UPDATE_GOLDEN=1 to rewrite the .err files after a deliberate change. */
TEST(workflow_golden_errors) {
    int n = 0;
    char **names = list_yaml(FIXTURES, &n);
    CHECK(n >= 10);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char *path = cairn_sprintf(FIXTURES "/%s", names[i]);
        size_t len = 0, elen = 0;
        char *src = slurp(path, &len);
        cairn_workflow *wf = NULL;
        cairn_diags d = CAIRN_DIAGS_INIT;
        int rc = cairn_workflow_load(names[i], src, len, cairn_action_lookup_sig, &wf, &d);
        char *got = render(&d, src, len);
        char *errpath = cairn_sprintf(FIXTURES "/%.*s.err", (int)strlen(names[i]) - 5, names[i]);
        if (getenv("CAIRN_UPDATE_GOLDEN")) {
            FILE *f = fopen(errpath, "w");
            fputs(got, f);
            fclose(f);
        }
        char *want = slurp(errpath, &elen);
        if (rc == 0 || want == NULL || strcmp(got, want) != 0) {
            fprintf(stderr, "  %s: rc %d, got:\n%s  want (%s):\n%s", names[i], rc, got, errpath,
                    want ? want : "(missing)\n");
            bad++;
        }
        cairn_workflow_free(wf);
        cairn_diags_free(&d);
        free(path), free(src), free(got), free(errpath), free(want), free(names[i]);
    }
    free(names);
    CHECK_INT(bad, 0);
}

/* The example workflows in tests/fixtures/dsl/good load with no diagnostic. */
TEST(workflow_good_fixtures_load) {
    int n = 0;
    char **names = list_yaml(FIXTURES "/good", &n);
    CHECK(n >= 3);
    for (int i = 0; i < n; i++) {
        char *path = cairn_sprintf(FIXTURES "/good/%s", names[i]);
        cairn_workflow *wf = NULL;
        cairn_diags d = CAIRN_DIAGS_INIT;
        int rc = cairn_workflow_load_file(path, cairn_action_lookup_sig, &wf, &d);
        char *got = render(&d, NULL, 0);
        if (rc != 0) TEST_FAIL("%s:\n%s", path, got);
        CHECK(wf->n_steps > 0);
        cairn_workflow_free(wf);
        cairn_diags_free(&d);
        free(got), free(path), free(names[i]);
    }
    free(names);
}
