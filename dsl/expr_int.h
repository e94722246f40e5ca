/*
 * expr_int.h - private to the expression module (expr.c, expr_compile.c,
 * expr_lex.c, expr_native.c, expr_nateval.c, tmpl.c).
 *
 * Limits of the expression module:
 *   CAIRN_EXPR_MAX          programs in one set (one workflow)
 *   CAIRN_EXPR_MAX_LEN      bytes of one program
 *   CAIRN_EXPR_MAX_NEST     brackets, strings and interpolations open at once
 *   CAIRN_EXPR_FANOUT       branches of one dispatch node (see expr.c)
 *   CAIRN_EXPR_CHUNK_MAX    distinct programs compiled by one jq_compile
 *   CAIRN_EXPR_CHUNK_BYTES  bytes of program text compiled by one jq_compile
 *   CAIRN_EXPR_SPLIT_MIN    programs from which one chunk is cut in two
 *   CAIRN_EXPR_COMPILE_THREADS  threads compiling one set's chunks at once
 * The chunk limits exist because libjq 1.6 binds its ~300 builtins by walking
 * the whole program once per builtin: past a few hundred kilobytes of
 * bytecode the walks stop fitting in the CPU caches and compile time grows
 * much faster than the program.  Several jq_states of bounded size keep it
 * linear.  Those walks are the load's cost (about 0.1 ms a program): one
 * jq_compile also costs ~20 ms of its own (jq parses and binds its builtin
 * library each time, and 1.6 offers no way to keep it), so a set is cut in
 * two only when the walks outweigh that, and its chunks compile on
 * separate threads, each with its own jq_state.
 */
#ifndef CAIRN_EXPR_INT_H
#define CAIRN_EXPR_INT_H

#include <jq.h>
#include <stddef.h>
#include <stdint.h>

#include "dsl/expr.h"

#define CAIRN_EXPR_MAX 20000
#define CAIRN_EXPR_MAX_LEN 16384
#define CAIRN_EXPR_MAX_NEST 200
#define CAIRN_EXPR_FANOUT 32
#define CAIRN_EXPR_CHUNK_MAX (CAIRN_EXPR_FANOUT * CAIRN_EXPR_FANOUT)
#define CAIRN_EXPR_CHUNK_BYTES 65536
#define CAIRN_EXPR_SPLIT_MIN 256
#define CAIRN_EXPR_COMPILE_THREADS 2

/* One program as added.  Programs with the same text share a leaf. */
typedef struct expr_prog {
    char *text;
    size_t len;
    char *file;
    int line, col;
    int leaf;                 /* index into leaves, after compile */
} expr_prog;

/* A text parsed by expr_native.c, evaluated without jq. */
typedef struct cairn_exprnative cairn_exprnative;

/* One distinct text: what is compiled, once. */
typedef struct expr_leaf {
    int prog;                 /* first program with this text */
    cairn_exprnative *native; /* in the native subset: no jq_compile at load; else NULL */
    int chunk, slot;          /* where jq compiled it; -1 while it was not */
    char *error;              /* why it does not compile, or NULL */
} expr_leaf;

/* NEW: programs added since the last compile; FAILED: some program does
 * not compile, nothing can be evaluated. */
typedef enum { SET_NEW, SET_READY, SET_FAILED } set_state;

struct cairn_exprset {
    expr_prog *progs;
    int count, cap;
    expr_leaf *leaves;
    int nleaves;
    jq_state **chunks;        /* one per chunk of leaves */
    int nchunks;
    set_state state;
    int64_t time_ms, memory_bytes;   /* the bounds on one evaluation */
};

/* Parse text (len bytes) when it lies in the subset of jq that expr_native.c
 * parses and expr_nateval.c evaluates (paths, literals, operators, pipes,
 * arrays, objects, strings with interpolations, if, and common builtins):
 * a text accepted is valid jq 1.6.  Returns NULL for any other text. */
cairn_exprnative *cairn__exprnative_parse(const char *text, size_t len);

/* Evaluate e over doc (borrowed) with jq 1.6's meaning, as two calls of
 * jq_next would: *first and *second each receive a value, an error
 * (jv_invalid_with_msg, jq's message) or jv_invalid() when there is no such
 * value (*second is jv_invalid() when *first is not a value).  Returns false,
 * with both jv_invalid(), when jq must evaluate the text (operand kinds or
 * sizes left to jq, see expr_nateval.c). */
bool cairn__exprnative_run(const cairn_exprnative *e, jv doc, jv *first, jv *second);

/* Whether e yields exactly one value or an error whatever its input: then
 * cairn__exprnative_run's *second is always jv_invalid(). */
bool cairn__exprnative_one(const cairn_exprnative *e);

/* As cairn__exprnative_run, over doc: a path read from the document goes
 * through doc->path first, and doc->whole is asked only when needed. */
bool cairn__exprnative_run_doc(const cairn_exprnative *e, cairn_doc *doc, jv *first,
                               jv *second);

/* jq's first value of e over doc (borrowed), its error, or null when it
 * yields none; jv_invalid() without a message when jq must evaluate it. */
jv cairn__exprnative_eval(const cairn_exprnative *e, jv doc);
/* A plain jv (borrowed) as a cairn_doc: whole gives it, path declines. */
typedef struct cairn__jvdoc {
    cairn_doc d;
    jv v;
} cairn__jvdoc;
cairn_doc *cairn__jvdoc_init(cairn__jvdoc *jd, jv v);

/* Whether e makes arrays or objects, so that its result may be larger than
 * the document it reads (expr.c checks it against the bounds then). */
bool cairn__exprnative_builds(const cairn_exprnative *e);

/* Whether evaluating e may read doc's field key: true when some path of e
 * starts there, or is `.` (the whole document), or starts with an index. */
bool cairn__exprnative_reads(const cairn_exprnative *e, const char *key);

void cairn__exprnative_free(cairn_exprnative *e);

/* Compile with jq every leaf that has no error and is not native, in chunks
 * (expr_compile.c): each gets its chunk and slot, or its error. */
void cairn__exprset_compile_leaves(cairn_exprset *set);

/* Compile leaf (native, but deferred to jq at evaluation) alone, in a chunk
 * of its own.  Returns 0, or -1 with the leaf's error set. */
int cairn__exprset_compile_leaf(cairn_exprset *set, int leaf);

/* Check that prog (len bytes) lexes, by jq 1.6's own lexer rules, as a
 * balanced sequence of tokens: every bracket closed by its partner, every
 * string and interpolation closed, nesting within CAIRN_EXPR_MAX_NEST.  Such a
 * program placed between "(\n" and "\n)" can only be parsed as the expression
 * inside those parentheses, whatever it holds: it cannot close them early,
 * comment them out or swallow them in a string.  Also refuses the builtins
 * and variables that read the clock, the environment, input or the host
 * (expr.h; `$ENV` and `$__loc__` with any blanks or comments between `$` and
 * the name, as jq 1.6 lexes them).  Returns NULL when the program passes,
 * else a message (a static string). */
const char *cairn__exprlex_check(const char *prog, size_t len);

/* Find the paths of prog (len bytes) that start at the document it is
 * evaluated over, and call cb for each that reads a field of the field root
 * (expr.h, cairn_exprset_refs, says which are found).  Nothing is found in
 * a program that cairn__exprlex_check refuses. */
void cairn__exprlex_refs(const char *prog, size_t len, const char *root,
                         cairn_expr_ref_cb cb, void *ctx);

/* s points just after a "${{".  Returns the offset in s of the "}}" that ends
 * the expression: the first one that is not inside a jq string literal
 * (interpolations in it included); -1 when there is none. */
long cairn__exprlex_close(const char *s, size_t len);

#endif
