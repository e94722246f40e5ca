/*
 * expr_compile.c - turning a set's leaves into jq programs, and finding out
 * which leaves do not compile.
 *
 * Leaves are cut into chunks (CAIRN_EXPR_CHUNK_MAX, _BYTES); a chunk is one
 * jq program and one jq_state:
 *
 *   def __cairn_pick($d; f0; ...; f31): if $d < 16 then ... f0 ... end;
 *   def __cairn_times(a; b): a * b;           jq's own `*`
 *   null as $ENV | .[1] as $__cairn_hi | .[2] as $__cairn_lo |
 *   .[3] as $__cairn_mem | def _multiply(a; b): ...; .[0] |
 *   __cairn_pick($__cairn_hi;
 *   __cairn_pick($__cairn_lo;
 *   (
 *   <leaf of slot 0>
 *   );
 *   (
 *   <leaf of slot 1>
 *   ); ...
 *
 * Evaluation passes [doc, slot / 32, slot % 32, memory budget].  jq compiles
 * `a * b` to a call of `_multiply(a; b)`, which a def in the program
 * shadows: the one above refuses a string repeated past the memory budget
 * (a single C call that jq cannot halt: `"x" * 1e9` takes seconds and a
 * gigabyte), and passes anything else to jq's own, evaluating b, then a, as
 * jq does.  A leaf is a closure
 * argument: it runs only when picked, costs two instructions of scaffolding,
 * and gets a bytecode function of its own (jq refuses functions over 64 KiB).
 * Measured alternatives, 1,000 programs: an if/elif tree over an index costs
 * ~16 instructions per program and compiles 1.6x slower; one named def per
 * program is quadratic (each def is bound over all that follows it).  The
 * pick costs about 2 us per level when evaluated.
 *
 * A failed compile is attributed by line: each leaf starts on a line of its
 * own, jq reports "at <top-level>, line N" and recovers from syntax errors,
 * so one compile finds every broken leaf.  Those are dropped and the rest
 * compiled again (undefined names show only once the text parses) until it
 * compiles.  An error that jq does not place is found by bisection.
 *
 * Isolation: a leaf sits between "(\n" and "\n)".  expr_lex.c proves that
 * its tokens are balanced by jq's own lexer rules, so the parser can only
 * read it as the one expression inside those parentheses: it cannot close
 * them, comment them out, open a string over them or add a def beside them.
 * Its own defs are scoped to it.  Builtins that read the clock, the
 * environment or input never reach this text: expr_lex.c refuses their
 * names.
 */
#include "dsl/expr_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* ---- the text of one chunk ---------------------------------------------- */

typedef struct gen {
    cairn_buf b;
    int line;           /* line number of the end of b, 1-based */
    int *starts;        /* first line of each leaf */
} gen;

static void gen_put(gen *g, const char *s, size_t n) {
    cairn_buf_append(&g->b, s, n);
    for (size_t i = 0; i < n; i++) g->line += s[i] == '\n';
}

static void gen_puts(gen *g, const char *s) { gen_put(g, s, strlen(s)); }

/* The body of __cairn_pick: a binary tree of ifs over $d, on one line. */
static void gen_pick_tree(gen *g, int lo, int hi) {
    if (hi - lo == 1) {
        cairn_buf_printf(&g->b, "f%d", lo);
        return;
    }
    int mid = (lo + hi) / 2;
    cairn_buf_printf(&g->b, "if $d < %d then ", mid);
    gen_pick_tree(g, lo, mid);
    cairn_buf_puts(&g->b, " else ");
    gen_pick_tree(g, mid, hi);
    cairn_buf_puts(&g->b, " end");
}

static void gen_prelude(gen *g) {
    cairn_buf_puts(&g->b, "def __cairn_pick($d");
    for (int i = 0; i < CAIRN_EXPR_FANOUT; i++) cairn_buf_printf(&g->b, "; f%d", i);
    cairn_buf_puts(&g->b, "): ");
    gen_pick_tree(g, 0, CAIRN_EXPR_FANOUT);
    cairn_buf_puts(&g->b, ";\ndef __cairn_times(a; b): a * b;\n"
                   "null as $ENV | .[1] as $__cairn_hi | .[2] as $__cairn_lo | .[3] as $__cairn_mem |\n"
                   "def _multiply(a; b): b as $b | a as $a |\n"
                   "  if ($a | type) == \"string\" and ($b | type) == \"number\" then [$a, $b]\n"
                   "  elif ($a | type) == \"number\" and ($b | type) == \"string\" then [$b, $a]\n"
                   "  else null end |\n"
                   "  if . != null and __cairn_times(.[0] | utf8bytelength; .[1]) > $__cairn_mem then\n"
                   "    error(\"string repetition past the memory bound of \\($__cairn_mem / 1048576) MiB \"\n"
                   "          + \"(limits.expression_memory)\")\n"
                   "  else __cairn_times($a; $b) end;\n.[0] |\n");
    g->line = 1;
    for (size_t i = 0; i < g->b.len; i++) g->line += g->b.data[i] == '\n';
}

static void gen_leaf(gen *g, const cairn_exprset *set, const int *ids, int k) {
    const expr_prog *p = &set->progs[set->leaves[ids[k]].prog];
    gen_puts(g, "(\n");
    g->starts[k] = g->line;
    gen_put(g, p->text, p->len);
    gen_puts(g, "\n)");
}

/* __cairn_pick over leaves [from, to) (at most CAIRN_EXPR_FANOUT), padded. */
static void gen_group(gen *g, const cairn_exprset *set, const int *ids, int from, int to) {
    gen_puts(g, "__cairn_pick($__cairn_lo;\n");
    for (int k = 0; k < CAIRN_EXPR_FANOUT; k++) {
        if (k) gen_puts(g, ";\n");
        if (from + k < to) gen_leaf(g, set, ids, from + k);
        else gen_puts(g, "empty");
    }
    gen_puts(g, ")");
}

static void gen_chunk(gen *g, const cairn_exprset *set, const int *ids, int n) {
    gen_prelude(g);
    if (n == 1) {
        gen_leaf(g, set, ids, 0);
    } else if (n <= CAIRN_EXPR_FANOUT) {
        gen_group(g, set, ids, 0, n);
    } else {
        gen_puts(g, "__cairn_pick($__cairn_hi;\n");
        for (int k = 0; k < CAIRN_EXPR_FANOUT; k++) {
            int from = k * CAIRN_EXPR_FANOUT, to = from + CAIRN_EXPR_FANOUT;
            if (k) gen_puts(g, ";\n");
            if (from < n) gen_group(g, set, ids, from, to < n ? to : n);
            else gen_puts(g, "empty");
        }
        gen_puts(g, ")");
    }
    gen_puts(g, "\n");
}

/* ---- compiling, and finding what does not compile ------------------------ */

static void collect_msg(void *data, jv msg) {
    jv *msgs = data;
    if (jv_get_kind(msg) == JV_KIND_STRING) *msgs = jv_array_append(*msgs, msg);
    else jv_free(msg);
}

static void drop_msg(void *data, jv msg) {
    (void)data;
    jv_free(msg);
}

/* Compile leaves ids[0..n) as one program.  Returns the jq_state, or NULL
 * with jq's messages in *msgs and each leaf's first line in starts. */
static jq_state *compile_leaves(const cairn_exprset *set, const int *ids, int n, int *starts,
                                jv *msgs) {
    gen g = {.b = CAIRN_BUF_INIT, .starts = starts};
    gen_chunk(&g, set, ids, n);
    jq_state *jq = jq_init();
    if (jq == NULL) {
        fprintf(stderr, "cairn: out of memory (jq_init)\n");
        abort();
    }
    *msgs = jv_array();
    jq_set_error_cb(jq, collect_msg, msgs);
    int ok = jq_compile(jq, g.b.data);
    jq_set_error_cb(jq, drop_msg, NULL);
    cairn_buf_free(&g.b);
    if (!ok) jq_teardown(&jq);
    return jq;
}

/* "jq: 3 compile errors" sums up the others. */
static bool is_summary(const char *m) {
    return strncmp(m, "jq: ", 4) == 0 && m[4] >= '0' && m[4] <= '9';
}

static const char *const AT_LINE = " at <top-level>, line ";

static int msg_line(const char *m) {
    const char *p = strstr(m, AT_LINE);
    return p ? atoi(p + strlen(AT_LINE)) : 0;
}

/* jq's message without "jq: error: ", its place in our text, the echo of
 * the line and its advice about shell quoting. */
static char *msg_clean(const char *m) {
    if (strncmp(m, "jq: error: ", 11) == 0) m += 11;
    size_t n = strcspn(m, "\n");
    const char *at = strstr(m, AT_LINE);
    if (at && (size_t)(at - m) < n) n = (size_t)(at - m);
    char *s = cairn_strndup(m, n);
    const char *advice = " (Unix shell quoting issues?)";
    char *a = strstr(s, advice);
    if (a) memmove(a, a + strlen(advice), strlen(a + strlen(advice)) + 1);
    return s;
}

/* The leaf (position in ids) whose text holds line, or -1. */
static int leaf_at_line(const int *starts, int n, int line) {
    if (n == 0 || line < starts[0]) return -1;
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= line) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Give each leaf the messages that place themselves in its lines (jq may
 * say two things about one mistake: "unexpected ')'" where it noticed, then
 * "Possibly unterminated 'if' statement" where it began), joined by "; ".
 * The leaves in ids have no error yet.  Returns how many were marked. */
static int attribute(cairn_exprset *set, const int *ids, int n, const int *starts, jv msgs) {
    int marked = 0;
    for (int i = 0; i < jv_array_length(jv_copy(msgs)); i++) {
        jv m = jv_array_get(jv_copy(msgs), i);
        const char *s = jv_string_value(m);
        int k = is_summary(s) ? -1 : leaf_at_line(starts, n, msg_line(s));
        if (k >= 0) {
            expr_leaf *lf = &set->leaves[ids[k]];
            char *clean = msg_clean(s);
            if (lf->error == NULL) {
                lf->error = clean;
                marked++;
            } else if (strstr(lf->error, clean) == NULL) {
                char *both = cairn_sprintf("%s; %s", lf->error, clean);
                free(lf->error);
                free(clean);
                lf->error = both;
            } else {
                free(clean);
            }
        }
        jv_free(m);
    }
    return marked;
}

static char *first_msg(jv msgs) {
    char *out = NULL;
    for (int i = 0; out == NULL && i < jv_array_length(jv_copy(msgs)); i++) {
        jv m = jv_array_get(jv_copy(msgs), i);
        if (!is_summary(jv_string_value(m))) out = msg_clean(jv_string_value(m));
        jv_free(m);
    }
    return out ? out : cairn_strdup("does not compile");
}

/* Compile ids[0..n); when that fails, mark the leaves at fault (halving the
 * list when jq does not say where).  Returns how many were marked. */
static int bisect(cairn_exprset *set, const int *ids, int n) {
    int *starts = cairn_calloc((size_t)n, sizeof *starts);
    jv msgs;
    jq_state *jq = compile_leaves(set, ids, n, starts, &msgs);
    int marked = 0;
    if (jq) {
        jq_teardown(&jq);
    } else if ((marked = attribute(set, ids, n, starts, msgs)) == 0) {
        if (n == 1) {
            set->leaves[ids[0]].error = first_msg(msgs);
            marked = 1;
        } else {
            marked = bisect(set, ids, n / 2) + bisect(set, ids + n / 2, n - n / 2);
        }
    }
    jv_free(msgs);
    free(starts);
    return marked;
}

static int drop_marked(const cairn_exprset *set, int *ids, int n) {
    int kept = 0;
    for (int k = 0; k < n; k++)
        if (set->leaves[ids[k]].error == NULL) ids[kept++] = ids[k];
    return kept;
}

static void add_chunk(cairn_exprset *set, jq_state *jq, const int *ids, int n) {
    set->chunks = cairn_realloc(set->chunks, (size_t)(set->nchunks + 1) * sizeof *set->chunks);
    for (int k = 0; k < n; k++) {
        set->leaves[ids[k]].chunk = set->nchunks;
        set->leaves[ids[k]].slot = k;
    }
    set->chunks[set->nchunks++] = jq;
}

/* Compile one chunk; leaves that do not compile get their error and the
 * others are compiled again without them, until the rest compiles.  *n
 * becomes the number of leaves in the program returned (NULL when none
 * compiles).  Writes only the errors of the leaves in ids, so chunks of one
 * set compile on several threads at once. */
static jq_state *compile_chunk(cairn_exprset *set, int *ids, int *n) {
    int *starts = cairn_calloc((size_t)*n, sizeof *starts);
    jq_state *jq = NULL;
    while (*n > 0) {
        jv msgs;
        jq = compile_leaves(set, ids, *n, starts, &msgs);
        if (jq) {
            jv_free(msgs);
            break;
        }
        int marked = attribute(set, ids, *n, starts, msgs);
        if (marked == 0 && *n > 1)
            marked = bisect(set, ids, *n / 2) + bisect(set, ids + *n / 2, *n - *n / 2);
        if (marked == 0) {       /* fails together, compiles apart: should not happen */
            char *why = first_msg(msgs);
            for (int k = 0; k < *n; k++) set->leaves[ids[k]].error = cairn_strdup(why);
            free(why);
        }
        jv_free(msgs);
        *n = drop_marked(set, ids, *n);
    }
    free(starts);
    return jq;
}

/* ---- compiling a set's chunks, on up to CAIRN_EXPR_COMPILE_THREADS ------- */

typedef struct chunk_job {
    int *ids;                 /* into the caller's array of leaf ids */
    int n;
    jq_state *jq;
} chunk_job;

typedef struct compile_worker {
    cairn_exprset *set;
    chunk_job *jobs;
    int njobs, first, step;   /* this worker compiles jobs first, first+step, ... */
    pthread_t thread;
    bool started;
} compile_worker;

static void *compile_jobs(void *arg) {
    compile_worker *w = arg;
    for (int j = w->first; j < w->njobs; j += w->step)
        w->jobs[j].jq = compile_chunk(w->set, w->jobs[j].ids, &w->jobs[j].n);
    return NULL;
}

/* Cut ids[0..n) into chunks within the limits; one chunk of at least
 * CAIRN_EXPR_SPLIT_MIN leaves is cut in two, so that two threads share it.
 * Returns the number of jobs (at most n + 1 are written). */
static int cut_jobs(const cairn_exprset *set, int *ids, int n, chunk_job *jobs) {
    int njobs = 0, from = 0;
    size_t bytes = 0;
    for (int k = 0; k < n; k++) {
        size_t len = set->progs[set->leaves[ids[k]].prog].len;
        if (k - from == CAIRN_EXPR_CHUNK_MAX || (k > from && bytes + len > CAIRN_EXPR_CHUNK_BYTES)) {
            jobs[njobs++] = (chunk_job){.ids = ids + from, .n = k - from};
            from = k;
            bytes = 0;
        }
        bytes += len;
    }
    if (n > from) jobs[njobs++] = (chunk_job){.ids = ids + from, .n = n - from};
    if (njobs == 1 && n >= CAIRN_EXPR_SPLIT_MIN) {
        jobs[1] = (chunk_job){.ids = ids + n / 2, .n = n - n / 2};
        jobs[0].n = n / 2;
        njobs = 2;
    }
    return njobs;
}

void cairn__exprset_compile_leaves(cairn_exprset *set) {
    int *ids = cairn_calloc((size_t)set->nleaves + 1, sizeof *ids);
    int n = 0;
    for (int i = 0; i < set->nleaves; i++)
        if (set->leaves[i].error == NULL && set->leaves[i].native == NULL) ids[n++] = i;
    chunk_job *jobs = cairn_calloc((size_t)n + 2, sizeof *jobs);
    int njobs = cut_jobs(set, ids, n, jobs);
    int nworkers = njobs < CAIRN_EXPR_COMPILE_THREADS ? njobs : CAIRN_EXPR_COMPILE_THREADS;
    compile_worker workers[CAIRN_EXPR_COMPILE_THREADS];
    for (int w = 0; w < nworkers; w++) {
        workers[w] = (compile_worker){.set = set, .jobs = jobs, .njobs = njobs, .first = w,
                                      .step = nworkers};
        /* the first runs here; a thread that cannot start leaves its share to it */
        if (w > 0) workers[w].started = pthread_create(&workers[w].thread, NULL, compile_jobs,
                                                       &workers[w]) == 0;
    }
    if (nworkers > 0) compile_jobs(&workers[0]);
    for (int w = 1; w < nworkers; w++) {
        if (workers[w].started) pthread_join(workers[w].thread, NULL);
        else compile_jobs(&workers[w]);
    }
    for (int j = 0; j < njobs; j++)
        if (jobs[j].jq) add_chunk(set, jobs[j].jq, jobs[j].ids, jobs[j].n);
    free(jobs);
    free(ids);
}

int cairn__exprset_compile_leaf(cairn_exprset *set, int leaf) {
    int n = 1;
    jq_state *jq = compile_chunk(set, &leaf, &n);
    if (jq) add_chunk(set, jq, &leaf, 1);
    return set->leaves[leaf].error ? -1 : 0;
}
