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
 *      break out of its place, or that names $ENV, never reaches jq.
 *   3. A leaf in the small subset of jq that expr_native.c implements (plain
 *      paths, literals, arithmetic, comparisons, and, or, //) is parsed there
 *      and needs no jq_compile.  When its operands turn out to be of kinds the
 *      subset leaves to jq, it is compiled alone, once, at that evaluation.
 *   4. The other leaves are compiled in chunks, each one jq program;
 *      evaluation picks the leaf in its chunk by slot.
 *   5. Every program whose leaf does not compile gets one diagnostic, at the
 *      position it was added with.
 */
#include "dsl/expr_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/mem.h"

/* ---- life cycle --------------------------------------------------------- */

cairn_exprset *cairn_exprset_new(void) { return cairn_calloc(1, sizeof(cairn_exprset)); }

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

void cairn__exprset_pos(const cairn_exprset *set, int idx, const char **file, int *line,
                        int *col) {
    const expr_prog *p = &set->progs[idx];
    *file = p->file;
    *line = p->line;
    *col = p->col;
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

/* Run leaf lf of program p in its chunk. */
static int eval_jq(cairn_exprset *set, const expr_prog *p, const expr_leaf *lf, jv doc, jv *out,
                   cairn_err *err) {
    jq_state *jq = set->chunks[lf->chunk];
    jq_start(jq, JV_ARRAY(jv_copy(doc), jv_number(lf->slot / CAIRN_EXPR_FANOUT),
                          jv_number(lf->slot % CAIRN_EXPR_FANOUT)), 0);
    jv first = jq_next(jq);
    if (!jv_is_valid(first)) {
        if (!jv_invalid_has_msg(jv_copy(first))) {
            jv_free(first);
            *out = jv_null();
            return 0;
        }
        int rc = eval_error(p, first, err);
        release_input(jq);
        return rc;
    }
    jv second = jq_next(jq);
    if (jv_is_valid(second) || jv_invalid_has_msg(jv_copy(second))) {
        jv_free(first);
        int rc = jv_is_valid(second)
                     ? cairn_err_at(err, CAIRN_EEXPR, p->file, p->line, p->col,
                                    "expression yielded more than one value")
                     : eval_error(p, jv_copy(second), err);
        jv_free(second);
        release_input(jq);
        return rc;
    }
    jv_free(second);
    *out = first;
    return 0;
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

int cairn_exprset_eval(cairn_exprset *set, int idx, jv doc, jv *out, cairn_err *err) {
    *out = jv_invalid();
    if (set == NULL || set->state != SET_READY)
        return cairn_err_set(err, CAIRN_ESTATE, "expressions are not compiled");
    if (idx < 0 || idx >= set->count)
        return cairn_err_set(err, CAIRN_EINVAL, "no expression %d", idx);
    const expr_prog *p = &set->progs[idx];
    if (set->leaves[p->leaf].native) {
        jv v = cairn__exprnative_eval(set->leaves[p->leaf].native, doc);
        if (jv_is_valid(v)) {
            *out = v;
            return 0;
        }
        if (jv_invalid_has_msg(jv_copy(v))) return eval_error(p, v, err);
        jv_free(v);                     /* deferred to jq */
        int rc = compile_deferred(set, p, err);
        if (rc) return rc;
    }
    return eval_jq(set, p, &set->leaves[p->leaf], doc, out, err);
}
