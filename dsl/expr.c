/*
 * expr.c - a workflow's jq programs, compiled together and run by index.
 *
 * jq_compile costs about 20 ms whatever the program (libjq 1.6 parses and
 * binds its builtins every time), then about 3 us per bytecode instruction:
 * it binds each of its ~300 builtins by walking the whole program.  So a set
 * compiles its programs in as few jq_compile calls as it can, with as little
 * scaffolding per program as it can (expr_compile.c):
 *
 *   1. Identical texts share one "leaf" (`.inputs.host` comes back often).
 *   2. Each leaf is checked lexically first (expr_lex.c): a program that could
 *      break out of its place, or that names $ENV, now, input..., never
 *      reaches jq.
 *   3. A leaf in the subset of jq that expr_native.c parses and
 *      expr_nateval.c evaluates (paths, operators, pipes, builders, if,
 *      common builtins) needs no jq_compile.  When its operands turn out to be of kinds the
 *      subset leaves to jq, it is compiled alone, once, at that evaluation.
 *   4. The other leaves are compiled in chunks, each one jq program;
 *      evaluation picks the leaf in its chunk by slot.
 *   5. Every program whose leaf does not compile gets one diagnostic, at the
 *      position it was added with.
 *
 * Bounds (expr.h): a jq evaluation runs armed under the watchdog of
 * expr_guard.c, which halts it past the set's time or memory; string
 * repetition, the one builtin that grows past any bound in a single C call
 * from a small input, is checked against the memory budget before it runs
 * (expr_compile.c); and a result is walked, at most as far as the budget,
 * before anyone else sees it.  Left to the time bound only: a builtin that
 * walks a value whose parts are shared many times over (`[., .]` nested,
 * then `tostring` or `==`), which stops only when the walk ends; and jq
 * 1.6 frees a value nested hundreds of thousands deep by recursion, which
 * can overflow the stack.  An evaluator process would close both.
 */
#include "dsl/expr_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/mem.h"
#include "dsl/expr_guard.h"

/* ---- life cycle --------------------------------------------------------- */

cairn_exprset *cairn_exprset_new(void) {
    cairn_exprset *set = cairn_calloc(1, sizeof(cairn_exprset));
    cairn_exprset_set_limits(set, CAIRN_EXPR_TIME_MS_DEFAULT, CAIRN_EXPR_MEMORY_DEFAULT);
    return set;
}

void cairn_exprset_set_limits(cairn_exprset *set, int64_t time_ms, int64_t memory_bytes) {
    set->time_ms = time_ms;
    set->memory_bytes = memory_bytes;
}

static void set_reset(cairn_exprset *set) {
    for (int i = 0; i < set->nchunks; i++) jq_teardown(&set->chunks[i]);
    free(set->chunks);
    set->chunks = NULL;
    set->nchunks = 0;
    for (int i = 0; i < set->nleaves; i++) {
        free(set->leaves[i].error);
        cairn__exprnative_free(set->leaves[i].native);
    }
    free(set->leaves);
    set->leaves = NULL;
    set->nleaves = 0;
    set->state = SET_NEW;
}

void cairn_exprset_free(cairn_exprset *set) {
    if (set == NULL) return;
    set_reset(set);
    for (int i = 0; i < set->count; i++) {
        free(set->progs[i].text);
        free(set->progs[i].file);
    }
    free(set->progs);
    free(set);
}

int cairn_exprset_add(cairn_exprset *set, const char *program, const char *file, int line,
                      int col) {
    if (set->count == CAIRN_EXPR_MAX) return CAIRN_ELIMIT;
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->progs = cairn_realloc(set->progs, (size_t)set->cap * sizeof *set->progs);
    }
    expr_prog *p = &set->progs[set->count];
    p->text = cairn_strdup(program);
    p->len = strlen(program);
    p->file = cairn_strdup(file ? file : "");
    p->line = line;
    p->col = col;
    p->leaf = -1;
    set->state = SET_NEW;
    return set->count++;
}

int cairn_exprset_count(const cairn_exprset *set) { return set ? set->count : 0; }

void cairn_exprset_pos(const cairn_exprset *set, int idx, const char **file, int *line,
                        int *col) {
    const expr_prog *p = &set->progs[idx];
    *file = p->file;
    *line = p->line;
    *col = p->col;
}

void cairn_exprset_refs(const cairn_exprset *set, int idx, const char *root,
                        cairn_expr_ref_cb cb, void *ctx) {
    const expr_prog *p = &set->progs[idx];
    cairn__exprlex_refs(p->text, p->len, root, cb, ctx);
}

/* ---- leaves: one per distinct text, each checked lexically --------------- */

static uint64_t text_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603u;                 /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static void build_leaves(cairn_exprset *set) {
    size_t size = 16;
    while (size < (size_t)set->count * 2) size *= 2;
    int *table = cairn_calloc(size, sizeof *table);   /* leaf index + 1, or 0 */
    set->leaves = cairn_calloc((size_t)set->count + 1, sizeof *set->leaves);
    for (int i = 0; i < set->count; i++) {
        expr_prog *p = &set->progs[i];
        size_t h = (size_t)text_hash(p->text, p->len) & (size - 1);
        while (table[h]) {
            const expr_prog *q = &set->progs[set->leaves[table[h] - 1].prog];
            if (q->len == p->len && memcmp(q->text, p->text, p->len) == 0) break;
            h = (h + 1) & (size - 1);
        }
        if (!table[h]) {
            set->leaves[set->nleaves] = (expr_leaf){.prog = i, .chunk = -1, .slot = -1};
            table[h] = ++set->nleaves;
        }
        p->leaf = table[h] - 1;
    }
    free(table);
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static void check_leaves(cairn_exprset *set) {
    for (int i = 0; i < set->nleaves; i++) {
        expr_leaf *lf = &set->leaves[i];
        const expr_prog *p = &set->progs[lf->prog];
        if (p->len > CAIRN_EXPR_MAX_LEN)
            lf->error = cairn_sprintf("expression too long: %zu bytes (the limit is %d)", p->len,
                                      CAIRN_EXPR_MAX_LEN);
        else if (is_blank(p->text, p->len))
            lf->error = cairn_strdup("empty expression");
        else {
            const char *msg = cairn__exprlex_check(p->text, p->len);
            if (msg) lf->error = cairn_strdup(msg);
            else lf->native = cairn__exprnative_parse(p->text, p->len);
        }
    }
}

#define HOME_JQ_MSG                                                                       \
    "%s exists, and libjq would load its definitions into every expression; move it away " \
    "or run with HOME set to a directory without .jq"

/* libjq 1.6 loads $HOME/.jq, when it is a file, into every program it
 * compiles: its defs would change what expressions compute on this host.
 * There is no switch for it, so refuse it rather than let it in silently. */
static char *home_jq_file(void) {
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') return NULL;
    char *path = cairn_sprintf("%s/.jq", home);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return path;
    free(path);
    return NULL;
}

/* ---- compiling ------------------------------------------------------------ */

/* One diagnostic per program whose text does not compile. */
static int report(const cairn_exprset *set, cairn_diags *diags) {
    int bad = 0;
    for (int i = 0; i < set->count; i++) {
        const expr_prog *p = &set->progs[i];
        const char *why = set->leaves[p->leaf].error;
        if (why == NULL) continue;
        char shown[64];
        size_t n = p->len < sizeof shown - 1 ? p->len : sizeof shown - 4;
        memcpy(shown, p->text, n);
        for (size_t k = 0; k < n; k++)
            if (shown[k] == '\n' || shown[k] == '\r') shown[k] = ' ';
        strcpy(shown + n, p->len > n ? "..." : "");
        cairn_diags_add(diags, p->file, p->line, p->col, "in expression `%s`: %s", shown, why);
        bad++;
    }
    return bad;
}

int cairn_exprset_compile(cairn_exprset *set, cairn_diags *diags) {
    set_reset(set);
    if (set->count == 0) {
        set->state = SET_READY;
        return 0;
    }
    char *home = home_jq_file();
    if (home) {
        const expr_prog *p = &set->progs[0];
        cairn_diags_add(diags, p->file, p->line, p->col, HOME_JQ_MSG, home);
        free(home);
        set->state = SET_FAILED;
        return CAIRN_ESYNTAX;
    }
    build_leaves(set);
    check_leaves(set);
    cairn__exprset_compile_leaves(set);
    if (report(set, diags)) {
        for (int i = 0; i < set->nchunks; i++) jq_teardown(&set->chunks[i]);
        set->nchunks = 0;
        set->state = SET_FAILED;
        return CAIRN_ESYNTAX;
    }
    set->state = SET_READY;
    return 0;
}

/* ---- evaluation ---------------------------------------------------------- */

static int eval_error(const expr_prog *p, jv failure, cairn_err *err) {
    jv msg = jv_invalid_get_msg(failure);
    int rc;
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        rc = cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col, "%s", jv_string_value(msg));
    } else {
        jv text = jv_dump_string(jv_copy(msg), 0);
        rc = cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col, "%s (not a string)",
                          jv_string_value(text));
        jv_free(text);
    }
    jv_free(msg);
    return rc;
}

/* Let go of the references the state still holds to the last input, so
 * that the caller's document is not shared (and copied on its next change). */
static void release_input(jq_state *jq) { jq_start(jq, jv_null(), 0); }

/* A walk over a result, to see that it fits the bounds before anyone else
 * walks it: a value may share its parts, so what it holds in memory says
 * nothing of how long dumping it takes. */
typedef struct {
    int64_t left;             /* bytes the budget still allows, about */
    int64_t deadline_us;      /* the evaluation's; checked every 4,096 values */
    unsigned seen;
    cairn_guard_verdict why;  /* MEMORY also for a value nested too deep */
} size_walk;

/* Count v as its compact JSON would be, about: 16 bytes a value plus its
 * strings' bytes.  False once it is over the budget, nested deeper than
 * CAIRN_EXPR_RESULT_DEPTH, or the deadline has passed. */
static bool walk_fits(size_walk *w, jv v, int depth) {
    if (depth > CAIRN_EXPR_RESULT_DEPTH) w->why = CAIRN_GUARD_MEMORY;
    else if (++w->seen % 4096 == 0 && cairn_now_us() > w->deadline_us) w->why = CAIRN_GUARD_TIME;
    jv_kind k = jv_get_kind(v);
    w->left -= 16 + (k == JV_KIND_STRING ? jv_string_length_bytes(jv_copy(v)) : 0);
    if (w->left < 0 && w->why == CAIRN_GUARD_OK) w->why = CAIRN_GUARD_MEMORY;
    if (k == JV_KIND_ARRAY) {
        int len = jv_array_length(jv_copy(v));
        for (int i = 0; i < len && w->why == CAIRN_GUARD_OK; i++) {
            jv x = jv_array_get(jv_copy(v), i);
            walk_fits(w, x, depth + 1);
            jv_free(x);
        }
    } else if (k == JV_KIND_OBJECT) {
        jv_object_foreach(v, key, x) {
            w->left -= jv_string_length_bytes(key);
            if (w->why == CAIRN_GUARD_OK) walk_fits(w, x, depth + 1);
            jv_free(x);
        }
    }
    return w->why == CAIRN_GUARD_OK;
}

static int bound_error(const cairn_exprset *set, const expr_prog *p, cairn_guard_verdict why,
                       cairn_err *err) {
    if (why == CAIRN_GUARD_TIME)
        return cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col,
                            "stopped: the expression ran past its time bound of %lld ms "
                            "(limits.expression_time)", (long long)set->time_ms);
    return cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col,
                        "stopped: the expression grew memory past its bound of %lld MiB "
                        "(limits.expression_memory)", (long long)(set->memory_bytes >> 20));
}

/* Check a result against the bounds, with what is left of the time. */
static int check_result(const cairn_exprset *set, const expr_prog *p, jv v, int64_t start_us,
                        cairn_err *err) {
    size_walk w = {.left = set->memory_bytes, .deadline_us = start_us + set->time_ms * 1000};
    if (walk_fits(&w, v, 0)) return 0;
    if (w.why == CAIRN_GUARD_TIME) return bound_error(set, p, w.why, err);
    return cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col,
                        "the expression's result is larger than its memory bound of %lld MiB "
                        "(limits.expression_memory), or nested deeper than %d",
                        (long long)(set->memory_bytes >> 20), CAIRN_EXPR_RESULT_DEPTH);
}

/* What jq yielded: exactly one value, or nothing (null); first and second
 * are consumed.  A value is checked against the bounds when it may be
 * larger than the document (sized). */
static int one_result(const cairn_exprset *set, const expr_prog *p, jv first, jv second,
                      bool sized, int64_t start_us, jv *out, cairn_err *err) {
    int rc = 0;
    if (!jv_is_valid(first)) {
        jv_free(second);
        if (!jv_invalid_has_msg(jv_copy(first))) {
            jv_free(first);
            *out = jv_null();
            return 0;
        }
        return eval_error(p, first, err);
    }
    if (jv_is_valid(second))
        rc = cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col,
                          "expression yielded more than one value");
    else if (jv_invalid_has_msg(jv_copy(second)))
        rc = eval_error(p, jv_copy(second), err);
    else if (sized)
        rc = check_result(set, p, first, start_us, err);
    jv_free(second);
    if (rc == 0) *out = first;
    else jv_free(first);
    return rc;
}

/* Run leaf lf of program p in its chunk, under the watchdog: armed after
 * jq_start, which would clear a halt made before it. */
static int eval_jq(cairn_exprset *set, const expr_prog *p, const expr_leaf *lf, jv doc, jv *out,
                   cairn_err *err) {
    jq_state *jq = set->chunks[lf->chunk];
    jq_start(jq, JV_ARRAY(jv_copy(doc), jv_number(lf->slot / CAIRN_EXPR_FANOUT),
                          jv_number(lf->slot % CAIRN_EXPR_FANOUT),
                          jv_number((double)set->memory_bytes)), 0);
    int64_t start_us = cairn_now_us();
    cairn_exprguard_arm(jq, set->time_ms, set->memory_bytes);
    jv first = jq_next(jq);
    jv second = jv_is_valid(first) ? jq_next(jq) : jv_invalid();
    cairn_guard_verdict why = cairn_exprguard_disarm();
    int rc;
    if (why != CAIRN_GUARD_OK) {
        jv_free(first);
        jv_free(second);
        rc = bound_error(set, p, why, err);
    } else {
        rc = one_result(set, p, first, second, true, start_us, out, err);
    }
    if (rc) release_input(jq);   /* also frees what a halted evaluation held */
    return rc;
}

/* A native leaf whose operands need jq: compile it alone, the first time.
 * $HOME/.jq is refused here as at cairn_exprset_compile, since it may have
 * appeared since. */
static int compile_deferred(cairn_exprset *set, const expr_prog *p, cairn_err *err) {
    expr_leaf *lf = &set->leaves[p->leaf];
    if (lf->chunk >= 0) return 0;
    if (lf->error == NULL) {
        char *home = home_jq_file();
        if (home) {
            int rc = cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col, HOME_JQ_MSG, home);
            free(home);
            return rc;
        }
        if (cairn__exprset_compile_leaf(set, p->leaf) == 0) return 0;
    }
    return cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col, "%s", lf->error);
}

bool cairn_exprset_reads(const cairn_exprset *set, int idx, const char *key) {
    if (set == NULL || set->state != SET_READY || idx < 0 || idx >= set->count) return true;
    const cairn_exprnative *native = set->leaves[set->progs[idx].leaf].native;
    return native == NULL || cairn__exprnative_reads(native, key);
}

int cairn_exprset_eval_doc(cairn_exprset *set, int idx, cairn_doc *doc, jv *out,
                           cairn_err *err) {
    *out = jv_invalid();
    if (set == NULL || set->state != SET_READY)
        return cairn_err_set(err, CAIRN_ESTATE, "expressions are not compiled");
    if (idx < 0 || idx >= set->count)
        return cairn_err_set(err, CAIRN_EINVAL, "no expression %d", idx);
    const expr_prog *p = &set->progs[idx];
    const cairn_exprnative *native = set->leaves[p->leaf].native;
    if (native) {
        int64_t start_us = cairn__exprnative_builds(native) ? cairn_now_us() : 0;
        jv first, second;
        bool ran = cairn__exprnative_run_doc(native, doc, &first, &second);
        if (ran && jv_is_valid(first) && cairn__exprnative_one(native) &&
            !cairn__exprnative_builds(native)) {
            *out = first;                         /* the common case, without one_result */
            return 0;
        }
        if (ran)
            return one_result(set, p, first, second, cairn__exprnative_builds(native), start_us,
                              out, err);
        int rc = compile_deferred(set, p, err);   /* deferred to jq */
        if (rc) return rc;
    }
    return eval_jq(set, p, &set->leaves[p->leaf], doc->whole(doc), out, err);
}

int cairn_exprset_eval(cairn_exprset *set, int idx, jv doc, jv *out, cairn_err *err) {
    cairn__jvdoc jd;
    return cairn_exprset_eval_doc(set, idx, cairn__jvdoc_init(&jd, doc), out, err);
}
